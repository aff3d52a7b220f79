// Objectives over several samples per input, and the score-function estimator. Prelude: common.wgsl.
//
// Rows are samples: row r is sample r % samples of input r / samples, with mulv [rows, 2 * latent]
// (the input's q(z|x) repeated), eps, z, dz [rows, latent], rec, log_w, coef [rows].
// The log weight of a sample is log w = log p(x|z) + log p(z) - log q(z|x)
//   = -rec + sum_j (eps_j^2 + logvar_j - z_j^2) / 2   (the log 2 pi terms cancel).
// IWAE (Burda et al. 2015) minimises -log (1/S) sum_k w_k; its gradient is -sum_k w~_k grad log w_k,
// w~ the normalised weights. The score-function estimator (seeds 002-004) of the encoder's gradient
// is -(1/S) sum_k (f_k - b_k) grad log q(z_k|x) with f = log w, z held fixed, and b a control variate.
// Workgroup size 64; workgroup memory only in score_baseline_update_tree.

struct SampleParams {
    rows: u32,
    samples: u32,
    latent: u32,
    baseline: u32,     // score estimator: 0 none, 1 running mean of f, 2 leave-one-out mean over the input's samples
    beta: f32,         // weight of log p(z) - log q(z|x) in the score estimator's f (with warm-up)
    warmup_steps: u32,
    decay: f32,        // running-mean baseline: b = decay b + (1 - decay) mean(f)
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: SampleParams;
@group(0) @binding(1) var<storage, read> counters: Counters;
@group(0) @binding(2) var<storage, read> mulv: array<f32>;
@group(0) @binding(3) var<storage, read> eps: array<f32>;
@group(0) @binding(4) var<storage, read> z: array<f32>;
@group(0) @binding(5) var<storage, read> rec: array<f32>;
@group(0) @binding(6) var<storage, read_write> log_w: array<f32>;
@group(0) @binding(7) var<storage, read_write> coef: array<f32>;
@group(0) @binding(8) var<storage, read> dz: array<f32>;
@group(0) @binding(9) var<storage, read_write> dmulv: array<f32>;
@group(0) @binding(10) var<storage, read_write> baseline: array<f32>; // [running mean, initialised]

// log_w[r] = -rec[r] + kl_weight * sum_j (eps^2 + logvar - z^2) / 2. Dispatch: rows invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn log_weight_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat_index(id, groups);
    if (r >= params.rows) {
        return;
    }
    var ratio = 0.0;
    for (var j = 0u; j < params.latent; j++) {
        let e = eps[r * params.latent + j];
        let zj = z[r * params.latent + j];
        ratio += 0.5 * (e * e + mulv[r * 2u * params.latent + params.latent + j] - zj * zj);
    }
    log_w[r] = -rec[r] + kl_weight(params.beta, params.warmup_steps, counters.step) * ratio;
}

// coef = the input's normalised importance weights, softmax(log_w) over its samples (max-subtracted).
// Dispatch: rows / samples invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn iwae_weights(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_index(id, groups);
    if (b * params.samples >= params.rows) {
        return;
    }
    let first = b * params.samples;
    var m = log_w[first];
    for (var k = 1u; k < params.samples; k++) {
        m = max(m, log_w[first + k]);
    }
    var s = 0.0;
    for (var k = 0u; k < params.samples; k++) {
        s += exp(log_w[first + k] - m);
    }
    for (var k = 0u; k < params.samples; k++) {
        coef[first + k] = exp(log_w[first + k] - m) / s;
    }
}

// Gradient of sum_r -coef_r log w_r through the reparameterized sample (eps fixed), given
// dz = d/dz of the decoder's part (already weighted by coef):
//   d/dmu = dz + coef z;  d/dlogvar = (dz + coef z) sigma eps / 2 - coef / 2.
// Writes dmulv. Dispatch: rows * latent invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn sampled_latent_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.latent) {
        return;
    }
    let r = e / params.latent;
    let j = e % params.latent;
    let mu_at = r * 2u * params.latent + j;
    let lv_at = mu_at + params.latent;
    let c = coef[r];
    let total = dz[e] + c * z[e];
    dmulv[mu_at] = total;
    dmulv[lv_at] = total * 0.5 * exp(0.5 * mulv[lv_at]) * eps[e] - 0.5 * c;
}

fn control_variate(r: u32) -> f32 {
    if (params.baseline == 1u) {
        return baseline[0] * baseline[1]; // 0 until the first update
    }
    if (params.baseline == 2u) {
        let first = (r / params.samples) * params.samples;
        var s = 0.0;
        for (var k = 0u; k < params.samples; k++) {
            s += log_w[first + k];
        }
        return (s - log_w[r]) / f32(params.samples - 1u);
    }
    return 0.0;
}

// The score-function estimate for the encoder's output: with A = -(f - b) / samples,
//   d/dmu = A eps / sigma;  d/dlogvar = A (eps^2 - 1) / 2   (grad log q(z|x) at fixed z).
// Writes dmulv. Dispatch: rows * latent invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn score_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.latent) {
        return;
    }
    let r = e / params.latent;
    let j = e % params.latent;
    let mu_at = r * 2u * params.latent + j;
    let lv_at = mu_at + params.latent;
    let a = -(log_w[r] - control_variate(r)) / f32(params.samples);
    let ep = eps[e];
    dmulv[mu_at] = a * ep * exp(-0.5 * mulv[lv_at]);
    dmulv[lv_at] = a * 0.5 * (ep * ep - 1.0);
}

// One invocation, after score_backward: the running mean of f takes this batch's mean (the first
// batch sets it). Dispatch: (1, 1, 1).
@compute @workgroup_size(1)
fn score_baseline_update() {
    var s = 0.0;
    for (var r = 0u; r < params.rows; r++) {
        s += log_w[r];
    }
    move_baseline(s / f32(params.rows));
}

// The running mean of f takes the batch's `mean` (the first batch sets it).
fn move_baseline(mean: f32) {
    if (baseline[1] == 0.0) {
        baseline[0] = mean;
        baseline[1] = 1.0;
    } else {
        baseline[0] = params.decay * baseline[0] + (1.0 - params.decay) * mean;
    }
}

// score_baseline_update for GPU adapters: 64 lanes add every 64th row, a tree adds the lanes, and
// lane 0 moves the running mean (the mean may differ from the serial sum's in the last bits).
// Dispatch: (1, 1, 1).
var<workgroup> lane_sums: array<f32, 64>;

@compute @workgroup_size(64)
fn score_baseline_update_tree(@builtin(local_invocation_index) lane: u32) {
    var part = 0.0;
    for (var r = lane; r < params.rows; r += 64u) {
        part += log_w[r];
    }
    lane_sums[lane] = part;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half /= 2u) {
        if (lane < half) {
            lane_sums[lane] += lane_sums[lane + half];
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        move_baseline(lane_sums[0] / f32(params.rows));
    }
}
