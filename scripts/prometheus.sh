#!/usr/bin/env bash
# Prometheus 2.42 (Debian's `prometheus` package): installs it when missing, then runs one of its
# programs with the given arguments:
#   scripts/prometheus.sh promtool check rules deploy/prometheus/rules.yml
#   scripts/prometheus.sh prometheus --config.file=deploy/prometheus/prometheus.yml ...
# The package's maintainer scripts would start a Prometheus server of their own (on :9090, with
# /var/lib/prometheus); on a machine without systemd invoke-rc.d would do it through
# /etc/init.d. A policy-rc.d that denies every start is put in place for the install (and removed
# after, unless one was there before), and a server the install started anyway is stopped: the
# tests and `make observe` run their own, on their own port and storage.
set -euo pipefail

program=${1:?usage: scripts/prometheus.sh promtool|prometheus ARGS...}
shift
case "$program" in
  promtool | prometheus) ;;
  *) echo "prometheus.sh: runs promtool or prometheus, not $program" >&2; exit 2 ;;
esac

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  echo "prometheus.sh: installing Debian's prometheus package" >&2
  before=$(pgrep -x prometheus || true)
  policy=/usr/sbin/policy-rc.d ours=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=1
    trap 'rm -f "$policy"' EXIT  # on failure; `exec` below would skip it, hence the rm after
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -n "$ours" ]; then
    rm -f "$policy"
    trap - EXIT
  fi
  for pid in $(pgrep -x prometheus); do  # only a server the install started, none from before
    if ! grep -qx "$pid" <<<"$before"; then
      echo "prometheus.sh: the package started a Prometheus server ($pid); stopping it" >&2
      kill "$pid"
    fi
  done
fi

exec "$program" "$@"
