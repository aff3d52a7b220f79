//! CPU mirrors of shaders/toy.wgsl: the seed-004 example's two gradient estimators and their SGD.
use crate::gpu::params::{ToyParams, STREAM_TOY};
use crate::reference::kernels::{normal4, philox4x32_10};

/// Lanes of toy_step's workgroup (TOY_LANES in the shader).
pub const TOY_LANES: usize = 256;

/// grads [2, draws] at `theta` (REINFORCE's, reparameterization's) for SGD step `step`:
/// REINFORCE a eps0 (mu + eps0)^2, reparameterization 2 a (mu + eps1), mu = a theta + b.
pub fn toy_draws(p: &ToyParams, theta: [f32; 2], step: u32) -> Vec<f32> {
    let n = p.draws as usize;
    let mut grads = vec![0.0; 2 * n];
    for i in 0..n {
        let noise = normal4(philox4x32_10([i as u32, step, 0, STREAM_TOY], [p.seed, 0]));
        let z = p.a * theta[0] + p.b + noise[0];
        grads[i] = z * z * p.a * noise[0];
        grads[n + i] = 2.0 * p.a * (p.a * theta[1] + p.b + noise[1]);
    }
    grads
}

/// The shader's sum: lane l adds values l, l + 256, ...; then a tree halves the lanes.
fn lanes_sum(values: impl Iterator<Item = f32>) -> f32 {
    let mut partial = [0.0f32; TOY_LANES];
    for (i, v) in values.enumerate() {
        partial[i % TOY_LANES] += v;
    }
    let mut stride = TOY_LANES / 2;
    while stride > 0 {
        for lane in 0..stride {
            partial[lane] += partial[lane + stride];
        }
        stride /= 2;
    }
    partial[0]
}

/// One SGD step of both estimators from `grads`: moments [steps, 2, 2] at `step` get each estimator's
/// (mean, sample variance), theta -= lr * mean, trajectory [steps + 1, 2] gets the new theta at
/// step + 1, and `step` counts it.
pub fn toy_step(
    p: &ToyParams,
    grads: &[f32],
    theta: &mut [f32; 2],
    step: &mut u32,
    trajectory: &mut [f32],
    moments: &mut [f32],
) {
    let (n, s) = (p.draws as usize, *step as usize);
    for e in 0..2 {
        let g = &grads[e * n..(e + 1) * n];
        let mean = lanes_sum(g.iter().copied()) / n as f32;
        let variance = lanes_sum(g.iter().map(|v| (v - mean) * (v - mean))) / (n.max(2) - 1) as f32;
        moments[(s * 2 + e) * 2] = mean;
        moments[(s * 2 + e) * 2 + 1] = variance;
        theta[e] -= p.lr * mean;
        trajectory[(s + 1) * 2 + e] = theta[e];
    }
    *step += 1;
}
