//! The importance-sampled estimate of -log p(x) on the GPU (shaders/importance.wgsl), over a
//! split of images: the encoder runs once per batch of images, then K samples per image go through
//! the decoder in chunks of at most ROWS rows, each chunk folded into a running log-sum-exp.
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

/// Per-image results over the split.
#[derive(Clone, Debug)]
pub struct ImportanceResult {
    /// Estimate of -log p(x) per image, nats.
    pub nll: Vec<f32>,
    /// -(1/K) sum_k log w_k per image: the K-sample Monte Carlo negative ELBO, same samples.
    pub neg_elbo: Vec<f32>,
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
    result: wgpu::Buffer,   // [n, 2]
    encode: Vec<Launch>,    // gather x, encoder -> mulv
    chunk_launches: Vec<Launch>,
    n: usize,
    latent: usize,
    pixels: usize,
    seed: u32,
}

impl ImportanceSampler {
    /// Binds the model's weights (`params`, model.rs layout) and the `n` images already on the GPU
    /// (`images`, packed as by gpu::images_with). `binarize` and `data_seed` must be the training
    /// run's, so the targets x are what the model was fitted to.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        model: &Model,
        params: &wgpu::Buffer,
        image_buf: &ImageShards,
        k: usize,
        binarize: Binarize,
        data_seed: u32,
        seed: u32,
    ) -> ImportanceSampler {
        let l = Launcher { gpu, kernels };
        let n = image_buf.images;
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
        let enc = network::activations(gpu, "iw encoder out ", &model.encoder, images);
        let z = gpu::storage_zeroed(gpu, "iw z", rows * latent * 4);
        let dec = network::activations(gpu, "iw decoder out ", &model.decoder, rows);
        let log_ratio = gpu::storage_zeroed(gpu, "iw log ratio", rows * 4);
        let log_w = gpu::storage_zeroed(gpu, "iw log w", rows * 4);
        let state = gpu::storage_zeroed(gpu, "iw state", images * 16);
        let result = gpu::storage_zeroed(gpu, "iw result", n * 8);
        let iw = IwParams {
            images: 0,
            samples: 0,
            latent: latent as u32,
            pixels: pixels as u32,
            first_image: 0,
            first_sample: 0,
            total_samples: k as u32,
            seed,
        };
        let params_u = gpu::uniform_with(gpu, "iw params", &iw);

        let mulv = enc.last().expect("encoder has a layer");
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
        encode.extend(network::forward_path(l, params, &model.encoder, images, &x, &enc));

        // One chunk: z_k ~ q(z|x) -> logits = decoder(z_k) -> log w_k -> running log-sum-exp.
        let mut chunk_launches = vec![kernels.get(Entry::IwSample).launch_over(
            gpu,
            &[
                bind(shaders::importance::PARAMS, &params_u),
                bind(shaders::importance::MULV, mulv),
                bind(shaders::importance::Z, &z),
                bind(shaders::importance::LOG_RATIO, &log_ratio),
            ],
            rows,
        )];
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
        chunk_launches.push(kernels.get(Entry::IwAccumulate).launch_over(
            gpu,
            &[
                bind(shaders::importance::PARAMS, &params_u),
                bind(shaders::importance::LOG_W, &log_w),
                bind(shaders::importance::STATE, &state),
                bind(shaders::importance::RESULT, &result),
            ],
            images,
        ));

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
        }
    }

    /// Runs every image of the split through all K samples; `progress` is called with images done.
    pub fn run(&self, gpu: &Gpu, k: usize, mut progress: impl FnMut(usize)) -> ImportanceResult {
        let mut first_image = 0;
        while first_image < self.n {
            let images = self.images.min(self.n - first_image);
            let cursor = Counters { cursor: first_image as u32, ..Counters::new() };
            gpu.queue.write_buffer(&self.counters, 0, bytemuck::bytes_of(&cursor));
            let mut first_sample = 0;
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
                };
                gpu.queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
                if first_sample == 0 {
                    submit(gpu, &[&self.encode, &self.chunk_launches]);
                } else {
                    submit(gpu, &[&self.chunk_launches]);
                }
                first_sample += samples;
            }
            first_image += images;
            // Waiting here (a poll, not a readback) keeps the queue short and the progress honest.
            gpu::wait(gpu);
            progress(first_image);
        }
        let flat: Vec<f32> = gpu::read(gpu, &self.result, 0, self.n * 2);
        ImportanceResult {
            nll: flat.iter().step_by(2).copied().collect(),
            neg_elbo: flat.iter().skip(1).step_by(2).copied().collect(),
        }
    }
}
