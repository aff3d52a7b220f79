//! shaders/importance.wgsl: the importance-sampled estimate of log p(x), a chunk of samples at a
//! time. Draws z_k from the proposal with log p(z_k) - log q(z_k|x) per row, adds log p(x|z_k) as
//! the decoder's likelihood gives it, and folds each image's log w into running log-sum-exps.
use crate::gpu::kernels::bind;
use crate::gpu::{Launch, Launcher};
use crate::model::Decoder;
use crate::shaders::importance::{LOGITS, LOG_RATIO, LOG_W, MULV, PARAMS, RESULT, STATE, X, Z};
use crate::shaders::Entry;

/// `rows` = images x samples of one chunk (IwParams in `params`): z [rows, latent], log_ratio and
/// log_w [rows]; per image, x [images, pixels], the running state and the results [ks, n, 3].
pub struct ImportanceRows<'a> {
    pub rows: usize,
    pub images: usize,
    pub params: &'a wgpu::Buffer,
    pub z: &'a wgpu::Buffer,
    pub log_ratio: &'a wgpu::Buffer,
    pub x: &'a wgpu::Buffer,
    pub log_w: &'a wgpu::Buffer,
    pub state: &'a wgpu::Buffer,
    pub result: &'a wgpu::Buffer,
}

impl ImportanceRows<'_> {
    /// z_k ~ q(z|x) given the encoder's [mu | logvar] rows `mulv` [images, 2 latent], or ~ p(z)
    /// when `mulv` is None; with log p(z_k) - log q(z_k|x) (0 from the prior).
    pub fn sample(&self, l: Launcher, mulv: Option<&wgpu::Buffer>) -> Launch {
        let (params, z, log_ratio) = (bind(PARAMS, self.params), bind(Z, self.z), bind(LOG_RATIO, self.log_ratio));
        match mulv {
            Some(mulv) => l.over(Entry::IwSample, &[params, bind(MULV, mulv), z, log_ratio], self.rows),
            None => l.over(Entry::IwSamplePrior, &[params, z, log_ratio], self.rows),
        }
    }

    /// log w = log_ratio + log p(x|z), the decoder's `logits` read as `decoder` says.
    pub fn log_weight(&self, l: Launcher, decoder: Decoder, logits: &wgpu::Buffer) -> Launch {
        let binds = [
            bind(PARAMS, self.params),
            bind(LOG_RATIO, self.log_ratio),
            bind(LOGITS, logits),
            bind(X, self.x),
            bind(LOG_W, self.log_w),
        ];
        let entry = match decoder {
            Decoder::Bernoulli => Entry::IwLogWeight,
            Decoder::Gaussian => Entry::IwLogWeightGaussian,
        };
        l.over(entry, &binds, self.rows)
    }

    /// Each image's running log-sum-exp over its samples so far, and its results at each K the
    /// chunk completes: an invocation per image on CPU adapters, a workgroup per image on GPUs.
    pub fn accumulate(&self, l: Launcher) -> Launch {
        let binds =
            [bind(PARAMS, self.params), bind(LOG_W, self.log_w), bind(STATE, self.state), bind(RESULT, self.result)];
        match l.plan().tree_reductions() {
            false => l.over(Entry::IwAccumulate, &binds, self.images),
            true => l.grid(Entry::IwAccumulateRows, &binds, l.gpu.grid_1d(self.images * 64)),
        }
    }
}
