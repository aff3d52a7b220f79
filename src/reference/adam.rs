//! shaders/adam.wgsl: Adam over the flat parameter buffer.
use crate::config::AdamConfig;

/// One Adam update of every weight, with bias correction for t = step + 1.
pub fn adam_step(grads: &[f32], weights: &mut [f32], m: &mut [f32], v: &mut [f32], step: u32, cfg: &AdamConfig) {
    let t = (step + 1) as f32;
    for i in 0..weights.len() {
        let g = grads[i];
        m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
        v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
        let m_hat = m[i] / (1.0 - cfg.beta1.powf(t));
        let v_hat = v[i] / (1.0 - cfg.beta2.powf(t));
        weights[i] -= cfg.lr * m_hat / (v_hat.sqrt() + cfg.eps);
    }
}

/// adam_step four parameters at a time: the same update (weights.len() a multiple of 4).
pub use self::adam_step as adam_step_vec4;
