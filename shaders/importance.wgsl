// Importance-sampled log-likelihood (Burda et al. 2015; seeds 001, 003). Prelude: common.wgsl.
//
//   log p(x) ~= log (1/K) sum_k w_k,   log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x),  z_k ~ q(z|x)
//
// A lower bound on log p(x) in expectation that tightens as K grows; K = 1 is the ELBO. The proposal
// is the encoder's q(z|x) (iw_sample) or the prior p(z) itself (iw_sample_prior: the notes' naive Monte
// Carlo estimate, log w_k = log p(x|z_k), which "works in theory but not in practice"). The K samples
// of an image are processed in chunks (so K = 5000 needs no more memory than a chunk), and each chunk
// folds into a running max-subtracted log-sum-exp per image: m = max(m, max_k log w_k),
// s = s exp(m_old - m) + sum_k exp(log w_k - m), and likewise s2 for the squares w_k^2, which give the
// effective sample size (sum w)^2 / sum w^2 = s^2 / s2, in [1, K]. The chunk that completes K writes the
// estimate; sampling may go on past it to a larger K (the samples of K = 10 are the first 10 of K = 100).
//
// Rows: a batch of `images` images times `samples` samples of the current chunk; row r is image
// r / samples, sample first_sample + r % samples. Shapes: mulv [images, 2 * latent],
// z [rows, latent], log_ratio and log_w [rows], logits [rows, pixels], x [images, pixels],
// state [images, 4] (max, scaled sum, sum of log w, scaled sum of squares), result [K values, all
// images, 3] from result_offset (estimate of -log p(x), the K-sample Monte Carlo negative ELBO
// -mean_k log w_k, and the effective sample size).
// Workgroup size 64, one row or one image per invocation, or (iw_accumulate_rows) one image per
// workgroup.

struct IwParams {
    images: u32,
    samples: u32,       // samples of each image in this chunk
    latent: u32,
    pixels: u32,
    first_image: u32,   // index of the batch's first image in the evaluated split
    first_sample: u32,  // index of the chunk's first sample among the image's K
    total_samples: u32, // K: the chunk that reaches it writes the result
    seed: u32,
    result_offset: u32, // first float of this K's block of result
}

// Philox stream of the importance samples (STREAM_IMPORTANCE in src/gpu/params.rs).
const STREAM_IMPORTANCE: u32 = 3u;
const HALF_LOG_TWO_PI: f32 = 0.9189385332046727;
// Start of the running max: below any finite log weight, yet exp(START - m) is a plain 0.
const LOG_SUM_START: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: IwParams;
@group(0) @binding(1) var<storage, read> mulv: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<storage, read_write> log_ratio: array<f32>;
@group(0) @binding(4) var<storage, read> logits: array<f32>;
@group(0) @binding(5) var<storage, read> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> log_w: array<f32>;
@group(0) @binding(7) var<storage, read_write> state: array<f32>;
@group(0) @binding(8) var<storage, read_write> result: array<f32>;

// z = mu + sigma eps and log_ratio = log p(z) - log q(z|x) = sum_j (eps^2 + logvar - z^2) / 2
// (the log 2 pi terms cancel). eps[j .. j + 4) of (image, sample) come from one Philox call with
// counter (image, sample, j / 4, STREAM_IMPORTANCE) and key (seed, 0): the draws depend on the image
// and sample alone, not on the batching, so the K = 100 samples are the first 100 of K = 1000.
// Dispatch: images * samples invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn iw_sample(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat_index(id, groups);
    if (r >= params.images * params.samples) {
        return;
    }
    let i = r / params.samples;
    let k = params.first_sample + r % params.samples;
    let latent = params.latent;
    var ratio = 0.0;
    for (var j4 = 0u; j4 * 4u < latent; j4++) {
        let noise = normal4(philox4x32_10(vec4<u32>(params.first_image + i, k, j4, STREAM_IMPORTANCE),
                                          vec2<u32>(params.seed, 0u)));
        for (var t = 0u; t < 4u; t++) {
            let j = j4 * 4u + t;
            if (j < latent) {
                let mu = mulv[i * 2u * latent + j];
                let logvar = mulv[i * 2u * latent + latent + j];
                let e = noise[t];
                let zj = mu + exp(0.5 * logvar) * e;
                z[r * latent + j] = zj;
                ratio += 0.5 * (e * e + logvar - zj * zj);
            }
        }
    }
    log_ratio[r] = ratio;
}

// The prior as proposal: z = eps ~ N(0, I), the same draws as iw_sample's eps, and log_ratio = 0.
// Dispatch: images * samples invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn iw_sample_prior(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat_index(id, groups);
    if (r >= params.images * params.samples) {
        return;
    }
    let i = r / params.samples;
    let k = params.first_sample + r % params.samples;
    let latent = params.latent;
    for (var j4 = 0u; j4 * 4u < latent; j4++) {
        let noise = normal4(philox4x32_10(vec4<u32>(params.first_image + i, k, j4, STREAM_IMPORTANCE),
                                          vec2<u32>(params.seed, 0u)));
        for (var t = 0u; t < 4u && j4 * 4u + t < latent; t++) {
            z[r * latent + j4 * 4u + t] = noise[t];
        }
    }
    log_ratio[r] = 0.0;
}

// log_w = log p(x|z) + log_ratio, log p(x|z) = -sum_d softplus(l) - x l (Bernoulli decoder).
// Dispatch: images * samples invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn iw_log_weight(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat_index(id, groups);
    if (r >= params.images * params.samples) {
        return;
    }
    let i = r / params.samples;
    var rec = 0.0;
    for (var d = 0u; d < params.pixels; d++) {
        let l = logits[r * params.pixels + d];
        rec += bernoulli_nll(x[i * params.pixels + d], l);
    }
    log_w[r] = log_ratio[r] - rec;
}

// The same for the Gaussian decoder: logits rows are [means | raw log-variances], and
// log p(x|z) = -sum_d gaussian_nll(x, m, lv) (common.wgsl).
@compute @workgroup_size(64)
fn iw_log_weight_gaussian(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat_index(id, groups);
    if (r >= params.images * params.samples) {
        return;
    }
    let i = r / params.samples;
    let row = r * 2u * params.pixels;
    var rec = 0.0;
    for (var d = 0u; d < params.pixels; d++) {
        rec += gaussian_nll(x[i * params.pixels + d], logits[row + d], logits[row + params.pixels + d]);
    }
    log_w[r] = log_ratio[r] - rec;
}

// Folds the chunk's log weights into each image's running log-sum-exps (reset on the first chunk);
// the chunk that reaches K writes result[result_offset + image * 3 ..] =
// (-(m + log s - log K), -(sum log w) / K, s^2 / s2).
// Dispatch: images invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn iw_accumulate(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(id, groups);
    if (i >= params.images) {
        return;
    }
    var m = LOG_SUM_START;
    var s = 0.0;
    var total = 0.0;
    var s2 = 0.0;
    if (params.first_sample > 0u) {
        m = state[i * 4u];
        s = state[i * 4u + 1u];
        total = state[i * 4u + 2u];
        s2 = state[i * 4u + 3u];
    }
    let rows = i * params.samples;
    var chunk_max = LOG_SUM_START;
    for (var k = 0u; k < params.samples; k++) {
        chunk_max = max(chunk_max, log_w[rows + k]);
    }
    let new_m = max(m, chunk_max);
    let rescale = exp(m - new_m);
    s *= rescale;
    s2 *= rescale * rescale;
    for (var k = 0u; k < params.samples; k++) {
        let lw = log_w[rows + k];
        let w = exp(lw - new_m);
        s += w;
        s2 += w * w;
        total += lw;
    }
    store_accumulated(i, new_m, s, total, s2);
}

// Image i's running state, and its result when this chunk completes K.
fn store_accumulated(i: u32, new_m: f32, s: f32, total: f32, s2: f32) {
    state[i * 4u] = new_m;
    state[i * 4u + 1u] = s;
    state[i * 4u + 2u] = total;
    state[i * 4u + 3u] = s2;
    if (params.first_sample + params.samples == params.total_samples) {
        let k_total = f32(params.total_samples);
        let at = params.result_offset + (params.first_image + i) * 3u;
        result[at] = -(new_m + log(s) - log(k_total));
        result[at + 1u] = -total / k_total;
        result[at + 2u] = s * s / s2;
    }
}

// iw_accumulate for GPU adapters, where an invocation per image leaves most of the device idle and
// reads its samples serially: a workgroup per image, its lanes over the chunk's samples, a tree for
// the chunk's max, then one for (sum w, sum w^2, sum log w); lane 0 folds them into the state (the
// same values as iw_accumulate up to rounding). Dispatch: one workgroup per image, in rows of
// groups.x workgroups (Gpu::grid_1d of images x 64).
var<workgroup> lane_max: array<f32, 64>;
var<workgroup> lane_sums: array<vec3<f32>, 64>;

@compute @workgroup_size(64)
fn iw_accumulate_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = wg.y * groups.x + wg.x;
    if (i >= params.images) {
        return;
    }
    let rows = i * params.samples;
    var part_max = LOG_SUM_START;
    for (var k = lane; k < params.samples; k += 64u) {
        part_max = max(part_max, log_w[rows + k]);
    }
    lane_max[lane] = part_max;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half /= 2u) {
        if (lane < half) {
            lane_max[lane] = max(lane_max[lane], lane_max[lane + half]);
        }
        workgroupBarrier();
    }
    var m = LOG_SUM_START;
    if (params.first_sample > 0u) {
        m = state[i * 4u];
    }
    let new_m = max(m, lane_max[0]);
    var part = vec3<f32>(0.0);
    for (var k = lane; k < params.samples; k += 64u) {
        let lw = log_w[rows + k];
        let w = exp(lw - new_m);
        part += vec3<f32>(w, w * w, lw);
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
        var s = 0.0;
        var total = 0.0;
        var s2 = 0.0;
        if (params.first_sample > 0u) {
            s = state[i * 4u + 1u];
            total = state[i * 4u + 2u];
            s2 = state[i * 4u + 3u];
        }
        let rescale = exp(m - new_m);
        let chunk = lane_sums[0];
        store_accumulated(i, new_m, s * rescale + chunk.x, total + chunk.z, s2 * rescale * rescale + chunk.y);
    }
}
