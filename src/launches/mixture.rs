//! shaders/mixture.wgsl: EM for a mixture of pixel products. The E-step unpacks a chunk of images
//! and turns the linear product's logits into responsibilities and log p(x); the statistics pass
//! adds the chunk's sums to the totals; the M-step turns the totals into the parameters and their
//! natural form (nat, what the E-step's linear layer reads). MixtureParams in every `params`.
use crate::gpu::kernels::bind;
use crate::gpu::{Launch, Launcher};
use crate::shaders::mixture::{
    IMAGES, LOGITS, LOGLIK, LOG_WEIGHTS, MEANS, MIXTURE_LANES, NAT, PARAMS, STATS, TOTALS, VARIANCES, X,
};
use crate::shaders::Entry;

/// The state EM keeps between iterations: the statistics' totals [K, stats], the natural
/// parameters `nat` (the E-step layer's weights and bias), means and variances [K, D], log weights [K].
pub struct MixtureState<'a> {
    pub totals: &'a wgpu::Buffer,
    pub nat: &'a wgpu::Buffer,
    pub means: &'a wgpu::Buffer,
    pub variances: &'a wgpu::Buffer,
    pub log_weights: &'a wgpu::Buffer,
}

/// x [rows, features] from a chunk's packed image bytes.
pub fn unpack(
    l: Launcher,
    params: &wgpu::Buffer,
    images: &wgpu::Buffer,
    x: &wgpu::Buffer,
    (rows, pixels): (usize, usize),
) -> Launch {
    let grid = [pixels.div_ceil(MIXTURE_LANES as usize) as u32, rows as u32, 1];
    l.grid(Entry::MixtureUnpack, &[bind(PARAMS, params), bind(IMAGES, images), bind(X, x)], grid)
}

/// Responsibilities in place of `logits` [rows, K] and log p(x) per row into `loglik`.
pub fn responsibilities(
    l: Launcher,
    params: &wgpu::Buffer,
    logits: &wgpu::Buffer,
    loglik: &wgpu::Buffer,
    rows: usize,
) -> Launch {
    let binds = [bind(PARAMS, params), bind(LOGITS, logits), bind(LOGLIK, loglik)];
    l.over(Entry::MixtureResponsibilities, &binds, rows)
}

/// totals += the chunk's statistics `stats` (`len` values).
pub fn accumulate(
    l: Launcher,
    params: &wgpu::Buffer,
    stats: &wgpu::Buffer,
    totals: &wgpu::Buffer,
    len: usize,
) -> Launch {
    l.over(Entry::MixtureAccumulate, &[bind(PARAMS, params), bind(STATS, stats), bind(TOTALS, totals)], len)
}

/// The M-step from the totals: means and variances (a workgroup row per component, padded to
/// `components`), then the log weights and nat.
pub fn m_step(
    l: Launcher,
    params: &wgpu::Buffer,
    s: &MixtureState,
    (components, pixels): (usize, usize),
) -> Vec<Launch> {
    let binds = [
        bind(PARAMS, params),
        bind(TOTALS, s.totals),
        bind(NAT, s.nat),
        bind(MEANS, s.means),
        bind(VARIANCES, s.variances),
        bind(LOG_WEIGHTS, s.log_weights),
    ];
    let lanes = MIXTURE_LANES as usize;
    vec![
        l.grid(Entry::MixtureMStep, &binds[..5], [pixels.div_ceil(lanes) as u32, components as u32, 1]),
        l.grid(Entry::MixtureLogWeights, &binds, [components as u32, 1, 1]),
    ]
}
