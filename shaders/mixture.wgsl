// A mixture of K product distributions over D pixels, fitted by EM (seed 001's shallow model, whose
// posterior over the component is exact). Prelude: common.wgsl.
//
// family 0, Bernoulli:  log p(x|k) = sum_d x_d log mu_kd + (1 - x_d) log(1 - mu_kd), x in [0, 1]
// family 1, Gaussian:   log p(x|k) = -1/2 sum_d (x_d - m_kd)^2 / v_kd + log(2 pi v_kd)
// Both are linear in features of x, so the E-step's log joint log pi_k + log p(x_n|k) is one matrix
// product L [rows, K] = X [rows, F] W^T + bias, run by the linear kernels (network/linear.rs):
//   Bernoulli F = D,  X = x,          W_kd = log mu_kd - log(1 - mu_kd),
//                                    bias_k = log pi_k + sum_d log(1 - mu_kd);
//   Gaussian  F = 2D, X = [x, x^2],  W_k = [m_k / v_k, -1 / (2 v_k)],
//                                    bias_k = log pi_k - 1/2 sum_d m_kd^2 / v_kd + log(2 pi v_kd).
// The M-step's sufficient statistics are the same layer's weight gradient with the responsibilities
// R [rows, K] as its output gradient: S [K, F] = R^T X (sum_n r_nk x_n, and sum_n r_nk x_n^2) and
// N_k = the column sums of R. `nat` (W then bias) and `stats` (S then N) share that layout, with the
// bias (and N) at bias_at, W (and S) at 0.
//
// With a pseudo-count A (a Beta(1 + A, 1 + A) prior on each mu and a Dirichlet(1 + A) prior on pi),
// the M-step is the posterior mode:  mu_kd = (S_kd + A) / (N_k + 2A),  pi_k = (N_k + A) / (N + K A);
// Gaussian: m = S1 / N_k, v = max(S2 / N_k - m^2, var_floor) (the mode under the floor). A component
// no row gives any weight (N_k below 1e-20) keeps its mean and variance.
//
// Shapes: images [rows * D bytes, packed 4 a u32 word, little-endian] (one chunk's images),
// x [rows, F], logits [rows, K] (the E-step's log joints, turned into responsibilities in place),
// loglik [split rows] (log p(x_n) at first_row + r), stats and totals [bias_at + K],
// means and variances [K, D], log_weights [K].

struct MixtureParams {
    rows: u32,       // rows of this chunk
    pixels: u32,     // D
    components: u32, // K rounded up to a multiple of 4 (the rows' stride: the vec4 products need it)
    family: u32,     // 0 Bernoulli, 1 Gaussian
    first_row: u32,  // the chunk's first row in its split (where its log-likelihoods go)
    bias_at: u32,    // offset of bias (N) in nat (stats), in floats
    total_rows: u32, // N, the training rows the statistics sum over
    pseudo_count: f32,
    var_floor: f32,
    live: u32,       // K: components from live on are padding, with log weight DEAD_LOG_WEIGHT
}

const FAMILY_BERNOULLI: u32 = 0u;
const FAMILY_GAUSSIAN: u32 = 1u;
const MIXTURE_LANES: u32 = 64u;
const LOG_TWO_PI: f32 = 1.8378770664093453;
// Below this a component's weight is too little to estimate from: it keeps its parameters.
const EMPTY_WEIGHT: f32 = 1e-20;
// A padding component's log weight and bias: exp of it is 0, and it never wins a max.
const DEAD_LOG_WEIGHT: f32 = -1e30;

@group(0) @binding(0) var<uniform> params: MixtureParams;
@group(0) @binding(1) var<storage, read> images: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;
@group(0) @binding(4) var<storage, read_write> loglik: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> totals: array<f32>;
@group(0) @binding(7) var<storage, read_write> nat: array<f32>;
@group(0) @binding(8) var<storage, read_write> means: array<f32>;
@group(0) @binding(9) var<storage, read_write> variances: array<f32>;
@group(0) @binding(10) var<storage, read_write> log_weights: array<f32>;

fn features() -> u32 {
    return select(params.pixels, 2u * params.pixels, params.family == FAMILY_GAUSSIAN);
}

// x[r, d] = pixel / 255, and for the Gaussian x[r, D + d] = its square. One invocation per (pixel,
// row). Dispatch: (ceil(D / 64), rows, 1).
@compute @workgroup_size(64)
fn mixture_unpack(@builtin(global_invocation_id) id: vec3<u32>) {
    let d = id.x;
    let r = id.y;
    if (d >= params.pixels || r >= params.rows) {
        return;
    }
    let at = r * params.pixels + d;
    let v = f32((images[at / 4u] >> (8u * (at % 4u))) & 255u) / 255.0;
    let f = features();
    x[r * f + d] = v;
    if (params.family == FAMILY_GAUSSIAN) {
        x[r * f + params.pixels + d] = v * v;
    }
}

// Per row: loglik[first_row + r] = log sum_k exp(L_rk), max-subtracted, and L_r becomes the
// responsibilities softmax(L_r). One invocation per row. Dispatch: rows invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn mixture_responsibilities(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat_index(id, groups);
    if (r >= params.rows) {
        return;
    }
    let k_count = params.components;
    let row = r * k_count;
    var top = logits[row];
    for (var k = 1u; k < k_count; k++) {
        top = max(top, logits[row + k]);
    }
    var sum = 0.0;
    for (var k = 0u; k < k_count; k++) {
        sum += exp(logits[row + k] - top);
    }
    let lse = top + log(sum);
    for (var k = 0u; k < k_count; k++) {
        logits[row + k] = exp(logits[row + k] - lse);
    }
    loglik[params.first_row + r] = lse;
}

// totals[i] += stats[i] over the bias_at + K statistics; the first chunk (first_row 0) starts the
// sums, totals[i] = stats[i]. Dispatch: bias_at + K invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn mixture_accumulate(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(id, groups);
    if (i >= params.bias_at + params.components) {
        return;
    }
    totals[i] = select(totals[i], 0.0, params.first_row == 0u) + stats[i];
}

// The M-step per (pixel, component): means (and variances) from totals, and W in nat. Dispatch:
// (ceil(D / 64), K, 1).
@compute @workgroup_size(64)
fn mixture_m_step(@builtin(global_invocation_id) id: vec3<u32>) {
    let d = id.x;
    let k = id.y;
    if (d >= params.pixels || k >= params.components) {
        return;
    }
    let n_k = totals[params.bias_at + k];
    let f = features();
    let at = k * params.pixels + d;
    if (params.family == FAMILY_BERNOULLI) {
        let a = params.pseudo_count;
        let s = totals[k * f + d];
        let denominator = n_k + 2.0 * a;
        // 1 - mu from the count of zeros, not by subtraction: mu is often within 1e-6 of 1.
        means[at] = (s + a) / denominator;
        nat[k * f + d] = log(s + a) - log(max(n_k - s, 0.0) + a);
        return;
    }
    if (n_k > EMPTY_WEIGHT) {
        let m = totals[k * f + d] / n_k;
        means[at] = m;
        variances[at] = max(totals[k * f + params.pixels + d] / n_k - m * m, params.var_floor);
    }
    let v = variances[at];
    nat[k * f + d] = means[at] / v;
    nat[k * f + params.pixels + d] = -0.5 / v;
}

var<workgroup> partial: array<f32, MIXTURE_LANES>;

// Per component: log_weights[k] = log pi_k and nat's bias_k, the sum over pixels by 64 lanes and a
// tree; padding components (k >= live) get DEAD_LOG_WEIGHT for both. One workgroup per component.
// Dispatch: (components, 1, 1).
@compute @workgroup_size(64)
fn mixture_log_weights(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) lane: vec3<u32>) {
    let k = group.x;
    let f = features();
    let n_k = totals[params.bias_at + k];
    let a = params.pseudo_count;
    var sum = 0.0;
    for (var d = lane.x; d < params.pixels; d += MIXTURE_LANES) {
        if (params.family == FAMILY_BERNOULLI) {
            // log(1 - mu) = log(N_k - S + A) - log(N_k + 2A)
            sum += log(max(n_k - totals[k * f + d], 0.0) + a) - log(n_k + 2.0 * a);
        } else {
            let at = k * params.pixels + d;
            let v = variances[at];
            sum -= 0.5 * (means[at] * means[at] / v + LOG_TWO_PI + log(v));
        }
    }
    if (k >= params.live) {
        sum = 0.0;
    }
    partial[lane.x] = sum;
    workgroupBarrier();
    for (var width = MIXTURE_LANES / 2u; width > 0u; width /= 2u) {
        if (lane.x < width) {
            partial[lane.x] += partial[lane.x + width];
        }
        workgroupBarrier();
    }
    if (lane.x == 0u) {
        let k_count = f32(params.live);
        let log_pi = log(n_k + a) - log(f32(params.total_rows) + k_count * a);
        log_weights[k] = select(log_pi, DEAD_LOG_WEIGHT, k >= params.live);
        nat[params.bias_at + k] = select(log_pi + partial[0], DEAD_LOG_WEIGHT, k >= params.live);
    }
}
