//! src/refine.rs on the CPU, from the reference kernels in the same order: tests compare the
//! ELBO before and after refinement with the GPU's.
use super::kernels::*;
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
    let w = |l: &crate::network::Layer| {
        (&params[l.weight_at..l.weight_at + l.n_in * l.n_out], &params[l.bias_at..l.bias_at + l.n_out])
    };
    let mut h = x.to_vec();
    for l in &model.encoder {
        let (wt, b) = w(l);
        h = linear_forward(&h, wt, b, batch, l.n_in, l.n_out, l.relu);
    }
    let mut mulv = h;
    // One draw: (eps, z, decoder activations, logits, rec, kl) at the counters.
    let forward = |mulv: &[f32], stream: u32, counters: &Counters| {
        let (eps, z) = reparam_forward(mulv, batch, latent, seed, stream, counters);
        let mut acts = vec![z.clone()];
        for l in &model.decoder {
            let (wt, b) = w(l);
            acts.push(linear_forward(acts.last().expect("input"), wt, b, batch, l.n_in, l.n_out, l.relu));
        }
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
        let mut d = match model.arch.decoder {
            crate::model::Decoder::Bernoulli => bernoulli_rec_backward(&logits, x, &ones, input, 1),
            crate::model::Decoder::Gaussian => gaussian_rec_backward(&logits, x, &ones, input, 1),
        };
        for (i, l) in model.decoder.iter().enumerate().rev() {
            d = linear_backward_input(&d, w(l).0, &acts[i], batch, l.n_in, l.n_out, l.relu_input);
        }
        let mut d_mulv = reparam_backward(&d, &eps, &mulv, batch, latent);
        gaussian_kl_backward(&mulv, &mut d_mulv, batch, latent, 1.0, 0.0);
        adam_step(&d_mulv, &mut mulv, &mut m, &mut v, counters.step, adam);
        finish_step(&rec, &kl, real as u32, true, 1, true, &mut counters, &mut totals);
    }
    (before, measure(&mulv))
}
