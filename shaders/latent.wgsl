// The Gaussian latent layer: reparameterized sampling z = mu + exp(logvar / 2) * eps and the
// analytic KL(q(z|x) || N(0, I)), forward and backward. Prelude: common.wgsl.
//
// Shapes: mulv [batch, 2 * latent] (each row is mu then logvar: the encoder's last linear layer has
// width 2 * latent), eps and z [batch, latent], kl [batch]. With several samples per input the
// rows are samples (the input's mulv repeated), and "batch" counts rows.
// Workgroup size 64: elementwise work, no shared memory.

struct LatentParams {
    rows: u32,
    latent: u32,
    seed: u32,
    stream: u32,        // separates training draws from evaluation draws
    beta: f32,          // weight of the KL term in the gradient (the reported loss is the plain ELBO)
    warmup_steps: u32,  // KL warm-up: the weight ramps from 0 to beta over these optimizer steps
    free_bits: f32,     // nats per latent dimension below which its KL gets no gradient (0: off)
    sample_scale: f32,  // 1 / samples per input: each row's share of its input's loss
}

@group(0) @binding(0) var<uniform> params: LatentParams;
@group(0) @binding(1) var<storage, read> counters: Counters;
@group(0) @binding(2) var<storage, read> mulv: array<f32>;
@group(0) @binding(3) var<storage, read_write> eps: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;
@group(0) @binding(5) var<storage, read> dz: array<f32>;
@group(0) @binding(6) var<storage, read_write> dmulv: array<f32>;
@group(0) @binding(7) var<storage, read_write> kl: array<f32>;
@group(0) @binding(8) var<storage, read> prior: array<f32>;             // [batch, 2 * latent]: p(z|y)'s mu, logvar
@group(0) @binding(9) var<storage, read_write> dprior: array<f32>;      // [batch, 2 * latent]
@group(0) @binding(10) var<storage, read_write> gate: array<f32>;       // [latent]: 1, or 0 below free bits

// Invocation j draws eps[4j .. 4j + 4) from Philox counter (j, cursor, step, stream), key (seed, 0).
// Dispatch: batch * latent / 4 invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn reparam_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let flat = flat_index(id, groups);
    let total = params.rows * params.latent;
    let first = flat * 4u;
    if (first >= total) {
        return;
    }
    let bits = philox4x32_10(vec4<u32>(flat, counters.cursor, counters.step, params.stream),
                             vec2<u32>(params.seed, 0u));
    let noise = normal4(bits);
    for (var i = 0u; i < 4u; i++) {
        let e = first + i;
        if (e < total) {
            let b = e / params.latent;
            let j = e % params.latent;
            let mu = mulv[b * 2u * params.latent + j];
            let logvar = mulv[b * 2u * params.latent + params.latent + j];
            eps[e] = noise[i];
            z[e] = mu + exp(0.5 * logvar) * noise[i];
        }
    }
}

// dmu = dz; dlogvar = dz * eps * sigma / 2. Writes (not adds) dmulv (a CVAE's: gaussian_kl2_backward adds after).
// Dispatch: batch * latent invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn reparam_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.latent) {
        return;
    }
    let b = e / params.latent;
    let j = e % params.latent;
    let mu_at = b * 2u * params.latent + j;
    let lv_at = mu_at + params.latent;
    dmulv[mu_at] = dz[e];
    dmulv[lv_at] = dz[e] * eps[e] * 0.5 * exp(0.5 * mulv[lv_at]);
}

// kl[b] = -1/2 sum_j (1 + logvar - mu^2 - exp(logvar)). Dispatch: batch invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn gaussian_kl_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_index(id, groups);
    if (b >= params.rows) {
        return;
    }
    var s = 0.0;
    for (var j = 0u; j < params.latent; j++) {
        let mu = mulv[b * 2u * params.latent + j];
        let logvar = mulv[b * 2u * params.latent + params.latent + j];
        s += 1.0 + logvar - mu * mu - exp(logvar);
    }
    kl[b] = -0.5 * s;
}

fn kl_term(b: u32, j: u32) -> f32 {
    let mu = mulv[b * 2u * params.latent + j];
    let logvar = mulv[b * 2u * params.latent + params.latent + j];
    return -0.5 * (1.0 + logvar - mu * mu - exp(logvar));
}

// Free bits (Kingma et al. 2016): the term for dimension j is batch * max(free_bits, mean over the
// batch of KL_j), so a dimension whose mean KL is below free_bits gets no gradient.
// free_bits_gate writes gate[j] = 0 for those dimensions and 1 for the others, one invocation per
// dimension (batch x latent work; deciding it in each invocation of the gradient kernel was
// batch^2 x latent, and lavapipe leaked host memory on every dispatch of that kernel once its
// index came from a 2-D grid). Dispatch: latent invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn free_bits_gate(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let j = flat_index(id, groups);
    if (j >= params.latent) {
        return;
    }
    var mean_kl = 0.0;
    for (var r = 0u; r < params.rows; r++) {
        mean_kl += kl_term(r, j);
    }
    gate[j] = select(1.0, 0.0, mean_kl / f32(params.rows) < params.free_bits);
}

// The pathwise ELBO's gradient in q's parameters, through the sample and the weighted KL at once:
// dmu = dz + w mu, dlogvar = dz eps sigma / 2 + w (exp(logvar) - 1) / 2, with w = kl_weight(beta,
// warm-up, step) * sample_scale. Writes (not adds) dmulv. Dispatch: batch * latent invocations on a
// 1-D grid (flat_index).
@compute @workgroup_size(64)
fn reparam_kl_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.latent) {
        return;
    }
    write_reparam_kl_gradient(e, kl_weight(params.beta, params.warmup_steps, counters.step) * params.sample_scale);
}

// reparam_kl_backward with dimension j's KL gradient times gate[j] (free_bits_gate's).
@compute @workgroup_size(64)
fn reparam_kl_backward_gated(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.latent) {
        return;
    }
    let w = kl_weight(params.beta, params.warmup_steps, counters.step) * params.sample_scale;
    write_reparam_kl_gradient(e, w * gate[e % params.latent]);
}

fn write_reparam_kl_gradient(e: u32, w: f32) {
    let b = e / params.latent;
    let j = e % params.latent;
    let mu_at = b * 2u * params.latent + j;
    let lv_at = mu_at + params.latent;
    let through_sample = dz[e] * eps[e] * 0.5 * exp(0.5 * mulv[lv_at]);
    dmulv[mu_at] = dz[e] + w * mulv[mu_at];
    dmulv[lv_at] = through_sample + w * 0.5 * (exp(mulv[lv_at]) - 1.0);
}

// KL between two diagonal Gaussians, q = N(mu_q, exp(lv_q)) (mulv) and a learned prior
// p = N(mu_p, exp(lv_p)) (prior), per row (seed 004):
//   kl = 1/2 sum_j [lv_p - lv_q + (exp(lv_q) + (mu_q - mu_p)^2) / exp(lv_p) - 1].
// Dispatch: batch invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn gaussian_kl2_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_index(id, groups);
    if (b >= params.rows) {
        return;
    }
    var s = 0.0;
    for (var j = 0u; j < params.latent; j++) {
        let at = b * 2u * params.latent + j;
        let d = mulv[at] - prior[at];
        let lv_q = mulv[at + params.latent];
        let lv_p = prior[at + params.latent];
        s += lv_p - lv_q + (exp(lv_q) + d * d) * exp(-lv_p) - 1.0;
    }
    kl[b] = 0.5 * s;
}

// With w = kl_weight(beta, warm-up, step) * sample_scale:
//   dmu_q += w (mu_q - mu_p) / var_p;  dlv_q += w (exp(lv_q) / var_p - 1) / 2;
//   dmu_p = -w (mu_q - mu_p) / var_p;   dlv_p = w (1 - (exp(lv_q) + (mu_q - mu_p)^2) / var_p) / 2.
// Adds to dmulv, writes dprior. Dispatch: batch * latent invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn gaussian_kl2_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.latent) {
        return;
    }
    let b = e / params.latent;
    let j = e % params.latent;
    let at = b * 2u * params.latent + j;
    let lv_at = at + params.latent;
    let w = kl_weight(params.beta, params.warmup_steps, counters.step) * params.sample_scale;
    let d = mulv[at] - prior[at];
    let inv_var_p = exp(-prior[lv_at]);
    let var_q = exp(mulv[lv_at]);
    dmulv[at] += w * d * inv_var_p;
    dmulv[lv_at] += w * 0.5 * (var_q * inv_var_p - 1.0);
    dprior[at] = -w * d * inv_var_p;
    dprior[lv_at] = w * 0.5 * (1.0 - (var_q + d * d) * inv_var_p);
}
