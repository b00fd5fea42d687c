#!/usr/bin/env bash
# Renders the cache suite's CSVs as PNG charts: benches/contention.png (throughput against
# threads, per workload) and benches/hit-ratio.png (hit ratio against capacity, per trace).
#
#   benches/charts.sh [CONTENTION_CSV] [HIT_RATIO_CSV]
#
# Defaults: the newest benches/contention-*.csv and benches/hit-ratio-*.csv. The first run
# creates .local/charts-venv with matplotlib from PyPI; later runs reuse it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=.local/charts-venv
MATPLOTLIB=matplotlib==3.10.9
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$MATPLOTLIB"
fi
exec "$VENV/bin/python" benches/charts.py "$@"
