#!/usr/bin/env bash
# The planner issue's table (issue 13): five query shapes at 1M generated accounts, acql
# against hand SQL on the same file with the equivalent expression indexes, with the query
# file scripts/bench/planner.txt. Builds acql (release), generates the data (seed 9) and a
# store with the table's indexes once under target/acql-bench/planner-<docs>/, then times.
#
#   scripts/bench/planner.sh                 # 1,000,000 documents
#   scripts/bench/planner.sh 200000 --runs 9 # another size; the rest goes to `acql bench`
set -euo pipefail
cd "$(dirname "$0")/../.."
docs="${1:-1000000}"
shift || true
cargo build --release --locked --bin acql
acql=target/release/acql
work="target/acql-bench/planner-$docs"
mkdir -p "$work"
if [ ! -f "$work/data.ndjson" ]; then
    "$acql" gen --count "$docs" --seed 9 --output "$work/data.ndjson"
fi
if [ ! -f "$work/store.ready" ]; then
    # A store left by an interrupted run is rebuilt (the file and its -wal/-shm).
    rm -f "$work"/store.db*
    "$acql" import -q "$work/store.db" "$work/data.ndjson"
    "$acql" index "$work/store.db" add created
    "$acql" index "$work/store.db" add "profile.country, profile.age"
    touch "$work/store.ready"
fi
# `acql bench` options given after the size replace the default 15 runs.
if [ "$#" -eq 0 ]; then
    set -- --runs 15
fi
exec "$acql" bench "$work/store.db" scripts/bench/planner.txt "$@"
