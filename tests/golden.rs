//! Golden case files (`tests/cases/*.test`): query → plan (with SQLite's own
//! `EXPLAIN QUERY PLAN`, proving the index was used) → records → totalCount.
//!
//! A file starts with its dataset: a `docs:` block of NDJSON lines (emailAccounts) and
//! optional `index: <pattern> [words]` lines (added to the store's default indexes).
//! Then each case is a `query:` line; everything after it (the `plan:`, `records:` and
//! `total:` blocks) is the expectation. `BLESS=1 cargo test --test tests golden` rewrites
//! the expectations from the current output; review the diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use acql::catalog::{Collection, IndexKind};
use acql::engine::{Engine, SearchOptions};
use acql::store::Store;

struct CaseFile {
    docs: Vec<String>,
    indexes: Vec<String>,
    queries: Vec<String>,
}

fn parse_file(text: &str) -> CaseFile {
    let mut file = CaseFile {
        docs: Vec::new(),
        indexes: Vec::new(),
        queries: Vec::new(),
    };
    let mut in_docs = false;
    for line in text.lines() {
        if let Some(q) = line.strip_prefix("query: ") {
            file.queries.push(q.trim().to_string());
            in_docs = false;
        } else if !file.queries.is_empty() {
            continue;
        } else if line.trim() == "docs:" {
            in_docs = true;
        } else if let Some(ix) = line.strip_prefix("index: ") {
            file.indexes.push(ix.trim().to_string());
            in_docs = false;
        } else if in_docs && !line.trim().is_empty() {
            file.docs.push(line.trim().to_string());
        }
    }
    file
}

fn engine(file: &CaseFile) -> Engine {
    let store = Store::in_memory().unwrap();
    for ix in &file.indexes {
        let (pattern, kind) = match ix.strip_suffix(" words") {
            Some(p) => (p, IndexKind::Words),
            None => (ix.as_str(), IndexKind::Value),
        };
        store
            .add_index(Collection::EmailAccounts, pattern, kind)
            .unwrap();
    }
    crate::common::engine_importing(store, &file.docs)
}

fn render(file: &CaseFile) -> String {
    let e = engine(file);
    let mut out = String::from("docs:\n");
    for d in &file.docs {
        out.push_str(d);
        out.push('\n');
    }
    for ix in &file.indexes {
        let _ = writeln!(out, "index: {ix}");
    }
    for q in &file.queries {
        let _ = writeln!(out, "\nquery: {q}");
        match e.explain(q) {
            Ok(plan) => {
                out.push_str("plan:\n");
                for l in plan.lines() {
                    let _ = writeln!(out, "  {l}");
                }
            }
            Err(err) => {
                let _ = writeln!(out, "error: {err}");
                continue;
            }
        }
        match e.search(q, &SearchOptions::default()) {
            Ok(page) => {
                out.push_str("records:\n");
                for r in &page.results {
                    let _ = writeln!(out, "  {r}");
                }
                let _ = writeln!(out, "total: {}", page.total_count);
            }
            Err(err) => {
                let _ = writeln!(out, "error: {err}");
            }
        }
    }
    out
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "test"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn golden_cases() {
    let bless = std::env::var_os("BLESS").is_some();
    let files = case_files();
    assert!(!files.is_empty(), "no case files under tests/cases");
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let actual = render(&parse_file(&text));
        if actual == text {
            continue;
        }
        if bless {
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let (line, want, got) = text
            .lines()
            .zip(actual.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map_or(
                (text.lines().count().min(actual.lines().count()), "", ""),
                |(i, (a, b))| (i, a, b),
            );
        failures.push(format!(
            "{}:{}:\n  expected: {want}\n  actual:   {got}",
            path.display(),
            line + 1
        ));
    }
    assert!(
        failures.is_empty(),
        "golden files differ (BLESS=1 to rewrite):\n{}",
        failures.join("\n")
    );
}
