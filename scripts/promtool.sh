#!/usr/bin/env bash
# promtool for the rule and dashboard checks of tests/observability, installed on first use by
# scripts/prometheus.sh (Debian's prometheus package, without starting its server):
#   scripts/promtool.sh check rules deploy/prometheus/rules.yml
exec bash "$(dirname "$0")/prometheus.sh" promtool "$@"
