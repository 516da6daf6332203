#!/usr/bin/env bash
# The nginx gateway for `make run` and the end-to-end tests, from deploy/gateway/nginx.conf.
#   scripts/gateway.sh check        install nginx if missing and test the configuration
#   scripts/gateway.sh run [DIR]    run it in the foreground (prefix DIR, default .run/gateway)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

prepare() {  # prepare <prefix dir> <upstreams file>
  mkdir -p "$1/tmp"
  cp "$root/deploy/gateway/nginx.conf" "$1/nginx.conf"
  cp "$2" "$1/upstreams.conf"
}

if ! command -v nginx >/dev/null; then
  echo "gateway: installing nginx" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
fi

case "${1:-check}" in
  check)
    dir=$(mktemp -d)
    prepare "$dir" "$root/deploy/gateway/upstreams/local.conf"
    nginx -q -t -p "$dir" -c "$dir/nginx.conf"
    rm -rf "$dir"
    ;;
  run)
    dir=${2:-$root/.run/gateway}
    prepare "$dir" "${UPSTREAMS:-$root/deploy/gateway/upstreams/local.conf}"
    exec nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
    ;;
  *) echo "usage: $0 check | run [DIR]" >&2; exit 2 ;;
esac
