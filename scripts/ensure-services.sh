#!/usr/bin/env bash
# Make sure the real servers the tests (or `make run`) talk to are installed.
# As root, missing Debian packages are installed; otherwise the missing ones are named and we stop.
# Usage: ensure-services.sh all | mosquitto
set -euo pipefail

declare -A need
case "${1:-all}" in
  mosquitto) need=([mosquitto]=mosquitto [mosquitto_pub]=mosquitto-clients) ;;
  all) need=(
      [mosquitto]=mosquitto [mosquitto_pub]=mosquitto-clients
      [influxd]=influxdb [victoria-metrics]=victoria-metrics
      [mbpoll]=mbpoll [/usr/include/modbus/modbus.h]=libmodbus-dev [cc]=gcc
      [chromium]=chromium
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
[[ ${#missing[@]} -eq 0 ]] && exit 0

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
