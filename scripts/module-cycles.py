#!/usr/bin/env python3
"""Finds import circles between the modules of acql's library (`src/`, without the
binary's `main.rs` and `cli/`).

Each file is a module (`src/store/bulk.rs` is `store::bulk`, `src/store/mod.rs` is
`store`). Every path a file names in code (`use crate::…`, `super::…`, `self::…` and
inline `crate::x::y` paths; comments are skipped) becomes an edge to the module that
defines the item, following `pub use` re-exports, so `crate::store::StoreError` is an
edge to `store::error`. Edges between a module and its own ancestors or descendants are
left out: a parent declares its children, so Rust makes every such pair a "circle".
`super::` inside an inline `mod tests { … }` names the file's own module.

Prints each strongly connected component of two or more modules with the edges inside
it (file and line of one use each), and exits 1 when there is one.

    scripts/module-cycles.py            # from the repository root
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(path: Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts == ["lib"]:
        return ()
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def code_lines(text: str):
    """(line number, code) with comments removed; string contents are kept, which is
    harmless for paths."""
    in_block = False
    for n, line in enumerate(text.splitlines(), 1):
        if in_block:
            end = line.find("*/")
            if end < 0:
                continue
            line = line[end + 2:]
            in_block = False
        start = line.find("/*")
        if start >= 0 and line.find("*/", start) < 0:
            line = line[:start]
            in_block = True
        stripped = line.lstrip()
        if stripped.startswith("//"):
            continue
        yield n, re.sub(r"\s//[^\"]*$", "", line)


def expand(tree: str) -> list:
    """`a::{b, c::{d, e}}` → [a::b, a::c::d, a::c::e] (renames and globs dropped)."""
    tree = re.sub(r"\s+as\s+" + IDENT, "", tree)
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1:i], tree[i + 1:]
                parts, d, cur = [], 0, ""
                for c in inner:
                    if c == "," and d == 0:
                        parts.append(cur)
                        cur = ""
                        continue
                    d += c == "{"
                    d -= c == "}"
                    cur += c
                parts.append(cur)
                out = []
                for p in parts:
                    if p:
                        out += expand(prefix + p + rest)
                return out
    return [tree.rstrip(":*").removesuffix("::self")]


def main() -> int:
    files = {module_of(p): p for p in SRC.rglob("*.rs")}
    lib = {m: p for m, p in files.items() if not (m and m[0] in ("main", "cli"))}
    texts = {m: list(code_lines(p.read_text())) for m, p in lib.items()}

    # Statements (`use …;` may span lines), with the line they start on.
    statements = {}
    for m, lines in texts.items():
        out, cur, first = [], "", 0
        for n, line in lines:
            if not cur:
                first = n
            cur += " " + line
            is_use = re.match(r"\s*(pub(\([a-z]+\))?\s+)?use\b", cur)
            if not is_use or ";" in line:
                out.append((first, cur))
                cur = ""
        statements[m] = out

    def absolute(m: tuple, path: str, in_inline: bool) -> tuple | None:
        segs = path.split("::")
        if segs[0] == "crate":
            base, segs = [], segs[1:]
        elif segs[0] in ("super", "self"):
            base = list(m)
            # A file's inline `mod tests` is one level below the file's module.
            if in_inline and segs[0] == "super":
                segs = segs[1:]
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    if not base:
                        return None
                    base.pop()
                segs = segs[1:]
        elif m and (tuple(m) + (segs[0],)) in lib:
            base = list(m)  # a child module named without `self::`
        else:
            return None
        return tuple(base + segs)

    # Re-exports: (module, name) → the absolute path they stand for.
    reexports = {}
    for m, stmts in statements.items():
        for _, st in stmts:
            mm = re.match(r"\s*pub(\([a-z]+\))?\s+use\s+(.*);", st)
            if not mm:
                continue
            for p in expand(mm.group(2)):
                target = absolute(m, p, False)
                if target:
                    reexports[(m, target[-1])] = target

    def resolve(path: tuple, hops: int = 0) -> tuple | None:
        for cut in range(len(path), -1, -1):
            mod = path[:cut]
            if mod in lib:
                rest = path[cut:]
                if rest and (mod, rest[0]) in reexports and hops < 8:
                    return resolve(reexports[(mod, rest[0])] + rest[1:], hops + 1)
                return mod
        return None

    edges = defaultdict(dict)
    pattern = re.compile(r"\b(?:crate|super|self)(?:::(?:\{[^;]*\}|" + IDENT + r"|\*))+")
    for m, stmts in statements.items():
        inline = False
        for n, st in stmts:
            if re.search(r"\bmod\s+" + IDENT + r"\s*\{", st):
                inline = True
            for found in pattern.finditer(st):
                for p in expand(found.group(0)):
                    target = absolute(m, p, inline)
                    dest = resolve(target) if target else None
                    if dest is None or dest == m:
                        continue
                    if dest[: len(m)] == m or m[: len(dest)] == dest:
                        continue  # parent and child
                    edges[m].setdefault(dest, (lib[m].relative_to(ROOT), n))

    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10_000)
    for v in list(lib):
        if v not in index:
            visit(v)

    name = lambda m: "::".join(m) or "crate"
    n_edges = sum(len(d) for d in edges.values())
    if not sccs:
        print(f"no import circles among {len(lib)} library modules ({n_edges} edges)")
        return 0
    for comp in sccs:
        members = set(comp)
        print("circle: " + " ↔ ".join(sorted(name(m) for m in comp)))
        for a in sorted(comp):
            for b, (f, line) in sorted(edges[a].items()):
                if b in members:
                    print(f"  {name(a)} → {name(b)}  ({f}:{line})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
