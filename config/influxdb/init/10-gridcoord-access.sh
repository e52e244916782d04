#!/bin/bash
# Run once by the influxdb image after its first setup (/docker-entrypoint-initdb.d), as the
# influxdb user, with the influx CLI already logged in as the admin. Creates, for the bucket
# DOCKER_INFLUXDB_INIT_BUCKET only:
#   - the InfluxQL mapping (database = bucket name, retention policy autogen) that gridcoord's
#     reads (warm start, /api/v1/series) and writes through the 1.x-compatible API use;
#   - the user `gridcoord` (password GRIDCOORD_INFLUXDB_PASSWORD from .env) that may write
#     this bucket and read it back, nothing else: not the admin token;
#   - a read-only token for Grafana, written to /etc/influxdb2/tokens/grafana-read.token (the
#     influxdb-tokens volume, mounted read-only into Grafana; InfluxDB cannot be given a token
#     value, only a v1 password, influxdata/influxdb#21385).
set -euo pipefail

bucket_id="${DOCKER_INFLUXDB_INIT_BUCKET_ID:?}"
org="${DOCKER_INFLUXDB_INIT_ORG:?}"
: "${GRIDCOORD_INFLUXDB_PASSWORD:?set GRIDCOORD_INFLUXDB_PASSWORD}"

influx v1 dbrp create --org "$org" --bucket-id "$bucket_id" \
  --db "${DOCKER_INFLUXDB_INIT_BUCKET:?}" --rp autogen --default
influx v1 auth create --org "$org" --username gridcoord \
  --password "$GRIDCOORD_INFLUXDB_PASSWORD" \
  --write-bucket "$bucket_id" --read-bucket "$bucket_id" \
  --description "gridcoord: write and read its own bucket"
umask 0022
influx auth create --org "$org" --read-bucket "$bucket_id" \
  --description "grafana: read the gridcoord bucket" --json \
  | sed -n 's/^[[:space:]]*"token": "\([^"]*\)".*/\1/p' | tr -d '\n' \
  > /etc/influxdb2/tokens/grafana-read.token
test -s /etc/influxdb2/tokens/grafana-read.token
