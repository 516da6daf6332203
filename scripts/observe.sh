#!/usr/bin/env bash
# `make observe`: Prometheus (Debian's 2.42, installed on first use by scripts/prometheus.sh)
# scraping the suite that `make run` runs in another terminal, with
# deploy/prometheus/prometheus.yml and the alert rules beside it. Runs in the foreground; Ctrl-C
# stops it. Its data stays in .run/prometheus. PROMETHEUS_PORT picks another port than 9090;
# tests/observability also sets PROMETHEUS_CONFIG (the same file at a 1 s interval) and
# PROMETHEUS_DATA (a directory of its own).
set -euo pipefail
cd "$(dirname "$0")/.."

port=${PROMETHEUS_PORT:-9090}
config=${PROMETHEUS_CONFIG:-deploy/prometheus/prometheus.yml}
data=${PROMETHEUS_DATA:-.run/prometheus}
url="http://127.0.0.1:$port"
bash scripts/prometheus.sh prometheus --version >/dev/null  # installs the package if missing

answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }
if answers "$url/-/ready"; then
  echo "observe: something already answers on $url; PROMETHEUS_PORT=9091 make observe" >&2
  exit 1
fi
if ! answers http://127.0.0.1:8001/readyz; then
  echo "observe: the suite does not answer on :8001; start \`make run\` in another terminal" \
    "(Prometheus scrapes it once it is up)" >&2
fi
if ! answers http://127.0.0.1:15692/metrics; then
  echo "observe: RabbitMQ's rabbitmq_prometheus does not answer on :15692; \`make infra\`" \
    "enables it (online); until then its queue panels stay empty" >&2
fi

cat <<EOT
Prometheus $url scrapes the suite as $config says:
  targets   $url/classic/targets    (every service's /metrics, and RabbitMQ's)
  alerts    $url/classic/alerts     (deploy/prometheus/rules.yml; runbook: deploy/README.md#alerts;
            ProviderInSandbox fires here: in development every provider is its sandbox)
  queries   $url/classic/graph, for instance:
            sum by (route, status) (rate(rtmn_http_requests_total{service="payments"}[1m]))
            sum by (queue, outcome) (rate(rtmn_events_consumed_total[1m]))
            max by (service) (rtmn_outbox_lag_seconds)
            max by (queue) (rabbitmq_queue_messages_ready{queue=~".+\\\\.dlq"})
  Grafana   Dashboards > New > Import > upload deploy/grafana/payment-path.json, and pick a
            Prometheus data source whose URL is $url
            (from Grafana in Docker: http://host.docker.internal:$port)
Ctrl-C stops Prometheus; \`make demo\` drives a payment through the suite meanwhile.
EOT

mkdir -p "$data"
exec bash scripts/prometheus.sh prometheus \
  --config.file="$config" \
  --storage.tsdb.path="$data" \
  --storage.tsdb.retention.time=2d \
  --web.listen-address="127.0.0.1:$port" \
  --log.level=warn
