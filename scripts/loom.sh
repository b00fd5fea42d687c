#!/usr/bin/env bash
# Loom model checking of the cache crate's EpochMap (insert/remove/get/resize races), with
# crossbeam-epoch in its loom configuration. Run by scripts/test.sh.
#
#   scripts/loom.sh                        # CI setting: at most 2 preemptions per execution
#   LOOM_MAX_PREEMPTIONS=3 scripts/loom.sh # deeper, slower
#
# The cfg changes how every crate builds, so it uses its own target directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export RUSTFLAGS="--cfg crossbeam_loom"
export CARGO_TARGET_DIR=${LOOM_TARGET_DIR:-target/loom}
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2}
exec cargo test -p cache --release --test loom -j"${CARGO_BUILD_JOBS:-2}"
