#!/usr/bin/env bash
# promtool (Prometheus 2.42, Debian's `prometheus` package) for the rule and dashboard checks of
# tests/observability; installs it when missing, then runs it with the given arguments:
#   scripts/promtool.sh check rules deploy/prometheus/rules.yml
# The package's maintainer scripts would start a Prometheus server; on a machine without
# systemd invoke-rc.d would do it through /etc/init.d. A policy-rc.d that denies every start is
# put in place for the install (and removed after, unless one was there before).
set -euo pipefail

if ! command -v promtool >/dev/null; then
  echo "promtool: installing Debian's prometheus package (for promtool only)" >&2
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if pid=$(pgrep -x prometheus); then
    echo "promtool: the package started a Prometheus server ($pid); stopping it" >&2
    kill "$pid"
  fi
fi

exec promtool "$@"
