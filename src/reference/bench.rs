//! shaders/bench.wgsl.

/// Nothing: the floor `bench` measures is the cost of dispatching itself.
pub fn bench_empty() {}
