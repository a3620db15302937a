//! TODO: parse throughput benchmark.
fn main() {}
