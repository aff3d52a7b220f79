//! shaders/bench.wgsl: a dispatch that does nothing, for `wgvae bench`'s floor (what dispatching
//! alone costs on the adapter).
use crate::gpu::{Launch, Launcher};
use crate::shaders::Entry;

/// One workgroup of bench_empty.
pub fn empty(l: Launcher) -> Launch {
    l.grid(Entry::BenchEmpty, &[], [1, 1, 1])
}
