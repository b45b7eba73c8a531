//! Parser benchmarks: typical queries (50–300 characters), a 100-term OR chain, 20-deep
//! nesting (the regression guard against exponential re-parsing), an error path, and
//! `Display` of a large tree.
//!
//! `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 3`
//!
//! Two measurements: wall time (criterion's default) and the thread's CPU time. The build
//! machine is shared, so wall time includes waiting for a core; CPU time (from
//! `/proc/thread-self/schedstat`) is what the parser itself costs.

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// CPU time of the calling thread, in nanoseconds (Linux); 0 when unavailable.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Criterion measurement of the benchmark thread's CPU time.
struct CpuTime;

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, as with wall time, so its formatter fits.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// Queries as users write them.
const TYPICAL: &[(&str, &str)] = &[
    ("count", "SELECT count(*) FROM accounts WHERE profile.age >= 18"),
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

fn wall_time(c: &mut Criterion) {
    benches(c, "wall");
}

fn cpu_time(c: &mut Criterion<CpuTime>) {
    benches(c, "cpu");
}

fn benches<M: Measurement>(c: &mut Criterion<M>, tag: &str) {
    let mut g = c.benchmark_group(format!("parse_{tag}"));
    for (name, q) in TYPICAL {
        acql::parse(q).expect("typical queries parse");
        g.throughput(Throughput::Bytes(q.len() as u64));
        g.bench_function(BenchmarkId::new("typical", format!("{name}/{}", q.len())), |b| {
            b.iter(|| acql::parse(black_box(q)).unwrap())
        });
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
    g.bench_function("error_unquoted_value", |b| b.iter(|| acql::parse(black_box(bad)).unwrap_err()));
    g.finish();

    let mut g = c.benchmark_group(format!("display_{tag}"));
    let tree = acql::parse(&chain).unwrap();
    g.bench_function("or_chain_100", |b| b.iter(|| black_box(&tree).to_string()));
    let tree = acql::parse(TYPICAL[2].1).unwrap();
    g.bench_function("typical_mixed", |b| b.iter(|| black_box(&tree).to_string()));
    g.finish();
}

criterion_group!(wall, wall_time);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = cpu_time
}
criterion_main!(wall, cpu);
