//! The importance-sampled estimate of -log p(x) on the GPU (shaders/importance.wgsl), over a
//! split of images: the encoder runs once per batch of images (for the encoder's proposal), then
//! samples go through the decoder in chunks of at most ROWS rows, each chunk folded into a running
//! log-sum-exp. Several K are measured in one pass: the chunks are cut at each K, which writes its
//! result and sampling goes on, so K = 10's samples are the first 10 of K = 100's.
//! Memory is bounded by ROWS whatever K is; the host reads only the final per-image results.
use crate::data::Binarize;
use crate::gpu::faults::GpuResult;
use crate::gpu::kernels::submit;
use crate::gpu::params::Counters;
use crate::gpu::params::IwParams;
use crate::gpu::{self, Gpu, ImageShards, Launch, Launcher};
use crate::launches::{Gather, ImportanceRows};
use crate::model::Model;
use crate::network;

/// Decoder rows per chunk: [ROWS, 784] logits are 12.8 MB.
pub const ROWS: usize = 4096;

/// Where the z_k come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Proposal {
    /// The encoder's q(z|x): importance sampling (Burda et al.); K = 1 is the ELBO.
    #[default]
    Encoder,
    /// The prior p(z), blind to x: naive Monte Carlo, w_k = p(x|z_k) (seed 001).
    Prior,
}

impl Proposal {
    pub fn name(self) -> &'static str {
        match self {
            Proposal::Encoder => "encoder",
            Proposal::Prior => "prior",
        }
    }
}

/// Per-image results over the split, for one K.
#[derive(Clone, Debug)]
pub struct ImportanceResult {
    pub k: usize,
    /// Estimate of -log p(x) per image, nats.
    pub nll: Vec<f32>,
    /// -(1/K) sum_k log w_k per image: the K-sample Monte Carlo negative ELBO, same samples.
    pub neg_elbo: Vec<f32>,
    /// Effective sample size (sum w)^2 / sum w^2 per image, in [1, K].
    pub ess: Vec<f32>,
}

/// How the work is cut: `images` per batch, and `chunk` samples per image per decoder launch.
pub fn plan(k: usize, n_images: usize, max_rows: usize) -> (usize, usize) {
    if k <= max_rows {
        ((max_rows / k).clamp(1, n_images.max(1)), k)
    } else {
        (1, k.div_ceil(k.div_ceil(max_rows)))
    }
}

/// The decoder rows per chunk for `model`: ROWS, fewer where a convolution's patch buffer (CPU
/// adapters, network/conv.rs) would pass PATCH_BYTES.
pub fn chunk_rows(model: &Model) -> usize {
    const PATCH_BYTES: u64 = 64 << 20;
    let per_row = model.decoder.iter().filter_map(|l| crate::network::conv_kinds::gemm_sizes(l, 1)).map(|s| s.0).max();
    per_row.map_or(ROWS, |bytes| ROWS.min((PATCH_BYTES / bytes.max(1)) as usize).max(1))
}

/// What the sampler estimates, with which draws.
pub struct Sampling<'a> {
    /// Samples per image at which to report the estimate; the largest is drawn.
    pub ks: &'a [usize],
    pub proposal: Proposal,
    /// The training run's binarization and data seed, so the targets x are what the model was
    /// fitted to.
    pub binarize: Binarize,
    pub data_seed: u32,
    /// The seed of the importance samples.
    pub seed: u32,
}

pub struct ImportanceSampler {
    images: usize,
    chunk: usize,
    params: wgpu::Buffer,   // IwParams, rewritten per chunk
    counters: wgpu::Buffer, // Counters: cursor = the batch's first image, for gather_batch
    result: wgpu::Buffer,   // [ks, n, 3]
    encode: Vec<Launch>,    // gather x (and the encoder -> mulv, for the encoder's proposal)
    chunk_launches: Vec<Launch>,
    n: usize,
    latent: usize,
    pixels: usize,
    seed: u32,
    ks: Vec<usize>, // ascending, distinct
}

impl ImportanceSampler {
    /// Binds the model's weights (`params`, model.rs layout) and the `n` images already on the GPU
    /// (`image_buf`, packed as by gpu::images_with), to estimate as `sampling` says.
    pub fn new(
        l: Launcher,
        (model, params): (&Model, &wgpu::Buffer),
        image_buf: &ImageShards,
        sampling: Sampling,
    ) -> ImportanceSampler {
        let Sampling { ks, proposal, binarize, data_seed, seed } = sampling;
        let gpu = l.gpu;
        let n = image_buf.images;
        let mut ks = ks.to_vec();
        ks.sort_unstable();
        ks.dedup();
        let k = *ks.last().expect("at least one K");
        let (images, chunk) = plan(k, n, chunk_rows(model));
        let rows = images * chunk;
        let (latent, pixels) = (model.arch.latent, model.arch.input());
        // 0..n, padded with the last image to whole batches of `images`.
        let order: Vec<u32> = (0..n.div_ceil(images) * images).map(|i| i.min(n - 1) as u32).collect();
        let order = gpu::storage_with(gpu, "iw order", &order);
        let counters = gpu::storage_with(gpu, "iw counters", &[Counters::new()]);
        let Scratch { x, enc, z, dec, log_ratio, log_w, state } = Scratch::new(gpu, model, proposal, (images, rows));
        let result = gpu::zeroed::<f32>(gpu, "iw result", ks.len() * n * 3);
        let params_u = gpu::uniform_with(gpu, "iw params", &iw_params(k, (latent, pixels), seed));

        let logits = dec.last().expect("decoder has a layer");
        let gather = Gather {
            images: image_buf,
            order: &order,
            counters: &counters,
            x: &x,
            rows: images,
            pixels,
            pass_rows: n,
            binarize,
            seed: data_seed,
        };
        let mut encode = gather.launches(l);
        let chunk_rows = ImportanceRows {
            rows,
            images,
            params: &params_u,
            z: &z,
            log_ratio: &log_ratio,
            x: &x,
            log_w: &log_w,
            state: &state,
            result: &result,
        };
        // One chunk: z_k ~ proposal -> logits = decoder(z_k) -> log w_k -> running log-sum-exp.
        let mulv = match proposal {
            Proposal::Encoder => {
                encode.extend(network::forward_path(l, params, &model.encoder, images, &x, &enc));
                Some(enc.last().expect("the encoder's proposal needs an encoder"))
            }
            Proposal::Prior => None,
        };
        let mut chunk_launches = vec![chunk_rows.sample(l, mulv)];
        chunk_launches.extend(network::forward_path(l, params, &model.decoder, rows, &z, &dec));
        chunk_launches.push(chunk_rows.log_weight(l, model.arch.decoder, logits));
        chunk_launches.push(chunk_rows.accumulate(l));

        ImportanceSampler {
            images,
            chunk,
            params: params_u,
            counters,
            result,
            encode,
            chunk_launches,
            n,
            latent,
            pixels,
            seed,
            ks,
        }
    }

    /// Runs every image of the split through the largest K's samples, writing each K's results on
    /// the way; `progress` is called with images done. One result per K, ascending.
    pub fn run(&self, gpu: &Gpu, mut progress: impl FnMut(usize)) -> GpuResult<Vec<ImportanceResult>> {
        let mut first_image = 0;
        // The previous batch's last submission and its image count: waited for once the next
        // batch is queued, so the GPU always has a batch to run while the host reports progress.
        let mut previous: Option<(wgpu::SubmissionIndex, usize)> = None;
        while first_image < self.n {
            let images = self.images.min(self.n - first_image);
            let cursor = Counters { cursor: first_image as u32, ..Counters::new() };
            gpu.queue.write_buffer(&self.counters, 0, bytemuck::bytes_of(&cursor));
            let mut first_sample = 0;
            let mut last = None;
            for (slot, &k) in self.ks.iter().enumerate() {
                while first_sample < k {
                    let samples = self.chunk.min(k - first_sample);
                    let p = IwParams {
                        images: images as u32,
                        samples: samples as u32,
                        latent: self.latent as u32,
                        pixels: self.pixels as u32,
                        first_image: first_image as u32,
                        first_sample: first_sample as u32,
                        total_samples: k as u32,
                        seed: self.seed,
                        result_offset: (slot * self.n * 3) as u32,
                    };
                    // Each write lands before the submit that follows it (wgpu orders them).
                    gpu.queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
                    last = Some(match first_sample {
                        0 => submit(gpu, &[&self.encode, &self.chunk_launches])?,
                        _ => submit(gpu, &[&self.chunk_launches])?,
                    });
                    first_sample += samples;
                }
            }
            // Waiting (a poll, not a readback) one batch behind keeps the queue short and the
            // progress honest.
            if let Some((submission, done)) = previous.take() {
                gpu::wait_for(gpu, submission)?;
                progress(done);
            }
            first_image += images;
            previous = last.map(|submission| (submission, first_image));
        }
        gpu::wait(gpu)?;
        progress(self.n);
        let flat: Vec<f32> = gpu::read(gpu, &self.result, 0, self.ks.len() * self.n * 3)?;
        let column = |block: &[f32], c: usize| block.iter().skip(c).step_by(3).copied().collect();
        Ok(self
            .ks
            .iter()
            .zip(flat.chunks(self.n * 3))
            .map(|(&k, block)| ImportanceResult {
                k,
                nll: column(block, 0),
                neg_elbo: column(block, 1),
                ess: column(block, 2),
            })
            .collect())
    }
}

/// The sampler's IwParams before the first chunk: `k` samples per image in all; the per-chunk
/// fields are written by `run`.
fn iw_params(k: usize, (latent, pixels): (usize, usize), seed: u32) -> IwParams {
    IwParams {
        images: 0,
        samples: 0,
        latent: latent as u32,
        pixels: pixels as u32,
        first_image: 0,
        first_sample: 0,
        total_samples: k as u32,
        seed,
        result_offset: 0,
    }
}

/// A chunk's buffers: x [images, pixels] and the encoder's outputs (for its proposal), z
/// [rows, latent] and the decoder's outputs, log_ratio and log_w [rows], each image's running
/// log-sum-exp state [images, 4].
struct Scratch {
    x: wgpu::Buffer,
    enc: Vec<wgpu::Buffer>,
    z: wgpu::Buffer,
    dec: Vec<wgpu::Buffer>,
    log_ratio: wgpu::Buffer,
    log_w: wgpu::Buffer,
    state: wgpu::Buffer,
}

impl Scratch {
    fn new(gpu: &Gpu, model: &Model, proposal: Proposal, (images, rows): (usize, usize)) -> Scratch {
        Scratch {
            x: gpu::zeroed::<f32>(gpu, "iw x", images * model.arch.input()),
            enc: match proposal {
                Proposal::Encoder => network::activations(gpu, "iw encoder out ", &model.encoder, images),
                Proposal::Prior => Vec::new(),
            },
            z: gpu::zeroed::<f32>(gpu, "iw z", rows * model.arch.latent),
            dec: network::activations(gpu, "iw decoder out ", &model.decoder, rows),
            log_ratio: gpu::zeroed::<f32>(gpu, "iw log ratio", rows),
            log_w: gpu::zeroed::<f32>(gpu, "iw log w", rows),
            state: gpu::zeroed::<f32>(gpu, "iw state", images * 4),
        }
    }
}
