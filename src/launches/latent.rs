//! shaders/latent.wgsl: the Gaussian latent's reparameterized sample and its KL terms, forward and
//! backward, over the buffers of `rows` rows.
use crate::gpu::kernels::bind;
use crate::gpu::{Launch, Launcher};
use crate::shaders::{latent, Entry};

/// A Gaussian q(z|x) over `rows` rows: mulv [rows, 2 latent] (mu then logvar per row) and its
/// gradient d_mulv, eps and z [rows, latent] and dz; `counters` gives the optimizer step.
pub struct GaussianRows<'a> {
    pub rows: usize,
    pub latent: usize,
    pub counters: &'a wgpu::Buffer,
    pub mulv: &'a wgpu::Buffer,
    pub d_mulv: &'a wgpu::Buffer,
    pub eps: &'a wgpu::Buffer,
    pub z: &'a wgpu::Buffer,
    pub dz: &'a wgpu::Buffer,
}

use latent::{COUNTERS, DMULV, DPRIOR, DZ, EPS, GATE, KL, MULV, PARAMS, PRIOR, Z};

impl GaussianRows<'_> {
    /// z = mu + exp(logvar / 2) eps with fresh eps (4 per invocation), as `params` (LatentParams) says.
    pub fn reparam_forward(&self, l: Launcher, params: &wgpu::Buffer) -> Launch {
        l.over(
            Entry::ReparamForward,
            &[
                bind(PARAMS, params),
                bind(COUNTERS, self.counters),
                bind(MULV, self.mulv),
                bind(EPS, self.eps),
                bind(Z, self.z),
            ],
            (self.rows * self.latent).div_ceil(4),
        )
    }

    /// d_mulv = dz through the sample (overwrites d_mulv).
    pub fn reparam_backward(&self, l: Launcher, params: &wgpu::Buffer) -> Launch {
        l.over(
            Entry::ReparamBackward,
            &[
                bind(PARAMS, params),
                bind(MULV, self.mulv),
                bind(EPS, self.eps),
                bind(DZ, self.dz),
                bind(DMULV, self.d_mulv),
            ],
            self.rows * self.latent,
        )
    }

    /// kl [rows] = KL(q || N(0, I)).
    pub fn kl_forward(&self, l: Launcher, params: &wgpu::Buffer, kl: &wgpu::Buffer) -> Launch {
        l.over(Entry::GaussianKlForward, &[bind(PARAMS, params), bind(MULV, self.mulv), bind(KL, kl)], self.rows)
    }

    /// d_mulv = dz through the sample + the weighted KL's gradient (beta and warm-up from
    /// `params`), in one launch; with `free_bits`, the dimensions whose mean KL is below params'
    /// free_bits first get gate 0 (free_bits_gate) and no KL gradient.
    pub fn reparam_kl_backward(&self, l: Launcher, params: &wgpu::Buffer, free_bits: bool) -> Vec<Launch> {
        let mut binds = vec![
            bind(PARAMS, params),
            bind(COUNTERS, self.counters),
            bind(MULV, self.mulv),
            bind(EPS, self.eps),
            bind(DZ, self.dz),
            bind(DMULV, self.d_mulv),
        ];
        if !free_bits {
            return vec![l.over(Entry::ReparamKlBackward, &binds, self.rows * self.latent)];
        }
        let gate = crate::gpu::zeroed::<f32>(l.gpu, "free bits gate", self.latent);
        let decide =
            l.over(Entry::FreeBitsGate, &[bind(PARAMS, params), bind(MULV, self.mulv), bind(GATE, &gate)], self.latent);
        binds.push(bind(GATE, &gate));
        vec![decide, l.over(Entry::ReparamKlBackwardGated, &binds, self.rows * self.latent)]
    }

    /// kl [rows] = KL(q || p(z|y)), the prior's [mu | logvar] per row in `prior`.
    pub fn kl2_forward(&self, l: Launcher, params: &wgpu::Buffer, prior: &wgpu::Buffer, kl: &wgpu::Buffer) -> Launch {
        l.over(
            Entry::GaussianKl2Forward,
            &[bind(PARAMS, params), bind(MULV, self.mulv), bind(KL, kl), bind(PRIOR, prior)],
            self.rows,
        )
    }

    /// d_mulv += the weighted two-Gaussian KL's gradient in q; dprior = its gradient in the prior.
    pub fn kl2_backward(
        &self,
        l: Launcher,
        params: &wgpu::Buffer,
        prior: &wgpu::Buffer,
        d_prior: &wgpu::Buffer,
    ) -> Launch {
        l.over(
            Entry::GaussianKl2Backward,
            &[
                bind(PARAMS, params),
                bind(COUNTERS, self.counters),
                bind(MULV, self.mulv),
                bind(DMULV, self.d_mulv),
                bind(PRIOR, prior),
                bind(DPRIOR, d_prior),
            ],
            self.rows * self.latent,
        )
    }
}
