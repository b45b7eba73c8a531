#!/usr/bin/env python3
"""The scale benchmark of BENCHMARKS.md: what one machine does with 1M, 5M and 10M accounts.

For each size: generate the dataset once (`acql gen`, cached under --work), import it into a
new store with the peer suite's 14 indexes (`acql import -q`) while sampling the process's
resident memory every 50 ms,
then run the benchmark query set (`scripts/bench/queries.txt`'s queries for this dataset,
acql and hand-written SQL with expression indexes) and the whole-collection counts. Prints
a table, writes `scale.json`, `scale.md` and a log-log plot `scale.svg` to --out.

    scripts/bench/scale.sh                      # 1M, 5M, 10M (release build)
    scripts/bench/scale.sh --docs 200000        # any sizes, repeatable
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (the peer suite: query set, machine info)

SEED = 9


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed_import(acql: Path, db: Path, data: Path) -> dict:
    """Imports `data` into the new store `db`: wall time, CPU, peak RSS and its samples."""
    for p in db.parent.glob(db.name + "*"):
        p.unlink()
    # The peer suite's catalog: the defaults plus the indexes its queries need, declared on
    # the empty store so the import fills them (14 indexes).
    for pattern, kind in bench.ACQL_EXTRA_INDEXES:
        bench.run([str(acql), "index", str(db), "add", pattern, "--kind", kind], stdout=subprocess.DEVNULL)
    started = time.perf_counter()
    proc = subprocess.Popen([str(acql), "import", "-q", str(db), str(data)])
    samples = []
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        samples.append((round(time.perf_counter() - started, 2), rss_kib(proc.pid)))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"acql import failed on {data}")
    return {
        "seconds": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # ru_maxrss is the kernel's own high-water mark (KiB): nothing between samples is lost.
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "rss_samples": samples[:: max(1, len(samples) // 400)],
    }


def store_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


COUNTS = {
    "count_all_s": "SELECT count(*) FROM emailAccounts",
    "top5_s": "SELECT email FROM emailAccounts ORDER BY lastUpdatedTimestamp DESC LIMIT 5",
}


def time_counts(runner: Path, db: Path, work: Path) -> dict:
    """Whole-collection counts, in process: one `accounts.search` page each (its
    totalCount included), medians in seconds."""
    qfile = work / "counts.txt"
    qfile.write_text("".join(f"{name}: {q}\n" for name, q in COUNTS.items()))
    report = work / "counts.json"
    subprocess.run([str(runner), "bench", str(db), str(qfile), "--page", "--no-baseline", "--no-sql",
                    "--json", str(report), "--runs", "15", "--min-runs", "9"],
                   check=True, stdout=subprocess.DEVNULL)
    return {r["name"]: r["acql"]["median_s"] for r in json.loads(report.read_text())["results"]}


def query_set(runner: Path, db: Path, work: Path, data: Path, budget: float) -> dict:
    """The benchmark query set through the bench runner: acql and hand SQL, medians."""
    with data.open() as f:
        pick = bench.Q1_DOC
        for i, line in enumerate(f):
            if i == pick:
                email = json.loads(line)["profile"]["email"]
                break
    qfile = work / "queries.txt"
    qfile.write_text(bench.query_file(email, SEED))
    report = work / "report.json"
    proc = subprocess.run(
        [str(runner), "bench", str(db), str(qfile), "--json", str(report), "--no-baseline",
         "--budget", str(budget), "--runs", "5", "--min-runs", "3"],
        text=True, capture_output=True)
    if proc.returncode not in (0, 1) or not report.exists():
        log(proc.stdout + proc.stderr)
        raise SystemExit("the bench runner failed")
    out = {}
    for r in json.loads(report.read_text())["results"]:
        out[r["name"]] = {side: (r.get(side) or {}).get("median_s") for side in ("acql", "sql")}
    return out


def svg_plot(rows: list[dict], path: Path) -> None:
    """Cost against size, log-log: import time, peak RSS, and each query's acql median."""
    series = {
        "import (s)": [(r["docs"], r["import"]["seconds"]) for r in rows],
        "peak RSS (GB)": [(r["docs"], r["import"]["peak_rss_mib"] / 1024) for r in rows],
        "count(*), no WHERE (s)": [(r["docs"], r["counts"]["count_all_s"]) for r in rows],
    }
    for name in rows[0]["queries"]:
        pts = [(r["docs"], r["queries"][name]["acql"]) for r in rows if r["queries"][name]["acql"]]
        if len(pts) == len(rows):
            series[f"{name} (s)"] = pts
    w, h, left, right, top, bottom = 760, 460, 70, 200, 30, 50
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts if y > 0]
    lx0, lx1 = math.log10(min(xs)) - 0.05, math.log10(max(xs)) + 0.05
    ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))

    def px(x: float) -> float:
        return left + (math.log10(x) - lx0) / (lx1 - lx0) * (w - left - right)

    def py(y: float) -> float:
        return top + (ly1 - math.log10(y)) / (ly1 - ly0) * (h - top - bottom)

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#ff7f0e", "#393b79", "#637939", "#843c39", "#7b4173"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="13">acql on one machine: cost against size (log-log)</text>']
    for e in range(ly0, ly1 + 1):
        y = py(10 ** e)
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
    for x in sorted(set(xs)):
        out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{h - bottom}" stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{h - bottom + 16}" text-anchor="middle">{x / 1e6:g}M</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">documents</text>')
    for i, (name, pts) in enumerate(series.items()):
        c = colours[i % len(colours)]
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts if y > 0)
        out.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="1.6"/>')
        for x, y in pts:
            if y > 0:
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{c}"/>')
        ly = top + 14 * i + 10
        out.append(f'<line x1="{w - right + 10}" x2="{w - right + 28}" y1="{ly - 4}" y2="{ly - 4}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{w - right + 32}" y="{ly}">{name}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def fmt_s(s: float | None) -> str:
    if s is None:
        return "–"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def markdown(rows: list[dict], info: dict) -> str:
    lines = [f"Scale benchmark, {time.strftime('%Y-%m-%d')}, {info.get('cpu', '?')}, "
             f"{info.get('ram_gib', '?')} GiB, load before each size {[r['load_before'] for r in rows]}.",
             "",
             "| documents | NDJSON | import | docs/s | CPU | peak RSS | store | `count(*)` | `ORDER BY … LIMIT 5` |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        i = r["import"]
        lines.append(
            f"| {r['docs']:,} | {r['ndjson_bytes'] / 1e9:.2f} GB | {i['seconds']:.1f} s | "
            f"{r['docs'] / i['seconds'] / 1e3:.0f}k | {i['cpu_s']:.1f} s | {i['peak_rss_mib']:.0f} MiB | "
            f"{r['store_bytes'] / 1e9:.2f} GB | {fmt_s(r['counts']['count_all_s'])} | "
            f"{fmt_s(r['counts']['top5_s'])} |")
    lines += ["", "The benchmark query set (acql / hand SQL with expression indexes, medians):", "",
              "| query | " + " | ".join(f"{r['docs'] / 1e6:g}M" for r in rows) + " |",
              "|---|" + "---:|" * len(rows)]
    for name in rows[0]["queries"]:
        cells = []
        for r in rows:
            q = r["queries"].get(name, {})
            cells.append(f"{fmt_s(q.get('acql'))} / {fmt_s(q.get('sql'))}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, action="append", help="sizes (repeatable); default 1M, 5M, 10M")
    ap.add_argument("--acql", type=Path, default=ROOT / "target/release/acql")
    ap.add_argument("--runner", type=Path, default=ROOT / "target/release/acql", help="the acql binary (its `bench` command)")
    ap.add_argument("--work", type=Path, default=ROOT / "target/acql-bench/scale", help="dataset cache")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/bench")
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per query side")
    ap.add_argument("--no-queries", action="store_true", help="imports and counts only")
    args = ap.parse_args()
    sizes = args.docs or [1_000_000, 5_000_000, 10_000_000]
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        work = args.work / f"{n}"
        work.mkdir(exist_ok=True)
        data = args.work / f"data-{n}-s{SEED}.ndjson"
        if not data.exists():
            log(f"generating {n:,} documents …")
            bench.run([str(args.acql), "gen", "--count", str(n), "--seed", str(SEED), "--output", str(data)])
        row = {"docs": n, "ndjson_bytes": data.stat().st_size, "load_before": bench.load()}
        log(f"== {n:,} documents: import (load {row['load_before']})")
        db = work / "acql.db"
        row["import"] = timed_import(args.acql, db, data)
        row["store_bytes"] = store_bytes(db)
        log(f"   {row['import']['seconds']:.1f} s, peak RSS {row['import']['peak_rss_mib']:.0f} MiB")
        row["counts"] = time_counts(args.runner, db, work)
        row["queries"] = {} if args.no_queries else query_set(args.runner, db, work, data, args.budget)
        rows.append(row)
        # Keep the disk for the next size: the store of this one is not needed any more.
        for p in work.glob("acql.db*"):
            p.unlink()
    info = bench.machine_info(args.acql)
    md = markdown(rows, info)
    print(md)
    (args.out / "scale.md").write_text(md)
    (args.out / "scale.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    if len(rows) > 1:
        svg_plot(rows, args.out / "scale.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
