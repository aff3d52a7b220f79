//! Philox4x32-10 (Salmon et al. 2011) and Box-Muller on the host, the same generator as
//! shaders/common.wgsl: the host draws prior latents with it, and the tests check the GPU's draws
//! against it (and it against Random123's known answers).

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for _ in 0..10 {
        let p0 = PHILOX_M0 as u64 * c[0] as u64;
        let p1 = PHILOX_M1 as u64 * c[2] as u64;
        c = [(p1 >> 32) as u32 ^ c[1] ^ k[0], p1 as u32, (p0 >> 32) as u32 ^ c[3] ^ k[1], p0 as u32];
        k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
    }
    c
}

pub fn uniform_open(bits: u32) -> f32 {
    ((bits >> 8) as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// Four standard normals from four random words (Box-Muller on two pairs), as common.wgsl's.
pub fn normal4(bits: [u32; 4]) -> [f32; 4] {
    let two_pi = std::f32::consts::TAU;
    let r0 = (-2.0 * ln_unit(uniform_open(bits[0]))).sqrt();
    let [c0, s0] = cos_sin(two_pi * uniform_open(bits[1]));
    let r1 = (-2.0 * ln_unit(uniform_open(bits[2]))).sqrt();
    let [c1, s1] = cos_sin(two_pi * uniform_open(bits[3]));
    [r0 * c0, r0 * s0, r1 * c1, r1 * s1]
}

/// common.wgsl's ln_unit, op for op: ln(u) for u in (0, 1) from the float's bits and 2 atanh(s).
pub fn ln_unit(u: f32) -> f32 {
    let bits = u.to_bits();
    let mut e = ((bits >> 23) as i32 - 127) as f32;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1.0;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let odd = s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0)))));
    e * 0.693_145_75 + (e * 1.428_606_8e-6 + (2.0 * s + 2.0 * s * odd))
}

/// common.wgsl's cos_sin, op for op: [cos t, sin t] for t in [0, 2 pi].
pub fn cos_sin(t: f32) -> [f32; 2] {
    let q = (t * std::f32::consts::FRAC_2_PI).round_ties_even();
    let r = (t - q * std::f32::consts::FRAC_PI_2) + q * 4.371_139e-8;
    let r2 = r * r;
    let s = r + r * r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362_880.0))));
    let c =
        1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3_628_800.0)))));
    match q as i32 & 3 {
        0 => [c, s],
        1 => [-s, c],
        2 => [-c, -s],
        _ => [s, -c],
    }
}
