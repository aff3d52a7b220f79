//! The latent block between encoder and decoder, one type for its three variants: a Gaussian
//! q(z|x) with the N(0, I) prior, a conditional Gaussian with the learned prior p(z|y) and the class
//! block on both networks' inputs, and relaxed categorical latents with the uniform prior. Each
//! gives its sample, KL and (reparameterized) backward launches over the trainer's buffers.
use super::buffers::{Buffers, GpuSplit};
use crate::config::TrainSettings;
use crate::gpu::params::{CategoricalParams, LatentParams, STREAM_EVAL_EPS, STREAM_TRAIN_EPS};
use crate::gpu::{Launch, Launcher};
use crate::launches::{condition, gather_labels, rows, CategoricalRows, GaussianRows};
use crate::model::Model;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatentKind {
    Gaussian,
    /// A CVAE's: p(z|y) from the prior layer, [x | onehot(y)] and [z | onehot(y)] as inputs.
    Conditional,
    Categorical {
        groups: usize,
    },
}

/// The latent block of a model, with its uniforms for training and evaluation (their own random
/// streams; evaluation draws never disturb training's).
pub struct LatentHead {
    pub kind: LatentKind,
    train: wgpu::Buffer, // LatentParams, or CategoricalParams for categorical latents
    eval: wgpu::Buffer,
    rows: usize, // R = batch x samples
    batch: usize,
    samples: usize,
    latent: usize,
    classes: usize,  // the class block's columns
    free_bits: bool, // whether the KL's gradient is gated by free bits (free_bits_gate)
}

impl LatentHead {
    pub fn new(l: Launcher, model: &Model, s: &TrainSettings) -> LatentHead {
        let (batch, samples, latent) = (s.batch, s.objective.samples, model.arch.latent);
        let rows = batch * samples;
        let kind = match (model.prior.is_some(), model.arch.categorical) {
            (true, _) => LatentKind::Conditional,
            (false, Some((groups, _))) => LatentKind::Categorical { groups },
            (false, None) => LatentKind::Gaussian,
        };
        let uniforms = |stream: u32| match model.arch.categorical {
            Some((groups, categories)) => l.uniform(
                "categorical params",
                &CategoricalParams {
                    rows: rows as u32,
                    groups: groups as u32,
                    categories: categories as u32,
                    seed: s.seed,
                    stream,
                    anneal_steps: s.anneal_steps,
                    tau_start: s.tau_start,
                    tau_end: s.tau_end,
                    beta: s.objective.beta,
                    warmup_steps: s.objective.warmup_steps,
                    sample_scale: 1.0 / samples as f32,
                    pad: 0,
                },
            ),
            None => l.uniform(
                "latent params",
                &LatentParams {
                    rows: rows as u32,
                    latent: latent as u32,
                    seed: s.seed,
                    stream,
                    beta: s.objective.beta,
                    warmup_steps: s.objective.warmup_steps,
                    free_bits: s.objective.free_bits(),
                    sample_scale: 1.0 / samples as f32,
                },
            ),
        };
        let (train, eval) = (uniforms(STREAM_TRAIN_EPS), uniforms(STREAM_EVAL_EPS));
        let classes = model.arch.class_block();
        let free_bits = s.objective.free_bits() > 0.0;
        LatentHead { kind, train, eval, rows, batch, samples, latent, classes, free_bits }
    }

    fn gaussian<'a>(&self, b: &'a Buffers) -> GaussianRows<'a> {
        let (counters, mulv, d_mulv, eps, z, dz) = (&b.counters, &b.mulv_s, &b.d_mulv_s, &b.eps, &b.z, &b.dz);
        GaussianRows { rows: self.rows, latent: self.latent, counters, mulv, d_mulv, eps, z, dz }
    }

    fn categorical<'a>(&self, b: &'a Buffers, groups: usize) -> CategoricalRows<'a> {
        let (counters, logits, d_logits, noise, z, dz) = (&b.counters, &b.mulv_s, &b.d_mulv_s, &b.eps, &b.z, &b.dz);
        CategoricalRows { rows: self.rows, groups, counters, logits, d_logits, noise, z, dz }
    }

    /// A CVAE's inputs for the batch at the cursor of `split`: y, onehot(y), and the prior p(z|y)
    /// per input, then per sample (the encoder joins its input with onehot(y) itself). Nothing for
    /// the other variants.
    pub fn condition_inputs(
        &self,
        l: Launcher,
        model: &Model,
        b: &Buffers,
        split: &GpuSplit,
        pass_rows: usize,
    ) -> Vec<Launch> {
        let (Some(c), Some(prior)) = (&b.cond, &model.prior) else { return Vec::new() };
        let (n, cb) = (self.batch, self.classes);
        let mut launches = vec![
            gather_labels(l, (&split.labels, &split.order, &b.counters), n, pass_rows, &c.y),
            condition::one_hot_columns(l, n, &c.y, 1, cb, (&c.yc, cb, 0)),
        ];
        launches.extend(prior.forward(l, &b.params, n, &c.yc, &c.prior));
        if self.samples > 1 {
            let u = rows::row_params(l, n, self.samples, 2 * self.latent);
            launches.push(rows::repeat_rows(l, &u, &c.prior, &c.prior_s, self.rows * 2 * self.latent));
        }
        launches
    }

    /// A CVAE's decoder input [z | onehot(labels)], one label per `repeat` rows: the batch's labels
    /// y, or when `decoding` the classes `decode` was given.
    pub fn condition_z(&self, l: Launcher, b: &Buffers, decoding: bool, repeat: usize) -> Vec<Launch> {
        let Some(c) = &b.cond else { return Vec::new() };
        let labels = if decoding { &c.decode_labels } else { &c.y };
        let (z, cb) = (self.latent, self.classes);
        vec![
            condition::copy_columns(l, self.rows, (&b.z, z, 0), (&c.zc, z + cb, 0), z),
            condition::one_hot_columns(l, self.rows, labels, repeat, cb, (&c.zc, z + cb, z)),
        ]
    }

    /// z from q: mu + sigma eps, or the Gumbel-softmax sample of the logits.
    pub fn sample(&self, l: Launcher, b: &Buffers, training: bool) -> Launch {
        let u = if training { &self.train } else { &self.eval };
        match self.kind {
            LatentKind::Categorical { groups } => self.categorical(b, groups).sample(l, u),
            _ => self.gaussian(b).reparam_forward(l, u),
        }
    }

    /// kl [R] per row: to N(0, I), to p(z|y), or to the uniform prior.
    pub fn kl(&self, l: Launcher, b: &Buffers) -> Launch {
        match (self.kind, &b.cond) {
            (LatentKind::Conditional, Some(c)) => self.gaussian(b).kl2_forward(l, &self.train, &c.prior_s, &b.kl),
            (LatentKind::Categorical { groups }, _) => self.categorical(b, groups).kl_forward(l, &self.train, &b.kl),
            _ => self.gaussian(b).kl_forward(l, &self.train, &b.kl),
        }
    }

    /// The pathwise ELBO's gradient in q's parameters per sample (d_mulv_s) from dz, plus the
    /// weighted KL's; a CVAE's prior gets its gradient per sample too (d_prior_s).
    pub fn backward(&self, l: Launcher, b: &Buffers) -> Vec<Launch> {
        match (self.kind, &b.cond) {
            (LatentKind::Categorical { groups }, _) => {
                let q = self.categorical(b, groups);
                vec![q.sample_backward(l, &self.train), q.kl_backward(l, &self.train)]
            }
            (LatentKind::Conditional, Some(c)) => {
                let q = self.gaussian(b);
                vec![q.reparam_backward(l, &self.train), q.kl2_backward(l, &self.train, &c.prior_s, &c.d_prior_s)]
            }
            _ => self.gaussian(b).reparam_kl_backward(l, &self.train, self.free_bits),
        }
    }
}
