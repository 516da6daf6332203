#!/usr/bin/env bash
# Writes .run/env for `make run`: your .env (if any) first, then development defaults for what it
# leaves unset: local addresses, JWT and OTP keys, a webhook secret for the demo. Provider
# credentials stay unset, so every provider runs as its sandbox.
set -euo pipefail
mkdir -p .run/keys
keygen() {  # keygen <name>: .run/keys/<name>-private.pem and -public.pem
  [ -f ".run/keys/$1-private.pem" ] && return
  .venv/bin/rtmn-token keygen ".run/keys/$1" >/dev/null
  mv ".run/keys/$1/jwt-private.pem" ".run/keys/$1-private.pem"
  mv ".run/keys/$1/jwt-public.pem" ".run/keys/$1-public.pem"
  rmdir ".run/keys/$1"
}
keygen jwt
keygen otp
# Single quotes keep a PEM's spaces for both bash's `source` and honcho; "\n" stands for newlines.
pem() { printf "'%s'" "$(awk 'BEGIN{ORS="\\n"} {print}' "$1")"; }
secret() { head -c 24 /dev/urandom | base64 | tr -d '\n/+='; }

env_file=.run/env
: > "$env_file.tmp"
[ -f .env ] && grep -Ev '^\s*(#|$)' .env | grep -Ev '^[A-Z0-9_]+=$' >> "$env_file.tmp" || true
default() {  # default KEY VALUE: kept only when .env did not set KEY
  grep -q "^$1=" "$env_file.tmp" || printf '%s=%s\n' "$1" "$2" >> "$env_file.tmp"
}
default DATABASE_URL "postgresql://127.0.0.1:5432/rtmn"
default REDIS_URL "redis://127.0.0.1:6379/0"
default AMQP_URL "amqp://guest:guest@127.0.0.1:5672/"
default JWT_PUBLIC_KEY "$(pem .run/keys/jwt-public.pem)"
default OTP_SIGNING_KEY "$(pem .run/keys/otp-private.pem)"
default OTP_HASH_KEY "$(secret)$(secret)"
default RAZORPAY_WEBHOOK_SECRET "dev-$(secret)"
default MEDIA_LOCAL_DIR "$PWD/.run/media"
default MEDIA_PUBLIC_URL "http://127.0.0.1:8080"
default LOG_LEVEL "INFO"
# One broker login per service (and for the outside producers the demo plays, and rtmn-dlq), one
# Redis user per service: `make db` (rtmn-db init) creates them with these passwords, and each
# service logs in with its own (rtmn_shared/settings.py, service_logins).
for name in payments otp notify media geo wallet analytics; do
  upper=$(echo "$name" | tr a-z A-Z)
  default "${upper}_AMQP_PASSWORD" "$(secret)"
  default "${upper}_REDIS_PASSWORD" "$(secret)"
done
for name in accounts commerce ops; do
  default "$(echo "$name" | tr a-z A-Z)_AMQP_PASSWORD" "$(secret)"
done
mv "$env_file.tmp" "$env_file"
chmod 600 "$env_file"
echo "dev-env: wrote $env_file (a token: .venv/bin/rtmn-token mint --key .run/keys/jwt-private.pem --sub user-1)"
