// Relaxed categorical latents by Gumbel-softmax (Jang et al. 2017, Maddison et al. 2017; seed 004).
// Prelude: common.wgsl.
//
// The encoder outputs logits [rows, groups * categories]: `groups` independent categorical
// variables of `categories` classes each. A sample is y = softmax((logits + g) / tau) per group, g
// standard Gumbel noise -log(-log u); y is the decoder's input z, and as tau -> 0 it becomes one-hot.
// tau is annealed from tau_start to tau_end geometrically over anneal_steps optimizer steps.
// The KL of q = softmax(logits) to the uniform prior is sum_k q_k log q_k + log(categories) per group.
// Shapes: logits, noise, z, dz, dlogits [rows, groups * categories]; kl [rows].
// Workgroup size 64, one (row, group) per invocation, no shared memory.

struct CategoricalParams {
    rows: u32,
    groups: u32,
    categories: u32,
    seed: u32,
    stream: u32,
    anneal_steps: u32,
    tau_start: f32,
    tau_end: f32,
    beta: f32,          // KL weight and its warm-up, as for the Gaussian KL
    warmup_steps: u32,
    sample_scale: f32,  // 1 / samples per input
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: CategoricalParams;
@group(0) @binding(1) var<storage, read> counters: Counters;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> noise: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;
@group(0) @binding(5) var<storage, read> dz: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(7) var<storage, read_write> kl: array<f32>;

// The temperature at optimizer step `step`: tau_start (tau_end / tau_start)^min(1, step / anneal_steps).
fn temperature(step: u32) -> f32 {
    if (params.anneal_steps == 0u) {
        return params.tau_end;
    }
    let t = min(1.0, f32(step) / f32(params.anneal_steps));
    return params.tau_start * pow(params.tau_end / params.tau_start, t);
}

// Gumbel noise for category k of group `group` of row r: Philox counter (r, group * categories + k,
// step, stream) under key (seed, cursor): independent of scheduling, like every other draw.
@compute @workgroup_size(64)
fn gumbel_softmax_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.groups) {
        return;
    }
    let r = e / params.groups;
    let first = e * params.categories; // row r, group e % groups: contiguous categories
    let tau = temperature(counters.step);
    var m = -3.0e38;
    for (var k = 0u; k < params.categories; k++) {
        let u = uniform_open(philox4x32_10(vec4<u32>(r, (e % params.groups) * params.categories + k, counters.step, params.stream),
                                           vec2<u32>(params.seed, counters.cursor)).x);
        let g = -log(-log(u));
        noise[first + k] = g;
        m = max(m, (logits[first + k] + g) / tau);
    }
    var s = 0.0;
    for (var k = 0u; k < params.categories; k++) {
        let v = exp((logits[first + k] + noise[first + k]) / tau - m);
        z[first + k] = v;
        s += v;
    }
    for (var k = 0u; k < params.categories; k++) {
        z[first + k] /= s;
    }
}

// dlogits_k = y_k (dz_k - sum_j y_j dz_j) / tau (the softmax Jacobian; g held fixed). Writes.
// Dispatch: rows * groups invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn gumbel_softmax_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.groups) {
        return;
    }
    let first = e * params.categories;
    var dot = 0.0;
    for (var k = 0u; k < params.categories; k++) {
        dot += z[first + k] * dz[first + k];
    }
    let tau = temperature(counters.step);
    for (var k = 0u; k < params.categories; k++) {
        dlogits[first + k] = z[first + k] * (dz[first + k] - dot) / tau;
    }
}

// log sum_k exp(logits_k) of one group, max-subtracted: log q_k = logits_k - this.
fn log_normalizer(first: u32) -> f32 {
    var m = -3.0e38;
    for (var k = 0u; k < params.categories; k++) {
        m = max(m, logits[first + k]);
    }
    var s = 0.0;
    for (var k = 0u; k < params.categories; k++) {
        s += exp(logits[first + k] - m);
    }
    return m + log(s);
}

// sum_k q_k log q_k of one group, q = softmax(logits).
fn neg_entropy(first: u32) -> f32 {
    let norm = log_normalizer(first);
    var h = 0.0;
    for (var k = 0u; k < params.categories; k++) {
        let log_q = logits[first + k] - norm;
        h += exp(log_q) * log_q;
    }
    return h;
}

// kl[r] = sum over groups of KL(softmax(logits) || uniform). Dispatch: rows invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn categorical_kl_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat_index(id, groups);
    if (r >= params.rows) {
        return;
    }
    var total = 0.0;
    for (var g = 0u; g < params.groups; g++) {
        total += neg_entropy((r * params.groups + g) * params.categories) + log(f32(params.categories));
    }
    kl[r] = total;
}

// dlogits_k += w q_k (log q_k - sum_j q_j log q_j), w = kl_weight(beta, warm-up, step) * sample_scale.
// Dispatch: rows * groups invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn categorical_kl_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.groups) {
        return;
    }
    let first = e * params.categories;
    let h = neg_entropy(first);
    let norm = log_normalizer(first);
    let w = kl_weight(params.beta, params.warmup_steps, counters.step) * params.sample_scale;
    for (var k = 0u; k < params.categories; k++) {
        let log_q = logits[first + k] - norm;
        dlogits[first + k] += w * exp(log_q) * (log_q - h);
    }
}
