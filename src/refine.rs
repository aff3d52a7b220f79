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
use crate::gpu::kernels::{bind, submit};
use crate::gpu::params::*;
use crate::gpu::{self, Gpu, Kernels, Launch};
use crate::launches::{Gather, StepEnd};
use crate::model::Model;
use crate::network;
use crate::shaders::{self, Entry};

/// Negative ELBO totals of a pass, before and after refinement.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefineTotals {
    pub before: LossTotals,
    pub after: LossTotals,
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
    /// (`images`, packed as by gpu::images_with). `binarize` and `data_seed` are the training run's,
    /// so the targets x are what the model was fitted to.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        model: &Model,
        params: &wgpu::Buffer,
        (images, n): (&wgpu::Buffer, usize),
        batch: usize,
        binarize: Binarize,
        data_seed: u32,
        adam: AdamConfig,
        from_prior: bool,
    ) -> Refiner {
        let (input, latent) = (model.arch.input(), model.arch.latent);
        let k = |entry: Entry| kernels.get(entry);
        let order = gpu::storage_zeroed(gpu, "refine order", batch * 4);
        let counters = gpu::storage_with(gpu, "refine counters", &[Counters::new()]);
        let totals = gpu::storage_with(gpu, "refine totals", &[LossTotals::default()]);
        let x = gpu::storage_zeroed(gpu, "refine x", batch * input * 4);
        let enc = network::activations(gpu, "refine encoder out ", &model.encoder, batch);
        let dec = network::activations(gpu, "refine decoder out ", &model.decoder, batch);
        let d_dec = network::activations(gpu, "refine d decoder out ", &model.decoder, batch);
        let mulv = enc.last().expect("encoder has a layer");
        let logits = dec.last().expect("decoder has a layer");
        let f32s = |count: usize| gpu::storage_zeroed(gpu, "refine", count * 4);
        let (eps, z, dz, rec, kl) =
            (f32s(batch * latent), f32s(batch * latent), f32s(batch * latent), f32s(batch), f32s(batch));
        let d_mulv = f32s(batch * 2 * latent);
        let (adam_m, adam_v) = (f32s(batch * 2 * latent), f32s(batch * 2 * latent));
        let coef = gpu::storage_with(gpu, "refine coef", &vec![1.0f32; batch]);

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
        let mut encode = vec![gather.launch(gpu, kernels)];
        if !from_prior {
            encode.extend(network::forward_path(gpu, kernels, params, &model.encoder, batch, &x, &enc));
        }

        let latent_u = |stream: u32| {
            gpu::uniform_with(
                gpu,
                "refine latent",
                &LatentParams {
                    batch: batch as u32,
                    latent: latent as u32,
                    seed: data_seed,
                    stream,
                    beta: 1.0,
                    warmup_steps: 0,
                    free_bits: 0.0,
                    sample_scale: 1.0,
                },
            )
        };
        let (measure_latent, step_latent) = (latent_u(STREAM_EVAL_EPS), latent_u(STREAM_TRAIN_EPS));
        // pass_rows is the current batch's real inputs, rewritten per batch; the cursor stays at 0.
        let loss_params = gpu::uniform_with(
            gpu,
            "refine loss",
            &LossParams {
                batch: batch as u32,
                pixels: input as u32,
                pass_rows: 0,
                training: 1,
                repeat: 1,
                fixed_batch: 1,
                pad: [0; 2],
            },
        );
        let (rec_forward_name, rec_backward_name) = model.arch.decoder.loss_kernels();
        let forward = |latent_params: &wgpu::Buffer| {
            let mut launches = vec![k(Entry::ReparamForward).launch_over(
                gpu,
                &[
                    bind(shaders::latent::PARAMS, latent_params),
                    bind(shaders::latent::COUNTERS, &counters),
                    bind(shaders::latent::MULV, mulv),
                    bind(shaders::latent::EPS, &eps),
                    bind(shaders::latent::Z, &z),
                ],
                (batch * latent).div_ceil(4),
            )];
            launches.extend(network::forward_path(gpu, kernels, params, &model.decoder, batch, &z, &dec));
            launches.push(k(rec_forward_name).launch_over(
                gpu,
                &[
                    bind(shaders::loss::PARAMS, &loss_params),
                    bind(shaders::loss::LOGITS, logits),
                    bind(shaders::loss::X, &x),
                    bind(shaders::loss::REC, &rec),
                ],
                batch,
            ));
            launches.push(k(Entry::GaussianKlForward).launch_over(
                gpu,
                &[
                    bind(shaders::latent::PARAMS, latent_params),
                    bind(shaders::latent::MULV, mulv),
                    bind(shaders::latent::KL, &kl),
                ],
                batch,
            ));
            launches
        };
        let finish =
            StepEnd { counters: &counters, rec: &rec, kl: &kl, totals: &totals }.launch(gpu, kernels, &loss_params);

        // A measurement: one draw of z per input, its rec and the analytic KL added to the totals.
        let mut draw = forward(&measure_latent);
        draw.push(finish.clone());

        // A refinement step: the ELBO's gradient reaches mulv through the frozen decoder only.
        let mut step = forward(&step_latent);
        step.push(k(rec_backward_name).launch_over(
            gpu,
            &[
                bind(shaders::loss::PARAMS, &loss_params),
                bind(shaders::loss::LOGITS, logits),
                bind(shaders::loss::X, &x),
                bind(shaders::loss::DLOGITS, &d_dec[model.decoder.len() - 1]),
                bind(shaders::loss::COEF, &coef),
            ],
            batch * input,
        ));
        for (i, l) in model.decoder.iter().enumerate().rev() {
            let (layer_in, d_in) = if i == 0 { (&z, &dz) } else { (&dec[i - 1], &d_dec[i - 1]) };
            step.push(network::backward_input(gpu, kernels, params, l, batch, &d_dec[i], layer_in, d_in));
        }
        step.push(k(Entry::ReparamBackward).launch_over(
            gpu,
            &[
                bind(shaders::latent::PARAMS, &step_latent),
                bind(shaders::latent::MULV, mulv),
                bind(shaders::latent::EPS, &eps),
                bind(shaders::latent::DZ, &dz),
                bind(shaders::latent::DMULV, &d_mulv),
            ],
            batch * latent,
        ));
        step.push(k(Entry::GaussianKlBackward).launch_over(
            gpu,
            &[
                bind(shaders::latent::PARAMS, &step_latent),
                bind(shaders::latent::COUNTERS, &counters),
                bind(shaders::latent::MULV, mulv),
                bind(shaders::latent::DMULV, &d_mulv),
            ],
            batch * latent,
        ));
        let adam_u = gpu::uniform_with(
            gpu,
            "refine adam",
            &AdamParams {
                count: (batch * 2 * latent) as u32,
                lr: adam.lr,
                beta1: adam.beta1,
                beta2: adam.beta2,
                eps: adam.eps,
                pad: [0; 3],
            },
        );
        step.push(k(Entry::AdamStep).launch_over(
            gpu,
            &[
                bind(shaders::adam::PARAMS, &adam_u),
                bind(shaders::adam::COUNTERS, &counters),
                bind(shaders::adam::GRADS, &d_mulv),
                bind(shaders::adam::WEIGHTS, mulv),
                bind(shaders::adam::M, &adam_m),
                bind(shaders::adam::V, &adam_v),
            ],
            batch * 2 * latent,
        ));
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
    pub fn run(&self, gpu: &Gpu, steps: usize, draws: usize, mut progress: impl FnMut(usize)) -> RefineTotals {
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
            submit(gpu, &[&self.encode]);
            submit(gpu, &draw_lists);
            add(&mut out.before, gpu::read::<LossTotals>(gpu, &self.totals, 0, 1)[0]);
            self.reset(gpu);
            let zeros = vec![0u8; self.adam_m.size() as usize];
            gpu.queue.write_buffer(&self.adam_m, 0, &zeros);
            gpu.queue.write_buffer(&self.adam_v, 0, &zeros);
            for chunk in step_lists.chunks(25) {
                submit(gpu, chunk);
            }
            self.reset(gpu);
            submit(gpu, &draw_lists);
            add(&mut out.after, gpu::read::<LossTotals>(gpu, &self.totals, 0, 1)[0]);
            progress(first + real);
        }
        out
    }
}
