//! The training step on the CPU, built from the reference kernels in the GPU trainer's order.
//! Slow and plain: tests run a few steps of each and compare losses and weights.
use super::kernels::*;
use crate::model::{Layer, Model};
use crate::trainer::TrainSettings;

pub struct ReferenceTrainer {
    pub model: Model,
    pub settings: TrainSettings,
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub grads: Vec<f32>,
    pub counters: Counters,
    pub totals: LossTotals,
}

fn weight(params: &[f32], l: &Layer) -> Vec<f32> {
    params[l.weight_at..l.weight_at + l.n_in * l.n_out].to_vec()
}

fn bias(params: &[f32], l: &Layer) -> Vec<f32> {
    params[l.bias_at..l.bias_at + l.n_out].to_vec()
}

impl ReferenceTrainer {
    pub fn new(model: Model, settings: TrainSettings, params: Vec<f32>) -> ReferenceTrainer {
        let n = model.param_count;
        ReferenceTrainer {
            model, settings, params, m: vec![0.0; n], v: vec![0.0; n], grads: vec![0.0; n],
            counters: Counters::new(), totals: LossTotals::default(),
        }
    }

    pub fn start_pass(&mut self) {
        self.counters.cursor = 0;
        self.totals = LossTotals::default();
    }

    /// One step on the batch at the cursor of `order` over `images` [n, pixels] (pass_rows rows).
    pub fn train_step(&mut self, images: &[u8], order: &[u32], pass_rows: u32) {
        let s = self.settings.clone();
        let (b, input, latent) = (s.batch, self.model.arch.input, self.model.arch.latent);
        let x = gather_batch(images, input, order, b, pass_rows, s.binarize, s.seed,
                             crate::gpu::params::STREAM_BINARIZE, &self.counters);
        // Forward, keeping every activation.
        let mut enc = vec![x.clone()];
        for l in &self.model.encoder {
            let y = linear_forward(enc.last().expect("input"), &weight(&self.params, l), &bias(&self.params, l), b, l.n_in, l.n_out, l.relu);
            enc.push(y);
        }
        let mulv = enc.last().expect("mulv").clone();
        let (eps, z) = reparam_forward(&mulv, b, latent, s.seed, crate::gpu::params::STREAM_TRAIN_EPS, &self.counters);
        let mut dec = vec![z.clone()];
        for l in &self.model.decoder {
            let y = linear_forward(dec.last().expect("z"), &weight(&self.params, l), &bias(&self.params, l), b, l.n_in, l.n_out, l.relu);
            dec.push(y);
        }
        let logits = dec.last().expect("logits").clone();
        let rec = bernoulli_rec_forward(&logits, &x, b, input);
        let kl = gaussian_kl_forward(&mulv, b, latent);

        // Backward.
        let mut d = bernoulli_rec_backward(&logits, &x);
        let model = self.model.clone();
        for (i, l) in model.decoder.iter().enumerate().rev() {
            layer_backward(&mut self.grads, b, l, &dec[i], &d);
            d = linear_backward_input(&d, &weight(&self.params, l), &dec[i], b, l.n_in, l.n_out, l.relu_input);
        }
        let mut d = reparam_backward(&d, &eps, &mulv, b, latent);
        gaussian_kl_backward(&mulv, &mut d, b, latent);
        for (i, l) in model.encoder.iter().enumerate().rev() {
            layer_backward(&mut self.grads, b, l, &enc[i], &d);
            if i > 0 {
                d = linear_backward_input(&d, &weight(&self.params, l), &enc[i], b, l.n_in, l.n_out, l.relu_input);
            }
        }
        adam_step(&self.grads, &mut self.params, &mut self.m, &mut self.v, self.counters.step, &s.adam);
        finish_step(&rec, &kl, pass_rows, true, &mut self.counters, &mut self.totals);
    }
}

/// Writes one layer's weight and bias gradients into the flat gradient vector.
fn layer_backward(grads: &mut [f32], b: usize, l: &Layer, input: &[f32], d_output: &[f32]) {
    let dw = linear_backward_weight(d_output, input, b, l.n_in, l.n_out);
    let db = linear_backward_bias(d_output, b, l.n_out);
    grads[l.weight_at..l.weight_at + dw.len()].copy_from_slice(&dw);
    grads[l.bias_at..l.bias_at + db.len()].copy_from_slice(&db);
}
