//! shaders/samples.wgsl: several samples per input. Log importance weights, IWAE's normalised
//! weights and the gradient through them, and the score-function estimator with its baseline.
use crate::gpu::kernels::bind;
use crate::gpu::{Launch, Launcher};
use crate::shaders::{samples, Entry};
use samples::{BASELINE, COEF, COUNTERS, DMULV, DZ, EPS, LOG_W, MULV, PARAMS, REC, Z};

/// `rows` = inputs x samples rows (SampleParams in `params`): q's mulv [rows, 2 latent] and its
/// gradient, eps, z, dz [rows, latent]; rec, log_w and coef [rows]; the running-mean baseline.
pub struct SampleRows<'a> {
    pub rows: usize,
    pub latent: usize,
    pub params: &'a wgpu::Buffer,
    pub counters: &'a wgpu::Buffer,
    pub mulv: &'a wgpu::Buffer,
    pub d_mulv: &'a wgpu::Buffer,
    pub eps: &'a wgpu::Buffer,
    pub z: &'a wgpu::Buffer,
    pub dz: &'a wgpu::Buffer,
    pub rec: &'a wgpu::Buffer,
    pub log_w: &'a wgpu::Buffer,
    pub coef: &'a wgpu::Buffer,
    pub baseline: &'a wgpu::Buffer,
}

impl SampleRows<'_> {
    /// log w = log p(x|z) + log p(z) - log q(z|x) per row.
    pub fn log_weight(&self, l: Launcher) -> Launch {
        l.over(
            Entry::LogWeightForward,
            &[
                bind(PARAMS, self.params),
                bind(COUNTERS, self.counters),
                bind(MULV, self.mulv),
                bind(EPS, self.eps),
                bind(Z, self.z),
                bind(REC, self.rec),
                bind(LOG_W, self.log_w),
            ],
            self.rows,
        )
    }

    /// coef = each input's softmax of log w over its samples (one invocation per input).
    pub fn iwae_weights(&self, l: Launcher, inputs: usize) -> Launch {
        l.over(Entry::IwaeWeights, &[bind(PARAMS, self.params), bind(LOG_W, self.log_w), bind(COEF, self.coef)], inputs)
    }

    /// d_mulv through z, log p(z) and log q(z|x), each row weighted by coef.
    pub fn sampled_latent_backward(&self, l: Launcher) -> Launch {
        l.over(
            Entry::SampledLatentBackward,
            &[
                bind(PARAMS, self.params),
                bind(MULV, self.mulv),
                bind(EPS, self.eps),
                bind(Z, self.z),
                bind(COEF, self.coef),
                bind(DZ, self.dz),
                bind(DMULV, self.d_mulv),
            ],
            self.rows * self.latent,
        )
    }

    /// d_mulv = -(f - b) grad log q(z|x) / samples, f = log w, b the control variate.
    pub fn score_backward(&self, l: Launcher) -> Launch {
        l.over(
            Entry::ScoreBackward,
            &[
                bind(PARAMS, self.params),
                bind(MULV, self.mulv),
                bind(EPS, self.eps),
                bind(LOG_W, self.log_w),
                bind(DMULV, self.d_mulv),
                bind(BASELINE, self.baseline),
            ],
            self.rows * self.latent,
        )
    }

    /// The running mean of f moves towards this batch's mean: one invocation on CPU adapters, a
    /// workgroup and a tree on GPUs.
    pub fn score_baseline_update(&self, l: Launcher) -> Launch {
        let entry = match l.plan().tree_reductions() {
            false => Entry::ScoreBaselineUpdate,
            true => Entry::ScoreBaselineUpdateTree,
        };
        l.grid(entry, &[bind(PARAMS, self.params), bind(LOG_W, self.log_w), bind(BASELINE, self.baseline)], [1, 1, 1])
    }
}
