//! src/refine.rs on the CPU, from the reference kernels in the same order: tests compare the
//! ELBO before and after refinement with the GPU's.
use super::kernels::*;
use super::network::{backward_path, forward_path};
use crate::config::AdamConfig;
use crate::gpu::params::{Counters, LossTotals};
use crate::gpu::params::{STREAM_EVAL_EPS, STREAM_TRAIN_EPS};
use crate::model::Model;

/// (before, after) negative-ELBO totals for the batch `x` [batch, input] of which the first `real`
/// rows count, measured with `draws` draws, after `steps` Adam steps on the encoder's mulv.
#[allow(clippy::too_many_arguments)]
pub fn refine(
    model: &Model,
    params: &[f32],
    x: &[f32],
    batch: usize,
    real: usize,
    steps: usize,
    draws: usize,
    seed: u32,
    adam: &AdamConfig,
) -> (LossTotals, LossTotals) {
    let (input, latent) = (model.arch.input(), model.arch.latent);
    let mut mulv = forward_path(&model.encoder, params, x.to_vec(), batch).pop().expect("q's parameters");
    // One draw: (eps, z, decoder activations, logits, rec, kl) at the counters.
    let forward = |mulv: &[f32], stream: u32, counters: &Counters| {
        let (eps, z) = reparam_forward(mulv, batch, latent, seed, stream, counters);
        let acts = forward_path(&model.decoder, params, z, batch);
        let logits = acts.last().expect("logits").clone();
        let rec = match model.arch.decoder {
            crate::model::Decoder::Bernoulli => bernoulli_rec_forward(&logits, x, batch, input, 1),
            crate::model::Decoder::Gaussian => gaussian_rec_forward(&logits, x, batch, input, 1),
        };
        (eps, acts, logits, rec, gaussian_kl_forward(mulv, batch, latent))
    };
    let measure = |mulv: &[f32]| {
        let (mut counters, mut totals) = (Counters::new(), LossTotals::default());
        for _ in 0..draws {
            let (_, _, _, rec, kl) = forward(mulv, STREAM_EVAL_EPS, &counters);
            finish_step(&rec, &kl, real as u32, true, 1, true, &mut counters, &mut totals);
        }
        totals
    };
    let before = measure(&mulv);
    let (mut counters, mut totals) = (Counters::new(), LossTotals::default());
    let (mut m, mut v) = (vec![0.0; mulv.len()], vec![0.0; mulv.len()]);
    for _ in 0..steps {
        let (eps, acts, logits, rec, kl) = forward(&mulv, STREAM_TRAIN_EPS, &counters);
        let ones = vec![1.0; batch];
        let d_logits = match model.arch.decoder {
            crate::model::Decoder::Bernoulli => bernoulli_rec_backward(&logits, x, &ones, input, 1),
            crate::model::Decoder::Gaussian => gaussian_rec_backward(&logits, x, &ones, input, 1),
        };
        let d = backward_path(&model.decoder, params, None, &acts, d_logits, batch, true).expect("dz");
        let mut d_mulv = reparam_backward(&d, &eps, &mulv, batch, latent);
        gaussian_kl_backward(&mulv, &mut d_mulv, batch, latent, 1.0, 0.0);
        adam_step(&d_mulv, &mut mulv, &mut m, &mut v, counters.step, adam);
        finish_step(&rec, &kl, real as u32, true, 1, true, &mut counters, &mut totals);
    }
    (before, measure(&mulv))
}
