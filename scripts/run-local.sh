#!/usr/bin/env bash
# Run sluice without Docker: the local ClickHouse (chDB) plus `sluice serve`.
#
#   scripts/run-local.sh [extra `sluice serve` flags]
#
# Starts the local ClickHouse on 127.0.0.1:${CLICKHOUSE_PORT:-8123} if it is not running, builds
# sluice (release), and runs it in the foreground on ${SLUICE_LISTEN:-127.0.0.1:3100}. Ctrl-C
# stops sluice (pending batches are flushed); ClickHouse keeps running until
# `scripts/local-clickhouse.sh stop`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PORT=${CLICKHOUSE_PORT:-8123}
export SLUICE_CLICKHOUSE_URL=${SLUICE_CLICKHOUSE_URL:-http://127.0.0.1:$PORT}
export SLUICE_LISTEN=${SLUICE_LISTEN:-127.0.0.1:3100}
export SLUICE_DATA_DIR=${SLUICE_DATA_DIR:-.local/sluice-data}

if [[ $SLUICE_CLICKHOUSE_URL == "http://127.0.0.1:$PORT" ]]; then
    scripts/local-clickhouse.sh start
fi
echo "building sluice (release; the first build takes a few minutes on 2 cores) ..."
cargo build --release -j"${CARGO_BUILD_JOBS:-2}" -p sluice

base=http://$SLUICE_LISTEN
cat <<MSG

sluice will listen on $base, storing into ClickHouse at $SLUICE_CLICKHOUSE_URL (database sluice).
Send logs to:
  Loki push (Promtail, Alloy, Loki clients, Vector's loki sink):  $base/loki/api/v1/push
  JSON lines (Vector's http sink, codec json):                    $base/insert/jsonline
For example:
  curl -H 'Content-Type: application/json' --data '{"streams":[{"stream":{"job":"demo"},"values":[["'\$(date +%s%N)'","hello sluice"]]}]}' $base/loki/api/v1/push
  echo '{"message":"hello","host":"laptop"}' | curl --data-binary @- $base/insert/jsonline
Health: $base/ready   Metrics: $base/metrics   Stop: Ctrl-C

MSG
exec target/release/sluice serve "$@"
