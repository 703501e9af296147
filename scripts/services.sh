#!/usr/bin/env bash
# Make sure the services the tests talk to are up: start them when installed and stopped,
# install them with apt-get when missing and running as root, fail with a clear message otherwise.
# Usage: scripts/services.sh postgres redis mosquitto
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do port_open "$port" && return 0; sleep 0.5; done
  echo "services: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "services: $1 is not installed; install it (Debian: apt-get install $*) or run as root so this script can" >&2
    exit 1
  fi
  echo "services: installing $*" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  port_open 5432 && return 0
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # Test machines only: trust local TCP so the suite connects as postgres without a password.
  if [ -w "$hba" ] && ! grep -q "sgw-test-trust" "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust # sgw-test-trust\nhost all all ::1/128 trust # sgw-test-trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port postgres 5432
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
    || su postgres -c "createdb test"
}

ensure_redis() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port redis 6379
}

ensure_mosquitto() {
  port_open 1883 && return 0
  command -v mosquitto >/dev/null || apt_install mosquitto
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  wait_port mosquitto 1883
}

for service in "$@"; do
  case "$service" in
    postgres) ensure_postgres ;;
    redis) ensure_redis ;;
    mosquitto) ensure_mosquitto ;;
    *) echo "services: unknown service $service" >&2; exit 2 ;;
  esac
  echo "services: $service up" >&2
done
