#!/usr/bin/env bash
# The peer comparison of BENCHMARKS.md: builds acql and the bench runner, then runs
# scripts/bench/bench.py (acql, acql without indexes, hand SQL, DuckDB, jq).
#
#   scripts/bench/run.sh --quick            # 10k docs, debug build, output in target/acql-bench/quick
#                                           # (CI smoke test: no timing assertions; fails only when
#                                           # acql errors or disagrees with its own full scan)
#   scripts/bench/run.sh                    # 10k, 100k and 1M docs (release), output in docs/bench/
#   scripts/bench/run.sh --docs 1000000     # one tier; any other bench.py option passes through
#   scripts/bench/run.sh --install ...      # first: pip install duckdb matplotlib, apt-get install jq
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=release
args=()
install=0
for a in "$@"; do
  case "$a" in
    --quick) profile=debug; args+=("$a") ;;
    --install) install=1 ;;
    *) args+=("$a") ;;
  esac
done

if [ "$install" = 1 ]; then
  python3 -m pip install --quiet duckdb pytz matplotlib
  if ! command -v jq >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq jq
  fi
fi

if [ "$profile" = release ]; then
  cargo build --release --locked --bin acql
else
  cargo build --locked --bin acql
fi
bin="target/$profile"

if ! command -v python3 >/dev/null 2>&1; then
  # No Python: the Rust side only (generate, import, time the query set).
  echo "python3 not found: running the acql side only" >&2
  work=target/acql-bench/quick-nopython
  rm -rf "$work" && mkdir -p "$work"
  "$bin/acql" gen --count 10000 --seed 42 --output "$work/data.ndjson"
  "$bin/acql" import "$work/acql.db" "$work/data.ndjson" --quiet
  exec "$bin/acql" bench "$work/acql.db" scripts/bench/queries.txt --runs 3 --min-runs 1 --budget 1
fi

exec python3 scripts/bench/bench.py --acql "$bin/acql" --runner "$bin/acql" "${args[@]}"
