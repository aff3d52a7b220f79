//! NCE's launch lists (the training step, the validation step, the scoring of validation images,
//! one chunk of the log Z estimate), each recorded once as an ordered list of launches over the
//! buffers below. Shapes: B = batch, k = noise rows per data row, R = (1 + k) B rows per step,
//! D = pixels, F = the mixture's features per row (D, or 2D for the Gaussian), K = its padded
//! components.
use super::{NceSettings, Noise, Scorer};
use crate::data::{Binarize, Split};
use crate::gpu::params::{NceParams, STREAM_NCE_EVAL, STREAM_NCE_TRAIN};
use crate::gpu::{self, Gpu, ImageShards, Launch, Launcher};
use crate::launches::nce::NceRows;
use crate::launches::{adam_step, mixture, Gather};
use crate::mixture::{em, Family};
use crate::network::{self, linear};

/// One split on the GPU: its images and a pass's order.
pub(super) struct Images {
    pub(super) shards: ImageShards,
    pub(super) order: wgpu::Buffer,
    pub(super) rows: usize,
}

impl Images {
    pub(super) fn new(gpu: &Gpu, name: &str, split: &Split, order_len: usize) -> Images {
        let order: Vec<u32> = (0..order_len as u32).map(|i| i.min(split.len() as u32 - 1)).collect();
        Images {
            shards: ImageShards::new(gpu, &format!("{name} images"), &split.images, split.pixels),
            order: gpu::storage_with(gpu, &format!("{name} order"), &order),
            rows: split.len(),
        }
    }
}

pub(super) struct Buffers {
    pub(super) params: wgpu::Buffer, // the scorer's weights, Scorer's layout
    pub(super) grads: wgpu::Buffer,
    pub(super) adam_m: wgpu::Buffer,
    pub(super) adam_v: wgpu::Buffer,
    pub(super) counters: wgpu::Buffer,
    pub(super) totals: wgpu::Buffer,           // NceTotals of the current pass
    pub(super) x: wgpu::Buffer,                // [R, D]: the batch's data rows, then its noise rows
    pub(super) features: Option<wgpu::Buffer>, // [R, 2D]: the Gaussian's [x, x^2]
    pub(super) logits: wgpu::Buffer,           // [R, K] the mixture's log joints
    pub(super) log_q: wgpu::Buffer,            // [R]
    pub(super) acts: Vec<wgpu::Buffer>,        // [R, width] per scorer layer; the last is o [R, 1]
    pub(super) d_acts: Vec<wgpu::Buffer>,
    pub(super) row_loss: wgpu::Buffer,    // [B]
    pub(super) row_correct: wgpu::Buffer, // [B]
    pub(super) component: wgpu::Buffer,   // [R] u32: each noise row's component
    pub(super) log_weights: wgpu::Buffer, // the noise: [K]
    pub(super) means: wgpu::Buffer,       // [K, D]
    pub(super) stds: wgpu::Buffer,        // [K, D]
    pub(super) nat: wgpu::Buffer,         // the E-step layer's weights
}

/// Rows, and the launches' shared parts.
pub(super) struct Parts<'a> {
    pub(super) l: Launcher<'a>,
    pub(super) scorer: &'a Scorer,
    pub(super) noise: &'a Noise,
    pub(super) s: &'a NceSettings,
    pub(super) b: &'a Buffers,
}

impl Parts<'_> {
    pub(super) fn rows(&self) -> usize {
        (1 + self.s.noise) * self.s.batch
    }

    pub(super) fn nce_params(
        &self,
        (data_rows, first_noise, noise_rows): (usize, usize, usize),
        stream: u32,
        draw: usize,
    ) -> NceParams {
        let spec = self.noise.spec;
        NceParams {
            data_rows: data_rows as u32,
            noise: self.s.noise as u32,
            noise_rows: noise_rows as u32,
            first_noise: first_noise as u32,
            pixels: spec.pixels as u32,
            components: spec.components as u32,
            family: spec.family.code(),
            seed: self.s.seed,
            stream,
            draw: draw as u32,
            pass_rows: 0,
            training: 0,
            log_k: (self.s.noise as f32).ln(),
            base: (self.scorer.base == super::Base::Noise) as u32,
            pad: [0; 2],
        }
    }

    /// The step's buffers as shaders/nce.wgsl binds them, with `u` as its NceParams.
    fn rows_with<'b>(&'b self, u: &'b wgpu::Buffer) -> NceRows<'b> {
        let b = self.b;
        NceRows {
            params: u,
            counters: &b.counters,
            log_weights: &b.log_weights,
            means: &b.means,
            stds: &b.stds,
            component: &b.component,
            x: &b.x,
            score: self.o(),
            log_q: &b.log_q,
            d_score: self.d_o(),
            row_loss: &b.row_loss,
            row_correct: &b.row_correct,
            totals: &b.totals,
        }
    }

    pub(super) fn o(&self) -> &wgpu::Buffer {
        self.b.acts.last().expect("the scorer's output")
    }

    fn d_o(&self) -> &wgpu::Buffer {
        self.b.d_acts.last().expect("the scorer's output gradient")
    }

    /// x's first B rows = the batch at the cursor of `split`'s pass.
    pub(super) fn gather(&self, split: &Images, pass_rows: usize, binarize: Binarize) -> Vec<Launch> {
        let (images, order, counters, x) = (&split.shards, &split.order, &self.b.counters, &self.b.x);
        let (rows, pixels, seed) = (self.s.batch, self.noise.spec.pixels, self.s.seed);
        Gather { images, order, counters, x, rows, pixels, pass_rows, binarize, seed }.launches(self.l)
    }

    /// x's noise rows ~ q: a component per row, then its pixels.
    pub(super) fn draw_noise(&self, u: &wgpu::Buffer, noise_rows: usize) -> Vec<Launch> {
        self.rows_with(u).draw_noise(self.l, noise_rows, self.noise.spec.pixels)
    }

    /// log_q [rows] = log q(x) of x's first `rows` rows: the mixture's E-step product and log-sum-exp.
    pub(super) fn log_q(&self, u: &wgpu::Buffer, rows: usize) -> Vec<Launch> {
        let (l, b, spec) = (self.l, self.b, &self.noise.spec);
        let mut launches = Vec::new();
        let input = match &b.features {
            Some(features) => {
                launches.push(self.rows_with(u).features(l, features, rows, spec.pixels));
                features
            }
            None => &b.x,
        };
        launches.extend(linear::forward(
            l,
            &em::layer(spec),
            &b.nat,
            rows,
            linear::Forward { input, output: &b.logits },
        ));
        let m = l.uniform("nce mixture params", &spec.params(rows, 0, rows));
        launches.push(mixture::responsibilities(l, &m, &b.logits, &b.log_q, rows));
        launches
    }

    pub(super) fn score(&self, rows: usize) -> Vec<Launch> {
        network::forward_path(self.l, &self.b.params, &self.scorer.layers, rows, &self.b.x, &self.b.acts)
    }

    /// One step on the batch at the cursor of `split`: data and noise rows, log q, the score and
    /// the loss; in training, the gradients and Adam.
    pub(super) fn step(&self, split: &Images, pass_rows: usize, training: bool) -> Vec<Launch> {
        let (b, batch, rows) = (self.b, self.s.batch, self.rows());
        let stream = if training { STREAM_NCE_TRAIN } else { STREAM_NCE_EVAL };
        let mut p = self.nce_params((batch, batch, rows - batch), stream, 0);
        (p.pass_rows, p.training) = (pass_rows as u32, training as u32);
        let u = self.l.uniform("nce params", &p);
        let binarize = match (self.noise.spec.family, training) {
            (Family::Gaussian, _) => Binarize::None,
            (Family::Bernoulli, true) => Binarize::Dynamic,
            (Family::Bernoulli, false) => Binarize::Static,
        };
        let nce = self.rows_with(&u);
        let mut step = self.gather(split, pass_rows, binarize); //   x[..B] = the batch
        step.extend(self.draw_noise(&u, rows - batch)); //           x[B..] ~ q, k per data row
        step.extend(self.log_q(&u, rows)); //                        log q of every row
        step.extend(self.score(rows)); //                            o = s - c of every row
        step.push(nce.loss(self.l, batch)); //                       d o, the loss per data row
        if training {
            let acts = (&b.x, b.acts.as_slice(), b.d_acts.as_slice());
            let weights = (&b.params, &b.grads);
            step.extend(network::backward_path(self.l, weights, &self.scorer.layers, rows, acts, None));
            let count = self.scorer.param_count;
            let moments = (&b.adam_m, &b.adam_v);
            step.push(adam_step(self.l, &self.s.adam, &b.counters, (&b.grads, &b.params), moments, count));
        }
        step.push(nce.finish_step(self.l)); //                       totals; cursor and step move
        step
    }
}
