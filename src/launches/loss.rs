//! shaders/loss.wgsl: -log p(x|z) per row and its gradient, and the end of a step.
use crate::gpu::kernels::bind;
use crate::gpu::params::LossParams;
use crate::gpu::{Launch, Launcher};
use crate::model::Decoder;
use crate::shaders::{loss, Entry};

/// Where a step's losses go: rec and kl per row are added to `totals` (LossTotals), and `counters`
/// (Counters) moves on, as `params` (LossParams) says.
pub struct StepEnd<'a> {
    pub counters: &'a wgpu::Buffer,
    pub rec: &'a wgpu::Buffer,
    pub kl: &'a wgpu::Buffer,
    pub totals: &'a wgpu::Buffer,
}

impl StepEnd<'_> {
    /// finish_step: one invocation sums the rows on CPU adapters; on GPUs (finish_step_tree) a
    /// workgroup's lanes sum every 64th row and a tree adds them. Within a family the totals are the
    /// same on every adapter.
    pub fn launch(&self, l: Launcher, params: &wgpu::Buffer) -> Launch {
        use loss::{COUNTERS, KL, PARAMS, REC, TOTALS};
        let entry = match l.plan().tree_reductions() {
            false => Entry::FinishStep,
            true => Entry::FinishStepTree,
        };
        l.grid(
            entry,
            &[
                bind(PARAMS, params),
                bind(COUNTERS, self.counters),
                bind(REC, self.rec),
                bind(KL, self.kl),
                bind(TOTALS, self.totals),
            ],
            [1, 1, 1],
        )
    }
}

/// The reconstruction term over `rows` decoder rows: logits [rows, outputs per pixel x pixels] of x
/// [rows / repeat, pixels] (LossParams says repeat), rec [rows] = -log p(x|z), and its gradient
/// dlogits weighted per row by coef [rows].
pub struct Reconstruction<'a> {
    pub decoder: Decoder,
    pub logits: &'a wgpu::Buffer,
    pub x: &'a wgpu::Buffer,
    pub rec: &'a wgpu::Buffer,
    pub rows: usize,
    pub pixels: usize,
}

impl Reconstruction<'_> {
    /// rec [rows]: an invocation per row on CPU adapters, a workgroup per row on GPUs.
    pub fn forward(&self, l: Launcher, params: &wgpu::Buffer) -> Launch {
        use loss::{LOGITS, PARAMS, REC, X};
        let binds = [bind(PARAMS, params), bind(LOGITS, self.logits), bind(X, self.x), bind(REC, self.rec)];
        match l.plan().tree_reductions() {
            false => l.over(kernels(self.decoder).0, &binds, self.rows),
            true => l.grid(forward_rows_kernel(self.decoder), &binds, l.gpu.grid_1d(self.rows * 64)),
        }
    }

    /// rec [rows] and dlogits = coef d(rec)/d(logits) in one launch of a workgroup per row: for GPU
    /// adapters, where coef is fixed before rec (an ELBO's). CPU adapters run `forward` then
    /// `backward`, whose elementwise launch suits lavapipe's lanes better.
    pub fn forward_backward(
        &self,
        l: Launcher,
        params: &wgpu::Buffer,
        dlogits: &wgpu::Buffer,
        coef: &wgpu::Buffer,
    ) -> Launch {
        use loss::{COEF, DLOGITS, LOGITS, PARAMS, REC, X};
        let binds = [
            bind(PARAMS, params),
            bind(LOGITS, self.logits),
            bind(X, self.x),
            bind(REC, self.rec),
            bind(DLOGITS, dlogits),
            bind(COEF, coef),
        ];
        let entry = forward_backward_rows_kernel(self.decoder);
        l.grid(entry, &binds, l.gpu.grid_1d(self.rows * 64))
    }

    /// dlogits = coef d(rec)/d(logits), one invocation per pixel of each row.
    pub fn backward(&self, l: Launcher, params: &wgpu::Buffer, dlogits: &wgpu::Buffer, coef: &wgpu::Buffer) -> Launch {
        let (_, backward) = kernels(self.decoder);
        use loss::{COEF, DLOGITS, LOGITS, PARAMS, X};
        l.over(
            backward,
            &[
                bind(PARAMS, params),
                bind(LOGITS, self.logits),
                bind(X, self.x),
                bind(DLOGITS, dlogits),
                bind(COEF, coef),
            ],
            self.rows * self.pixels,
        )
    }
}

/// LossParams of a pass over `pass_rows` inputs, `rows` decoder rows a step (`repeat` per input).
pub fn loss_params(
    l: Launcher,
    rows: usize,
    pixels: usize,
    pass_rows: usize,
    repeat: usize,
    training: bool,
    fixed_batch: bool,
) -> wgpu::Buffer {
    let p = LossParams {
        rows: rows as u32,
        pixels: pixels as u32,
        pass_rows: pass_rows as u32,
        training: training as u32,
        repeat: repeat as u32,
        fixed_batch: fixed_batch as u32,
        pad: [0; 2],
    };
    l.uniform("loss params", &p)
}

/// Entry points of -log p(x|z) and its gradient.
fn kernels(decoder: Decoder) -> (Entry, Entry) {
    match decoder {
        Decoder::Bernoulli => (Entry::BernoulliRecForward, Entry::BernoulliRecBackward),
        Decoder::Gaussian => (Entry::GaussianRecForward, Entry::GaussianRecBackward),
    }
}

/// The forward kernel with a workgroup per row (for GPU adapters).
fn forward_rows_kernel(decoder: Decoder) -> Entry {
    match decoder {
        Decoder::Bernoulli => Entry::BernoulliRecForwardRows,
        Decoder::Gaussian => Entry::GaussianRecForwardRows,
    }
}

/// The forward and backward in one kernel with a workgroup per row (for GPU adapters).
fn forward_backward_rows_kernel(decoder: Decoder) -> Entry {
    match decoder {
        Decoder::Bernoulli => Entry::BernoulliRecForwardBackwardRows,
        Decoder::Gaussian => Entry::GaussianRecForwardBackwardRows,
    }
}
