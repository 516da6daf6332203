#!/usr/bin/env bash
# Writes .run/env: development JWT keys and the local addresses `make run` uses.
# Provider credentials are left unset, so every provider runs in its sandbox.
set -euo pipefail
mkdir -p .run/keys
[ -f .run/keys/jwt-private.pem ] || .venv/bin/rtmn-token keygen .run/keys >/dev/null
[ -f .run/keys/otp-private.pem ] || {
  .venv/bin/rtmn-token keygen .run/keys/otp >/dev/null
  mv .run/keys/otp/jwt-private.pem .run/keys/otp-private.pem
  mv .run/keys/otp/jwt-public.pem .run/keys/otp-public.pem
  rmdir .run/keys/otp
}
one_line() { awk 'BEGIN{ORS="\\n"} {print}' "$1"; }
{
  [ -f .env ] && grep -v '^\s*#' .env | grep -v '^\s*$' || true
  echo "DATABASE_URL=${DATABASE_URL:-postgresql://127.0.0.1:5432/rtmn}"
  echo "REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}"
  echo "AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
  # Single quotes keep a PEM's spaces for both bash's `source` and honcho; "\n" stands for newlines.
  echo "JWT_PUBLIC_KEY='$(one_line .run/keys/jwt-public.pem)'"
  echo "OTP_SIGNING_KEY='$(one_line .run/keys/otp-private.pem)'"
  echo "OTP_SIGNING_PUBLIC_KEY='$(one_line .run/keys/otp-public.pem)'"
  echo "OTP_HASH_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
  echo "MEDIA_LOCAL_DIR=$PWD/.run/media"
  echo "LOG_LEVEL=INFO"
} > .run/env
chmod 600 .run/env
echo "dev-env: wrote .run/env (mint a token: .venv/bin/rtmn-token mint --key .run/keys/jwt-private.pem --sub user-1)"
