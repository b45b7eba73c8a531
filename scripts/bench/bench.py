#!/usr/bin/env python3
"""The peer comparison of BENCHMARKS.md: acql against hand-written SQLite SQL, DuckDB
(typed table and JSON column) and jq, on the same generated NDJSON.

Per tier (number of documents) it
  1. generates the dataset with `acql gen --count N --seed S` (cached under target/),
  2. loads it into acql (`acql index … add` for the two extra indexes, then
     `acql import`), into DuckDB typed (`read_json`) and DuckDB JSON (`read_json_objects`),
     timing each load,
  3. times the query set (QUERIES below): acql, acql's own full-scan baseline and the
     hand SQL through the Rust bench runner (`acql bench`), DuckDB
     from Python, jq as a subprocess,
  4. checks that every system returns the same result size,
and writes results.json, results.csv, tables.md and SVG plots to the output directory.

Run it through scripts/bench/run.sh, which builds the binaries first:
    scripts/bench/run.sh --quick          # 10k documents, seconds; CI smoke test
    scripts/bench/run.sh                  # 10k, 100k and 1M (about 20 minutes on 2 cores)
    scripts/bench/run.sh --docs 100000    # one tier
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Q7's cut-off: 2026-06-20T00:00:00Z, as in the measurements note (about 3% of the documents).
Q7_CUTOFF = 1781913600000
# Q1 looks up the email of this document index (or of the middle one in a smaller tier).
Q1_DOC = 4321

# Hand-made expression indexes: what an expert would create for the hand SQL (the note's
# "SQLite JSONB +idx" column). They live in the acql database file, which acql ignores.
HAND_INDEXES = [
    ("h_email", "json_extract(doc, '$.profile.email')"),
    ("h_news", "json_extract(doc, '$.subscriptions.newsletter.email.isSubscribed')"),
    ("h_local", "json_extract(doc, '$.subscriptions.localNews.email.isSubscribed')"),
    ("h_lite_full", "json_extract(doc, '$.hasLiteAccount'), json_extract(doc, '$.hasFullAccount')"),
    ("h_country_age", "json_extract(doc, '$.profile.country'), json_extract(doc, '$.profile.age')"),
    ("h_updated", "json_extract(doc, '$.lastUpdatedTimestamp')"),
]

# acql indexes declared before the import, on top of a new store's defaults (which cover
# email, flags, timestamps, subscriptions.*.email.isSubscribed, profile.country and the
# composite (hasLiteAccount, hasFullAccount)): the composite index on (profile.country,
# profile.age) is the counterpart of the hand-made h_country_age.
ACQL_EXTRA_INDEXES = [
    ("profile.age", "value"),
    ("profile.email", "words"),
    ("profile.country, profile.age", "value"),
]


def _sql(where: str, what: str = "json(doc)", tail: str = "") -> str:
    return f"SELECT {what} FROM email_accounts WHERE {where}{tail}"


def _j(path: str) -> str:
    return f"json_extract(doc, '$.{path}')"


def _jd(path: str) -> str:
    return f"json_extract_string(json, '$.{path}')"


# CONTAINS is a case-insensitive whole-word match: `example` matches `jo@example.com` but
# not `jo.example7@gmail.com` (one word, `example7`). The peers spell the same test for
# ASCII text: `example` not preceded or followed by a letter or digit.
_WORD_SQL = f"' ' || lower({_j('profile.email')}) || ' ' GLOB '*[^a-z0-9]example[^a-z0-9]*'"
_WORD_DUCK = "regexp_matches(lower({}), '(^|[^a-z0-9])example([^a-z0-9]|$)')"
# (jq's regex engine is slow: a cheap substring test first, the word test on the ~1% left.)
_WORD_JQ = ('(.profile.email | type) == "string" and (.profile.email | ascii_downcase | contains("example")) '
            'and (.profile.email | test("(^|[^a-z0-9])example([^a-z0-9]|$)"; "i"))')

_NEWS = "subscriptions.newsletter.email.isSubscribed"
_LOCAL = "subscriptions.localNews.email.isSubscribed"

# Each query: id, kind ("count": one number; "rows": records returned), a short label, and
# the same question in each system's language. "{email}" is filled in per dataset.
# jq programs run as `jq -n PROGRAM data.ndjson` and print one number (the result size).
QUERIES = [
    {
        "id": "Q1", "kind": "rows", "label": "profile.email = (1 row)",
        "acql": 'SELECT * FROM emailAccounts WHERE profile.email = "{email}"',
        "sql": _sql(f"{_j('profile.email')} = '{{email}}'"),
        "typed": "SELECT to_json(t) FROM typed t WHERE profile.email = '{email}'",
        "json": f"SELECT json FROM docs WHERE {_jd('profile.email')} = '{{email}}'",
        "jq": 'reduce (inputs | select(.profile.email == "{email}")) as $d (0; . + 1)',
    },
    {
        "id": "Q2c", "kind": "count", "label": "popular subscription, count",
        "acql": f"SELECT count(*) FROM emailAccounts WHERE {_NEWS} = true",
        "sql": _sql(f"{_j(_NEWS)} = 1", "count(*)"),
        "typed": "SELECT count(*) FROM typed WHERE subscriptions['newsletter'].email.isSubscribed = true",
        "json": f"SELECT count(*) FROM docs WHERE {_jd(_NEWS)} = 'true'",
        "jq": f"reduce (inputs | select(.{_NEWS} == true)) as $d (0; . + 1)",
    },
    {
        "id": "Q2f", "kind": "rows", "label": "popular subscription, fetch all",
        "acql": f"SELECT * FROM emailAccounts WHERE {_NEWS} = true",
        "sql": _sql(f"{_j(_NEWS)} = 1"),
        "typed": "SELECT to_json(t) FROM typed t WHERE subscriptions['newsletter'].email.isSubscribed = true",
        "json": f"SELECT json FROM docs WHERE {_jd(_NEWS)} = 'true'",
        "jq": None,
    },
    {
        "id": "Q3c", "kind": "count", "label": "rare subscription, count",
        "acql": f"SELECT count(*) FROM emailAccounts WHERE {_LOCAL} = true",
        "sql": _sql(f"{_j(_LOCAL)} = 1", "count(*)"),
        "typed": "SELECT count(*) FROM typed WHERE subscriptions['localNews'].email.isSubscribed = true",
        "json": f"SELECT count(*) FROM docs WHERE {_jd(_LOCAL)} = 'true'",
        "jq": f"reduce (inputs | select(.{_LOCAL} == true)) as $d (0; . + 1)",
    },
    {
        "id": "Q3f", "kind": "rows", "label": "rare subscription, fetch all",
        "acql": f"SELECT * FROM emailAccounts WHERE {_LOCAL} = true",
        "sql": _sql(f"{_j(_LOCAL)} = 1"),
        "typed": "SELECT to_json(t) FROM typed t WHERE subscriptions['localNews'].email.isSubscribed = true",
        "json": f"SELECT json FROM docs WHERE {_jd(_LOCAL)} = 'true'",
        "jq": None,
    },
    {
        "id": "Q4c", "kind": "count", "label": "lite & !full, count",
        "acql": "SELECT count(*) FROM emailAccounts WHERE hasLiteAccount = true AND hasFullAccount = false",
        "sql": _sql(f"{_j('hasLiteAccount')} = 1 AND {_j('hasFullAccount')} = 0", "count(*)"),
        "typed": "SELECT count(*) FROM typed WHERE hasLiteAccount = true AND hasFullAccount = false",
        "json": f"SELECT count(*) FROM docs WHERE {_jd('hasLiteAccount')} = 'true' AND {_jd('hasFullAccount')} = 'false'",
        "jq": "reduce (inputs | select(.hasLiteAccount == true and .hasFullAccount == false)) as $d (0; . + 1)",
    },
    {
        "id": "Q4f", "kind": "rows", "label": "lite & !full, fetch all",
        "acql": "SELECT * FROM emailAccounts WHERE hasLiteAccount = true AND hasFullAccount = false",
        "sql": _sql(f"{_j('hasLiteAccount')} = 1 AND {_j('hasFullAccount')} = 0"),
        "typed": "SELECT to_json(t) FROM typed t WHERE hasLiteAccount = true AND hasFullAccount = false",
        "json": f"SELECT json FROM docs WHERE {_jd('hasLiteAccount')} = 'true' AND {_jd('hasFullAccount')} = 'false'",
        "jq": None,
    },
    {
        "id": "Q5c", "kind": "count", "label": "DE & age >= 30, count",
        "acql": 'SELECT count(*) FROM emailAccounts WHERE profile.country = "DE" AND profile.age >= 30',
        "sql": _sql(f"{_j('profile.country')} = 'DE' AND {_j('profile.age')} >= 30", "count(*)"),
        "typed": "SELECT count(*) FROM typed WHERE profile.country = 'DE' AND profile.age >= 30",
        "json": f"SELECT count(*) FROM docs WHERE {_jd('profile.country')} = 'DE' "
        "AND TRY_CAST(json_extract(json, '$.profile.age') AS DOUBLE) >= 30",
        "jq": 'reduce (inputs | select(.profile.country == "DE" and (.profile.age | type) == "number" '
        "and .profile.age >= 30)) as $d (0; . + 1)",
    },
    {
        "id": "Q6", "kind": "rows", "label": "email CONTAINS, LIMIT 100",
        "acql": 'SELECT * FROM emailAccounts WHERE profile.email CONTAINS "example" LIMIT 100',
        "sql": _sql(_WORD_SQL, tail=" LIMIT 100"),
        "typed": f"SELECT to_json(t) FROM typed t WHERE {_WORD_DUCK.format('profile.email')} LIMIT 100",
        "json": f"SELECT json FROM docs WHERE {_WORD_DUCK.format(_jd('profile.email'))} LIMIT 100",
        "jq": f"[limit(100; inputs | select({_WORD_JQ}))] | length",
    },
    {
        "id": "Q6c", "kind": "count", "label": "email CONTAINS, count",
        "acql": 'SELECT count(*) FROM emailAccounts WHERE profile.email CONTAINS "example"',
        "sql": _sql(_WORD_SQL, "count(*)"),
        "typed": f"SELECT count(*) FROM typed WHERE {_WORD_DUCK.format('profile.email')}",
        "json": f"SELECT count(*) FROM docs WHERE {_WORD_DUCK.format(_jd('profile.email'))}",
        "jq": f"reduce (inputs | select({_WORD_JQ})) as $d (0; . + 1)",
    },
    {
        "id": "Q7", "kind": "rows", "label": "recent, ORDER BY DESC LIMIT 50",
        "acql": f"SELECT * FROM emailAccounts WHERE lastUpdatedTimestamp > {Q7_CUTOFF} "
        "ORDER BY lastUpdatedTimestamp DESC LIMIT 50",
        "sql": _sql(f"{_j('lastUpdatedTimestamp')} > {Q7_CUTOFF}",
                    tail=f" ORDER BY {_j('lastUpdatedTimestamp')} DESC LIMIT 50"),
        "typed": f"SELECT to_json(t) FROM typed t WHERE lastUpdatedTimestamp > {Q7_CUTOFF} "
        "ORDER BY lastUpdatedTimestamp DESC LIMIT 50",
        "json": f"SELECT json FROM docs WHERE TRY_CAST(json_extract(json, '$.lastUpdatedTimestamp') AS BIGINT) > {Q7_CUTOFF} "
        "ORDER BY TRY_CAST(json_extract(json, '$.lastUpdatedTimestamp') AS BIGINT) DESC LIMIT 50",
        "jq": f'[inputs | select((.lastUpdatedTimestamp | type) == "number" and .lastUpdatedTimestamp > {Q7_CUTOFF})] '
        "| sort_by(-.lastUpdatedTimestamp) | .[:50] | length",
    },
    {
        "id": "Q7c", "kind": "count", "label": "recent, count",
        "acql": f"SELECT count(*) FROM emailAccounts WHERE lastUpdatedTimestamp > {Q7_CUTOFF}",
        "sql": _sql(f"{_j('lastUpdatedTimestamp')} > {Q7_CUTOFF}", "count(*)"),
        "typed": f"SELECT count(*) FROM typed WHERE lastUpdatedTimestamp > {Q7_CUTOFF}",
        "json": f"SELECT count(*) FROM docs WHERE TRY_CAST(json_extract(json, '$.lastUpdatedTimestamp') AS BIGINT) > {Q7_CUTOFF}",
        "jq": f'reduce (inputs | select((.lastUpdatedTimestamp | type) == "number" '
        f"and .lastUpdatedTimestamp > {Q7_CUTOFF})) as $d (0; . + 1)",
    },
    {
        "id": "Q8", "kind": "rows", "label": "GROUP BY country (groups)",
        "acql": "SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country",
        "sql": f"SELECT {_j('profile.country')} AS c, count(*) FROM email_accounts WHERE c IS NOT NULL GROUP BY c",
        "typed": "SELECT profile.country AS c, count(*) FROM typed WHERE c IS NOT NULL GROUP BY c",
        "json": f"SELECT {_jd('profile.country')} AS c, count(*) FROM docs WHERE c IS NOT NULL GROUP BY c",
        "jq": "reduce (inputs | .profile.country | select(type == \"string\")) as $c ({}; .[$c] += 1) | length",
    },
]

SYSTEMS = [
    ("acql", "acql"),
    ("scan", "acql, no index"),
    ("sql", "hand SQL"),
    ("typed", "DuckDB typed"),
    ("json", "DuckDB JSON"),
    ("jq", "jq"),
]
PEERS = ["sql", "typed", "json", "jq"]


def query_file(email: str, seed: int) -> str:
    """The acql/hand-SQL part of the query set in the format of `acql bench`."""
    lines = [
        "# The query set of BENCHMARKS.md (Q1-Q8 of the measurements note, count and fetch variants).",
        f"# Generated by `scripts/bench/bench.py --write-queries` for `acql gen --seed {seed}`;",
        "# run it with `cargo run --release -- bench DB scripts/bench/queries.txt`.",
        "# Hand-made expression indexes for the hand SQL (acql ignores them):",
    ]
    lines += [f"setup: CREATE INDEX IF NOT EXISTS {name} ON email_accounts({expr})" for name, expr in HAND_INDEXES]
    for q in QUERIES:
        lines.append("")
        lines.append(f"# {q['label']}")
        lines.append(f"{q['id']}: " + q["acql"].replace("{email}", email))
        lines.append(f"{q['id']} sql: " + q["sql"].replace("{email}", email))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Timing


def median(samples: list[float]) -> float:
    """The upper median, as `acql bench` computes it."""
    s = sorted(samples)
    return s[len(s) // 2]


def p95(samples: list[float]) -> float:
    """Nearest-rank 95th percentile, as `acql bench` computes it."""
    s = sorted(samples)
    rank = -(-len(s) * 95 // 100)
    return s[max(rank, 1) - 1]


def measure(fn, budget: float, runs: int, min_runs: int, warmup: int = 1) -> dict:
    """One warm-up, then up to `runs` timed runs bounded by `budget` seconds (at least
    `min_runs`): the same rule as the Rust runner."""
    warm = None
    for _ in range(warmup):
        t = time.perf_counter()
        fn()
        warm = time.perf_counter() - t
    n = runs
    if warm:
        n = max(min(int(budget // warm), runs), min(min_runs, runs))
    samples, result = [], None
    for _ in range(max(n, 1)):
        t = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t)
    return {"median_s": median(samples), "p95_s": p95(samples), "samples_s": samples, "result": result}


def fmt_time(s: float | None) -> str:
    if s is None:
        return "–"
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if s >= scale or unit == "µs":
            v = s / scale
            return f"{v:.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}" if v >= 10 else f"{v:.2f} {unit}"
    return "–"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "–"
    if r < 0.1:
        return f"{r:.2g}×"
    return f"{r:.0f}×" if r >= 100 else f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kw)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Machine and versions


def machine_info(acql: Path) -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        cpu = [l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
               if l.startswith("model name")]
        info["cpu"] = f"{len(cpu)} × {cpu[0]}" if cpu else platform.processor()
        mem = next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
        info["ram_gib"] = round(int(mem.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    for key, cmd in (("acql", [str(acql), "--version"]), ("rustc", ["rustc", "--version"]), ("jq", ["jq", "--version"])):
        try:
            info[key] = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            info[key] = None
    try:
        import duckdb  # noqa: PLC0415

        info["duckdb"] = duckdb.__version__
    except ImportError:
        info["duckdb"] = None
    return info


def child_cpu() -> float:
    """User + system CPU seconds of the finished child processes (robust to a busy machine)."""
    import resource  # noqa: PLC0415

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------------------------
# One tier


def file_size(*paths: Path) -> int:
    return sum(p.stat().st_size for p in paths if p.exists())


def tier(n: int, args, acql: Path, runner: Path, peers: set[str]) -> dict:
    work = args.work / f"peer-{n}-s{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data.ndjson"
    out = {"docs": n, "seed": args.seed, "load_before": load(), "import": {}}
    log(f"== {n} documents (load {out['load_before']}) in {work}")

    if args.fresh or not data.exists():
        t = time.perf_counter()
        run([str(acql), "gen", "--count", str(n), "--seed", str(args.seed), "--output", str(data)])
        out["import"]["gen_s"] = time.perf_counter() - t
    out["ndjson_bytes"] = data.stat().st_size
    with data.open() as f:
        pick = Q1_DOC if n > Q1_DOC else n // 2
        for i, line in enumerate(f):
            if i == pick:
                email = json.loads(line)["profile"]["email"]
                break
    out["email"] = email

    # acql: the extra indexes are declared on the empty store, so the import fills them.
    db = work / "acql.db"
    imports_file = work / "imports.json"
    imports = json.loads(imports_file.read_text()) if imports_file.exists() and not args.fresh else {}
    if args.fresh or not db.exists():
        for p in work.glob("acql.db*"):
            p.unlink()
        for pattern, kind in ACQL_EXTRA_INDEXES:
            run([str(acql), "index", str(db), "add", pattern, "--kind", kind], stdout=subprocess.DEVNULL)
        t, cpu = time.perf_counter(), child_cpu()
        run([str(acql), "import", str(db), str(data), "--quiet"])
        imports["acql"] = {"seconds": time.perf_counter() - t, "cpu_s": child_cpu() - cpu}
        run([str(acql), str(db), "SELECT count(*) FROM emailAccounts"], stdout=subprocess.DEVNULL)
        imports["acql"]["bytes"] = file_size(db, Path(f"{db}-wal"))
        imports_file.write_text(json.dumps(imports))

    qfile = work / "queries.txt"
    qfile.write_text(query_file(email, args.seed))
    checked_in = ROOT / "scripts/bench/queries.txt"
    if n > Q1_DOC and args.seed == 42 and checked_in.exists() and checked_in.read_text() != qfile.read_text():
        log(f"warning: {checked_in} is stale (the generator or the query set changed): "
            "regenerate it with `scripts/bench/bench.py --acql target/debug/acql --write-queries "
            "scripts/bench/queries.txt`")
    if "sql" in peers and "hand_indexes" not in imports:
        # A query file with only the setup lines: the runner builds the hand-made indexes.
        setup = work / "setup.txt"
        setup.write_text("".join(l + "\n" for l in qfile.read_text().splitlines() if l.startswith("setup:")))
        t = time.perf_counter()
        run([str(runner), "bench", str(db), str(setup)], stdout=subprocess.DEVNULL)
        imports["hand_indexes"] = {"seconds": time.perf_counter() - t}
        imports["hand_indexes"]["bytes_after"] = file_size(db, Path(f"{db}-wal"))
        imports_file.write_text(json.dumps(imports))
    report_file = work / "acql-report.json"
    cmd = [str(runner), "bench", str(db), str(qfile), "--json", str(report_file), "--budget", str(args.budget),
           "--runs", str(args.runs), "--min-runs", str(args.min_runs)]
    if "sql" not in peers:
        cmd.append("--no-sql")
    if "scan" not in peers:
        cmd.append("--no-baseline")
    proc = subprocess.run(cmd, text=True, capture_output=True)
    if proc.returncode not in (0, 1) or not report_file.exists():
        log(proc.stdout + proc.stderr)
        raise SystemExit(f"the bench runner failed (exit {proc.returncode})")
    (work / "acql-report.txt").write_text(proc.stdout)
    log(proc.stdout)
    report = json.loads(report_file.read_text())
    out["sqlite"] = report.get("database_version", "").removeprefix("SQLite ")
    results = {q["id"]: {} for q in QUERIES}
    for r in report["results"]:
        for side in ("acql", "scan", "sql"):
            v = r.get(side)
            if v is None:
                continue
            if "error" in v:
                results[r["name"]][side] = {"error": v["error"]}
                continue
            q = next(q for q in QUERIES if q["id"] == r["name"])
            size = v["total"] if q["kind"] == "count" else v["rows"]
            results[r["name"]][side] = {"median_s": v["median_s"], "p95_s": v["p95_s"],
                                        "runs": len(v["samples_s"]), "result": size}
        results[r["name"]]["acql_agrees_with_scan"] = r.get("scan_agrees")

    if peers & {"typed", "json"}:
        duck(work, data, email, args, peers, results, imports)
        imports_file.write_text(json.dumps(imports))
    if "jq" in peers and shutil.which("jq") and n <= args.jq_max_docs:
        for q in QUERIES:
            if not q["jq"]:
                continue
            prog = q["jq"].replace("{email}", email)
            t, cpu = time.perf_counter(), child_cpu()
            res = run(["jq", "-n", prog, str(data)], capture_output=True).stdout.strip()
            dt = time.perf_counter() - t
            results[q["id"]]["jq"] = {"median_s": dt, "p95_s": dt, "runs": 1, "result": int(res),
                                      "cpu_s": child_cpu() - cpu}
            log(f"  jq {q['id']}: {fmt_time(dt)}")
    out["import"].update(imports)
    out["queries"] = results
    out["load_after"] = load()
    return out


def duck(work: Path, data: Path, email: str, args, peers: set[str], results: dict, imports: dict) -> None:
    import duckdb  # noqa: PLC0415

    for layout in ("typed", "json"):
        if layout not in peers:
            continue
        path = work / f"duck-{layout}.duckdb"
        if args.fresh or not path.exists() or layout not in imports:
            path.unlink(missing_ok=True)
            con = duckdb.connect(str(path))
            con.execute(f"SET threads = {args.duckdb_threads}")
            t = time.perf_counter()
            if layout == "typed":
                con.execute(f"CREATE TABLE typed AS SELECT * FROM read_json('{data}', format = 'newline_delimited')")
            else:
                con.execute(
                    f"CREATE TABLE docs AS SELECT json FROM read_json_objects('{data}', format = 'newline_delimited')")
            con.execute("CHECKPOINT")
            imports[layout] = {"seconds": time.perf_counter() - t}
            con.close()
            imports[layout]["bytes"] = file_size(path, Path(f"{path}.wal"))
        con = duckdb.connect(str(path), read_only=True)
        con.execute(f"SET threads = {args.duckdb_threads}")
        for q in QUERIES:
            sql = q[layout].replace("{email}", email)

            def once(sql=sql, kind=q["kind"]):
                cur = con.execute(sql)
                if kind == "count":
                    return cur.fetchone()[0]
                rows = cur.fetchall()
                # Touch each record's text, as the other systems' clients do.
                sum(len(str(r[0])) for r in rows)
                return len(rows)

            try:
                m = measure(once, args.budget, args.runs, args.min_runs)
                results[q["id"]][layout] = {"median_s": m["median_s"], "p95_s": m["p95_s"],
                                            "runs": len(m["samples_s"]), "result": m["result"]}
                log(f"  DuckDB {layout} {q['id']}: {fmt_time(m['median_s'])}")
            except duckdb.Error as e:
                results[q["id"]][layout] = {"error": str(e)}
                log(f"  DuckDB {layout} {q['id']}: error {e}")
        con.close()


# ---------------------------------------------------------------------------------------
# Summaries


def summarise(t: dict) -> None:
    """Adds, per query, the agreement of the result sizes, the best peer and acql's ratio to it."""
    for q in QUERIES:
        r = t["queries"][q["id"]]
        sizes = {s: v["result"] for s, v in r.items() if isinstance(v, dict) and "result" in v}
        r["agree"] = len(set(sizes.values())) <= 1 and r.get("acql_agrees_with_scan") is not False
        r["sizes"] = sizes
        peers = [(v["median_s"], s) for s, v in r.items() if s in PEERS and isinstance(v, dict) and "median_s" in v]
        acql = r.get("acql", {}).get("median_s")
        if peers and acql:
            best_t, best = min(peers)
            r["best_peer"] = best
            r["ratio_to_best"] = acql / best_t if best_t > 0 else None


def slowest(t: dict, k: int = 3) -> list[tuple[str, float, str]]:
    rows = [(q["id"], t["queries"][q["id"]].get("ratio_to_best"), t["queries"][q["id"]].get("best_peer"))
            for q in QUERIES]
    rows = [r for r in rows if r[1] is not None]
    return sorted(rows, key=lambda r: -r[1])[:k]


def name_of(system: str) -> str:
    return dict(SYSTEMS)[system]


def markdown(results: dict) -> str:
    out = []
    m = results["machine"]
    out.append(f"Machine: {m.get('cpu')}, {m.get('ram_gib')} GiB RAM; {m.get('platform')}.  ")
    out.append(f"Versions: {m.get('acql')}, {m.get('rustc')}, SQLite {results['tiers'][0].get('sqlite')} (bundled), "
               f"DuckDB {m.get('duckdb')} ({results['duckdb_threads']} threads), {m.get('jq')}, Python {m.get('python')}.")
    out.append("")
    out.append("#### Import")
    out.append("")
    out.append("| documents | NDJSON | acql import | acql rate | acql DB | hand indexes (6) | DuckDB typed | DuckDB JSON |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in results["tiers"]:
        imp, n = t["import"], t["docs"]
        mib = lambda b: f"{b / 2**20:.0f} MiB" if b else "–"  # noqa: E731
        cell = lambda k: (f"{fmt_time(imp[k]['seconds'])} ({n / imp[k]['seconds'] / 1000:.0f}k/s, {mib(imp[k].get('bytes'))})"  # noqa: E731
                          if k in imp else "–")
        acql = imp.get("acql", {})
        cpu = f" (CPU {fmt_time(acql['cpu_s'])})" if acql.get("cpu_s") else ""
        out.append(f"| {n:,} | {mib(t['ndjson_bytes'])} | {fmt_time(acql.get('seconds'))}{cpu} | "
                   f"{n / acql['seconds'] / 1000:.0f}k docs/s | {mib(acql.get('bytes'))} | "
                   f"{fmt_time(imp.get('hand_indexes', {}).get('seconds'))} | {cell('typed')} | {cell('json')} |"
                   if acql.get("seconds") else f"| {n:,} | {mib(t['ndjson_bytes'])} | (cached) | | | | | |")
    for t in results["tiers"]:
        out.append("")
        out.append(f"#### {t['docs']:,} documents")
        out.append("")
        out.append(f"Load average before / after: {t['load_before']} / {t.get('load_after')}. "
                   f"Medians; acql p95 in the next column. `result` = rows returned, or the count.")
        out.append("")
        heads = ["id", "query", "result", "acql", "acql p95", "acql, no index", "hand SQL", "DuckDB typed",
                 "DuckDB JSON", "jq", "best peer", "acql ÷ best", "agree"]
        out.append("| " + " | ".join(heads) + " |")
        out.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(heads) - 3) + [":---:"]) + "|")
        for q in QUERIES:
            r = t["queries"][q["id"]]

            def cell(s, r=r):
                v = r.get(s)
                if not isinstance(v, dict):
                    return "–"
                if "error" in v:
                    return "error"
                return fmt_time(v["median_s"])

            acql = r.get("acql", {})
            size = acql.get("result", "–")
            out.append("| " + " | ".join([
                q["id"], q["label"], f"{size:,}" if isinstance(size, int) else str(size), cell("acql"),
                fmt_time(acql.get("p95_s")), cell("scan"), cell("sql"), cell("typed"), cell("json"), cell("jq"),
                name_of(r["best_peer"]) if r.get("best_peer") else "–", fmt_ratio(r.get("ratio_to_best")),
                "yes" if r.get("agree") else "**NO** " + json.dumps(r.get("sizes")),
            ]) + " |")
        worst = slowest(t)
        if worst:
            out.append("")
            out.append("Slowest relative to the best peer: " + ", ".join(
                f"{qid} ({fmt_ratio(ratio)} {name_of(best)})" for qid, ratio, best in worst) + ".")
    return "\n".join(out) + "\n"


def write_csv(results: dict, path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["docs", "query", "system", "median_s", "p95_s", "runs", "result", "error"])
        for t in results["tiers"]:
            for q in QUERIES:
                for s, _ in SYSTEMS:
                    v = t["queries"][q["id"]].get(s)
                    if not isinstance(v, dict):
                        continue
                    w.writerow([t["docs"], q["id"], s, v.get("median_s", ""), v.get("p95_s", ""), v.get("runs", ""),
                                v.get("result", ""), v.get("error", "")])


# ---------------------------------------------------------------------------------------
# Plots: matplotlib when it is installed, else a hand-written SVG of the same bars.

COLORS = {"acql": "#d62728", "scan": "#ff9896", "sql": "#1f77b4", "typed": "#2ca02c", "json": "#98df8a",
          "jq": "#7f7f7f"}


def plot_latency(t: dict, path: Path) -> None:
    ids = [q["id"] for q in QUERIES]
    series = {s: [t["queries"][i].get(s, {}).get("median_s") if isinstance(t["queries"][i].get(s), dict) else None
                  for i in ids] for s, _ in SYSTEMS}
    series = {s: v for s, v in series.items() if any(x for x in v)}
    title = f"Query latency, {t['docs']:,} documents (median, log scale; lower is better)"
    bars(title, ids, series, "seconds", path)


def plot_import(results: dict, path: Path) -> None:
    tiers = [t for t in results["tiers"] if "acql" in t["import"] and t["import"]["acql"].get("seconds")]
    if not tiers:
        return
    labels = [f"{t['docs']:,}" for t in tiers]
    series = {}
    for key in ("acql", "typed", "json"):
        vals = [t["docs"] / t["import"][key]["seconds"] if key in t["import"] else None for t in tiers]
        if any(vals):
            series[key] = vals
    bars("Import rate vs dataset size (documents/s; higher is better)", labels, series, "documents / s", path,
         log=False)


def bars(title: str, cats: list[str], series: dict, unit: str, path: Path, log: bool = True) -> None:
    if os.environ.get("ACQL_BENCH_NO_MATPLOTLIB") != "1":
        try:
            import matplotlib  # noqa: PLC0415

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt  # noqa: PLC0415

            plt.rcParams["svg.hashsalt"] = "acql"
            plt.rcParams["svg.fonttype"] = "none"  # text stays text: a small, diffable file
            fig, ax = plt.subplots(figsize=(11, 5))
            width = 0.8 / max(len(series), 1)
            for k, (s, vals) in enumerate(series.items()):
                xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(cats))]
                ax.bar(xs, [v or 0 for v in vals], width, label=name_of(s), color=COLORS.get(s))
            ax.set_xticks(range(len(cats)), cats)
            if log:
                ax.set_yscale("log")
            ax.set_ylabel(unit)
            ax.set_title(title)
            ax.legend(fontsize=8, ncols=3)
            ax.grid(axis="y", alpha=0.3)
            fig.tight_layout()
            fig.savefig(path, metadata={"Date": None})
            plt.close(fig)
            return
        except ImportError:
            pass
    path.write_text(svg_bars(title, cats, series, unit, log))


def svg_bars(title: str, cats: list[str], series: dict, unit: str, log: bool) -> str:
    """A grouped bar chart as plain SVG (no dependencies)."""
    import math  # noqa: PLC0415

    w, h, left, bottom, top = 1000, 420, 70, 40, 40
    vals = [v for vs in series.values() for v in vs if v]
    if not vals:
        return "<svg xmlns='http://www.w3.org/2000/svg'/>"
    if log:
        lo, hi = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
        hi = max(hi, lo + 1)
        y = lambda v: h - bottom - (math.log10(v) - lo) / (hi - lo) * (h - bottom - top)  # noqa: E731
        ticks = [10.0**e for e in range(lo, hi + 1)]
    else:
        lo, hi = 0.0, max(vals) * 1.1
        y = lambda v: h - bottom - v / hi * (h - bottom - top)  # noqa: E731
        ticks = [hi * i / 5 for i in range(6)]
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h + 30}' font-family='sans-serif' "
             "font-size='11'>",
             f"<text x='{w / 2}' y='20' text-anchor='middle' font-size='14'>{title}</text>"]
    for tv in ticks:
        parts.append(f"<line x1='{left}' x2='{w - 10}' y1='{y(tv):.1f}' y2='{y(tv):.1f}' stroke='#ddd'/>"
                     f"<text x='{left - 5}' y='{y(tv) + 4:.1f}' text-anchor='end'>{tv:.3g}</text>")
    parts.append(f"<text x='15' y='{h / 2}' transform='rotate(-90 15 {h / 2})' text-anchor='middle'>{unit}</text>")
    group = (w - left - 10) / len(cats)
    bw = group * 0.8 / max(len(series), 1)
    for i, c in enumerate(cats):
        parts.append(f"<text x='{left + group * (i + 0.5):.1f}' y='{h - bottom + 15}' text-anchor='middle'>{c}</text>")
        for k, (s, vs) in enumerate(series.items()):
            v = vs[i]
            if not v:
                continue
            x = left + group * i + group * 0.1 + k * bw
            parts.append(f"<rect x='{x:.1f}' y='{y(v):.1f}' width='{bw:.1f}' height='{h - bottom - y(v):.1f}' "
                         f"fill='{COLORS.get(s, '#444')}'><title>{name_of(s)} {c}: {v:.4g}</title></rect>")
    for k, s in enumerate(series):
        x = left + k * 150
        parts.append(f"<rect x='{x}' y='{h + 5}' width='12' height='12' fill='{COLORS.get(s, '#444')}'/>"
                     f"<text x='{x + 16}' y='{h + 15}'>{name_of(s)}</text>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10k documents, few runs, output under target/ (CI smoke test)")
    ap.add_argument("--docs", type=int, action="append", help="tier size (repeatable); default 10k, 100k, 1M")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--acql", type=Path, default=ROOT / "target/release/acql")
    ap.add_argument("--runner", type=Path, default=ROOT / "target/release/acql", help="the acql binary whose `bench` command times acql and the hand SQL")
    ap.add_argument("--out", type=Path, help="where results and plots go [docs/bench; --quick: target/acql-bench/quick]")
    ap.add_argument("--work", type=Path, default=ROOT / "target/acql-bench", help="dataset cache")
    ap.add_argument("--peers", default="scan,sql,typed,json,jq", help="which baselines and peers to run")
    ap.add_argument("--jq-max-docs", type=int, default=1_000_000, help="skip jq above this tier size")
    ap.add_argument("--budget", type=float, default=10.0, help="seconds of timed runs per query and system")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--min-runs", type=int, default=3)
    ap.add_argument("--duckdb-threads", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="regenerate and reload the cached datasets")
    ap.add_argument("--write-queries", type=Path, help="write the acql query file for --seed and exit")
    args = ap.parse_args()

    if args.write_queries:
        tmp = args.work / "queries-gen"
        tmp.mkdir(parents=True, exist_ok=True)
        data = run([str(args.acql), "gen", "--count", str(Q1_DOC + 1), "--seed", str(args.seed)],
                   capture_output=True).stdout.splitlines()
        args.write_queries.write_text(query_file(json.loads(data[Q1_DOC])["profile"]["email"], args.seed))
        return 0
    if args.quick:
        args.docs = args.docs or [10_000]
        args.runs, args.min_runs, args.budget = 3, 1, 1.0
        args.out = args.out or args.work / "quick"
    args.docs = args.docs or [10_000, 100_000, 1_000_000]
    args.out = args.out or ROOT / "docs/bench"
    args.out.mkdir(parents=True, exist_ok=True)
    peers = set(filter(None, args.peers.split(",")))
    if peers & {"typed", "json"}:
        try:
            import duckdb  # noqa: F401, PLC0415
        except ImportError:
            log("duckdb is not installed (pip install duckdb): skipping the DuckDB columns")
            peers -= {"typed", "json"}
    if "jq" in peers and not shutil.which("jq"):
        log("jq is not installed (apt-get install -y jq): skipping the jq column")
        peers.discard("jq")
    for p in (args.acql, args.runner):
        if not p.exists():
            raise SystemExit(f"{p} is missing: build it first (scripts/bench/run.sh does)")

    started = time.time()
    results = {"machine": machine_info(args.acql), "seed": args.seed, "duckdb_threads": args.duckdb_threads,
               "peers": sorted(peers), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "tiers": []}
    for n in args.docs:
        t = tier(n, args, args.acql, args.runner, peers)
        summarise(t)
        results["tiers"].append(t)
        plot_latency(t, args.out / f"latency-{n}.svg")
    results["elapsed_s"] = time.time() - started
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_csv(results, args.out / "results.csv")
    plot_import(results, args.out / "import.svg")
    md = markdown(results)
    (args.out / "tables.md").write_text(md)
    print(md)
    log(f"done in {results['elapsed_s']:.0f} s; results in {args.out}")

    # acql must agree with its own full scan (a differential check of the index paths) and
    # run every query; peers that disagree are reported in the tables, not fatal.
    bad = [(t["docs"], q["id"]) for t in results["tiers"] for q in QUERIES
           if "median_s" not in t["queries"][q["id"]].get("acql", {})
           or t["queries"][q["id"]].get("acql_agrees_with_scan") is False]
    if bad:
        log(f"acql failed or disagreed with its full scan on: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
