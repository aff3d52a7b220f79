//! shaders/bench.wgsl: the empty kernel behind `bench`'s floor dispatches, and does nothing, as
//! its reference; a GPU-timestamp or wall-clock time of it is what dispatching alone costs.
use crate::common::*;

#[test]
fn bench_empty_should_dispatch_and_take_little_time() {
    let (g, k) = gpu();
    let invalid = g.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let empty = wgvae::launches::bench::empty(gpu::Launcher { gpu: g, kernels: k });
    let ms = wgvae::gpu::timing::launch_ms(g, &empty, 4).unwrap();
    r::bench_empty();
    let error = pollster::block_on(invalid.pop());
    assert!(error.is_none(), "bench_empty: {error:?}");
    assert!((0.0..1e3).contains(&ms), "bench_empty took {ms} ms");
}
