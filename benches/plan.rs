//! Planning benchmarks: what `plan::plan` (normalise, split into terms, match indexes,
//! choose the access path and order) and `Prepared::new` (compile the filters and the
//! projection) cost per query, for the measured query set and for many-term `WHERE`
//! clauses (AND chains, OR unions over indexed paths, long `IN` lists, deep nesting).
//!
//! ```text
//! cargo bench --bench plan
//! cargo bench --bench plan -- many_terms --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The catalog is the default one of a new store (the indexes of
//! `acql::catalog::DEFAULT_INDEXES`) plus a words index on `profile.email`, so every
//! query plans as it would on a freshly imported database. Parsing is done once,
//! outside the timed loop (`benches/parse.rs` measures it).

use std::hint::black_box;

use acql::ast::Query;
use acql::catalog::{Catalog, Collection, IndexDef, IndexKind, Pattern};
use acql::exec::run::Prepared;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The query set of BENCHMARKS.md (Q1–Q8) and two shapes users write often.
const TYPICAL: &[(&str, &str)] = &[
    (
        "Q1_email_eq",
        "SELECT * FROM emailAccounts WHERE profile.email = \"elena.bernard4321@gmail.com\"",
    ),
    (
        "Q2_subscribed",
        "SELECT count(*) FROM emailAccounts WHERE subscriptions.newsletter.email.isSubscribed = true",
    ),
    (
        "Q4_flags",
        "SELECT * FROM emailAccounts WHERE hasLiteAccount = true AND hasFullAccount = false",
    ),
    (
        "Q5_country_age",
        "SELECT count(*) FROM emailAccounts WHERE profile.country = \"DE\" AND profile.age >= 30",
    ),
    (
        "Q6_contains",
        "SELECT * FROM emailAccounts WHERE profile.email CONTAINS \"example\" LIMIT 100",
    ),
    (
        "Q7_range_order",
        "SELECT * FROM emailAccounts WHERE lastUpdatedTimestamp > 1781913600000 \
         ORDER BY lastUpdatedTimestamp DESC LIMIT 50",
    ),
    (
        "Q8_group",
        "SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country",
    ),
    (
        "mixed",
        "SELECT profile.firstName AS name, profile.email, data.loyaltyPoints FROM emailAccounts \
         WHERE (profile.country IN ('DE', 'AT', 'CH') OR profile.locale = \"de_DE\") \
         AND NOT data.interests CONTAINS 'gaming' AND profile.age > 21 AND created >= '2024-01-01' \
         ORDER BY data.loyaltyPoints DESC, profile.lastName START 100 LIMIT 50",
    ),
    (
        "regex",
        "SELECT * FROM emailAccounts WHERE profile.email = regex('[a-z]+\\.[a-z]+[0-9]+@example\\.com') \
         AND subscriptions.offers.email.isSubscribed = true",
    ),
];

fn catalog() -> Catalog {
    let mut indexes = Catalog::defaults().indexes;
    indexes.push(IndexDef::new(
        100,
        Collection::EmailAccounts,
        Pattern::parse("profile.email").expect("parses"),
        IndexKind::Words,
    ));
    Catalog { indexes }
}

/// `n` conjuncts: indexed and unindexed paths, equality and ranges.
fn and_chain(n: usize) -> String {
    let terms: Vec<String> = (0..n)
        .map(|i| match i % 4 {
            0 => format!("profile.age >= {i}"),
            1 => format!("data.loyaltyPoints < {}", 1000 + i),
            2 => format!("subscriptions.n{i}.email.isSubscribed = true"),
            _ => format!("profile.city != \"c{i}\""),
        })
        .collect();
    format!("SELECT * FROM emailAccounts WHERE {}", terms.join(" AND "))
}

/// `n` disjuncts over indexed paths: a union of `n` lookups.
fn or_union(n: usize) -> String {
    let terms: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "subscriptions.n{i}.email.isSubscribed = true OR profile.email = \"u{i}@x.com\""
            )
        })
        .collect();
    format!("SELECT * FROM emailAccounts WHERE {}", terms.join(" OR "))
}

/// One `IN` list of `n` values on an indexed path.
fn in_list(n: usize) -> String {
    let values: Vec<String> = (0..n).map(|i| format!("\"u{i}@x.com\"")).collect();
    format!(
        "SELECT * FROM emailAccounts WHERE profile.email IN ({})",
        values.join(", ")
    )
}

/// `depth` levels of alternating AND/OR/NOT (normalisation pushes the NOTs down).
fn nested(depth: usize) -> String {
    let mut cond = String::from("profile.age = 0");
    for i in 1..=depth {
        cond = format!("NOT (profile.country = \"C{i}\" AND ({cond} OR hasFullAccount = true))");
    }
    format!("SELECT * FROM emailAccounts WHERE {cond}")
}

/// A many-term shape: its name, its query for `n` terms, and the sizes measured.
type ManyTerms = (&'static str, fn(usize) -> String, &'static [usize]);

fn parse(q: &str) -> Query {
    acql::parse(q).unwrap_or_else(|e| panic!("bench query does not parse: {e}\n{q}"))
}

fn bench_plan(c: &mut Criterion) {
    let catalog = catalog();
    let mut g = c.benchmark_group("plan/typical");
    for (name, q) in TYPICAL {
        let ast = parse(q);
        acql::plan::plan(&ast, &catalog).expect("typical queries plan");
        g.bench_function(BenchmarkId::new("plan", name), |b| {
            b.iter(|| acql::plan::plan(black_box(&ast), &catalog).unwrap())
        });
        g.bench_function(BenchmarkId::new("plan+prepare", name), |b| {
            b.iter(|| Prepared::new(acql::plan::plan(black_box(&ast), &catalog).unwrap()).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("plan/many_terms");
    let shapes: [ManyTerms; 4] = [
        ("and", and_chain, &[10, 50, 200]),
        ("or", or_union, &[10, 50, 200]),
        ("in", in_list, &[10, 100, 1000]),
        ("nested", nested, &[5, 20]),
    ];
    for (name, make, sizes) in shapes {
        for &n in sizes {
            let ast = parse(&make(n));
            acql::plan::plan(&ast, &catalog).expect("many-term queries plan");
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| acql::plan::plan(black_box(&ast), &catalog).unwrap())
            });
        }
    }
    g.finish();

    // The planner against a catalog with many indexes: matching terms to indexes must not
    // grow badly with the catalog (a tenant may index dozens of paths).
    let mut big = catalog.clone();
    for i in 0..200 {
        big.indexes.push(IndexDef::new(
            1000 + i,
            Collection::EmailAccounts,
            Pattern::parse(&format!("data.field{i}")).expect("parses"),
            IndexKind::Value,
        ));
    }
    let mut g = c.benchmark_group("plan/catalog_size");
    let ast = parse(&and_chain(50));
    for (label, cat) in [("default", &catalog), ("plus_200", &big)] {
        g.bench_function(BenchmarkId::new("and_50", label), |b| {
            b.iter(|| acql::plan::plan(black_box(&ast), cat).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench_plan
}
criterion_main!(benches);
