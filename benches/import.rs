//! import benchmarks.
fn main() {}
