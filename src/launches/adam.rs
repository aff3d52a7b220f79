//! shaders/adam.wgsl: Adam over a flat buffer.
use crate::config::AdamConfig;
use crate::gpu::kernels::bind;
use crate::gpu::params::AdamParams;
use crate::gpu::{Launch, Launcher};
use crate::shaders::{adam, Entry};

/// weights -= Adam(grads), with moments (m, v), over `count` floats; bias correction from the step
/// in `counters`.
pub fn adam_step(
    l: Launcher,
    config: &AdamConfig,
    counters: &wgpu::Buffer,
    (grads, weights): (&wgpu::Buffer, &wgpu::Buffer),
    (m, v): (&wgpu::Buffer, &wgpu::Buffer),
    count: usize,
) -> Launch {
    let p = AdamParams {
        count: count as u32,
        lr: config.lr,
        beta1: config.beta1,
        beta2: config.beta2,
        eps: config.eps,
        pad: [0; 3],
    };
    let u = l.uniform("adam params", &p);
    // Four parameters per invocation where the count allows (adam.wgsl says why).
    use adam::{COUNTERS, GRADS, GRADS4, M, M4, PARAMS, V, V4, WEIGHTS, WEIGHTS4};
    let (entry, binds, invocations) = match count % 4 {
        0 => (Entry::AdamStepVec4, [GRADS4, WEIGHTS4, M4, V4], count / 4),
        _ => (Entry::AdamStep, [GRADS, WEIGHTS, M, V], count),
    };
    let [g, w, m_at, v_at] = binds;
    l.over(
        entry,
        &[bind(PARAMS, &u), bind(COUNTERS, counters), bind(g, grads), bind(w, weights), bind(m_at, m), bind(v_at, v)],
        invocations,
    )
    .with_bytes(7 * 4 * count as u64) // reads g, w, m, v; writes w, m, v
}
