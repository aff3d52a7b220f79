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

pub fn normal4(bits: [u32; 4]) -> [f32; 4] {
    let two_pi = std::f32::consts::TAU;
    let r0 = (-2.0 * uniform_open(bits[0]).ln()).sqrt();
    let t0 = two_pi * uniform_open(bits[1]);
    let r1 = (-2.0 * uniform_open(bits[2]).ln()).sqrt();
    let t1 = two_pi * uniform_open(bits[3]);
    [r0 * t0.cos(), r0 * t0.sin(), r1 * t1.cos(), r1 * t1.sin()]
}
