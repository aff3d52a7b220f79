//! The training step on the CPU, built from the reference kernels in the GPU trainer's order.
//! Slow and plain: tests run a few steps of each and compare losses and weights.
use super::categorical::*;
use super::condition::*;
use super::kernels::*;
use super::network::{backward_path, forward_path, layer_backward_params, layer_forward};
use super::rows::*;
use super::samples::*;
use super::table::*;
use crate::config::TrainSettings;
use crate::gpu::params::{Counters, LossTotals};
use crate::model::Model;
use crate::objective::{Baseline, Gradient, BASELINE_DECAY};

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
        let batch = self.batch(images, labels, order, pass_rows);
        if let Some((inner, _)) = self.settings.objective.per_datapoint {
            self.inner_steps(&batch.x, images.len() / self.model.arch.input(), (order, pass_rows), inner);
        }
        let f = self.forward(&batch, (order, pass_rows));
        let (d_mulv, dprior) = self.latent_backward(&batch, &f);
        self.encoder_backward(&batch, &f, (d_mulv, dprior), (order, pass_rows));
        let s = &self.settings;
        adam_step(&self.grads, &mut self.params, &mut self.m, &mut self.v, self.counters.step, &s.adam);
        let samples = s.objective.samples;
        finish_step(&f.rec, &f.kl, pass_rows, true, samples, false, &mut self.counters, &mut self.totals);
    }

    /// The batch at the cursor: x, the labels and their one-hot block, and for a conditional model
    /// the prior p(z|y) of each row (a row per sample).
    fn batch(&self, images: &[u8], labels: &[u8], order: &[u32], pass_rows: u32) -> Batch {
        let (s, model) = (&self.settings, &self.model);
        let (b, input, latent, cb) = (s.batch, model.arch.input(), model.arch.latent, model.arch.class_block());
        let mut x = vec![0.0; b * input];
        let shard = (0, images.len() / input); // the whole dataset
        let draws = (s.binarize, s.seed, crate::gpu::params::STREAM_BINARIZE);
        gather_batch(images, shard, input, order, (b, pass_rows), draws, &self.counters, &mut x);
        let labels: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let y = gather_labels(&labels, order, b, pass_rows, &self.counters);
        let mut yc = vec![0.0; b * cb];
        one_hot_columns(&y, &mut yc, b, cb, cb, 0, 1);
        let samples = s.objective.samples;
        let prior = model.prior.map(|p| repeat_rows(&layer_forward(&p, &self.params, &yc, b), b, samples, 2 * latent));
        Batch { x, y, yc, prior }
    }

    /// `v` [n, width] with the batch's one-hot classes as extra columns, each label `repeat` rows.
    fn with_class(&self, batch: &Batch, v: &[f32], (n, width, repeat): (usize, usize, usize)) -> Vec<f32> {
        let cb = self.model.arch.class_block();
        let mut out = vec![0.0; n * (width + cb)];
        copy_columns(v, &mut out, n, width, width + cb, width, 0, 0);
        one_hot_columns(&batch.y, &mut out, n, width + cb, cb, width, repeat);
        out
    }

    /// The per-datapoint table's TableParams for update `update_index` of a step.
    fn table_params(&self, pass_rows: u32, update_index: usize) -> crate::gpu::params::TableParams {
        let s = &self.settings;
        let (inner, lr) = s.objective.per_datapoint.expect("per-datapoint");
        crate::gpu::params::TableParams {
            batch: s.batch as u32,
            width: (2 * self.model.arch.latent) as u32,
            pass_rows,
            updates_per_step: (inner + 1) as u32,
            update_index: update_index as u32,
            lr,
            beta1: s.adam.beta1,
            beta2: s.adam.beta2,
            eps: s.adam.eps,
            pad: [0; 3],
        }
    }

    /// Per-datapoint inference: `inner` steps on the batch's rows of the table (of `images` rows)
    /// with the decoder frozen, before the table stands in for the encoder's output.
    fn inner_steps(&mut self, x: &[f32], images: usize, (order, pass_rows): (&[u32], u32), inner: usize) {
        let (s, model) = (self.settings.clone(), self.model.clone());
        let (b, input, latent) = (s.batch, model.arch.input(), model.arch.latent);
        if self.table[0].is_empty() {
            self.table = std::array::from_fn(|_| vec![0.0; images * 2 * latent]);
        }
        for i in 0..inner {
            let params = self.table_params(pass_rows, i);
            let mulv = gather_table_rows(&params, &self.table[0], order, &self.counters);
            let stream = crate::gpu::params::STREAM_INNER_EPS + i as u32;
            let (eps, z) = reparam_forward(&mulv, b, latent, s.seed, stream, &self.counters);
            let acts = forward_path(&model.decoder, &self.params, z, b);
            let logits = acts.last().expect("logits");
            let ones = vec![1.0; b];
            let d_logits = match model.arch.decoder {
                crate::model::Decoder::Gaussian => gaussian_rec_backward(logits, x, &ones, input, 1),
                crate::model::Decoder::Bernoulli => bernoulli_rec_backward(logits, x, &ones, input, 1),
            };
            let d = backward_path(&model.decoder, &self.params, None, &acts, d_logits, b, true).expect("dz");
            let mut d_mulv = reparam_backward(&d, &eps, &mulv, b, latent);
            let kl_w = kl_weight(s.objective.beta, s.objective.warmup_steps, self.counters.step);
            gaussian_kl_backward(&mulv, &mut d_mulv, b, latent, kl_w, 0.0);
            let [table, m, v] = &mut self.table;
            table_adam_step(&params, table, m, v, &d_mulv, order, &self.counters);
        }
    }

    /// The forward pass, keeping every activation. A conditional model's encoder layer j takes
    /// [h | onehot(y)]: h = x for the MLP, the last convolution's map for the conv VAE.
    fn forward(&self, batch: &Batch, (order, pass_rows): (&[u32], u32)) -> Forward {
        let (s, model, obj) = (&self.settings, &self.model, &self.settings.objective);
        let (b, input, latent) = (s.batch, model.arch.input(), model.arch.latent);
        let (samples, rows) = (obj.samples, b * obj.samples);
        let j = if batch.prior.is_some() { model.encoder_class_layer() } else { 0 };
        let below = forward_path(&model.encoder[..j], &self.params, batch.x.clone(), b);
        let h = below.last().expect("the input");
        let enc_in =
            if batch.prior.is_some() { self.with_class(batch, h, (b, h.len() / b, 1)) } else { batch.x.clone() };
        let enc = match obj.per_datapoint {
            None => forward_path(&model.encoder[j..], &self.params, enc_in, b),
            Some(_) => {
                vec![enc_in, gather_table_rows(&self.table_params(pass_rows, 0), &self.table[0], order, &self.counters)]
            }
        };
        let mulv = repeat_rows(enc.last().expect("mulv"), b, samples, model.arch.encoder_outputs());
        let cat = self.categorical_params(rows);
        let (eps, z) = match cat.groups > 0 {
            true => gumbel_softmax_forward(&cat, &mulv, &self.counters),
            false => reparam_forward(&mulv, rows, latent, s.seed, crate::gpu::params::STREAM_TRAIN_EPS, &self.counters),
        };
        let dec_in =
            if batch.prior.is_some() { self.with_class(batch, &z, (rows, latent, samples)) } else { z.clone() };
        let dec = forward_path(&model.decoder, &self.params, dec_in, rows);
        let logits = dec.last().expect("logits");
        let rec = match model.arch.decoder {
            crate::model::Decoder::Gaussian => gaussian_rec_forward(logits, &batch.x, rows, input, samples),
            crate::model::Decoder::Bernoulli => bernoulli_rec_forward(logits, &batch.x, rows, input, samples),
        };
        let kl = match &batch.prior {
            Some(p) => gaussian_kl2_forward(&mulv, p, rows, latent),
            None if cat.groups > 0 => categorical_kl_forward(&cat, &mulv),
            None => gaussian_kl_forward(&mulv, rows, latent),
        };
        Forward { j, below, enc, mulv, cat, eps, z, dec, rec, kl }
    }

    fn categorical_params(&self, rows: usize) -> crate::gpu::params::CategoricalParams {
        let (s, obj) = (&self.settings, &self.settings.objective);
        let (groups, categories) = self.model.arch.categorical.unwrap_or((0, 0));
        crate::gpu::params::CategoricalParams {
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
            sample_scale: 1.0 / obj.samples as f32,
            pad: 0,
        }
    }

    /// The decoder's gradients, and the latent layer's by objective and estimator: d mulv per
    /// sample row, and for a conditional model d prior per row.
    fn latent_backward(&mut self, batch: &Batch, f: &Forward) -> (Vec<f32>, Option<Vec<f32>>) {
        let (obj, model) = (self.settings.objective.clone(), self.model.clone());
        let (input, latent, cb) = (model.arch.input(), model.arch.latent, model.arch.class_block());
        let (samples, rows) = (obj.samples, self.settings.batch * obj.samples);
        let kl_w = kl_weight(obj.beta, obj.warmup_steps, self.counters.step);
        // Log weights for IWAE and the score estimator (Gaussian latents only).
        let needs_log_w = !matches!(obj.gradient, Gradient::Reparam { .. });
        let log_w = match needs_log_w {
            true => log_weight_forward(&f.mulv, &f.eps, &f.z, &f.rec, latent, kl_w),
            false => Vec::new(),
        };
        let coef = match obj.gradient {
            Gradient::Iwae => iwae_weights(&log_w, samples),
            _ => vec![1.0 / samples as f32; rows],
        };
        let logits = f.dec.last().expect("logits");
        let d_logits = match model.arch.decoder {
            crate::model::Decoder::Gaussian => gaussian_rec_backward(logits, &batch.x, &coef, input, samples),
            crate::model::Decoder::Bernoulli => bernoulli_rec_backward(logits, &batch.x, &coef, input, samples),
        };
        let d = backward_path(&model.decoder, &self.params, Some(&mut self.grads), &f.dec, d_logits, rows, true)
            .expect("the decoder input's gradient");
        let mut dz = vec![0.0; rows * latent];
        copy_columns(&d, &mut dz, rows, latent + cb, latent, latent, 0, 0);
        let (mulv, eps, z, cat) = (&f.mulv, &f.eps, &f.z, &f.cat);
        match obj.gradient {
            Gradient::Reparam { .. } if cat.groups > 0 => {
                let mut d = gumbel_softmax_backward(cat, z, &dz, &self.counters);
                categorical_kl_backward(cat, mulv, &mut d, &self.counters);
                (d, None)
            }
            Gradient::Reparam { free_bits } => {
                let mut d = reparam_backward(&dz, eps, mulv, rows, latent);
                let weight = kl_w / samples as f32;
                match &batch.prior {
                    Some(p) => {
                        let dprior = gaussian_kl2_backward(mulv, p, &mut d, rows, latent, weight);
                        (d, Some(dprior))
                    }
                    None => {
                        gaussian_kl_backward(mulv, &mut d, rows, latent, weight, free_bits);
                        (d, None)
                    }
                }
            }
            Gradient::Iwae => (sampled_latent_backward(mulv, eps, z, &coef, &dz, latent), None),
            Gradient::Score { baseline } => {
                let d = score_backward(mulv, eps, &log_w, latent, samples, baseline.code(), self.baseline);
                if baseline == Baseline::Mean {
                    self.baseline = score_baseline_update(&log_w, self.baseline, BASELINE_DECAY);
                }
                (d, None)
            }
        }
    }

    /// The prior's gradients (CVAE), then per input the encoder's, or the table's Adam step.
    fn encoder_backward(
        &mut self,
        batch: &Batch,
        f: &Forward,
        (d_mulv, dprior): (Vec<f32>, Option<Vec<f32>>),
        (order, pass_rows): (&[u32], u32),
    ) {
        let (obj, model) = (self.settings.objective.clone(), self.model.clone());
        let (b, latent, cb, samples) = (self.settings.batch, model.arch.latent, model.arch.class_block(), obj.samples);
        if let (Some(p), Some(dp)) = (&model.prior, dprior) {
            let dp = sum_row_groups(&dp, b, samples, 2 * latent);
            layer_backward_params(p, &mut self.grads, &batch.yc, &dp, b);
        }
        let d = sum_row_groups(&d_mulv, b, samples, model.arch.encoder_outputs());
        if let Some((inner, _)) = obj.per_datapoint {
            let params = self.table_params(pass_rows, inner);
            let [table, m, v] = &mut self.table;
            table_adam_step(&params, table, m, v, &d, order, &self.counters);
            return;
        }
        let j = f.j;
        let (upper, lower) = (&model.encoder[j..], &model.encoder[..j]);
        let d_in = backward_path(upper, &self.params, Some(&mut self.grads), &f.enc, d, b, j > 0);
        if let Some(d_in) = d_in {
            // d h: the first columns of d [h | onehot].
            let width = upper[0].n_in - cb;
            let mut d_h = vec![0.0; b * width];
            copy_columns(&d_in, &mut d_h, b, width + cb, width, width, 0, 0);
            backward_path(lower, &self.params, Some(&mut self.grads), &f.below, d_h, b, false);
        }
    }
}

/// One step's batch as the reference sees it: x [B, input], labels y [B], their one-hot block
/// yc [B, class block], and for a conditional model the prior's [mu | logvar] per sample row.
struct Batch {
    x: Vec<f32>,
    y: Vec<u32>,
    yc: Vec<f32>,
    prior: Option<Vec<f32>>,
}

/// The forward pass's values the backward needs: the encoder's class layer j, the activations
/// below it and from it, q's rows, the categorical latent's params, eps and z, the decoder's
/// activations, rec and kl per row.
struct Forward {
    j: usize,
    below: Vec<Vec<f32>>,
    enc: Vec<Vec<f32>>,
    mulv: Vec<f32>,
    cat: crate::gpu::params::CategoricalParams,
    eps: Vec<f32>,
    z: Vec<f32>,
    dec: Vec<Vec<f32>>,
    rec: Vec<f32>,
    kl: Vec<f32>,
}
