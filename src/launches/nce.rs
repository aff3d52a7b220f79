//! shaders/nce.wgsl: noise-contrastive estimation against a mixture q. Noise rows are drawn from
//! q (a component per row, then its pixels), the Gaussian's E-step reads [x, x^2] features, and
//! the loss classifies each data row against its k noise rows from the scores o and log q.
//! R = (1 + k) B rows; NceParams in `params`.
use crate::gpu::kernels::{bind, Bind};
use crate::gpu::{Launch, Launcher};
use crate::shaders::nce::{
    COMPONENT, COUNTERS, D_SCORE, FEATURES, LOG_Q, LOG_WEIGHTS, MEANS, NCE_LANES, PARAMS, ROW_CORRECT, ROW_LOSS, SCORE,
    STDS, TOTALS, X,
};
use crate::shaders::Entry;

/// The buffers of a step: the noise q (log weights [K], means and stds [K, D]), each noise row's
/// component [R], rows x [R, D], scores o, log q and d o [R], per data row the loss and right
/// classifications [B], the pass's NceTotals.
pub struct NceRows<'a> {
    pub params: &'a wgpu::Buffer,
    pub counters: &'a wgpu::Buffer,
    pub log_weights: &'a wgpu::Buffer,
    pub means: &'a wgpu::Buffer,
    pub stds: &'a wgpu::Buffer,
    pub component: &'a wgpu::Buffer,
    pub x: &'a wgpu::Buffer,
    pub score: &'a wgpu::Buffer,
    pub log_q: &'a wgpu::Buffer,
    pub d_score: &'a wgpu::Buffer,
    pub row_loss: &'a wgpu::Buffer,
    pub row_correct: &'a wgpu::Buffer,
    pub totals: &'a wgpu::Buffer,
}

impl NceRows<'_> {
    fn binds(&self, names: &[u32]) -> Vec<Bind<'_>> {
        let all = [
            bind(PARAMS, self.params),
            bind(COUNTERS, self.counters),
            bind(LOG_WEIGHTS, self.log_weights),
            bind(MEANS, self.means),
            bind(STDS, self.stds),
            bind(COMPONENT, self.component),
            bind(X, self.x),
            bind(SCORE, self.score),
            bind(LOG_Q, self.log_q),
            bind(D_SCORE, self.d_score),
            bind(ROW_LOSS, self.row_loss),
            bind(ROW_CORRECT, self.row_correct),
            bind(TOTALS, self.totals),
        ];
        all.into_iter().filter(|b| names.contains(&b.binding)).collect()
    }

    /// x's `noise_rows` noise rows ~ q: a component per row, then its `pixels` pixels.
    pub fn draw_noise(&self, l: Launcher, noise_rows: usize, pixels: usize) -> Vec<Launch> {
        let components = self.binds(&[PARAMS, COUNTERS, LOG_WEIGHTS, COMPONENT]);
        let sample = self.binds(&[PARAMS, COUNTERS, MEANS, STDS, COMPONENT, X]);
        let quads = pixels.div_ceil(4).div_ceil(NCE_LANES as usize);
        vec![
            l.over(Entry::NcePickComponents, &components, noise_rows),
            l.grid(Entry::NceSamplePixels, &sample, [quads as u32, noise_rows as u32, 1]),
        ]
    }

    /// features [rows, 2D] = [x, x^2], what the Gaussian mixture's E-step layer reads.
    pub fn features(&self, l: Launcher, features: &wgpu::Buffer, rows: usize, pixels: usize) -> Launch {
        let mut binds = self.binds(&[PARAMS, X]);
        binds.push(bind(FEATURES, features));
        let groups = pixels.div_ceil(NCE_LANES as usize) as u32;
        l.grid(Entry::NceFeatures, &binds, [groups, rows as u32, 1])
    }

    /// d o [R] and the loss and right classifications of each of the `batch` data rows.
    pub fn loss(&self, l: Launcher, batch: usize) -> Launch {
        let binds = self.binds(&[PARAMS, COUNTERS, SCORE, LOG_Q, D_SCORE, ROW_LOSS, ROW_CORRECT]);
        l.over(Entry::NceLoss, &binds, batch)
    }

    /// The pass totals += the batch's; the cursor (and in training the step) moves on.
    pub fn finish_step(&self, l: Launcher) -> Launch {
        let binds = self.binds(&[PARAMS, COUNTERS, ROW_LOSS, ROW_CORRECT, TOTALS]);
        l.grid(Entry::NceFinishStep, &binds, [1, 1, 1])
    }
}
