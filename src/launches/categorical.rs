//! shaders/categorical.wgsl: Gumbel-softmax samples of relaxed categorical latents and the KL to
//! the uniform prior, forward and backward.
use crate::gpu::kernels::bind;
use crate::gpu::{Launch, Launcher};
use crate::shaders::{categorical, Entry};
use categorical::{COUNTERS, DLOGITS, DZ, KL, LOGITS, NOISE, PARAMS, Z};

/// `rows` rows of `groups` categorical variables: logits [rows, latent] (latent = groups x
/// categories) and their gradient, the Gumbel noise and the relaxed sample z [rows, latent], dz.
pub struct CategoricalRows<'a> {
    pub rows: usize,
    pub groups: usize,
    pub counters: &'a wgpu::Buffer,
    pub logits: &'a wgpu::Buffer,
    pub d_logits: &'a wgpu::Buffer,
    pub noise: &'a wgpu::Buffer,
    pub z: &'a wgpu::Buffer,
    pub dz: &'a wgpu::Buffer,
}

impl CategoricalRows<'_> {
    /// z = softmax((logits + g) / tau), g Gumbel noise, tau annealed (`params`: CategoricalParams).
    pub fn sample(&self, l: Launcher, params: &wgpu::Buffer) -> Launch {
        l.over(
            Entry::GumbelSoftmaxForward,
            &[
                bind(PARAMS, params),
                bind(COUNTERS, self.counters),
                bind(LOGITS, self.logits),
                bind(NOISE, self.noise),
                bind(Z, self.z),
            ],
            self.rows * self.groups,
        )
    }

    /// d_logits = dz through the softmax (overwrites).
    pub fn sample_backward(&self, l: Launcher, params: &wgpu::Buffer) -> Launch {
        l.over(
            Entry::GumbelSoftmaxBackward,
            &[
                bind(PARAMS, params),
                bind(COUNTERS, self.counters),
                bind(Z, self.z),
                bind(DZ, self.dz),
                bind(DLOGITS, self.d_logits),
            ],
            self.rows * self.groups,
        )
    }

    /// kl [rows] = KL(q || uniform).
    pub fn kl_forward(&self, l: Launcher, params: &wgpu::Buffer, kl: &wgpu::Buffer) -> Launch {
        l.over(Entry::CategoricalKlForward, &[bind(PARAMS, params), bind(LOGITS, self.logits), bind(KL, kl)], self.rows)
    }

    /// d_logits += the weighted KL's gradient.
    pub fn kl_backward(&self, l: Launcher, params: &wgpu::Buffer) -> Launch {
        l.over(
            Entry::CategoricalKlBackward,
            &[
                bind(PARAMS, params),
                bind(COUNTERS, self.counters),
                bind(LOGITS, self.logits),
                bind(DLOGITS, self.d_logits),
            ],
            self.rows * self.groups,
        )
    }
}
