#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
#
#   scripts/test.sh
#
# Starts the local ClickHouse (chDB) if it is not running and stops it again at the end if this
# script started it; then: rustfmt check, clippy -D warnings, cargo test for the workspace, the
# write-ahead log's fault tests, the cache crate's loom models, the ClickHouse front's and the deploy files' Python tests, and the
# real third-party Loki clients. Environment:
#   CLICKHOUSE_PORT   port of the local ClickHouse (default 8123)
#   CARGO_BUILD_JOBS  cargo parallelism (default 2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
PORT=${CLICKHOUSE_PORT:-8123}
export CLICKHOUSE_URL=http://127.0.0.1:$PORT
LOG_DIR=$(mktemp -d)
STARTED_CLICKHOUSE=0

cleanup() {
    if [[ $STARTED_CLICKHOUSE == 1 ]]; then
        scripts/local-clickhouse.sh stop || true
    fi
    rm -rf "$LOG_DIR"
}
trap cleanup EXIT

step() {
    local name=$1
    shift
    echo
    echo "=== $name: $*"
    local started=$SECONDS
    "$@" 2>&1 | tee "$LOG_DIR/$name.log"
    echo "=== $name: done in $((SECONDS - started)) s"
}

if ! scripts/local-clickhouse.sh status >/dev/null 2>&1; then
    STARTED_CLICKHOUSE=1
fi
step clickhouse scripts/local-clickhouse.sh start

step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step cargo-test cargo test --workspace
# The write-ahead log's fault tests (SIGKILL under load, ClickHouse stopped under load, the disk
# budget, torn and damaged segments) stop and start the local ClickHouse: one at a time, alone.
step faults cargo test --test faults -- --test-threads=1
if [[ -x scripts/loom.sh ]]; then
    step loom scripts/loom.sh
fi
step chdb-front .local/venv/bin/python -m unittest discover -s tools/chdb_http -v
# The deploy files' validation needs PyYAML (in the venv) and promtool (Debian's prometheus).
ensure_deploy_tools() {
    local want stamp=.local/venv/.deploy-requirements.sha256
    want=$(sha256sum deploy/tests/requirements.txt | cut -d' ' -f1)
    if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
        .local/venv/bin/python -m pip install --quiet --disable-pip-version-check -r deploy/tests/requirements.txt
        echo "$want" >"$stamp"
    fi
    if ! command -v promtool >/dev/null; then
        echo "installing promtool (Debian package prometheus) ..."
        local sudo=""
        [[ $(id -u) == 0 ]] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    fi
}
ensure_deploy_tools
step deploy .local/venv/bin/python -m unittest discover -s deploy/tests -v
if [[ -x tests/clients/run.sh ]]; then
    step clients tests/clients/run.sh
fi

# One closing line for the whole run, summed over every runner's own summary.
passed=0
failed=0
for log in "$LOG_DIR"/*.log; do
    while read -r p f; do
        passed=$((passed + p))
        failed=$((failed + f))
    done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$log")
    ran=$(sed -nE 's/^Ran ([0-9]+) tests? in .*/\1/p' "$log" | tail -1)
    [[ -n $ran ]] && passed=$((passed + ran))
    while read -r p f; do
        passed=$((passed + p))
        failed=$((failed + f))
    done < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log")
done
echo
echo "all: $passed passed, $failed failed"
[[ $failed == 0 ]]
