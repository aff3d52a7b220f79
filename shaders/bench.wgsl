// An entry point that does nothing, for `wgvae bench`'s floor: as many of these as a training step
// has launches, in one pass, cost what dispatching alone costs on the adapter (pipeline changes,
// the barrier between dispatches, the submission), whatever the kernels compute.
@compute @workgroup_size(64)
fn bench_empty() {}
