//! Parser benchmarks: typical queries (50–300 characters), a 100-term OR chain, 20-deep
//! nesting (the regression guard against exponential re-parsing), an error path, and
//! `Display` of a large tree.
//!
//! `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 3`
//!
//! Criterion measures wall time. The build machine is shared, so wall time includes
//! waiting for a core; after the criterion run, a short summary also reports the
//! thread's CPU time per parse (from `/proc/thread-self/schedstat`, read around runs of
//! at least 0.3 s of CPU, since the kernel updates it only at scheduler ticks).

use std::hint::black_box;

use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};

/// CPU time of the calling thread, in nanoseconds (Linux); `None` when unavailable.
/// The kernel updates it at scheduler ticks, so it is only read around long runs.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Queries as users write them.
const TYPICAL: &[(&str, &str)] = &[
    (
        "count",
        "SELECT count(*) FROM accounts WHERE profile.age >= 18",
    ),
    (
        "subscribed",
        "SELECT * FROM emailAccounts WHERE subscriptions.newsletter.email.isSubscribed = true \
         AND hasLiteAccount = true ORDER BY lastUpdatedTimestamp DESC LIMIT 100",
    ),
    (
        "mixed",
        "SELECT profile.firstName AS name, profile.email, data.score FROM accounts \
         WHERE (profile.country IN ('DE', 'AT', 'CH') OR profile.locale = \"de\") \
         AND NOT data.tags CONTAINS 'test' AND profile.age > 21 AND created >= '2024-01-01' \
         ORDER BY data.score DESC, profile.lastName START 100 LIMIT 50",
    ),
    (
        "group",
        "SELECT profile.country, count(*), avg(profile.age) AS meanAge FROM emailAccounts \
         WHERE subscriptions.`jun4th.a001`.email.isSubscribed = true AND profile.email = regex('.*@example\\.com') \
         GROUP BY profile.country ORDER BY count(*) DESC LIMIT 20",
    ),
];

fn or_chain(n: usize) -> String {
    let terms: Vec<String> = (0..n).map(|i| format!("data.id = {i}")).collect();
    format!("SELECT * FROM accounts WHERE {}", terms.join(" OR "))
}

fn nested(depth: usize) -> String {
    let mut cond = String::from("a = 0");
    for i in 1..=depth {
        cond = format!("(b{i} = {i} AND {cond} OR c = 'x')");
    }
    format!("SELECT * FROM accounts WHERE {cond}")
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, q) in TYPICAL {
        acql::parse(q).expect("typical queries parse");
        g.throughput(Throughput::Bytes(q.len() as u64));
        g.bench_function(
            BenchmarkId::new("typical", format!("{name}/{}", q.len())),
            |b| b.iter(|| acql::parse(black_box(q)).unwrap()),
        );
    }
    let chain = or_chain(100);
    let deep = nested(20);
    for (name, q) in [("or_chain_100", &chain), ("nested_20", &deep)] {
        acql::parse(q).expect("parses");
        g.throughput(Throughput::Bytes(q.len() as u64));
        g.bench_function(BenchmarkId::new(name, q.len()), |b| {
            b.iter(|| acql::parse(black_box(q)).unwrap())
        });
    }
    let bad = "SELECT * FROM accounts WHERE profile.age >= 18 AND profile.gender = m LIMIT 5";
    g.bench_function("error_unquoted_value", |b| {
        b.iter(|| acql::parse(black_box(bad)).unwrap_err())
    });
    g.finish();

    let mut g = c.benchmark_group("display");
    let tree = acql::parse(&chain).unwrap();
    g.bench_function("or_chain_100", |b| b.iter(|| black_box(&tree).to_string()));
    let tree = acql::parse(TYPICAL[2].1).unwrap();
    g.bench_function("typical_mixed", |b| b.iter(|| black_box(&tree).to_string()));
    g.finish();
}

/// Every parse case: name and text.
fn cases() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = TYPICAL
        .iter()
        .map(|(n, q)| (format!("typical/{n}/{}", q.len()), (*q).to_owned()))
        .collect();
    cases.push(("or_chain_100".into(), or_chain(100)));
    cases.push(("nested_20".into(), nested(20)));
    cases
}

/// CPU and wall time per parse, each over at least 0.3 s of CPU.
fn cpu_summary() {
    if thread_cpu_ns().is_none() {
        return;
    }
    println!("\nCPU time per parse (wall time in parentheses):");
    for (name, q) in cases() {
        let (cpu0, wall0) = (thread_cpu_ns().unwrap_or(0), Instant::now());
        let mut n = 0u64;
        let mut cpu = 0;
        while cpu < 300_000_000 {
            for _ in 0..1000 {
                black_box(acql::parse(black_box(&q)).unwrap());
            }
            n += 1000;
            cpu = thread_cpu_ns().unwrap_or(0).saturating_sub(cpu0);
        }
        let wall = wall0.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "  {name:32} {:>9.0} ns  ({wall:.0} ns)",
            cpu as f64 / n as f64
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    cpu_summary();
}
