#!/usr/bin/env bash
# The scale benchmark of BENCHMARKS.md (1M, 5M and 10M generated accounts: import time,
# peak RSS, store size, whole-collection counts and the benchmark query set at each size).
# Datasets are generated once and cached under target/acql-bench/scale (~14 GB for all
# three); results go to docs/bench/scale.{md,json,svg}. Options pass to scale.py.
#
#   scripts/bench/scale.sh
#   scripts/bench/scale.sh --docs 1000000 --docs 2000000 --no-queries
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked --bin acql
exec python3 scripts/bench/scale.py "$@"
