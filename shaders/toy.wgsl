// The worked example of seed 004: minimise F(theta) = E_{z ~ N(mu, 1)}[z^2], mu = a theta + b, whose
// gradient F'(theta) = 2 a mu is known exactly, with two single-draw estimators of it:
//   REINFORCE (score function)  g = z^2 d/dtheta log N(z; mu, 1) = z^2 a (z - mu) = a eps (mu + eps)^2
//   reparameterization          g = d/dtheta (mu + eps)^2 = 2 a (mu + eps),         z = mu + eps, eps ~ N(0, 1)
// Each estimator runs its own plain SGD, theta -= lr * (mean of `draws` single-draw estimates).
// Prelude: common.wgsl.
//
// Shapes: theta [2] (REINFORCE's, reparameterization's), step [1] (steps done), grads [2, draws],
// trajectory [steps + 1, 2] (theta after each step; row 0, the start, is written by the host),
// moments [steps, 2, 2] (per step and estimator: mean and sample variance of the draws).

struct ToyParams {
    draws: u32,
    a: f32,
    b: f32,
    lr: f32,
    seed: u32,
}

// Philox stream of the toy draws (STREAM_TOY in src/gpu/params.rs).
const STREAM_TOY: u32 = 4u;
const TOY_LANES: u32 = 256u;

@group(0) @binding(0) var<uniform> params: ToyParams;
@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read_write> step: array<u32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> trajectory: array<f32>;
@group(0) @binding(5) var<storage, read_write> moments: array<f32>;

// One draw per invocation, for both estimators at their own theta: eps of REINFORCE and of the
// reparameterization are normals 0 and 1 of the Philox call with counter (draw, step, 0, STREAM_TOY)
// and key (seed, 0), so the two estimators' draws are independent.
// Dispatch: draws invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn toy_draws(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat_index(id, groups);
    if (n >= params.draws) {
        return;
    }
    let noise = normal4(philox4x32_10(vec4<u32>(n, step[0], 0u, STREAM_TOY), vec2<u32>(params.seed, 0u)));
    let a = params.a;
    let mu_reinforce = a * theta[0] + params.b;
    let z = mu_reinforce + noise[0];
    grads[n] = z * z * a * noise[0];
    let mu_reparam = a * theta[1] + params.b;
    grads[params.draws + n] = 2.0 * a * (mu_reparam + noise[1]);
}

var<workgroup> partial: array<f32, TOY_LANES>;

// Sum over lanes of each lane's `value`: a tree over workgroup memory, the same order in every run.
// Called by every lane (it holds barriers).
fn lanes_sum(lane: u32, value: f32) -> f32 {
    partial[lane] = value;
    workgroupBarrier();
    for (var stride = TOY_LANES / 2u; stride > 0u; stride /= 2u) {
        if (lane < stride) {
            partial[lane] += partial[lane + stride];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// The SGD step of both estimators: lane l sums draws l, l + 256, ...; the lanes' sums meet in a tree.
// Writes the draws' mean and sample variance (two passes, so no cancellation), theta -= lr * mean,
// the new theta into the trajectory, and counts the step.
// Dispatch: (1, 1, 1).
@compute @workgroup_size(256)
fn toy_step(@builtin(local_invocation_index) lane: u32) {
    let n = params.draws;
    let s = step[0];
    for (var e = 0u; e < 2u; e++) {
        var sum = 0.0;
        for (var i = lane; i < n; i += TOY_LANES) {
            sum += grads[e * n + i];
        }
        let mean = lanes_sum(lane, sum) / f32(n);
        var squares = 0.0;
        for (var i = lane; i < n; i += TOY_LANES) {
            let d = grads[e * n + i] - mean;
            squares += d * d;
        }
        let variance = lanes_sum(lane, squares) / f32(max(n, 2u) - 1u);
        if (lane == 0u) {
            moments[(s * 2u + e) * 2u] = mean;
            moments[(s * 2u + e) * 2u + 1u] = variance;
            theta[e] -= params.lr * mean;
            trajectory[(s + 1u) * 2u + e] = theta[e];
        }
    }
    if (lane == 0u) {
        step[0] = s + 1u;
    }
}
