//! Launch builders the trainer, the refiner and the importance sampler share, so each sequence is
//! written once: the batch gather and the end of a step (loss totals, cursor, step counter).
use crate::data::Binarize;
use crate::gpu::kernels::bind;
use crate::gpu::params::{GatherParams, STREAM_BINARIZE};
use crate::gpu::{self, Gpu, Kernels, Launch};
use crate::shaders::{self, Entry};

/// x [rows, pixels] = the decoder targets of the next `rows` images of a pass: `order` [pass_rows]
/// read at the cursor in `counters`, images packed 4 pixels a word; rows past the pass are 0.
pub struct Gather<'a> {
    pub images: &'a wgpu::Buffer,
    pub order: &'a wgpu::Buffer,
    pub counters: &'a wgpu::Buffer,
    pub x: &'a wgpu::Buffer,
    pub rows: usize,
    pub pixels: usize,
    pub pass_rows: usize,
    /// How grey levels become targets, with the run's seed for the Bernoulli draws.
    pub binarize: Binarize,
    pub seed: u32,
}

impl Gather<'_> {
    pub fn launch(&self, gpu: &Gpu, kernels: &Kernels) -> Launch {
        let p = GatherParams {
            batch: self.rows as u32,
            words: (self.pixels / 4) as u32,
            pass_rows: self.pass_rows as u32,
            binarize: self.binarize.code(),
            seed: self.seed,
            stream: STREAM_BINARIZE,
            pad: [0; 2],
        };
        let u = gpu::uniform_with(gpu, "gather params", &p);
        use shaders::data::{COUNTERS, IMAGES, ORDER, PARAMS, X};
        kernels.get(Entry::GatherBatch).launch_over(
            gpu,
            &[
                bind(PARAMS, &u),
                bind(COUNTERS, self.counters),
                bind(IMAGES, self.images),
                bind(ORDER, self.order),
                bind(X, self.x),
            ],
            self.rows * self.pixels / 4,
        )
    }
}

/// Where a step's losses go: rec and kl per row are added to `totals` (LossTotals), and `counters`
/// (Counters) moves on, as `params` (LossParams) says.
pub struct StepEnd<'a> {
    pub counters: &'a wgpu::Buffer,
    pub rec: &'a wgpu::Buffer,
    pub kl: &'a wgpu::Buffer,
    pub totals: &'a wgpu::Buffer,
}

impl StepEnd<'_> {
    /// finish_step: one invocation sums the rows, so the totals are the same on every adapter.
    pub fn launch(&self, gpu: &Gpu, kernels: &Kernels, params: &wgpu::Buffer) -> Launch {
        use shaders::loss::{COUNTERS, KL, PARAMS, REC, TOTALS};
        kernels.get(Entry::FinishStep).launch(
            gpu,
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
