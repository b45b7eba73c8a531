//! query benchmarks.
fn main() {}
