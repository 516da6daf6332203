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
      echo "promtool: the package started a Prometheus server ($pid); stopping it" >&2
      kill "$pid"
    fi
  done
fi

exec promtool "$@"
