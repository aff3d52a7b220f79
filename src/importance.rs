//! The importance-sampled estimate of -log p(x) on the GPU (shaders/importance.wgsl), over a
//! split of images: the encoder runs once per batch of images (for the encoder's proposal), then
//! samples go through the decoder in chunks of at most ROWS rows, each chunk folded into a running
//! log-sum-exp. Several K are measured in one pass: the chunks are cut at each K, which writes its
//! result and sampling goes on, so K = 10's samples are the first 10 of K = 100's.
//! Memory is bounded by ROWS whatever K is; the host reads only the final per-image results.
use crate::data::Binarize;
use crate::gpu::kernels::{bind, submit};
use crate::gpu::params::Counters;
use crate::gpu::params::IwParams;
use crate::gpu::{self, Gpu, ImageShards, Kernels, Launch, Launcher};
use crate::launches::Gather;
use crate::model::Model;
use crate::network;
use crate::shaders::{self, Entry};

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
    let per_row = model.decoder.iter().filter_map(|l| crate::network::conv::gemm_sizes(l, 1)).map(|s| s.0).max();
    per_row.map_or(ROWS, |bytes| ROWS.min((PATCH_BYTES / bytes.max(1)) as usize).max(1))
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
    /// (`images`, packed as by gpu::images_with), to estimate at each K of `ks` with `proposal`.
    /// `binarize` and `data_seed` must be the training run's, so the targets x are what the model
    /// was fitted to.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        model: &Model,
        params: &wgpu::Buffer,
        image_buf: &ImageShards,
        (ks, proposal): (&[usize], Proposal),
        binarize: Binarize,
        data_seed: u32,
        seed: u32,
    ) -> ImportanceSampler {
        let l = Launcher { gpu, kernels };
        let n = image_buf.images;
        let mut ks = ks.to_vec();
        ks.sort_unstable();
        ks.dedup();
        let k = *ks.last().expect("at least one K");
        let (images, chunk) = plan(k, n, chunk_rows(model));
        let rows = images * chunk;
        let (latent, pixels) = (model.arch.latent, model.arch.input());
        let order = gpu::storage_with(
            gpu,
            "iw order",
            &(0..n.div_ceil(images) * images).map(|i| i.min(n - 1) as u32).collect::<Vec<_>>(),
        );
        let counters = gpu::storage_with(gpu, "iw counters", &[Counters::new()]);
        let x = gpu::storage_zeroed(gpu, "iw x", images * pixels * 4);
        let enc = match proposal {
            Proposal::Encoder => network::activations(gpu, "iw encoder out ", &model.encoder, images),
            Proposal::Prior => Vec::new(),
        };
        let z = gpu::storage_zeroed(gpu, "iw z", rows * latent * 4);
        let dec = network::activations(gpu, "iw decoder out ", &model.decoder, rows);
        let log_ratio = gpu::storage_zeroed(gpu, "iw log ratio", rows * 4);
        let log_w = gpu::storage_zeroed(gpu, "iw log w", rows * 4);
        let state = gpu::storage_zeroed(gpu, "iw state", images * 16);
        let result = gpu::storage_zeroed(gpu, "iw result", ks.len() * n * 12);
        let iw = IwParams {
            images: 0,
            samples: 0,
            latent: latent as u32,
            pixels: pixels as u32,
            first_image: 0,
            first_sample: 0,
            total_samples: k as u32,
            seed,
            result_offset: 0,
        };
        let params_u = gpu::uniform_with(gpu, "iw params", &iw);

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
        // One chunk: z_k ~ proposal -> logits = decoder(z_k) -> log w_k -> running log-sum-exp.
        let mut chunk_launches = match proposal {
            Proposal::Encoder => {
                encode.extend(network::forward_path(l, params, &model.encoder, images, &x, &enc));
                let mulv = enc.last().expect("the encoder's proposal needs an encoder");
                let binds = [
                    bind(shaders::importance::PARAMS, &params_u),
                    bind(shaders::importance::MULV, mulv),
                    bind(shaders::importance::Z, &z),
                    bind(shaders::importance::LOG_RATIO, &log_ratio),
                ];
                vec![kernels.get(Entry::IwSample).launch_over(gpu, &binds, rows)]
            }
            Proposal::Prior => {
                let binds = [
                    bind(shaders::importance::PARAMS, &params_u),
                    bind(shaders::importance::Z, &z),
                    bind(shaders::importance::LOG_RATIO, &log_ratio),
                ];
                vec![kernels.get(Entry::IwSamplePrior).launch_over(gpu, &binds, rows)]
            }
        };
        chunk_launches.extend(network::forward_path(l, params, &model.decoder, rows, &z, &dec));
        chunk_launches.push(kernels.get(model.arch.decoder.log_weight_kernel()).launch_over(
            gpu,
            &[
                bind(shaders::importance::PARAMS, &params_u),
                bind(shaders::importance::LOG_RATIO, &log_ratio),
                bind(shaders::importance::LOGITS, logits),
                bind(shaders::importance::X, &x),
                bind(shaders::importance::LOG_W, &log_w),
            ],
            rows,
        ));
        // The running log-sum-exps: an invocation per image on CPU adapters, a workgroup per image
        // on GPUs.
        let accumulate = [
            bind(shaders::importance::PARAMS, &params_u),
            bind(shaders::importance::LOG_W, &log_w),
            bind(shaders::importance::STATE, &state),
            bind(shaders::importance::RESULT, &result),
        ];
        chunk_launches.push(match gpu.plan().tree_reductions() {
            false => kernels.get(Entry::IwAccumulate).launch_over(gpu, &accumulate, images),
            true => kernels.get(Entry::IwAccumulateRows).launch(gpu, &accumulate, gpu.grid_1d(images * 64)),
        });

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
    pub fn run(&self, gpu: &Gpu, mut progress: impl FnMut(usize)) -> Vec<ImportanceResult> {
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
                        0 => submit(gpu, &[&self.encode, &self.chunk_launches]),
                        _ => submit(gpu, &[&self.chunk_launches]),
                    });
                    first_sample += samples;
                }
            }
            // Waiting (a poll, not a readback) one batch behind keeps the queue short and the
            // progress honest.
            if let Some((submission, done)) = previous.take() {
                gpu::wait_for(gpu, submission);
                progress(done);
            }
            first_image += images;
            previous = last.map(|submission| (submission, first_image));
        }
        gpu::wait(gpu);
        progress(self.n);
        let flat: Vec<f32> = gpu::read(gpu, &self.result, 0, self.ks.len() * self.n * 3);
        let column = |block: &[f32], c: usize| block.iter().skip(c).step_by(3).copied().collect();
        self.ks
            .iter()
            .zip(flat.chunks(self.n * 3))
            .map(|(&k, block)| ImportanceResult {
                k,
                nll: column(block, 0),
                neg_elbo: column(block, 1),
                ess: column(block, 2),
            })
            .collect()
    }
}
