// Noise-contrastive estimation (seed 004) of an unnormalized model: the MLP's scalar output o(x)
// carries the learned log-normaliser c (the last layer's bias is -c), and the model's log density
// is l(x) = s(x) - c with s(x) = o(x) + c, or with base = 1 s(x) = log q(x) + o(x) + c, a residual
// to the noise. Noise is a fitted mixture q (shaders/mixture.wgsl's layout), whose log q is exact.
// Prelude: common.wgsl.
//
// One step's rows in x [data_rows + noise_rows, D]: the batch's B data rows first, then k noise
// rows per data row (data row b owns rows first_noise + b k .. + k). For every row
//   delta = l(x) - log k - log q(x)       (the log-odds that x is data, the notes' Delta s)
//         = o(x) - log k - log q(x), or o(x) - log k with base = 1
// and the loss per data row is -log sigmoid(delta_b) - sum_j log sigmoid(-delta_bj)
//                             = softplus(-delta_b) + sum_j softplus(delta_bj),
// whose gradients are d/d delta_b = sigmoid(delta_b) - 1 and d/d delta_bj = sigmoid(delta_bj)
// (d delta / d o = 1; the network's backward pass takes it from there, the bias's gradient being
// -dc).
//
// Random draws: Philox counter (row, counters.step + draw, quad or COMPONENT_DRAW, stream), key
// (seed, counters.cursor), so each batch of a pass and each step draws afresh.

struct NceParams {
    data_rows: u32,   // B: the data rows at the top of x (0 when only noise is drawn)
    noise: u32,       // k: noise rows per data row
    noise_rows: u32,  // rows the sampler draws
    first_noise: u32, // x's row of the first noise row
    pixels: u32,      // D
    components: u32,  // K, the mixture's live components
    family: u32,      // 0 Bernoulli (samples 0 or 1), 1 Gaussian
    seed: u32,
    stream: u32,
    draw: u32,        // added to counters.step in the random counter
    pass_rows: u32,   // data rows at cursor + b >= pass_rows are padding (no loss, no gradient)
    training: u32,    // 1: the step counts as an optimizer step
    log_k: f32,
    base: u32,        // 1: the model is log q(x) + o(x), 0: o(x)
    pad1: u32,
    pad2: u32,
}

struct NceTotals {
    loss_sum: f32,    // the loss summed over data rows
    correct_sum: f32, // rows classified right (delta > 0 for data, < 0 for noise), of (1 + k) per data row
    examples: f32,    // data rows
    pad: f32,
}

const NCE_LANES: u32 = 64u;
const COMPONENT_DRAW: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: NceParams;
@group(0) @binding(1) var<storage, read_write> counters: Counters;
@group(0) @binding(2) var<storage, read> log_weights: array<f32>; // [K], normalised
@group(0) @binding(3) var<storage, read> means: array<f32>;       // [K, D]
@group(0) @binding(4) var<storage, read> stds: array<f32>;        // [K, D] (Gaussian)
@group(0) @binding(5) var<storage, read_write> component: array<u32>; // [noise_rows]
@group(0) @binding(6) var<storage, read_write> x: array<f32>;     // [rows, D]
@group(0) @binding(7) var<storage, read_write> features: array<f32>; // [rows, 2D] (Gaussian)
@group(0) @binding(8) var<storage, read> score: array<f32>;       // [rows] o(x)
@group(0) @binding(9) var<storage, read> log_q: array<f32>;       // [rows]
@group(0) @binding(10) var<storage, read_write> d_score: array<f32>; // [rows]
@group(0) @binding(11) var<storage, read_write> row_loss: array<f32>; // [B]
@group(0) @binding(12) var<storage, read_write> row_correct: array<f32>; // [B]
@group(0) @binding(13) var<storage, read_write> totals: NceTotals;

fn draw_bits(row: u32, slot: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(row, counters.step + params.draw, slot, params.stream),
                         vec2<u32>(params.seed, counters.cursor));
}

// component[r] = k with probability pi_k: the first k whose cumulative weight passes a uniform
// (the last live one if rounding leaves the sum short). One invocation per noise row.
// Dispatch: noise_rows invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn nce_pick_components(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat_index(id, groups);
    if (r >= params.noise_rows) {
        return;
    }
    let u = uniform_open(draw_bits(r, COMPONENT_DRAW).x);
    var pick = params.components - 1u;
    var sum = 0.0;
    for (var k = 0u; k < params.components; k++) {
        sum += exp(log_weights[k]);
        if (u < sum) {
            pick = k;
            break;
        }
    }
    component[r] = pick;
}

// Noise row r's pixels 4q .. 4q + 3 from its component: Bernoulli(mu) as 0 or 1, or
// mean + std * N(0, 1), written at x's row first_noise + r. Dispatch:
// (ceil(ceil(D / 4) / 64), noise_rows, 1).
@compute @workgroup_size(64)
fn nce_sample_pixels(@builtin(global_invocation_id) id: vec3<u32>) {
    let q = id.x;
    let r = id.y;
    if (4u * q >= params.pixels || r >= params.noise_rows) {
        return;
    }
    let bits = draw_bits(r, q);
    let normals = normal4(bits);
    let first = component[r] * params.pixels;
    let row = (params.first_noise + r) * params.pixels;
    for (var i = 0u; i < 4u; i++) {
        let d = 4u * q + i;
        if (d < params.pixels) {
            if (params.family == 0u) {
                x[row + d] = select(0.0, 1.0, uniform_open(bits[i]) < means[first + d]);
            } else {
                x[row + d] = means[first + d] + stds[first + d] * normals[i];
            }
        }
    }
}

// The Gaussian mixture's features of every row: features[r] = [x_r, x_r^2] (shaders/mixture.wgsl).
// Dispatch: (ceil(D / 64), first_noise + noise_rows, 1).
@compute @workgroup_size(64)
fn nce_features(@builtin(global_invocation_id) id: vec3<u32>) {
    let d = id.x;
    let r = id.y;
    if (d >= params.pixels || r >= params.first_noise + params.noise_rows) {
        return;
    }
    let v = x[r * params.pixels + d];
    features[r * 2u * params.pixels + d] = v;
    features[r * 2u * params.pixels + params.pixels + d] = v * v;
}

fn sigmoid(v: f32) -> f32 {
    return 1.0 / (1.0 + exp(-v));
}

// Row r's log-odds of being data. With base = 1, log q cancels: no catastrophic cancellation of
// two large logs.
fn delta_of(r: u32) -> f32 {
    return score[r] - params.log_k - select(log_q[r], 0.0, params.base == 1u);
}

// Per data row b: its loss and its k noise rows' (row_loss[b]), how many of its 1 + k rows are
// classified right (row_correct[b]), and d_score of all of them; padding rows get zeros.
// Dispatch: B invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn nce_loss(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_index(id, groups);
    if (b >= params.data_rows) {
        return;
    }
    let live = select(0.0, 1.0, counters.cursor + b < params.pass_rows);
    let delta = delta_of(b);
    var loss = softplus(-delta);
    var correct = select(0.0, 1.0, delta > 0.0);
    d_score[b] = live * (sigmoid(delta) - 1.0);
    for (var j = 0u; j < params.noise; j++) {
        let r = params.first_noise + b * params.noise + j;
        let noise_delta = delta_of(r);
        loss += softplus(noise_delta);
        correct += select(0.0, 1.0, noise_delta < 0.0);
        d_score[r] = live * sigmoid(noise_delta);
    }
    row_loss[b] = live * loss;
    row_correct[b] = live * correct;
}

// One invocation: add the batch's live rows to the pass totals, note the first non-finite loss,
// move the cursor to the next batch and, in training, count the optimizer step.
@compute @workgroup_size(1)
fn nce_finish_step() {
    var loss = 0.0;
    var correct = 0.0;
    var n = 0.0;
    for (var b = 0u; b < params.data_rows; b++) {
        if (counters.cursor + b < params.pass_rows) {
            loss += row_loss[b];
            correct += row_correct[b];
            n += 1.0;
        }
    }
    if (is_non_finite(loss) && counters.bad_step == NO_BAD_STEP) {
        counters.bad_step = counters.step;
    }
    totals.loss_sum += loss;
    totals.correct_sum += correct;
    totals.examples += n;
    counters.cursor += params.data_rows;
    if (params.training == 1u) {
        counters.step += 1u;
    }
}
