#!/usr/bin/env bash
# Makes sure PostgreSQL (with PostGIS), Redis and RabbitMQ answer on their default local ports,
# installing from the distribution's packages and starting whatever does not answer.
# Used by `make run`, `make test` and CI; safe to run again.
set -euo pipefail

log() { printf 'ensure-infra: %s\n' "$*" >&2; }
need_apt=()
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

wait_until() {  # wait_until <seconds> <what> <command...>
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what did not come up in time"
      return 1
    fi
    sleep 0.5
  done
}

# PostgreSQL, and PostGIS for the geo service.
command -v pg_isready >/dev/null || need_apt+=(postgresql)
[ ${#need_apt[@]} -eq 0 ] || { apt_install "${need_apt[@]}"; need_apt=(); }
pg_version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
if [ -n "$pg_version" ] && [ ! -f "/usr/share/postgresql/$pg_version/extension/postgis.control" ]; then
  apt_install "postgresql-$pg_version-postgis-3"
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL $pg_version"
  pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
  wait_until 60 PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
fi

# Redis.
command -v redis-server >/dev/null || apt_install redis-server
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_until 30 Redis redis-cli -h 127.0.0.1 -p 6379 ping
fi

# RabbitMQ. Started through the package's wrapper (`su rabbitmq`), it gets PAM's default of 1,024
# open files, ~830 of them for sockets: the whole suite, the trace test's second suite and their
# quorum queues' files run out of them, and the broker then accepts connections it never
# authenticates (seen: minutes of it). Started as `rabbitmq` without PAM, it keeps our limit.
MIN_BROKER_FILES=4096
start_rabbitmq() {
  ulimit -n "$(ulimit -Hn)"
  (cd /var/lib/rabbitmq && HOME=/var/lib/rabbitmq setpriv --reuid=rabbitmq --regid=rabbitmq \
    --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server -detached)
}
broker_files() {
  local pid
  pid=$(pgrep -u rabbitmq -f beam.smp | head -1 || true)
  if [ -n "$pid" ]; then awk '/^Max open files/ {print $4}' "/proc/$pid/limits"; else echo 0; fi
}
command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
if rabbitmqctl -q status >/dev/null 2>&1 && [ "$(broker_files)" -lt "$MIN_BROKER_FILES" ] \
  && [ "$(ulimit -Hn)" -ge "$MIN_BROKER_FILES" ]; then
  log "restarting RabbitMQ: $(broker_files) open files are too few for the suite's tests"
  rabbitmqctl -q stop
fi
if ! rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; then
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    log "starting RabbitMQ"
    start_rabbitmq
  else
    log "starting the RabbitMQ application"
    rabbitmqctl -q start_app || true
  fi
  wait_until 120 RabbitMQ rabbitmq-diagnostics -q check_port_connectivity
fi

# RabbitMQ's own Prometheus endpoint (:15692), which deploy/prometheus/prometheus.yml scrapes
# (`make observe`, tests/observability). Enabling a plugin is online: the broker keeps running.
# It listens on loopback only, as the broker does here (set for the running node; after a
# restart of the node `prometheus.tcp.ip = 127.0.0.1` in rabbitmq.conf keeps it so).
if ! rabbitmq-plugins -q is_enabled rabbitmq_prometheus >/dev/null 2>&1; then
  log "enabling rabbitmq_prometheus on 127.0.0.1:15692"
  rabbitmqctl -q eval 'application:set_env(rabbitmq_prometheus, tcp_config,
    [{ip, "127.0.0.1"}, {port, 15692}], [{persistent, true}]).' >/dev/null
  rabbitmq-plugins -q enable rabbitmq_prometheus >/dev/null
fi

log "PostgreSQL, Redis and RabbitMQ answer"
