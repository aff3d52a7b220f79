//! The GPU trainer: every buffer the model needs, and the training step as a list of launches
//! recorded once. The host only starts passes, submits runs of steps and reads totals back.
use crate::data::Split;
use crate::gpu::kernels::{bind, bind_range, submit};
use crate::gpu::params::*;
use crate::gpu::{self, Gpu, Kernels, Launch};
use crate::model::{Layer, Model};
use crate::network;
use crate::reference::kernels::{AdamConfig, Binarize, Counters, LossTotals};

#[derive(Clone, Debug)]
pub struct TrainSettings {
    pub batch: usize,
    pub adam: AdamConfig,
    pub seed: u32,
    pub binarize: Binarize,
}

/// One split of the data, resident on the GPU.
struct GpuSplit {
    images: wgpu::Buffer, // [n, pixels / 4] u32, 4 pixels a word
    order: wgpu::Buffer,  // [pass_rows] u32 image indices
    rows: usize,
}

pub struct GpuTrainer {
    pub model: Model,
    pub settings: TrainSettings,
    pub steps_per_epoch: usize,
    pub params: wgpu::Buffer, // every weight and bias, layout in model.rs
    grads: wgpu::Buffer,      // same layout
    adam_m: wgpu::Buffer,
    adam_v: wgpu::Buffer,
    counters: wgpu::Buffer, // Counters
    totals: wgpu::Buffer,   // LossTotals of the current pass
    train: GpuSplit,
    val: GpuSplit,
    pub x: wgpu::Buffer,      // [B, input] the gathered batch
    pub z: wgpu::Buffer,      // [B, latent]
    pub logits: wgpu::Buffer, // [B, input], the decoder's last output
    pub mulv: wgpu::Buffer,   // [B, 2 * latent], the encoder's output: rows of mu then logvar
    train_step: Vec<Launch>,
    encode: Vec<Launch>,
    eval_step: Vec<Launch>,
    decode: Vec<Launch>,
}

fn pack_words(images: &[u8]) -> Vec<u32> {
    images.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

impl GpuTrainer {
    pub fn new(gpu: &Gpu, kernels: &Kernels, model: Model, settings: TrainSettings, params: &[f32],
               train: &Split, val: &Split) -> GpuTrainer {
        let b = settings.batch;
        let input = model.arch.input;
        let latent = model.arch.latent;
        let f32s = |n: usize| n * 4;
        let steps_per_epoch = train.len() / b;
        let val_steps = val.len().div_ceil(b);
        let split = |name: &str, s: &Split, order_len: usize| GpuSplit {
            images: gpu::storage_with(gpu, &format!("{name} images"), &pack_words(&s.images)),
            order: gpu::storage_with(gpu, &format!("{name} order"),
                                     &(0..order_len as u32).map(|i| i.min(s.len() as u32 - 1)).collect::<Vec<_>>()),
            rows: s.len(),
        };
        let train_split = split("train", train, train.len());
        let val_split = split("validation", val, val_steps * b);

        let params_buf = gpu::storage_with(gpu, "params", params);
        let grads = gpu::storage_zeroed(gpu, "grads", f32s(model.param_count));
        let adam_m = gpu::storage_zeroed(gpu, "adam m", f32s(model.param_count));
        let adam_v = gpu::storage_zeroed(gpu, "adam v", f32s(model.param_count));
        let counters = gpu::storage_with(gpu, "counters", &[Counters::new()]);
        let totals = gpu::storage_with(gpu, "totals", &[LossTotals::default()]);

        // Activations: x -> enc[0] -> ... -> enc[last] = mulv; z -> dec[0] -> ... -> dec[last] = logits.
        // Each activation has a gradient buffer of the same shape.
        let x = gpu::storage_zeroed(gpu, "x", f32s(b * input));
        let enc = network::activations(gpu, "encoder out ", &model.encoder, b);
        let dec = network::activations(gpu, "decoder out ", &model.decoder, b);
        let d_enc = network::activations(gpu, "d encoder out ", &model.encoder, b);
        let d_dec = network::activations(gpu, "d decoder out ", &model.decoder, b);
        let eps = gpu::storage_zeroed(gpu, "eps", f32s(b * latent));
        let z = gpu::storage_zeroed(gpu, "z", f32s(b * latent));
        let dz = gpu::storage_zeroed(gpu, "dz", f32s(b * latent));
        let rec = gpu::storage_zeroed(gpu, "rec", f32s(b));
        let kl = gpu::storage_zeroed(gpu, "kl", f32s(b));
        let mulv = enc.last().expect("encoder has a layer").clone();
        let mulv = &mulv;
        let logits = dec.last().expect("decoder has a layer").clone();

        let k = |name: &str| kernels.get(name);
        let uniform = |label: &str, bytes: &[u8]| {
            use wgpu::util::DeviceExt;
            gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            })
        };
        let w_of = |l: &Layer| (l.weight_at, l.n_in * l.n_out);
        let b_of = |l: &Layer| (l.bias_at, l.n_out);
        let kernel = |name: &str, l: &Layer| network::linear_kernel(kernels, name, l);
        let dims = |l: &Layer, relu: bool| network::dims(gpu, l, b, relu);
        // Backward of one layer: its parameters' gradients, and its input's gradient when wanted.
        let backward = |l: &Layer, input: &wgpu::Buffer, d_output: &wgpu::Buffer, d_input: Option<&wgpu::Buffer>| {
            let mut launches = Vec::new();
            if let Some(d_input) = d_input {
                let u = dims(l, l.relu_input);
                let (wa, wn) = w_of(l);
                launches.push(kernel("linear_backward_input", l).launch(
                    gpu, &[bind(0, &u), bind(1, d_output), bind_range(2, &params_buf, wa, wn), bind(3, input), bind(4, d_input)],
                    linear_groups(b, l.n_in)));
            }
            let u = dims(l, false);
            let (wa, wn) = w_of(l);
            let (ba, bn) = b_of(l);
            launches.push(kernel("linear_backward_weight", l).launch(
                gpu, &[bind(0, &u), bind(1, d_output), bind(2, input), bind_range(4, &grads, wa, wn)],
                linear_groups(l.n_out, l.n_in)));
            launches.push(k("linear_backward_bias").launch(
                gpu, &[bind(0, &u), bind(1, d_output), bind_range(4, &grads, ba, bn)], groups_of_64(l.n_out)));
            launches
        };

        let gather = |s: &GpuSplit, pass_rows: usize| {
            let p = GatherParams {
                batch: b as u32, words: (input / 4) as u32, pass_rows: pass_rows as u32,
                binarize: settings.binarize.code(), seed: settings.seed, stream: STREAM_BINARIZE, pad: [0; 2],
            };
            let u = uniform("gather params", bytemuck::bytes_of(&p));
            k("gather_batch").launch(gpu, &[bind(0, &u), bind(1, &counters), bind(2, &s.images), bind(3, &s.order), bind(4, &x)],
                                     groups_of_64(b * input / 4))
        };
        let latent_params = |stream: u32| {
            let p = LatentParams { batch: b as u32, latent: latent as u32, seed: settings.seed, stream };
            uniform("latent params", bytemuck::bytes_of(&p))
        };
        let train_latent = latent_params(STREAM_TRAIN_EPS);
        let eval_latent = latent_params(STREAM_EVAL_EPS);
        let reparam_forward = |u: &wgpu::Buffer| {
            k("reparam_forward").launch(gpu, &[bind(0, u), bind(1, &counters), bind(2, mulv), bind(3, &eps), bind(4, &z)],
                                        groups_of_64((b * latent).div_ceil(4)))
        };
        let loss_params = |pass_rows: usize, training: bool| {
            let p = LossParams { batch: b as u32, pixels: input as u32, pass_rows: pass_rows as u32, training: training as u32 };
            uniform("loss params", bytemuck::bytes_of(&p))
        };
        let train_loss = loss_params(steps_per_epoch * b, true);
        let eval_loss = loss_params(val.len(), false);
        let losses = |u: &wgpu::Buffer| {
            vec![
                k("bernoulli_rec_forward").launch(gpu, &[bind(0, u), bind(2, &logits), bind(3, &x), bind(4, &rec)], groups_of_64(b)),
                k("gaussian_kl_forward").launch(gpu, &[bind(0, &train_latent), bind(2, mulv), bind(7, &kl)], groups_of_64(b)),
            ]
        };
        let finish = |u: &wgpu::Buffer| {
            k("finish_step").launch(gpu, &[bind(0, u), bind(1, &counters), bind(4, &rec), bind(6, &kl), bind(7, &totals)], [1, 1, 1])
        };

        let encoder_forward = network::forward_path(gpu, kernels, &params_buf, &model.encoder, b, &x, &enc);
        let decoder_forward = network::forward_path(gpu, kernels, &params_buf, &model.decoder, b, &z, &dec);

        // The training step, in order. Gradients are of the batch's summed loss, as pytorch/examples.
        let mut train_step = vec![gather(&train_split, steps_per_epoch * b)]; // x = batch of images
        train_step.extend(encoder_forward.iter().cloned()); //                  mulv = encoder(x)
        train_step.push(reparam_forward(&train_latent)); //                     z = mu + sigma eps
        train_step.extend(decoder_forward.iter().cloned()); //                  logits = decoder(z)
        train_step.extend(losses(&train_loss)); //                              rec, kl per row
        train_step.push(k("bernoulli_rec_backward").launch(                     // dlogits
            gpu, &[bind(0, &train_loss), bind(2, &logits), bind(3, &x), bind(5, &d_dec[model.decoder.len() - 1])],
            groups_of_64(b * input)));
        for (i, l) in model.decoder.iter().enumerate().rev() { //              decoder backward -> dz
            let input = if i == 0 { &z } else { &dec[i - 1] };
            let d_input = if i == 0 { &dz } else { &d_dec[i - 1] };
            train_step.extend(backward(l, input, &d_dec[i], Some(d_input)));
        }
        let d_mulv = d_enc.last().expect("encoder has a layer");
        train_step.push(k("reparam_backward").launch( //                       dmulv = dz through the sample
            gpu, &[bind(0, &train_latent), bind(2, mulv), bind(3, &eps), bind(5, &dz), bind(6, d_mulv)],
            groups_of_64(b * latent)));
        train_step.push(k("gaussian_kl_backward").launch( //                   dmulv += dkl
            gpu, &[bind(0, &train_latent), bind(2, mulv), bind(6, d_mulv)], groups_of_64(b * latent)));
        for (i, l) in model.encoder.iter().enumerate().rev() { //              encoder backward
            let input = if i == 0 { &x } else { &enc[i - 1] };
            let d_input = if i == 0 { None } else { Some(&d_enc[i - 1]) };
            train_step.extend(backward(l, input, &d_enc[i], d_input));
        }
        let adam = AdamParams {
            count: model.param_count as u32, lr: settings.adam.lr, beta1: settings.adam.beta1,
            beta2: settings.adam.beta2, eps: settings.adam.eps, pad: [0; 3],
        };
        let adam_u = uniform("adam params", bytemuck::bytes_of(&adam));
        train_step.push(k("adam_step").launch( //                              params -= Adam(grads)
            gpu, &[bind(0, &adam_u), bind(1, &counters), bind(2, &grads), bind(3, &params_buf), bind(4, &adam_m), bind(5, &adam_v)],
            groups_of_64(model.param_count)));
        train_step.push(finish(&train_loss)); //                               totals += losses; step += 1

        // Evaluation: the same forward with its own random stream, no backward.
        // Encoding validation images: their posterior means and log-variances in mulv.
        let mut encode = vec![gather(&val_split, val.len())];
        encode.extend(encoder_forward.iter().cloned());

        let mut eval_step = vec![gather(&val_split, val.len())];
        eval_step.extend(encoder_forward.iter().cloned());
        eval_step.push(reparam_forward(&eval_latent));
        eval_step.extend(decoder_forward.iter().cloned());
        eval_step.extend(losses(&eval_loss));
        eval_step.push(finish(&eval_loss));

        GpuTrainer {
            model, settings, steps_per_epoch, params: params_buf, grads, adam_m, adam_v, counters, totals,
            train: train_split, val: val_split, x, z, logits, mulv: mulv.clone(), train_step, encode, eval_step,
            decode: decoder_forward,
        }
    }

    /// Starts a pass: resets the batch cursor and the loss totals (and sets the order, if given).
    fn start_pass(&self, gpu: &Gpu, split_order: Option<(&GpuSplit, &[u32])>) {
        if let Some((split, order)) = split_order {
            gpu.queue.write_buffer(&split.order, 0, bytemuck::cast_slice(order));
        }
        gpu.queue.write_buffer(&self.counters, 4, bytemuck::bytes_of(&0u32));
        gpu.queue.write_buffer(&self.totals, 0, bytemuck::bytes_of(&LossTotals::default()));
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
        gpu.queue.write_buffer(&self.counters, 4, bytemuck::bytes_of(&cursor));
        gpu.queue.write_buffer(&self.totals, 0, bytemuck::bytes_of(&totals));
    }

    /// Puts a checkpoint's training state back: weights, Adam's moments and the optimizer step.
    pub fn restore(&self, gpu: &Gpu, params: &[f32], adam_m: &[f32], adam_v: &[f32], optimizer_step: u32) {
        gpu.queue.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        gpu.queue.write_buffer(&self.adam_m, 0, bytemuck::cast_slice(adam_m));
        gpu.queue.write_buffer(&self.adam_v, 0, bytemuck::cast_slice(adam_v));
        let counters = Counters { step: optimizer_step, ..Counters::new() };
        gpu.queue.write_buffer(&self.counters, 0, bytemuck::bytes_of(&counters));
    }

    /// (params, Adam m, Adam v), each in the flat layout of model.rs.
    pub fn read_training_state(&self, gpu: &Gpu) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        (gpu::read_all(gpu, &self.params), gpu::read_all(gpu, &self.adam_m), gpu::read_all(gpu, &self.adam_v))
    }

    /// q(z|x) of validation images `picks`: rows [mu | logvar], [picks.len(), 2 * latent].
    pub fn encode(&self, gpu: &Gpu, picks: &[u32]) -> Vec<f32> {
        let b = self.settings.batch;
        let width = 2 * self.model.arch.latent;
        let identity = self.val_identity_order();
        let mut out = Vec::with_capacity(picks.len() * width);
        for chunk in picks.chunks(b) {
            let mut order = identity.clone();
            order[..chunk.len()].copy_from_slice(chunk);
            self.start_pass(gpu, Some((&self.val, &order)));
            submit(gpu, &[&self.encode]);
            out.extend(gpu::read::<f32>(gpu, &self.mulv, 0, chunk.len() * width));
        }
        gpu.queue.write_buffer(&self.val.order, 0, bytemuck::cast_slice(&identity));
        out
    }

    /// Records `steps` training steps into one submission. No readback.
    pub fn train_steps(&self, gpu: &Gpu, steps: usize) {
        let lists: Vec<&[Launch]> = (0..steps).map(|_| self.train_step.as_slice()).collect();
        submit(gpu, &lists);
    }

    /// The current pass's loss totals (waits for the GPU).
    pub fn totals(&self, gpu: &Gpu) -> LossTotals {
        gpu::read::<LossTotals>(gpu, &self.totals, 0, 1)[0]
    }

    pub fn counters(&self, gpu: &Gpu) -> Counters {
        gpu::read::<Counters>(gpu, &self.counters, 0, 1)[0]
    }

    /// Negative ELBO totals over the whole validation split (z sampled, as pytorch/examples).
    pub fn evaluate(&self, gpu: &Gpu) -> LossTotals {
        self.start_pass(gpu, None);
        let steps = self.val.rows.div_ceil(self.settings.batch);
        let lists: Vec<&[Launch]> = (0..steps).map(|_| self.eval_step.as_slice()).collect();
        submit(gpu, &lists);
        self.totals(gpu)
    }

    /// Validation images `picks`: (inputs, reconstruction probabilities), each [picks.len(), input],
    /// z sampled from q(z|x) as in training. Restores the validation order afterwards.
    pub fn reconstruct(&self, gpu: &Gpu, picks: &[u32]) -> (Vec<f32>, Vec<f32>) {
        let input = self.model.arch.input;
        let identity = self.val_identity_order();
        let (mut x, mut probs) = (Vec::new(), Vec::new());
        for chunk in picks.chunks(self.settings.batch) {
            let mut order = identity.clone();
            order[..chunk.len()].copy_from_slice(chunk);
            self.start_pass(gpu, Some((&self.val, &order)));
            submit(gpu, &[&self.eval_step]);
            x.extend(gpu::read::<f32>(gpu, &self.x, 0, chunk.len() * input));
            probs.extend(gpu::read::<f32>(gpu, &self.logits, 0, chunk.len() * input).iter().map(|&l| sigmoid(l)));
        }
        gpu.queue.write_buffer(&self.val.order, 0, bytemuck::cast_slice(&identity));
        (x, probs)
    }

    /// The validation pass's order buffer as built: 0..rows, padded with the last index.
    fn val_identity_order(&self) -> Vec<u32> {
        let len = self.val.rows.div_ceil(self.settings.batch) * self.settings.batch;
        (0..len as u32).map(|i| i.min(self.val.rows as u32 - 1)).collect()
    }

    /// Decoder output probabilities [n, input] for latents z [n, latent].
    pub fn decode(&self, gpu: &Gpu, z: &[f32]) -> Vec<f32> {
        let latent = self.model.arch.latent;
        let b = self.settings.batch;
        let mut out = Vec::with_capacity(z.len() / latent * self.model.arch.input);
        for chunk in z.chunks(b * latent) {
            gpu.queue.write_buffer(&self.z, 0, bytemuck::cast_slice(chunk));
            submit(gpu, &[&self.decode]);
            let rows = chunk.len() / latent;
            out.extend(gpu::read::<f32>(gpu, &self.logits, 0, rows * self.model.arch.input).iter().map(|&l| sigmoid(l)));
        }
        out
    }

    pub fn read_params(&self, gpu: &Gpu) -> Vec<f32> {
        gpu::read_all(gpu, &self.params)
    }

    pub fn read_grads(&self, gpu: &Gpu) -> Vec<f32> {
        gpu::read_all(gpu, &self.grads)
    }

    /// The training step's launches in order, for the benchmark's per-kernel timing.
    pub fn train_step_launches(&self) -> &[Launch] {
        &self.train_step
    }

    /// Adam's first and second moments (same layout as the parameters).
    pub fn optimizer_state(&self) -> (&wgpu::Buffer, &wgpu::Buffer) {
        (&self.adam_m, &self.adam_v)
    }
}

pub fn sigmoid(l: f32) -> f32 {
    1.0 / (1.0 + (-l).exp())
}
