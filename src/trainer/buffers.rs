//! Every buffer the trainer owns, allocated for the modes the run uses and no others.
//! Shapes: B = batch, R = B x samples (one row per sample of z), D = pixels per image, Z = latent,
//! E = the encoder's outputs per row (2Z: [mu | logvar], or Z categorical logits), C = the class
//! block of a conditional model (its class count rounded up to a multiple of 4).
use crate::config::TrainSettings;
use crate::data::Split;
use crate::gpu::params::{Counters, LossTotals};
use crate::gpu::{self, Gpu, ImageShards};
use crate::model::Model;
use crate::network;

/// One split of the data, resident on the GPU.
pub struct GpuSplit {
    pub images: ImageShards,  // [n, D / 4] u32, 4 values a word, in shards of whole images
    pub labels: wgpu::Buffer, // [n] u32
    pub order: wgpu::Buffer,  // [pass rows] u32 image indices, the pass's order
    pub rows: usize,
}

impl GpuSplit {
    /// Uploads `split`, with an order of `order_len` rows: 0..n, padded with the last index.
    pub fn new(gpu: &Gpu, name: &str, split: &Split, order_len: usize) -> GpuSplit {
        let labels: Vec<u32> = split.labels.iter().map(|&l| l as u32).collect();
        let order: Vec<u32> = (0..order_len as u32).map(|i| i.min(split.len() as u32 - 1)).collect();
        GpuSplit {
            images: ImageShards::new(gpu, &format!("{name} images"), &split.images, split.pixels),
            labels: gpu::storage_with(gpu, &format!("{name} labels"), &labels),
            order: gpu::storage_with(gpu, &format!("{name} order"), &order),
            rows: split.len(),
        }
    }
}

pub struct Buffers {
    pub params: wgpu::Buffer, // every weight and bias, layout in model.rs
    pub grads: wgpu::Buffer,  // the same layout
    pub adam_m: wgpu::Buffer, // Adam's moments, the same layout
    pub adam_v: wgpu::Buffer,
    pub counters: wgpu::Buffer, // Counters: optimizer step, batch cursor, first non-finite step
    pub totals: wgpu::Buffer,   // LossTotals of the current pass
    pub baseline: wgpu::Buffer, // [running mean of f, initialised]: the score estimator's control variate
    pub x: wgpu::Buffer,        // [B, D] the gathered batch
    pub enc: Vec<wgpu::Buffer>, // [B, outputs] per encoder layer; the last is q's parameters [B, E]
    pub d_enc: Vec<wgpu::Buffer>,
    pub dec: Vec<wgpu::Buffer>, // [R, outputs] per decoder layer; the last is p(x|z)'s [R, D or 2D]
    pub d_dec: Vec<wgpu::Buffer>,
    pub mulv_s: wgpu::Buffer, // [R, E] q per sample (the encoder's own output when samples = 1)
    pub d_mulv_s: wgpu::Buffer,
    pub eps: wgpu::Buffer, // [R, Z] the noise of the sample (Gumbel noise for categorical latents)
    pub z: wgpu::Buffer,   // [R, Z]
    pub dz: wgpu::Buffer,
    pub rec: wgpu::Buffer,   // [R] -log p(x|z)
    pub kl: wgpu::Buffer,    // [R] the KL term of the row's input
    pub log_w: wgpu::Buffer, // [R] log importance weights (IWAE, score function)
    pub coef: wgpu::Buffer,  // [R] each row's weight in the objective: 1 / samples, or IWAE's weights
    pub cond: Option<ConditionBuffers>,
    pub table: Option<[wgpu::Buffer; 3]>, // per-datapoint: (mu, logvar) [training images, E], Adam m, v
}

/// A conditional model's: the inputs with the one-hot class block appended, and p(z|y).
pub struct ConditionBuffers {
    pub y: wgpu::Buffer,             // [B] u32 the batch's labels
    pub decode_labels: wgpu::Buffer, // [R] u32 the class of each row `decode` is given
    pub xc: wgpu::Buffer,            // [B, H + C] [h | onehot(y)], the input of encoder layer encoder_class_layer()
    pub d_xc: Option<wgpu::Buffer>,  // its gradient, when h is a layer's output (the conv VAE's map)
    pub zc: wgpu::Buffer,            // [R, Z + C] [z | onehot(y)], the decoder's input
    pub dzc: wgpu::Buffer,
    pub yc: wgpu::Buffer,        // [B, C] onehot(y), the prior layer's input
    pub prior: wgpu::Buffer,     // [B, 2Z] p(z|y)'s [mu | logvar]
    pub d_prior: wgpu::Buffer,   // its gradient
    pub prior_s: wgpu::Buffer,   // [R, 2Z] per sample (the per-input buffers when samples = 1)
    pub d_prior_s: wgpu::Buffer, // its gradient
}

impl Buffers {
    pub fn new(gpu: &Gpu, model: &Model, settings: &TrainSettings, params: &[f32], train_images: usize) -> Buffers {
        let (b, samples) = (settings.batch, settings.objective.samples);
        let rows = b * samples;
        let (input, latent, enc_out) = (model.arch.input(), model.arch.latent, model.arch.encoder_outputs());
        let zeroed = |label: &str, floats: usize| gpu::zeroed::<f32>(gpu, label, floats);
        let enc = network::activations(gpu, "encoder out ", &model.encoder, b);
        let d_enc = network::activations(gpu, "d encoder out ", &model.encoder, b);
        let per_sample = |label: &str, per_input: &wgpu::Buffer, width: usize| {
            if samples > 1 {
                zeroed(label, rows * width)
            } else {
                per_input.clone()
            }
        };
        let (mulv, d_mulv) = (enc.last().expect("an encoder layer"), d_enc.last().expect("an encoder layer"));
        let (mulv_s, d_mulv_s) =
            (per_sample("mulv per sample", mulv, enc_out), per_sample("d mulv per sample", d_mulv, enc_out));
        let cond = (model.prior.is_some()).then(|| {
            let (cb, class_layer) = (model.arch.class_block(), model.encoder_class_layer());
            let class_joined = model.encoder[class_layer].n_in;
            let (prior, d_prior) = (zeroed("prior mulv", b * 2 * latent), zeroed("d prior mulv", b * 2 * latent));
            ConditionBuffers {
                y: gpu::zeroed::<u32>(gpu, "labels y", b),
                decode_labels: gpu::zeroed::<u32>(gpu, "decode labels", rows),
                xc: zeroed("encoder input with class", b * class_joined),
                d_xc: (class_layer > 0).then(|| zeroed("d encoder input with class", b * class_joined)),
                zc: zeroed("z with class", rows * (latent + cb)),
                dzc: zeroed("dz with class", rows * (latent + cb)),
                yc: zeroed("one-hot class", b * cb),
                prior_s: per_sample("prior mulv per sample", &prior, 2 * latent),
                d_prior_s: per_sample("d prior mulv per sample", &d_prior, 2 * latent),
                prior,
                d_prior,
            }
        });
        let table = settings
            .objective
            .per_datapoint
            .map(|_| ["table", "table m", "table v"].map(|label| zeroed(label, train_images * enc_out)));
        Buffers {
            params: gpu::storage_with(gpu, "params", params),
            grads: zeroed("grads", model.param_count),
            adam_m: zeroed("adam m", model.param_count),
            adam_v: zeroed("adam v", model.param_count),
            counters: gpu::storage_with(gpu, "counters", &[Counters::new()]),
            totals: gpu::storage_with(gpu, "totals", &[LossTotals::default()]),
            baseline: zeroed("baseline", 2),
            x: zeroed("x", b * input),
            dec: network::activations(gpu, "decoder out ", &model.decoder, rows),
            d_dec: network::activations(gpu, "d decoder out ", &model.decoder, rows),
            enc,
            d_enc,
            mulv_s,
            d_mulv_s,
            eps: zeroed("eps", rows * latent),
            z: zeroed("z", rows * latent),
            dz: zeroed("dz", rows * latent),
            rec: zeroed("rec", rows),
            kl: zeroed("kl", rows),
            log_w: zeroed("log w", rows),
            coef: gpu::storage_with(gpu, "coef", &vec![1.0 / samples as f32; rows]),
            cond,
            table,
        }
    }

    /// q's parameters per input [B, E]: the encoder's last output.
    pub fn mulv(&self) -> &wgpu::Buffer {
        self.enc.last().expect("an encoder layer")
    }

    pub fn d_mulv(&self) -> &wgpu::Buffer {
        self.d_enc.last().expect("an encoder layer")
    }

    /// The decoder's output [R, D or 2D].
    pub fn logits(&self) -> &wgpu::Buffer {
        self.dec.last().expect("a decoder layer")
    }

    /// The decoder's input and its gradient: with the class block appended for a conditional model.
    pub fn decoder_inputs(&self) -> (&wgpu::Buffer, &wgpu::Buffer) {
        match &self.cond {
            Some(c) => (&c.zc, &c.dzc),
            None => (&self.z, &self.dz),
        }
    }
}
