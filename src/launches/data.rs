//! shaders/data.wgsl: the batch's images and labels, gathered on the GPU from the resident dataset.
use crate::data::Binarize;
use crate::gpu::kernels::bind;
use crate::gpu::params::{GatherParams, STREAM_BINARIZE};
use crate::gpu::{ImageShards, Launch, Launcher};
use crate::network::linear::tiled::GatheredInput;
use crate::shaders::{data, Entry};

/// x [rows, pixels] = the decoder targets of the next `rows` images of a pass: `order` [pass_rows]
/// read at the cursor in `counters`, images packed 4 pixels a word; rows past the pass are 0.
pub struct Gather<'a> {
    pub images: &'a ImageShards,
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
    /// One launch per shard: each writes the rows whose images it holds.
    pub fn launches(&self, l: Launcher) -> Vec<Launch> {
        use data::{COUNTERS, IMAGES, ORDER, PARAMS, X};
        let shard = |(images, first, count): &(wgpu::Buffer, usize, usize)| {
            let u = l.uniform("gather params", &self.params(*first, *count));
            let binds = [
                bind(PARAMS, &u),
                bind(COUNTERS, self.counters),
                bind(IMAGES, images),
                bind(ORDER, self.order),
                bind(X, self.x),
            ];
            l.over(Entry::GatherBatch, &binds, self.rows * self.pixels / 4)
        };
        self.images.shards.iter().map(shard).collect()
    }

    /// The gather's parameters for the shard of `count` images from image `first`.
    pub fn params(&self, first: usize, count: usize) -> GatherParams {
        GatherParams {
            batch: self.rows as u32,
            words: (self.pixels / 4) as u32,
            pass_rows: self.pass_rows as u32,
            binarize: self.binarize.code(),
            seed: self.seed,
            stream: STREAM_BINARIZE,
            first_image: first as u32,
            shard_images: count as u32,
        }
    }

    /// The gather as a first layer's product can do it inside itself: where the images are one shard.
    pub fn in_one_shard(&self) -> Option<GatheredInput<'_>> {
        let [(images, first, count)] = self.images.shards.as_slice() else { return None };
        let (order, counters, x) = (self.order, self.counters, self.x);
        Some(GatheredInput { images, order, counters, x, params: self.params(*first, *count) })
    }
}

/// y [rows] = the labels of the same `rows` images of the pass as Gather takes.
pub fn gather_labels(
    l: Launcher,
    (labels, order, counters): (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
    rows: usize,
    pass_rows: usize,
    y: &wgpu::Buffer,
) -> Launch {
    let p = GatherParams {
        batch: rows as u32,
        words: 0,
        pass_rows: pass_rows as u32,
        binarize: 0,
        seed: 0,
        stream: 0,
        first_image: 0,
        shard_images: 0,
    };
    let u = l.uniform("gather labels params", &p);
    use data::{COUNTERS, LABELS, ORDER, PARAMS, Y};
    l.over(
        Entry::GatherLabels,
        &[bind(PARAMS, &u), bind(COUNTERS, counters), bind(ORDER, order), bind(LABELS, labels), bind(Y, y)],
        rows,
    )
}
