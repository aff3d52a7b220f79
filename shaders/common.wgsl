// The prelude: build.rs puts it before every other shader module, which uses what it needs of it
// (the step counters, the 1-D grid index, Philox draws and their exact log, cos and sin). Keep it
// free of bindings: it only declares types, constants and functions.

// Training state that lives on the GPU so that a whole epoch can be recorded without the host
// writing anything per step. The host resets `cursor` at the start of each pass over the data.
struct Counters {
    step: u32,     // optimizer steps completed; Adam uses step + 1 for bias correction
    cursor: u32,   // position in the pass's index buffer of the current batch's first row
    bad_step: u32, // first step whose loss was not finite, 0xffffffff while all are finite
    pad: u32,
}

const NO_BAD_STEP: u32 = 0xffffffffu;

// The index of invocation `id` of a 1-D kernel of 64-lane workgroups. Past the 65,535 workgroups
// one grid dimension allows, the host lays the workgroups out in rows of groups.x (Gpu::grid_1d),
// so row id.y starts at invocation id.y groups.x 64; with one row this is id.x.
fn flat_index(id: vec3<u32>, groups: vec3<u32>) -> u32 {
    return id.y * groups.x * 64u + id.x;
}

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
// A counter-based generator: the output depends only on (counter, key), so every draw is
// reproducible whatever the scheduling, and src/reference has the same function in Rust.
const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// (high, low) 32-bit halves of the 64-bit product a * b; WGSL has no 64-bit integers.
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        let p0 = mul_hi_lo(PHILOX_M0, c.x);
        let p1 = mul_hi_lo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
    }
    return c;
}

// Uniform in (0, 1): the top 24 bits, centred in their interval, so never exactly 0 or 1.
fn uniform_open(bits: u32) -> f32 {
    return (f32(bits >> 8u) + 0.5) * (1.0 / 16777216.0);
}

// The draws' log, cos and sin from +, -, *, / and the float's bits (random.rs mirrors them op for
// op), not the built-ins: WGSL lets those err by 2^-21 to 2^-11 absolute, and the drivers at hand
// differ by 1e-4 in a draw, which a ReLU or a free-bits gate turns into a different gradient. These
// agree on every driver to a few ulp (the division's 2.5 ulp, and fused multiply-adds).

// ln(u) for u in (0, 1): u = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s =
// (m - 1) / (m + 1), |s| < 0.172, by its series to s^11; ln 2 in two parts, so e ln 2 is exact.
fn ln_unit(u: f32) -> f32 {
    let bits = bitcast<u32>(u);
    var e = f32(i32(bits >> 23u) - 127);
    var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
    if m > 1.4142135 {
        m = 0.5 * m;
        e = e + 1.0;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let odd = s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0)))));
    return e * 0.693145751953125 + (e * 1.4286068e-6 + (2.0 * s + 2.0 * s * odd));
}

// (cos t, sin t) for t in [0, 2 pi]: r = t - q pi/2 for the nearest whole q (pi/2 in two parts,
// so r keeps its digits), Taylor polynomials on |r| <= pi/4 (to r^9 and r^10), then q's quadrant.
fn cos_sin(t: f32) -> vec2<f32> {
    let q = round(t * 0.63661975);
    let r = (t - q * 1.5707964) + q * 4.371139e-8;
    let r2 = r * r;
    let s = r + r * r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0))));
    let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
    switch i32(q) & 3 {
        case 0: { return vec2<f32>(c, s); }
        case 1: { return vec2<f32>(-s, c); }
        case 2: { return vec2<f32>(-c, -s); }
        default: { return vec2<f32>(s, -c); }
    }
}

// Four standard normals from four random words (Box-Muller on two pairs).
fn normal4(bits: vec4<u32>) -> vec4<f32> {
    let two_pi = 6.283185307179586;
    let r0 = sqrt(-2.0 * ln_unit(uniform_open(bits.x)));
    let a0 = cos_sin(two_pi * uniform_open(bits.y));
    let r1 = sqrt(-2.0 * ln_unit(uniform_open(bits.z)));
    let a1 = cos_sin(two_pi * uniform_open(bits.w));
    return vec4<f32>(r0 * a0, r1 * a1);
}

// True for NaN and +-infinity (all exponent bits set).
fn is_non_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// One Adam update (Kingma & Ba 2015) of a parameter with moments (m, v), gradient g, at step t
// (from 1, for the bias correction): returns (new m, new v, the amount to subtract from the parameter).
fn adam_update(g: f32, m: f32, v: f32, t: f32, lr: f32, beta1: f32, beta2: f32, eps: f32) -> vec3<f32> {
    let m_new = beta1 * m + (1.0 - beta1) * g;
    let v_new = beta2 * v + (1.0 - beta2) * g * g;
    let m_hat = m_new / (1.0 - pow(beta1, t));
    let v_hat = v_new / (1.0 - pow(beta2, t));
    return vec3<f32>(m_new, v_new, lr * m_hat / (sqrt(v_hat) + eps));
}

// log(1 + exp(l)) without overflow: max(l, 0) + log1p(exp(-|l|)). -log sigmoid(l) = softplus(-l).
fn softplus(l: f32) -> f32 {
    return max(l, 0.0) + log(1.0 + exp(-abs(l)));
}

// -log Bernoulli(x; sigmoid(l)) for x in [0, 1] (binary cross-entropy): softplus(l) - x l.
fn bernoulli_nll(x: f32, l: f32) -> f32 {
    return softplus(l) - x * l;
}

// Weight of the KL term at optimizer step `step`: beta, ramped linearly from 0 over the first
// `warmup_steps` steps (KL warm-up; 0 means none).
fn kl_weight(beta: f32, warmup_steps: u32, step: u32) -> f32 {
    if (warmup_steps == 0u) {
        return beta;
    }
    return beta * min(1.0, f32(step) / f32(warmup_steps));
}

// The Gaussian decoder's log-variance clamp: a learned variance that shrank without bound would
// make the density, and its gradients, blow up.
const LOGVAR_MIN: f32 = -6.0;
const LOGVAR_MAX: f32 = 4.0;

// -log N(x; mean, exp(lv)) with lv = clamp(raw_logvar): (log 2 pi + lv + (x - mean)^2 exp(-lv)) / 2.
fn gaussian_nll(x: f32, mean: f32, raw_logvar: f32) -> f32 {
    let lv = clamp(raw_logvar, LOGVAR_MIN, LOGVAR_MAX);
    let r = x - mean;
    return 0.5 * (1.8378770664093453 + lv + r * r * exp(-lv));
}

// How a batch is gathered from the resident dataset (shaders/data.wgsl's gather_batch, and
// linear_tiled.wgsl's first-layer product that gathers its own input).
struct GatherParams {
    batch: u32,
    words: u32,
    pass_rows: u32,
    binarize: u32,
    seed: u32,
    stream: u32,
    first_image: u32,  // the shard's first image
    shard_images: u32, // and its number of images
}

// The 4 values of one word of an image (pixels packed little-endian, a byte each), `at` the word's
// index in the split's images (image * words + word): pixel / 255, or with params.binarize a
// Bernoulli(pixel / 255) draw, fresh every step (1) or fixed per image and pixel (2).
fn gathered_pixels(word: u32, at: u32, step: u32, params: GatherParams) -> vec4<f32> {
    var draw_step = step;
    if (params.binarize == 2u) {
        draw_step = 0u;
    }
    var u = vec4<f32>(0.0);
    if (params.binarize != 0u) {
        let bits = philox4x32_10(vec4<u32>(at, draw_step, 0u, params.stream), vec2<u32>(params.seed, 0u));
        u = vec4<f32>(uniform_open(bits.x), uniform_open(bits.y), uniform_open(bits.z), uniform_open(bits.w));
    }
    var value: vec4<f32>;
    for (var i = 0u; i < 4u; i++) {
        let p = f32((word >> (8u * i)) & 0xffu) / 255.0;
        value[i] = select(p, select(0.0, 1.0, u[i] < p), params.binarize != 0u);
    }
    return value;
}
