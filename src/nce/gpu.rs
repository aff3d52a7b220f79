//! NCE on the GPU: the buffers, the recorded launch lists (super::launches), and the passes
//! that submit them: training epochs, validation, scoring, the log Z draws.
use anyhow::{bail, Result};

use super::launches::{Buffers, Images, Parts};
pub use super::NceSettings;
use super::{Noise, Scorer};
use crate::data::{Binarize, Split};
use crate::gpu::faults::GpuResult;
use crate::gpu::kernels::submit;
use crate::gpu::params::{Counters, NceTotals, STREAM_NCE_EVAL, STREAM_NCE_LOG_Z};
use crate::gpu::{self, Gpu, Kernels, Launch, Launcher};
use crate::mixture::{em, Family};

/// The validation images as scored: x [n, D] as the scorer sees them, the model's log density
/// l(x) [n] (the normalised one if log Z = c), and the noise's log q(x) [n].
pub struct Scored {
    pub x: Vec<f32>,
    pub log_p: Vec<f64>,
    pub log_q: Vec<f64>,
}

pub struct GpuNce {
    pub scorer: Scorer,
    pub noise: Noise,
    pub settings: NceSettings,
    pub steps_per_epoch: usize,
    b: Buffers,
    train: Images,
    val: Images,
    train_step: Vec<Launch>,
    val_step: Vec<Launch>,
    score: Vec<Launch>,
}

impl GpuNce {
    /// Uploads both splits and the noise, and records the launch lists. `initial`: the scorer's
    /// starting weights (Scorer::init_params).
    pub fn new(
        (gpu, kernels): (&Gpu, &Kernels),
        (scorer, noise, settings): (Scorer, Noise, NceSettings),
        (train, val): (&Split, &Split),
        initial: &[f32],
    ) -> Result<GpuNce> {
        let (batch, rows) = (settings.batch, (1 + settings.noise) * settings.batch);
        check_limits(gpu, &noise, rows)?;
        if train.len() < batch || val.is_empty() {
            bail!(
                "NCE needs a full batch of {batch} training images and a validation split (have {} and {})",
                train.len(),
                val.len()
            );
        }
        let l = Launcher { gpu, kernels };
        let spec = noise.spec;
        let zeros = |label: &str, floats: usize| gpu::zeroed::<f32>(gpu, label, floats);
        let widths: Vec<usize> = scorer.layers.iter().map(|l| l.n_out).collect();
        let b = Buffers {
            params: gpu::storage_with(gpu, "nce params", initial),
            grads: zeros("nce grads", scorer.param_count),
            adam_m: zeros("nce adam m", scorer.param_count),
            adam_v: zeros("nce adam v", scorer.param_count),
            counters: gpu::storage_with(gpu, "nce counters", &[Counters::new()]),
            totals: gpu::storage_with(gpu, "nce totals", &[NceTotals::default()]),
            x: zeros("nce x", rows * spec.pixels),
            features: (spec.family == Family::Gaussian).then(|| zeros("nce features", rows * spec.features())),
            logits: zeros("nce logits", rows * spec.padded()),
            log_q: zeros("nce log q", rows),
            acts: widths.iter().map(|w| zeros("nce activations", rows * w)).collect(),
            d_acts: widths.iter().map(|w| zeros("nce activation gradients", rows * w)).collect(),
            row_loss: zeros("nce row loss", batch),
            row_correct: zeros("nce row correct", batch),
            component: zeros("nce components", rows),
            log_weights: gpu::storage_with(gpu, "noise log weights", &noise.log_weights),
            means: gpu::storage_with(gpu, "noise means", &noise.means),
            stds: gpu::storage_with(gpu, "noise stds", &noise.stds),
            nat: gpu::storage_with(gpu, "noise nat", &noise.nat),
        };
        let steps_per_epoch = train.len() / batch;
        let train = Images::new(gpu, "nce train", train, train.len());
        let val = Images::new(gpu, "nce validation", val, val.len().div_ceil(batch) * batch);
        let p = Parts { l, scorer: &scorer, noise: &noise, s: &settings, b: &b };
        let train_step = p.step(&train, steps_per_epoch * batch, true);
        let val_step = p.step(&val, val.rows, false);
        let binarize = if spec.family == Family::Bernoulli { Binarize::Static } else { Binarize::None };
        let u = l.uniform("nce scoring params", &p.nce_params((batch, batch, 0), STREAM_NCE_EVAL, 0));
        let mut score = p.gather(&val, val.rows, binarize);
        score.extend(p.log_q(&u, batch));
        score.extend(p.score(batch));
        Ok(GpuNce { scorer, noise, settings, steps_per_epoch, b, train, val, train_step, val_step, score })
    }

    fn start_pass(&self, gpu: &Gpu, order: Option<(&Images, &[u32])>) {
        if let Some((split, order)) = order {
            gpu.queue.write_buffer(&split.order, 0, bytemuck::cast_slice(order));
        }
        gpu.queue.write_buffer(&self.b.counters, 4, bytemuck::bytes_of(&0u32));
        gpu.queue.write_buffer(&self.b.totals, 0, bytemuck::bytes_of(&NceTotals::default()));
    }

    /// Starts a training epoch over `order`, a permutation of the training images.
    pub fn start_epoch(&self, gpu: &Gpu, order: &[u32]) {
        assert_eq!(order.len(), self.train.rows, "an epoch's order covers the training split");
        self.start_pass(gpu, Some((&self.train, order)));
    }

    /// Records `steps` training steps into one submission. No readback.
    pub fn train_steps(&self, gpu: &Gpu, steps: usize) -> GpuResult<()> {
        let lists: Vec<&[Launch]> = (0..steps).map(|_| self.train_step.as_slice()).collect();
        submit(gpu, &lists).map(drop)
    }

    pub fn totals(&self, gpu: &Gpu) -> GpuResult<NceTotals> {
        Ok(gpu::read::<NceTotals>(gpu, &self.b.totals, 0, 1)?[0])
    }

    pub fn counters(&self, gpu: &Gpu) -> GpuResult<Counters> {
        Ok(gpu::read::<Counters>(gpu, &self.b.counters, 0, 1)?[0])
    }

    /// The loss and classification totals over the validation split, each image with k noise
    /// draws of its own.
    pub fn evaluate(&self, gpu: &Gpu) -> GpuResult<NceTotals> {
        self.start_pass(gpu, None);
        let steps = self.val.rows.div_ceil(self.settings.batch);
        let lists: Vec<&[Launch]> = (0..steps).map(|_| self.val_step.as_slice()).collect();
        submit(gpu, &lists)?;
        self.totals(gpu)
    }

    /// Every validation image as the scorer sees it (binarized for Bernoulli noise) and what the
    /// model and the noise make of it.
    pub fn score_validation(&self, gpu: &Gpu) -> GpuResult<Scored> {
        let (batch, d) = (self.settings.batch, self.noise.spec.pixels);
        let mut s = Scored { x: Vec::new(), log_p: Vec::new(), log_q: Vec::new() };
        for first in (0..self.val.rows).step_by(batch) {
            let n = batch.min(self.val.rows - first);
            gpu.queue.write_buffer(&self.b.counters, 4, bytemuck::bytes_of(&(first as u32)));
            submit(gpu, &[&self.score])?;
            s.x.extend(gpu::read::<f32>(gpu, &self.b.x, 0, n * d)?);
            let o = gpu::read::<f32>(gpu, self.b.acts.last().expect("output"), 0, n)?;
            let log_q = gpu::read::<f32>(gpu, &self.b.log_q, 0, n)?;
            s.log_p.extend(o.iter().zip(&log_q).map(|(&o, &q)| self.scorer.log_density(o, q)));
            s.log_q.extend(log_q.iter().map(|&q| q as f64));
        }
        Ok(s)
    }

    /// `draws` rows x ~ q (rounded up to whole chunks of R) with the network's o(x) and log q(x).
    pub fn noise_scores(&self, (gpu, kernels): (&Gpu, &Kernels), draws: usize) -> GpuResult<(Vec<f32>, Vec<f32>)> {
        let l = Launcher { gpu, kernels };
        let p = Parts { l, scorer: &self.scorer, noise: &self.noise, s: &self.settings, b: &self.b };
        let rows = p.rows();
        gpu.queue.write_buffer(&self.b.counters, 4, bytemuck::bytes_of(&0u32));
        let (mut o, mut log_q) = (Vec::new(), Vec::new());
        for chunk in 0..draws.div_ceil(rows) {
            let u = l.uniform("nce log z params", &p.nce_params((0, 0, rows), STREAM_NCE_LOG_Z, chunk));
            let mut launches = p.draw_noise(&u, rows);
            launches.extend(p.log_q(&u, rows));
            launches.extend(p.score(rows));
            submit(gpu, &[&launches])?;
            o.extend(gpu::read::<f32>(gpu, p.o(), 0, rows)?);
            log_q.extend(gpu::read::<f32>(gpu, &self.b.log_q, 0, rows)?);
        }
        Ok((o, log_q))
    }

    /// l(x) - log q(x) of `draws` rows x ~ q: the importance weights of log Z - c (the model's
    /// log normaliser once c is taken out) with q as the proposal.
    pub fn noise_log_ratios(&self, device: (&Gpu, &Kernels), draws: usize) -> GpuResult<Vec<f64>> {
        let (o, log_q) = self.noise_scores(device, draws)?;
        Ok(o.iter().zip(&log_q).map(|(&o, &q)| self.scorer.log_density(o, q) - q as f64).collect())
    }

    /// Replaces the scorer's weights (before training: Adam's moments are left as they are).
    pub fn write_params(&self, gpu: &Gpu, params: &[f32]) {
        gpu.queue.write_buffer(&self.b.params, 0, bytemuck::cast_slice(params));
    }

    pub fn read_params(&self, gpu: &Gpu) -> GpuResult<Vec<f32>> {
        gpu::read_all(gpu, &self.b.params)
    }
}

/// Refuses sizes the adapter cannot hold, before anything is allocated.
fn check_limits(gpu: &Gpu, noise: &Noise, rows: usize) -> Result<()> {
    em::check_limits(gpu, &noise.spec)?;
    let max = gpu::max_binding_bytes(gpu) as usize;
    let widest = noise.spec.features().max(noise.spec.padded()) * 4;
    if rows > 65_535 || rows * widest > max {
        bail!(
            "--batch x (1 + --noise-samples) = {rows} rows per step: at most 65,535, and {} per step for these \
             images and this mixture (this adapter's largest storage binding is {max} bytes)",
            max / widest
        );
    }
    Ok(())
}
