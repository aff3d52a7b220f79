//! Per-datapoint inference on top of amortized inference (seeds 000, 001): start from the
//! encoder's q(z|x) for each input and take gradient steps on that input's own ELBO over its
//! (mu, logvar), decoder frozen. The ELBO gained is the amortization gap the encoder leaves.
//!
//! One batch of inputs at a time: the batch's [B, 2 * latent] encoder output is itself the
//! parameter Adam updates, so no table or scatter is needed. Every launch is an existing kernel.
//! Started from the prior instead of the encoder, it is the inference of a model trained with
//! per-datapoint inference, on images it has not seen.
use crate::config::AdamConfig;
use crate::data::Binarize;
use crate::gpu::faults::GpuResult;
use crate::gpu::kernels::submit;
use crate::gpu::params::{Counters, LatentParams, LossTotals, STREAM_EVAL_EPS, STREAM_TRAIN_EPS};
use crate::gpu::{self, Gpu, ImageShards, Launch, Launcher};
use crate::launches::{adam_step, loss_params, Gather, GaussianRows, Reconstruction, StepEnd};
use crate::model::Model;
use crate::network;

/// Negative ELBO totals of a pass, before and after refinement.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefineTotals {
    pub before: LossTotals,
    pub after: LossTotals,
}

/// How the refiner runs.
pub struct RefineSettings {
    /// Inputs refined at once.
    pub batch: usize,
    /// The training run's binarization and data seed, so the targets x are what the model was
    /// fitted to.
    pub binarize: Binarize,
    pub data_seed: u32,
    /// Adam on each input's (mu, logvar).
    pub adam: AdamConfig,
    /// Start every input from the prior, q = N(0, I), instead of the encoder's q(z|x): inference
    /// for a model trained with per-datapoint inference, which has no encoder.
    pub from_prior: bool,
}

pub struct Refiner {
    /// Start every input from the prior, q = N(0, I), instead of the encoder's q(z|x): inference
    /// for a model trained with per-datapoint inference, which has no encoder.
    from_prior: bool,
    mulv: wgpu::Buffer,
    batch: usize,
    n: usize,
    counters: wgpu::Buffer,
    totals: wgpu::Buffer,
    adam_m: wgpu::Buffer,
    adam_v: wgpu::Buffer,
    order: wgpu::Buffer,
    loss_params: wgpu::Buffer,
    encode: Vec<Launch>,
    draw: Vec<Launch>,
    step: Vec<Launch>,
}

impl Refiner {
    /// Binds the model's weights `params` (decoder frozen) and the `n` images already on the GPU
    /// (`images`, packed as by gpu::images_with), to refine as `settings` say.
    pub fn new(
        l: Launcher,
        (model, params): (&Model, &wgpu::Buffer),
        images: &ImageShards,
        settings: RefineSettings,
    ) -> Refiner {
        let RefineSettings { batch, binarize, data_seed, adam, from_prior } = settings;
        let gpu = l.gpu;
        let n = images.images;
        let (input, latent) = (model.arch.input(), model.arch.latent);
        let order = gpu::zeroed::<u32>(gpu, "refine order", batch);
        let counters = gpu::storage_with(gpu, "refine counters", &[Counters::new()]);
        let totals = gpu::storage_with(gpu, "refine totals", &[LossTotals::default()]);
        let Scratch { x, enc, dec, d_dec, eps, z, dz, rec, kl, d_mulv, coef } = Scratch::new(gpu, model, batch);
        let mulv = enc.last().expect("encoder has a layer"); // [B, 2 latent]: the parameters refined
        let f32s = |count: usize| gpu::zeroed::<f32>(gpu, "refine adam", count);
        let (adam_m, adam_v) = (f32s(batch * 2 * latent), f32s(batch * 2 * latent));

        let gather = Gather {
            images,
            order: &order,
            counters: &counters,
            x: &x,
            rows: batch,
            pixels: input,
            pass_rows: n,
            binarize,
            seed: data_seed,
        };
        let mut encode = gather.launches(l);
        if !from_prior {
            encode.extend(network::forward_path(l, params, &model.encoder, batch, &x, &enc));
        }

        let latent_u = |stream: u32| latent_params(l, (batch, latent), data_seed, stream);
        let (measure_latent, step_latent) = (latent_u(STREAM_EVAL_EPS), latent_u(STREAM_TRAIN_EPS));
        // pass_rows is the current batch's real inputs, rewritten per batch; the cursor stays at 0.
        let loss_params = loss_params(l, batch, input, 0, 1, true, true);
        let q =
            GaussianRows { rows: batch, latent, counters: &counters, mulv, d_mulv: &d_mulv, eps: &eps, z: &z, dz: &dz };
        let logits = dec.last().expect("decoder has a layer");
        let recon =
            Reconstruction { decoder: model.arch.decoder, logits, x: &x, rec: &rec, rows: batch, pixels: input };
        let forward = |latent_params: &wgpu::Buffer| {
            let mut launches = vec![q.reparam_forward(l, latent_params)];
            launches.extend(network::forward_path(l, params, &model.decoder, batch, &z, &dec));
            launches.push(recon.forward(l, &loss_params));
            launches.push(q.kl_forward(l, latent_params, &kl));
            launches
        };
        let finish = StepEnd { counters: &counters, rec: &rec, kl: &kl, totals: &totals }.launch(l, &loss_params);

        // A measurement: one draw of z per input, its rec and the analytic KL added to the totals.
        let mut draw = forward(&measure_latent);
        draw.push(finish.clone());

        // A refinement step: the ELBO's gradient reaches mulv through the frozen decoder only.
        let mut step = forward(&step_latent);
        step.push(recon.backward(l, &loss_params, d_dec.last().expect("decoder has a layer"), &coef));
        step.extend(network::backward_inputs(l, params, &model.decoder, batch, (&z, &dec, &d_dec), &dz));
        step.extend(q.reparam_kl_backward(l, &step_latent, false));
        step.push(adam_step(l, &adam, &counters, (&d_mulv, mulv), (&adam_m, &adam_v), batch * 2 * latent));
        step.push(finish);

        Refiner {
            from_prior,
            mulv: mulv.clone(),
            batch,
            n,
            counters,
            totals,
            adam_m,
            adam_v,
            order,
            loss_params,
            encode,
            draw,
            step,
        }
    }

    fn reset(&self, gpu: &Gpu) {
        gpu.queue.write_buffer(&self.counters, 0, bytemuck::bytes_of(&Counters::new()));
        gpu.queue.write_buffer(&self.totals, 0, bytemuck::bytes_of(&LossTotals::default()));
    }

    /// The negative ELBO over every input, each measured with `draws` draws of z before and after
    /// `steps` Adam steps on its own (mu, logvar). The same draws serve before and after.
    pub fn run(
        &self,
        gpu: &Gpu,
        steps: usize,
        draws: usize,
        mut progress: impl FnMut(usize),
    ) -> GpuResult<RefineTotals> {
        let mut out = RefineTotals::default();
        let add = |sum: &mut LossTotals, t: LossTotals| {
            sum.rec_sum += t.rec_sum;
            sum.kl_sum += t.kl_sum;
            sum.examples += t.examples;
        };
        let draw_lists: Vec<&[Launch]> = (0..draws).map(|_| self.draw.as_slice()).collect();
        let step_lists: Vec<&[Launch]> = (0..steps).map(|_| self.step.as_slice()).collect();
        for first in (0..self.n).step_by(self.batch) {
            let real = self.batch.min(self.n - first);
            let order: Vec<u32> = (0..self.batch).map(|i| (first + i.min(real - 1)) as u32).collect();
            gpu.queue.write_buffer(&self.order, 0, bytemuck::cast_slice(&order));
            gpu.queue.write_buffer(&self.loss_params, 8, bytemuck::bytes_of(&(real as u32))); // pass_rows
            self.reset(gpu);
            if self.from_prior {
                gpu.queue.write_buffer(&self.mulv, 0, &vec![0u8; self.mulv.size() as usize]);
            }
            submit(gpu, &[&self.encode])?;
            submit(gpu, &draw_lists)?;
            add(&mut out.before, gpu::read::<LossTotals>(gpu, &self.totals, 0, 1)?[0]);
            self.reset(gpu);
            let zeros = vec![0u8; self.adam_m.size() as usize];
            gpu.queue.write_buffer(&self.adam_m, 0, &zeros);
            gpu.queue.write_buffer(&self.adam_v, 0, &zeros);
            for chunk in step_lists.chunks(25) {
                submit(gpu, chunk)?;
            }
            self.reset(gpu);
            submit(gpu, &draw_lists)?;
            add(&mut out.after, gpu::read::<LossTotals>(gpu, &self.totals, 0, 1)?[0]);
            progress(first + real);
        }
        Ok(out)
    }
}

/// A batch's buffers: x [B, input], the layers' outputs and the decoder's gradients, eps, z and
/// dz [B, latent], rec and kl [B], d mulv [B, 2 latent], each row's weight coef [B] (all 1).
struct Scratch {
    x: wgpu::Buffer,
    enc: Vec<wgpu::Buffer>,
    dec: Vec<wgpu::Buffer>,
    d_dec: Vec<wgpu::Buffer>,
    eps: wgpu::Buffer,
    z: wgpu::Buffer,
    dz: wgpu::Buffer,
    rec: wgpu::Buffer,
    kl: wgpu::Buffer,
    d_mulv: wgpu::Buffer,
    coef: wgpu::Buffer,
}

impl Scratch {
    fn new(gpu: &Gpu, model: &Model, batch: usize) -> Scratch {
        let (input, latent) = (model.arch.input(), model.arch.latent);
        let f32s = |count: usize| gpu::zeroed::<f32>(gpu, "refine", count);
        Scratch {
            x: gpu::zeroed::<f32>(gpu, "refine x", batch * input),
            enc: network::activations(gpu, "refine encoder out ", &model.encoder, batch),
            dec: network::activations(gpu, "refine decoder out ", &model.decoder, batch),
            d_dec: network::activations(gpu, "refine d decoder out ", &model.decoder, batch),
            eps: f32s(batch * latent),
            z: f32s(batch * latent),
            dz: f32s(batch * latent),
            rec: f32s(batch),
            kl: f32s(batch),
            d_mulv: f32s(batch * 2 * latent),
            coef: gpu::storage_with(gpu, "refine coef", &vec![1.0f32; batch]),
        }
    }
}

/// LatentParams of plain ELBO draws (beta 1, no warm-up or free bits) from random stream `stream`.
fn latent_params(l: Launcher, (batch, latent): (usize, usize), seed: u32, stream: u32) -> wgpu::Buffer {
    let p = LatentParams {
        rows: batch as u32,
        latent: latent as u32,
        seed,
        stream,
        beta: 1.0,
        warmup_steps: 0,
        free_bits: 0.0,
        sample_scale: 1.0,
    };
    l.uniform("refine latent", &p)
}
