#!/usr/bin/env bash
# Make sure the real servers the tests (or `make run`) talk to are installed.
# As root, missing Debian packages are installed; otherwise the missing ones are named and we stop.
# `all` also installs the OCPP test station's locked npm packages (tests/fixtures/ocpp_station).
# Usage: ensure-services.sh all | mosquitto
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

declare -A need
case "${1:-all}" in
  mosquitto) need=([mosquitto]=mosquitto [mosquitto_pub]=mosquitto-clients) ;;
  all) need=(
      [mosquitto]=mosquitto [mosquitto_pub]=mosquitto-clients
      [influxd]=influxdb [victoria-metrics]=victoria-metrics
      [mbpoll]=mbpoll [/usr/include/modbus/modbus.h]=libmodbus-dev [cc]=gcc
      [node]=nodejs [npm]=npm
      [chromium]=chromium
      # Compose v1 (Python): `docker-compose config` validates the stack without an engine
      # (docker.io is only recommended, so not installed).
      [docker-compose]=docker-compose
    ) ;;
  *) echo "usage: $0 all|mosquitto" >&2; exit 64 ;;
esac

missing=()
for cmd in "${!need[@]}"; do
  if [[ $cmd == /* ]]; then [[ -e $cmd ]] && continue
  else command -v "$cmd" >/dev/null 2>&1 && continue
  fi
  # Debian puts daemons in /usr/sbin, which a non-root PATH may lack.
  [[ -x /usr/sbin/$cmd ]] && continue
  missing+=("${need[$cmd]}")
done
npm_packages() {
  # The foreign OCPP client the integration tests script (ocpp-rpc), exactly as locked.
  [[ ${1:-all} == all ]] || return 0
  local station="$root/tests/fixtures/ocpp_station"
  [[ -d $station/node_modules/ocpp-rpc ]] && return 0
  (cd "$station" && npm ci --no-audit --no-fund --loglevel=error)
}
if [[ ${#missing[@]} -eq 0 ]]; then npm_packages "${1:-all}"; exit 0; fi

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]]; then
  echo "Missing Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postinst may start the daemons on their default ports; our tests use their own.
for svc in mosquitto influxdb; do
  (command -v service >/dev/null && service "$svc" stop >/dev/null 2>&1) || true
done
npm_packages "${1:-all}"
