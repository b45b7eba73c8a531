#!/usr/bin/env bash
# The generated performance differential (see differential.py): builds acql and the bench
# runner (release), then times generated query shapes x index catalogs against hand SQL and
# acql's own full scan.
#
#   scripts/bench/differential.sh                      # 200k documents, seed 13
#   scripts/bench/differential.sh --docs 1000000 --seed 3 --json out.json
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked --bin acql
exec python3 scripts/bench/differential.py --acql target/release/acql --runner target/release/acql "$@"
