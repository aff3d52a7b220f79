//! The GPU trainer: every buffer the model needs, and the training step as a list of launches
//! recorded once. The host only starts passes, submits runs of steps and reads totals back.
//! buffers.rs allocates, latent.rs is the latent block, step.rs records the launch lists, ticks.rs
//! submits runs of steps with their readback, epoch.rs runs an epoch's steps in ticks; this file is
//! the trainer's API.
mod buffers;
mod epoch;
mod latent;
mod snapshot;
mod step;
mod ticks;

use buffers::{Buffers, GpuSplit};
pub use epoch::{EpochControl, EpochSteps};
pub use ticks::{Tick, TickQueue};

use crate::config::TrainSettings;
use crate::gpu::faults::GpuResult;
use crate::gpu::kernels::submit;
use crate::gpu::params::{Counters, LossTotals};
use crate::gpu::{self, Gpu, ImageShards, Launch};
use crate::model::{Decoder, Model};

pub struct GpuTrainer {
    pub model: Model,
    pub settings: TrainSettings,
    pub steps_per_epoch: usize,
    bufs: Buffers,
    train: GpuSplit,
    val: GpuSplit,
    train_step: Vec<Launch>,
    gradient_len: usize, // train_step[..gradient_len] computes the gradient; Adam and bookkeeping follow
    encode: Vec<Launch>,
    eval_step: Vec<Launch>,
    decode: Vec<Launch>,
    ticks: ticks::TickSlots,
}

impl GpuTrainer {
    /// Starts a pass: resets the batch cursor and the loss totals (and sets the order, if given).
    fn start_pass(&self, gpu: &Gpu, split_order: Option<(&GpuSplit, &[u32])>) {
        if let Some((split, order)) = split_order {
            gpu.queue.write_buffer(&split.order, 0, bytemuck::cast_slice(order));
        }
        gpu.queue.write_buffer(&self.bufs.counters, 4, bytemuck::bytes_of(&0u32));
        gpu.queue.write_buffer(&self.bufs.totals, 0, bytemuck::bytes_of(&LossTotals::default()));
    }

    /// Starts a training epoch over `order` (a permutation of the training images).
    pub fn start_epoch(&self, gpu: &Gpu, order: &[u32]) {
        assert_eq!(order.len(), self.train.rows, "epoch order must cover the training split");
        self.start_pass(gpu, Some((&self.train, order)));
    }

    /// Continues a training epoch over `order` after `steps_done` of its steps, whose loss totals
    /// were `totals` (from a checkpoint).
    pub fn resume_epoch(&self, gpu: &Gpu, order: &[u32], steps_done: usize, totals: LossTotals) {
        self.start_epoch(gpu, order);
        let cursor = (steps_done * self.settings.batch) as u32;
        gpu.queue.write_buffer(&self.bufs.counters, 4, bytemuck::bytes_of(&cursor));
        gpu.queue.write_buffer(&self.bufs.totals, 0, bytemuck::bytes_of(&totals));
    }

    /// The score estimator's running-mean baseline, [mean, initialised (0 or 1)].
    pub async fn baseline_state(&self, gpu: &Gpu) -> GpuResult<[f32; 2]> {
        let v = gpu::read_async::<f32>(gpu, &self.bufs.baseline, 0, 2).await?;
        Ok([v[0], v[1]])
    }

    pub fn set_baseline_state(&self, gpu: &Gpu, state: [f32; 2]) {
        gpu.queue.write_buffer(&self.bufs.baseline, 0, bytemuck::cast_slice(&state));
    }

    /// Puts a checkpoint's training state back: weights, Adam's moments and the optimizer step.
    pub fn restore(&self, gpu: &Gpu, params: &[f32], adam_m: &[f32], adam_v: &[f32], optimizer_step: u32) {
        gpu.queue.write_buffer(&self.bufs.params, 0, bytemuck::cast_slice(params));
        gpu.queue.write_buffer(&self.bufs.adam_m, 0, bytemuck::cast_slice(adam_m));
        gpu.queue.write_buffer(&self.bufs.adam_v, 0, bytemuck::cast_slice(adam_v));
        let counters = Counters { step: optimizer_step, ..Counters::new() };
        gpu.queue.write_buffer(&self.bufs.counters, 0, bytemuck::bytes_of(&counters));
    }

    /// Per-datapoint inference: the table of (mu, logvar) per training image and its Adam moments.
    pub async fn read_table(&self, gpu: &Gpu) -> GpuResult<Option<[Vec<f32>; 3]>> {
        let Some(t) = self.bufs.table.as_ref() else { return Ok(None) };
        Ok(Some([
            gpu::read_all_async(gpu, &t[0]).await?,
            gpu::read_all_async(gpu, &t[1]).await?,
            gpu::read_all_async(gpu, &t[2]).await?,
        ]))
    }

    pub fn set_table(&self, gpu: &Gpu, table: &[Vec<f32>; 3]) {
        if let Some(t) = &self.bufs.table {
            for (buffer, values) in t.iter().zip(table) {
                gpu.queue.write_buffer(buffer, 0, bytemuck::cast_slice(values));
            }
        }
    }

    /// (params, Adam m, Adam v), each in the flat layout of model.rs.
    pub async fn read_training_state(&self, gpu: &Gpu) -> GpuResult<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        Ok((
            gpu::read_all_async(gpu, &self.bufs.params).await?,
            gpu::read_all_async(gpu, &self.bufs.adam_m).await?,
            gpu::read_all_async(gpu, &self.bufs.adam_v).await?,
        ))
    }

    /// q(z|x) of validation images `picks`: rows [mu | logvar], [picks.len(), 2 * latent] (or the
    /// categorical logits, [picks.len(), latent]).
    pub async fn encode(&self, gpu: &Gpu, picks: &[u32]) -> GpuResult<Vec<f32>> {
        let b = self.settings.batch;
        let width = self.model.arch.encoder_outputs();
        let identity = self.val_identity_order();
        let mut out = Vec::with_capacity(picks.len() * width);
        for chunk in picks.chunks(b) {
            let mut order = identity.clone();
            order[..chunk.len()].copy_from_slice(chunk);
            self.start_pass(gpu, Some((&self.val, &order)));
            submit(gpu, &[&self.encode])?;
            out.extend(gpu::read_async::<f32>(gpu, self.bufs.mulv(), 0, chunk.len() * width).await?);
        }
        gpu.queue.write_buffer(&self.val.order, 0, bytemuck::cast_slice(&identity));
        Ok(out)
    }

    /// Records `steps` training steps into one submission. No readback.
    pub fn train_steps(&self, gpu: &Gpu, steps: usize) -> GpuResult<()> {
        let lists: Vec<&[Launch]> = (0..steps).map(|_| self.train_step.as_slice()).collect();
        submit(gpu, &lists).map(drop)
    }

    /// The current pass's loss totals (waits for the GPU).
    pub async fn totals(&self, gpu: &Gpu) -> GpuResult<LossTotals> {
        Ok(gpu::read_async::<LossTotals>(gpu, &self.bufs.totals, 0, 1).await?[0])
    }

    /// The step counters (waits for the GPU).
    pub async fn counters(&self, gpu: &Gpu) -> GpuResult<Counters> {
        Ok(gpu::read_async::<Counters>(gpu, &self.bufs.counters, 0, 1).await?[0])
    }

    /// Negative ELBO totals over the whole validation split (z sampled, as pytorch/examples).
    pub async fn evaluate(&self, gpu: &Gpu) -> GpuResult<LossTotals> {
        self.start_pass(gpu, None);
        let steps = self.val.rows.div_ceil(self.settings.batch);
        let lists: Vec<&[Launch]> = (0..steps).map(|_| self.eval_step.as_slice()).collect();
        submit(gpu, &lists)?;
        self.totals(gpu).await
    }

    /// Validation images `picks`: (inputs, reconstruction probabilities), each [picks.len(), input],
    /// z sampled from q(z|x) as in training. Restores the validation order afterwards.
    pub async fn reconstruct(&self, gpu: &Gpu, picks: &[u32]) -> GpuResult<(Vec<f32>, Vec<f32>)> {
        let input = self.model.arch.input();
        let identity = self.val_identity_order();
        let (mut x, mut probs) = (Vec::new(), Vec::new());
        for chunk in picks.chunks(self.settings.batch) {
            let mut order = identity.clone();
            order[..chunk.len()].copy_from_slice(chunk);
            self.start_pass(gpu, Some((&self.val, &order)));
            submit(gpu, &[&self.eval_step])?;
            x.extend(gpu::read_async::<f32>(gpu, &self.bufs.x, 0, chunk.len() * input).await?);
            // With several samples per input, each input's first sample.
            let (samples, width) = (self.settings.objective.samples, self.output_width());
            let out = gpu::read_async::<f32>(gpu, self.bufs.logits(), 0, chunk.len() * samples * width).await?;
            probs.extend(self.pictures(&out.chunks(width).step_by(samples).flatten().copied().collect::<Vec<_>>()));
        }
        gpu.queue.write_buffer(&self.val.order, 0, bytemuck::cast_slice(&identity));
        Ok((x, probs))
    }

    /// The validation pass's order buffer as built: 0..rows, padded with the last index.
    fn val_identity_order(&self) -> Vec<u32> {
        let len = self.val.rows.div_ceil(self.settings.batch) * self.settings.batch;
        (0..len as u32).map(|i| i.min(self.val.rows as u32 - 1)).collect()
    }

    /// Decoder pictures for latents z [n, latent] and, for a conditional model, classes [n] (empty
    /// for an unconditional one).
    pub async fn decode(&self, gpu: &Gpu, z: &[f32], classes: &[u32]) -> GpuResult<Vec<f32>> {
        let latent = self.model.arch.latent;
        let rows = self.settings.batch * self.settings.objective.samples;
        let mut out = Vec::with_capacity(z.len() / latent * self.model.arch.input());
        for (i, chunk) in z.chunks(rows * latent).enumerate() {
            gpu.queue.write_buffer(&self.bufs.z, 0, bytemuck::cast_slice(chunk));
            if let (Some(c), false) = (&self.bufs.cond, classes.is_empty()) {
                let chunk_classes = &classes[i * rows..(i * rows + rows).min(classes.len())];
                gpu.queue.write_buffer(&c.decode_labels, 0, bytemuck::cast_slice(chunk_classes));
            }
            submit(gpu, &[&self.decode])?;
            let rows = chunk.len() / latent;
            let logits = gpu::read_async::<f32>(gpu, self.bufs.logits(), 0, rows * self.output_width()).await?;
            out.extend(self.pictures(&logits));
        }
        Ok(out)
    }

    /// Decoder outputs per row: input, or 2 x input for a Gaussian decoder.
    fn output_width(&self) -> usize {
        self.model.arch.input() * self.model.arch.decoder.outputs_per_pixel()
    }

    /// What to draw of decoder output rows: Bernoulli probabilities, or Gaussian means.
    fn pictures(&self, rows: &[f32]) -> Vec<f32> {
        let input = self.model.arch.input();
        match self.model.arch.decoder {
            Decoder::Bernoulli => rows.iter().map(|&l| sigmoid(l)).collect(),
            Decoder::Gaussian => rows.chunks(2 * input).flat_map(|r| r[..input].iter().copied()).collect(),
        }
    }

    /// How many buffers hold the training and the validation images.
    pub fn image_shards(&self) -> (usize, usize) {
        (self.train.images.shards.len(), self.val.images.shards.len())
    }

    /// The validation split's images on the GPU (packed words), for the evaluators, so they need
    /// not upload the images again.
    pub fn val_images(&self) -> &ImageShards {
        &self.val.images
    }

    /// Every weight and bias (model.rs layout), for the evaluators that run the same weights.
    pub fn params(&self) -> &wgpu::Buffer {
        &self.bufs.params
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub async fn read_params(&self, gpu: &Gpu) -> GpuResult<Vec<f32>> {
        gpu::read_all_async(gpu, &self.bufs.params).await
    }

    pub fn grads_buffer(&self) -> &wgpu::Buffer {
        &self.bufs.grads
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_grads(&self, gpu: &Gpu) -> GpuResult<Vec<f32>> {
        gpu::read_all(gpu, &self.bufs.grads)
    }

    /// The training step's launches in order, for the benchmark's per-kernel timing.
    pub fn train_step_launches(&self) -> &[Launch] {
        &self.train_step
    }

    /// One gradient estimate at the current weights, on the batch at the start of the current
    /// pass, with the random draws of optimizer step `draw`: no update, no counters moved (the
    /// running-mean baseline does move, as it would in training).
    pub fn gradient_at(&self, gpu: &Gpu, draw: u32) -> GpuResult<()> {
        let counters = Counters { step: draw, ..Counters::new() };
        gpu.queue.write_buffer(&self.bufs.counters, 0, bytemuck::bytes_of(&counters));
        submit(gpu, &[&self.train_step[..self.gradient_len]]).map(drop)
    }

    /// Adam's first and second moments (same layout as the parameters).
    pub fn optimizer_state(&self) -> (&wgpu::Buffer, &wgpu::Buffer) {
        (&self.bufs.adam_m, &self.bufs.adam_v)
    }
}

pub fn sigmoid(l: f32) -> f32 {
    1.0 / (1.0 + (-l).exp())
}
