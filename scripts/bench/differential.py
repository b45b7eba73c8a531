#!/usr/bin/env python3
"""The generated performance differential (issue 13, item 4): query shapes x index catalogs.

A seeded generator draws query shapes (equality, range pairs on numbers, strings and
date-time strings, IN lists, composite prefixes with ORDER BY, aggregates, GROUP BY, top-N,
and their combinations with AND/OR/NOT) with values sampled from a generated dataset, for
each of several index catalogs (value, wildcard, composite, words, mixed). Per catalog it
declares the indexes in a copy of the store (`acql index add`), writes a query file whose
hand SQL uses the equivalent `json_extract` expression indexes on the same JSONB table, and
times it with the bench runner (`acql bench`): acql, acql's own full scan (the same
query planned without indexes) and the hand SQL. The runner checks that acql and the scan
return the same records, so every run is also a differential test of the index paths.

The hand SQL answers what acql answers: a record query returns its page in acql's order
(insertion order, `id`, unless sorted; ties by `id`) and a second statement gives the
`totalCount` acql returns with every page (`NAME total sql:`, timed with the page and
checked against acql's total).

Prints one line per shape, worst ratio to hand SQL first: acql's median, acql / hand SQL
(above 1: acql slower), acql / full scan (above 1: the index made it slower).

    scripts/bench/differential.sh                        # 200k documents (release build)
    scripts/bench/differential.sh --docs 1000000 --seed 3
    scripts/bench/differential.py --acql A --runner R    # binaries already built
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def jx(path: str) -> str:
    """The hand SQL's expression for a path (the one its expression indexes are on)."""
    return f"json_extract(doc, '$.{path}')"


class SqliteSql:
    """The hand SQL on SQLite: `json_extract` expressions over the store's JSONB column."""

    name = "sqlite"
    doc = "json(doc)"
    analyze = "ANALYZE"
    count_all = "SELECT n FROM acql_counts WHERE collection = 'emailAccounts'"

    def x(self, path: str) -> str:
        return jx(path)

    def lit(self, path: str, v) -> str:
        return sql_lit(v)

    def is_true(self, path: str) -> str:
        return f"{jx(path)} = 1"

    def not_or_true(self, cond: str) -> str:
        return f"coalesce(NOT {cond}, 1)"

    def index(self, i: int, paths) -> str:
        return f"CREATE INDEX IF NOT EXISTS h_{i} ON email_accounts({', '.join(jx(p) for p in paths)})"


class PostgresSql:
    """The hand SQL on PostgreSQL: expressions over the store's `doc jsonb` column, numbers
    as `numeric`, strings as text (the database's collation is "C", acql's order), with
    expression indexes on them."""

    name = "postgres"
    doc = "doc"
    # Vacuumed too, as autovacuum leaves a table some time after a load: both sides then
    # read tables with hint bits and a visibility map (index-only scans), and neither pays
    # for the first reads of a freshly copied database.
    analyze = "VACUUM ANALYZE"
    count_all = "SELECT sum(n)::bigint FROM acql_counts WHERE collection = 'emailAccounts'"

    @staticmethod
    def _path(path: str) -> str:
        return "'{" + ",".join(path.split(".")) + "}'"

    def x(self, path: str) -> str:
        if PATHS.get(path) == "int":
            return f"((doc #>> {self._path(path)})::numeric)"
        return f"(doc #>> {self._path(path)})"

    def lit(self, path: str, v) -> str:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return repr(v)
        return "'" + str(v).replace("'", "''") + "'"

    def is_true(self, path: str) -> str:
        return f"(doc #> {self._path(path)}) = 'true'::jsonb"

    def not_or_true(self, cond: str) -> str:
        return f"coalesce(NOT ({cond}), true)"

    def index(self, i: int, paths) -> str:
        if all(p in PATHS for p in paths):
            cols = ", ".join(self.x(p) for p in paths)
        else:
            cols = ", ".join(f"(doc #> {self._path(p)})" for p in paths)
        return f"CREATE INDEX IF NOT EXISTS h_{i} ON email_accounts({cols})"


def sql_lit(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def acql_lit(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)


# Paths the shapes draw on: (path, kind). `date` paths hold ISO-8601 strings.
PATHS = {
    "profile.country": "str",
    "profile.age": "int",
    "created": "date",
    "createdTimestamp": "int",
    "data.loyaltyPoints": "int",
    "data.preferences.channel": "str",
    "profile.gender": "str",
}

# Catalogs: acql index specs (pattern, kind) and the hand SQL's expression indexes (tuples
# of paths).
CATALOGS = {
    "value": {
        "acql": [(p, "value") for p in PATHS if p != "createdTimestamp"],
        "hand": [(p,) for p in PATHS],
    },
    "composite": {
        "acql": [
            ("profile.country, profile.age", "value"),
            ("data.preferences.channel, data.loyaltyPoints", "value"),
            ("profile.gender, created", "value"),
        ],
        "hand": [
            ("profile.country", "profile.age"),
            ("data.preferences.channel", "data.loyaltyPoints"),
            ("profile.gender", "created"),
            ("createdTimestamp",),
        ],
    },
    "mixed": {
        "acql": [
            ("profile.country", "value"),
            ("created", "value"),
            ("data.loyaltyPoints", "value"),
            ("profile.country, profile.age", "value"),
        ],
        "hand": [
            ("profile.country",),
            ("created",),
            ("data.loyaltyPoints",),
            ("profile.country", "profile.age"),
            ("createdTimestamp",),
        ],
    },
    "wildcard": {
        "acql": [],
        "hand": [(f"subscriptions.{s}.email.isSubscribed",) for s in ("newsletter", "finance")],
    },
    "words": {
        "acql": [("profile.city", "words")],
        "hand": [],
    },
}


def sample_values(data: Path, limit: int, rng: random.Random) -> dict:
    """Values per path from the first `limit` documents (sorted, for ranges)."""
    values: dict[str, list] = {p: [] for p in PATHS}
    cities: list[str] = []
    with data.open() as f:
        for i, line in enumerate(f):
            if i >= limit:
                break
            doc = json.loads(line)
            for p in PATHS:
                v = doc
                for seg in p.split("."):
                    v = v.get(seg) if isinstance(v, dict) else None
                if isinstance(v, (str, int)) and not isinstance(v, bool):
                    values[p].append(v)
            city = doc.get("profile", {}).get("city")
            if isinstance(city, str):
                cities.append(city)
    for v in values.values():
        v.sort()
    values["_cities"] = sorted(set(cities))
    return values


class Shapes:
    """Seeded query shapes over the sampled values: (name, acql query, hand SQL or None)."""

    def __init__(self, values: dict, rng: random.Random, sql=None):
        self.v = values
        self.rng = rng
        self.sql = sql or SqliteSql()

    def pick(self, path):
        return self.rng.choice(self.v[path])

    def window(self, path, frac=0.05):
        """Bounds [a, b) holding about `frac` of the values."""
        vals = self.v[path]
        i = self.rng.randrange(0, int(len(vals) * (1 - frac)))
        return vals[i], vals[min(len(vals) - 1, i + int(len(vals) * frac))]

    def distinct(self, path, n):
        vals = sorted(set(self.v[path]))
        return self.rng.sample(vals, min(n, len(vals)))

    def for_catalog(self, name: str) -> list[tuple[str, str, str | None]]:
        F = "FROM emailAccounts"
        T = "FROM email_accounts"
        D = self.sql
        jx = D.x
        doc = D.doc
        out = []

        def sql_lit(v, path=None):
            return D.lit(path, v)

        def add(shape, q, sql, total=None):
            out.append((shape, q, sql, total))

        def eq_count(p):
            v = self.pick(p)
            add(f"= count [{p}]", f"SELECT count(*) {F} WHERE {p} = {acql_lit(v)}",
                f"SELECT count(*) {T} WHERE {jx(p)} = {sql_lit(v)}")

        def pair(p, frac=0.03):
            a, b = self.window(p, frac)
            q = f"{p} >= {acql_lit(a)} AND {p} < {acql_lit(b)}"
            s = f"{jx(p)} >= {sql_lit(a)} AND {jx(p)} < {sql_lit(b)}"
            add(f"range pair count [{p}]", f"SELECT count(*) {F} WHERE {q}",
                f"SELECT count(*) {T} WHERE {s}")
            add(f"range pair LIMIT 100 [{p}]", f"SELECT * {F} WHERE {q} LIMIT 100",
                f"SELECT {doc} {T} WHERE {s} ORDER BY id LIMIT 100",
                f"SELECT count(*) {T} WHERE {s}")

        def in_count(p, n=3):
            vs = self.distinct(p, n)
            add(f"IN count [{p}]",
                f"SELECT count(*) {F} WHERE {p} IN ({', '.join(acql_lit(v) for v in vs)})",
                f"SELECT count(*) {T} WHERE {jx(p)} IN ({', '.join(sql_lit(v) for v in vs)})")

        def top_n(p, n=20):
            add(f"top-{n} DESC [{p}]", f"SELECT * {F} ORDER BY {p} DESC LIMIT {n}",
                f"SELECT {doc} {T} WHERE {jx(p)} IS NOT NULL ORDER BY {jx(p)} DESC, id LIMIT {n}",
                # acql keeps the collection's count; so may the hand-written side.
                D.count_all)

        def group(p):
            add(f"GROUP BY count [{p}]", f"SELECT {p}, count(*) {F} GROUP BY {p}",
                f"SELECT {jx(p)}, count(*) {T} WHERE {jx(p)} IS NOT NULL GROUP BY 1")

        def agg(func, p, where=None):
            wq = f" WHERE {where[0]}" if where else ""
            ws = f" WHERE {where[1]}" if where else ""
            add(f"{func}() [{p}]" + (" filtered" if where else ""),
                f"SELECT {func}({p}) {F}{wq}", f"SELECT {func}({jx(p)}) {T}{ws}")

        def prefix(a, b):
            x = self.pick(a)
            add(f"composite = + ORDER BY DESC LIMIT 100 [{a}, {b}]",
                f"SELECT * {F} WHERE {a} = {acql_lit(x)} ORDER BY {b} DESC LIMIT 100",
                f"SELECT {doc} {T} WHERE {jx(a)} = {sql_lit(x)} ORDER BY {jx(b)} DESC, id LIMIT 100",
                f"SELECT count(*) {T} WHERE {jx(a)} = {sql_lit(x)}")
            add(f"composite prefix = count [{a}, {b}]",
                f"SELECT count(*) {F} WHERE {a} = {acql_lit(x)}",
                f"SELECT count(*) {T} WHERE {jx(a)} = {sql_lit(x)}")
            if PATHS.get(b) == "int":
                agg("avg", b, (f"{a} = {acql_lit(x)}", f"{jx(a)} = {sql_lit(x)}"))
            lo, hi = self.window(b, 0.2)
            add(f"composite = AND range count [{a}, {b}]",
                f"SELECT count(*) {F} WHERE {a} = {acql_lit(x)} AND {b} >= {acql_lit(lo)} AND {b} < {acql_lit(hi)}",
                f"SELECT count(*) {T} WHERE {jx(a)} = {sql_lit(x)} AND {jx(b)} >= {sql_lit(lo)} AND {jx(b)} < {sql_lit(hi)}")

        def combos(p, r):
            x, y = self.distinct(p, 2)
            add(f"OR of = count [{p}]",
                f"SELECT count(*) {F} WHERE {p} = {acql_lit(x)} OR {p} = {acql_lit(y)}",
                f"SELECT count(*) {T} WHERE {jx(p)} = {sql_lit(x)} OR {jx(p)} = {sql_lit(y)}")
            lo, _ = self.window(r, 0.5)
            add(f"= AND NOT range count [{p}, {r}]",
                f"SELECT count(*) {F} WHERE {p} = {acql_lit(x)} AND NOT {r} >= {acql_lit(lo)}",
                f"SELECT count(*) {T} WHERE {jx(p)} = {sql_lit(x)} AND {D.not_or_true(f'{jx(r)} >= {sql_lit(lo)}')}")
            add(f"= ORDER BY other LIMIT 50 [{p}, {r}]",
                f"SELECT * {F} WHERE {p} = {acql_lit(x)} ORDER BY {r} LIMIT 50",
                f"SELECT {doc} {T} WHERE {jx(p)} = {sql_lit(x)} ORDER BY {jx(r)} IS NULL, {jx(r)}, id LIMIT 50",
                f"SELECT count(*) {T} WHERE {jx(p)} = {sql_lit(x)}")

        if name == "value":
            for p in ("profile.country", "data.preferences.channel"):
                eq_count(p)
                in_count(p)
                group(p)
            for p in ("created", "createdTimestamp", "profile.age", "data.loyaltyPoints", "profile.country"):
                pair(p)
            for p in ("createdTimestamp", "created", "data.loyaltyPoints"):
                top_n(p)
            for f in ("sum", "min", "max", "avg"):
                agg(f, self.rng.choice(["profile.age", "data.loyaltyPoints"]))
            combos("profile.country", "profile.age")
        elif name == "composite":
            prefix("profile.country", "profile.age")
            prefix("data.preferences.channel", "data.loyaltyPoints")
            prefix("profile.gender", "created")
            pair("createdTimestamp")
        elif name == "mixed":
            prefix("profile.country", "profile.age")
            pair("created", 0.01)
            pair("data.loyaltyPoints")
            in_count("profile.country", 4)
            combos("profile.country", "data.loyaltyPoints")
            group("profile.country")
            top_n("created")
        elif name == "wildcard":
            for s in ("newsletter", "finance"):
                p = f"subscriptions.{s}.email.isSubscribed"
                add(f"= true count [{p}]", f"SELECT count(*) {F} WHERE {p} = true",
                    f"SELECT count(*) {T} WHERE {D.is_true(p)}")
                add(f"= true LIMIT 100 [{p}]", f"SELECT * {F} WHERE {p} = true LIMIT 100",
                    f"SELECT {doc} {T} WHERE {D.is_true(p)} ORDER BY id LIMIT 100",
                    f"SELECT count(*) {T} WHERE {D.is_true(p)}")
        elif name == "words":
            for city in self.rng.sample(self.v["_cities"], 3):
                word = city.split()[0]
                add(f"CONTAINS count [profile.city]",
                    f"SELECT count(*) {F} WHERE profile.city CONTAINS {acql_lit(word)}", None)
        return out


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def query_file(cat: str, spec: dict, shapes: "Shapes", sql, path: Path) -> dict:
    """Writes the catalog's query file (setup: the hand SQL's indexes); returns name -> shape."""
    lines = [f"# catalog {cat}: {spec['acql']}"]
    for i, paths in enumerate(spec["hand"]):
        lines.append(f"setup: {sql.index(i, paths)}")
    lines.append(f"setup: {sql.analyze}")
    named = {}
    for j, (shape, q, hand, total) in enumerate(shapes.for_catalog(cat)):
        name = f"{cat}-{j}"
        named[name] = shape
        lines.append(f"{name}: {q}")
        if hand:
            lines.append(f"{name} sql: {hand}")
        if total:
            lines.append(f"{name} total sql: {total}")
    path.write_text("\n".join(lines) + "\n")
    return named


def add_indexes(acql: str, db: str, spec: dict) -> None:
    for pattern, kind in spec["acql"]:
        kind = "words" if kind == "words" else "value"
        added = subprocess.run([acql, "index", db, "add", "--kind", kind, pattern],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # The default catalog already declares some (profile.country, createdTimestamp).
        if added.returncode != 0 and "already has" not in added.stderr:
            raise SystemExit(f"acql index add {pattern}: {added.stderr}")


def result_rows(cat: str, out: Path, named: dict) -> list[dict]:
    rows = []
    for r in json.loads(out.read_text())["results"]:
        acql = r["acql"].get("median_s")
        scan = (r.get("scan") or {}).get("median_s")
        sql = (r.get("sql") or {}).get("median_s")
        sql_agrees = r["sql_agrees"]
        rows.append({
            "catalog": cat, "name": r["name"], "shape": named.get(r["name"], "?"),
            "query": r["query"], "acql_s": acql,
            "sql_ratio": acql / sql if acql and sql else None,
            "scan_ratio": acql / scan if acql and scan else None,
            "agrees": r["scan_agrees"] and sql_agrees,
            "scan_agrees": r["scan_agrees"],
            "sql_agrees": sql_agrees,
            "error": r["acql"].get("error"),
        })
    return rows


def report(rows: list[dict], json_out: str | None) -> int:
    def worst(r):
        return max(r["sql_ratio"] or 0, r["scan_ratio"] or 0)

    rows.sort(key=worst, reverse=True)
    print(f"{'catalog':<10} {'shape':<58} {'acql':>10} {'/hand SQL':>10} {'/full scan':>10}")
    for r in rows:
        acql = f"{r['acql_s'] * 1e3:.3f} ms" if r["acql_s"] is not None else "error"
        sr = f"{r['sql_ratio']:.2f}x" if r["sql_ratio"] else "-"
        cr = f"{r['scan_ratio']:.3f}x" if r["scan_ratio"] else "-"
        flag = "" if r["scan_agrees"] else "  DIFFERS FROM SCAN"
        if not r.get("sql_agrees", True):
            flag += "  HAND SQL DIFFERS"
        print(f"{r['catalog']:<10} {r['shape'][:58]:<58} {acql:>10} {sr:>10} {cr:>10}{flag}")
    ratios = [r["sql_ratio"] for r in rows if r["sql_ratio"]]
    if ratios:
        print(f"\n{len(rows)} queries; acql / hand SQL: median {statistics.median(ratios):.2f}x, "
              f"worst {max(ratios):.1f}x; over 2x: {sum(x > 2 for x in ratios)}; "
              f"over 1.5x: {sum(x > 1.5 for x in ratios)}; "
              f"slower than the full scan: {sum((r['scan_ratio'] or 0) > 1 for r in rows)}; "
              f"differ from the scan: {sum(not r['scan_agrees'] for r in rows)}; "
              f"hand SQL differs: {sum(not r.get('sql_agrees', True) for r in rows)}")
    if json_out:
        Path(json_out).write_text(json.dumps(rows, indent=1) + "\n")
    return 1 if any(not r["scan_agrees"] or r["error"] for r in rows) else 0


def bench_catalog(a, cat: str, db: str, shapes: "Shapes", sql, stem: Path) -> list[dict]:
    """Declares the catalog's indexes in `db`, writes its query file and times it with the
    bench runner: the catalog's result rows (none when the runner failed)."""
    spec = CATALOGS[cat]
    add_indexes(a.acql, db, spec)
    qfile, out = stem.with_suffix(".txt"), stem.with_suffix(".json")
    named = query_file(cat, spec, shapes, sql, qfile)
    log(f"catalog {cat}: {len(named)} queries")
    proc = subprocess.run(
        [a.runner, "bench", db, str(qfile), "--runs", str(a.runs), "--min-runs", "2",
         "--budget", str(a.budget), "--json", str(out)],
        stdout=subprocess.DEVNULL)
    if proc.returncode not in (0, 1):
        log(f"catalog {cat}: runner failed ({proc.returncode})")
        return []
    return result_rows(cat, out, named)


def main_postgres(a) -> int:
    """The differential on PostgreSQL: one database per catalog, copied from a base database
    holding the imported documents; the hand SQL reads the same `email_accounts` table with
    its own expression indexes."""
    from urllib.parse import urlsplit, urlunsplit

    admin = urlsplit(a.postgres)

    def url(db: str) -> str:
        return urlunsplit(admin._replace(path="/" + db))

    def psql(sql: str) -> str:
        return subprocess.run(["psql", a.postgres, "-qAtX", "-c", sql], check=True,
                              capture_output=True, text=True).stdout.strip()

    work = Path(a.work) / str(a.docs)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data.ndjson"
    if not data.exists():
        log(f"generating {a.docs} documents (seed {a.seed})")
        run([a.acql, "gen", "--count", str(a.docs), "--seed", str(a.seed), "--output", str(data)])
    base = f"acql_differential_{a.docs}_{a.seed}"
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{base}'") != "1":
        log(f"importing into {base}")
        psql(f"CREATE DATABASE {base}_loading TEMPLATE template0 ENCODING 'UTF8' "
             "LC_COLLATE 'C' LC_CTYPE 'C'")
        run([a.acql, "import", "-q", url(f"{base}_loading"), str(data)])
        psql(f"ALTER DATABASE {base}_loading RENAME TO {base}")
    rng = random.Random(a.seed)
    values = sample_values(data, 50_000, rng)
    shapes = Shapes(values, rng, PostgresSql())

    rows = []
    for cat in a.catalogs.split(","):
        db = f"acql_differential_{cat}"
        psql(f"DROP DATABASE IF EXISTS {db}")
        psql(f"CREATE DATABASE {db} TEMPLATE {base}")
        rows += bench_catalog(a, cat, url(db), shapes, PostgresSql(), work / f"pg-{cat}")
        psql(f"DROP DATABASE IF EXISTS {db}")
    return report(rows, a.json)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--acql", default=str(ROOT / "target/release/acql"))
    ap.add_argument("--runner", default=str(ROOT / "target/release/acql"), help="the acql binary (its `bench` command)")
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=13, help="seeds the data and the shapes")
    ap.add_argument("--work", default=str(ROOT / "target/acql-bench/differential"))
    ap.add_argument("--catalogs", default=",".join(CATALOGS), help="comma-separated subset")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per side of one query")
    ap.add_argument("--json", help="also write the combined results here")
    ap.add_argument("--postgres", metavar="URL",
                    help="run on PostgreSQL: a URL of a server's maintenance database "
                         "(e.g. postgres://postgres@127.0.0.1:5432/postgres); the script creates "
                         "a database per catalog there, and the hand SQL runs on PostgreSQL")
    a = ap.parse_args()
    if a.postgres:
        return main_postgres(a)

    work = Path(a.work) / str(a.docs)
    work.mkdir(parents=True, exist_ok=True)
    data, base = work / "data.ndjson", work / "base.db"
    if not data.exists():
        log(f"generating {a.docs} documents (seed {a.seed})")
        run([a.acql, "gen", "--count", str(a.docs), "--seed", str(a.seed), "--output", str(data)])
    if not base.exists():
        log("importing")
        run([a.acql, "import", "-q", str(base), str(data)])
    rng = random.Random(a.seed)
    values = sample_values(data, 50_000, rng)
    shapes = Shapes(values, rng)

    rows = []
    for cat in a.catalogs.split(","):
        db = work / f"{cat}.db"
        for p in work.glob(f"{cat}.db*"):
            p.unlink()
        shutil.copyfile(base, db)
        rows += bench_catalog(a, cat, str(db), shapes, SqliteSql(), work / cat)
        for p in work.glob(f"{cat}.db*"):
            p.unlink()
    return report(rows, a.json)


if __name__ == "__main__":
    sys.exit(main())
