//! The training step on the CPU, built from the reference kernels in the GPU trainer's order.
//! Slow and plain: tests run a few steps of each and compare losses and weights.
use super::categorical::*;
use super::condition::*;
use super::kernels::*;
use super::network::{backward_path, forward_path, layer_backward_params, layer_forward};
use super::samples::*;
use super::table::*;
use crate::config::TrainSettings;
use crate::gpu::params::{Counters, LossTotals};
use crate::model::Model;
use crate::objective::{Baseline, Estimator, Objective, BASELINE_DECAY};

pub struct ReferenceTrainer {
    pub model: Model,
    pub settings: TrainSettings,
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub grads: Vec<f32>,
    pub counters: Counters,
    pub totals: LossTotals,
    /// The score estimator's running-mean baseline [mean, initialised].
    pub baseline: [f32; 2],
    /// Per-datapoint inference: the (mu, logvar) table over the training images and its Adam moments.
    pub table: [Vec<f32>; 3],
}

impl ReferenceTrainer {
    pub fn new(model: Model, settings: TrainSettings, params: Vec<f32>) -> ReferenceTrainer {
        let n = model.param_count;
        ReferenceTrainer {
            model,
            settings,
            params,
            m: vec![0.0; n],
            v: vec![0.0; n],
            grads: vec![0.0; n],
            counters: Counters::new(),
            totals: LossTotals::default(),
            baseline: [0.0; 2],
            table: [Vec::new(), Vec::new(), Vec::new()],
        }
    }

    pub fn start_pass(&mut self) {
        self.counters.cursor = 0;
        self.totals = LossTotals::default();
    }

    /// One step on the batch at the cursor of `order` over `images` [n, pixels] and their
    /// `labels` (pass_rows rows).
    pub fn train_step(&mut self, images: &[u8], labels: &[u8], order: &[u32], pass_rows: u32) {
        let s = self.settings.clone();
        let obj = s.objective.clone();
        let model = self.model.clone();
        let (b, input, latent, cb) = (s.batch, model.arch.input(), model.arch.latent, model.arch.class_block());
        let (samples, rows) = (obj.samples, b * obj.samples);
        let mut x = vec![0.0; b * input];
        let shard = (0, images.len() / input); // the whole dataset
        let draws = (s.binarize, s.seed, crate::gpu::params::STREAM_BINARIZE);
        gather_batch(images, shard, input, order, (b, pass_rows), draws, &self.counters, &mut x);
        // A conditional model sees [x | onehot(y)] and [z | onehot(y)], and a prior p(z|y).
        let labels: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let y = gather_labels(&labels, order, b, pass_rows, &self.counters);
        let with_class = |v: &[f32], n: usize, width: usize, repeat: usize| {
            let mut out = vec![0.0; n * (width + cb)];
            copy_columns(v, &mut out, n, width, width + cb, width, 0, 0);
            one_hot_columns(&y, &mut out, n, width + cb, cb, width, repeat);
            out
        };
        let mut yc = vec![0.0; b * cb];
        one_hot_columns(&y, &mut yc, b, cb, cb, 0, 1);
        let prior = model.prior.map(|p| repeat_rows(&layer_forward(&p, &self.params, &yc, b), b, samples, 2 * latent));

        // Per-datapoint inference: inner steps on the batch's rows of the table, then the table
        // stands in for the encoder's output.
        let table_params = |update_index: usize| {
            let (inner, lr) = obj.per_datapoint.expect("per-datapoint");
            crate::gpu::params::TableParams {
                batch: b as u32,
                width: (2 * latent) as u32,
                pass_rows,
                updates_per_step: (inner + 1) as u32,
                update_index: update_index as u32,
                lr,
                beta1: s.adam.beta1,
                beta2: s.adam.beta2,
                eps: s.adam.eps,
                pad: [0; 3],
            }
        };
        if let Some((inner, _)) = obj.per_datapoint {
            if self.table[0].is_empty() {
                self.table = std::array::from_fn(|_| vec![0.0; images.len() / input * 2 * latent]);
            }
            for i in 0..inner {
                let mulv = gather_table_rows(&table_params(i), &self.table[0], order, &self.counters);
                let (eps, z) = reparam_forward(
                    &mulv,
                    b,
                    latent,
                    s.seed,
                    crate::gpu::params::STREAM_INNER_EPS + i as u32,
                    &self.counters,
                );
                let acts = forward_path(&model.decoder, &self.params, z, b);
                let logits = acts.last().expect("logits");
                let gaussian = model.arch.decoder == crate::model::Decoder::Gaussian;
                let ones = vec![1.0; b];
                let d_logits = if gaussian {
                    gaussian_rec_backward(logits, &x, &ones, input, 1)
                } else {
                    bernoulli_rec_backward(logits, &x, &ones, input, 1)
                };
                let d = backward_path(&model.decoder, &self.params, None, &acts, d_logits, b, true).expect("dz");
                let mut d_mulv = reparam_backward(&d, &eps, &mulv, b, latent);
                gaussian_kl_backward(
                    &mulv,
                    &mut d_mulv,
                    b,
                    latent,
                    kl_weight(obj.beta, obj.warmup_steps, self.counters.step),
                    0.0,
                );
                let [table, m, v] = &mut self.table;
                table_adam_step(&table_params(i), table, m, v, &d_mulv, order, &self.counters);
            }
        }

        // Forward, keeping every activation.
        // A conditional model's encoder layer j takes [h | onehot(y)]: h = x for the MLP, the last
        // convolution's map for the conv VAE. `below` holds the activations under layer j.
        let j = if prior.is_some() { model.arch.encoder_class_layer() } else { 0 };
        let below = forward_path(&model.encoder[..j], &self.params, x.clone(), b);
        let h = below.last().expect("the input");
        let enc_in = if prior.is_some() { with_class(h, b, h.len() / b, 1) } else { x.clone() };
        let enc = if obj.per_datapoint.is_none() {
            forward_path(&model.encoder[j..], &self.params, enc_in, b)
        } else {
            vec![enc_in, gather_table_rows(&table_params(0), &self.table[0], order, &self.counters)]
        };
        let mulv = repeat_rows(enc.last().expect("mulv"), b, samples, model.arch.encoder_outputs());
        let (groups, categories) = model.arch.categorical.unwrap_or((0, 0));
        let cat = crate::gpu::params::CategoricalParams {
            rows: rows as u32,
            groups: groups as u32,
            categories: categories as u32,
            seed: s.seed,
            stream: crate::gpu::params::STREAM_TRAIN_EPS,
            anneal_steps: s.anneal_steps,
            tau_start: s.tau_start,
            tau_end: s.tau_end,
            beta: obj.beta,
            warmup_steps: obj.warmup_steps,
            sample_scale: 1.0 / samples as f32,
            pad: 0,
        };
        let (eps, z) = if groups > 0 {
            gumbel_softmax_forward(&cat, &mulv, &self.counters)
        } else {
            reparam_forward(&mulv, rows, latent, s.seed, crate::gpu::params::STREAM_TRAIN_EPS, &self.counters)
        };
        let dec_in = if prior.is_some() { with_class(&z, rows, latent, samples) } else { z.clone() };
        let dec = forward_path(&model.decoder, &self.params, dec_in, rows);
        let logits = dec.last().expect("logits").clone();
        let gaussian = model.arch.decoder == crate::model::Decoder::Gaussian;
        let rec = if gaussian {
            gaussian_rec_forward(&logits, &x, rows, input, samples)
        } else {
            bernoulli_rec_forward(&logits, &x, rows, input, samples)
        };
        let kl = match &prior {
            Some(p) => gaussian_kl2_forward(&mulv, p, rows, latent),
            None if groups > 0 => categorical_kl_forward(&cat, &mulv),
            None => gaussian_kl_forward(&mulv, rows, latent),
        };

        // Backward: the latent layer's gradient by objective and estimator, then the encoder.
        let kl_w = kl_weight(obj.beta, obj.warmup_steps, self.counters.step);
        // Log weights for IWAE and the score estimator (Gaussian latents only).
        let needs_log_w = obj.objective == Objective::Iwae || obj.estimator == Estimator::Score;
        let log_w = if needs_log_w { log_weight_forward(&mulv, &eps, &z, &rec, latent, kl_w) } else { Vec::new() };
        let coef = match obj.objective {
            Objective::Iwae => iwae_weights(&log_w, samples),
            Objective::Elbo => vec![1.0 / samples as f32; rows],
        };
        let d_logits = if gaussian {
            gaussian_rec_backward(&logits, &x, &coef, input, samples)
        } else {
            bernoulli_rec_backward(&logits, &x, &coef, input, samples)
        };
        let d = backward_path(&model.decoder, &self.params, Some(&mut self.grads), &dec, d_logits, rows, true)
            .expect("the decoder input's gradient");
        let mut dz = vec![0.0; rows * latent];
        copy_columns(&d, &mut dz, rows, latent + cb, latent, latent, 0, 0);
        let mut dprior = None;
        let d_mulv = match (obj.objective, obj.estimator) {
            (Objective::Elbo, Estimator::Reparam) if groups > 0 => {
                let mut d = gumbel_softmax_backward(&cat, &z, &dz, &self.counters);
                categorical_kl_backward(&cat, &mulv, &mut d, &self.counters);
                d
            }
            (Objective::Elbo, Estimator::Reparam) => {
                let mut d = reparam_backward(&dz, &eps, &mulv, rows, latent);
                match &prior {
                    Some(p) => {
                        dprior = Some(gaussian_kl2_backward(&mulv, p, &mut d, rows, latent, kl_w / samples as f32))
                    }
                    None => gaussian_kl_backward(&mulv, &mut d, rows, latent, kl_w / samples as f32, obj.free_bits),
                }
                d
            }
            (Objective::Iwae, _) => sampled_latent_backward(&mulv, &eps, &z, &coef, &dz, latent),
            (Objective::Elbo, Estimator::Score) => {
                let d = score_backward(&mulv, &eps, &log_w, latent, samples, obj.baseline.code(), self.baseline);
                if obj.baseline == Baseline::Mean {
                    self.baseline = score_baseline_update(&log_w, self.baseline, BASELINE_DECAY);
                }
                d
            }
        };
        if let (Some(p), Some(dp)) = (&model.prior, dprior) {
            layer_backward_params(p, &mut self.grads, &yc, &sum_row_groups(&dp, b, samples, 2 * latent), b);
        }
        let d = sum_row_groups(&d_mulv, b, samples, model.arch.encoder_outputs());
        if let Some((inner, _)) = obj.per_datapoint {
            let [table, m, v] = &mut self.table;
            table_adam_step(&table_params(inner), table, m, v, &d, order, &self.counters);
        }
        if obj.per_datapoint.is_none() {
            let (upper, lower) = (&model.encoder[j..], &model.encoder[..j]);
            let d_in = backward_path(upper, &self.params, Some(&mut self.grads), &enc, d, b, j > 0);
            if let Some(d_in) = d_in {
                // d h: the first columns of d [h | onehot].
                let width = upper[0].n_in - cb;
                let mut d_h = vec![0.0; b * width];
                copy_columns(&d_in, &mut d_h, b, width + cb, width, width, 0, 0);
                backward_path(lower, &self.params, Some(&mut self.grads), &below, d_h, b, false);
            }
        }
        adam_step(&self.grads, &mut self.params, &mut self.m, &mut self.v, self.counters.step, &s.adam);
        finish_step(&rec, &kl, pass_rows, true, samples, false, &mut self.counters, &mut self.totals);
    }
}
