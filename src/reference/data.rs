//! CPU mirrors of shaders/data.wgsl: the batch gathered from the dataset, and its labels.
use crate::data::Binarize;
use crate::gpu::params::Counters;
use crate::random::{philox4x32_10, uniform_open};

/// x [batch, pixels]'s rows whose image lies in the shard (first image, images) of the dataset,
/// from the shard's bytes [images, pixels] and the pass's order; padding rows are 0 and rows of
/// other shards' images are left as they are.
pub fn gather_batch(
    images: &[u8],
    (first_image, shard_images): (usize, usize),
    pixels: usize,
    order: &[u32],
    (batch, pass_rows): (usize, u32),
    (binarize, seed, stream): (Binarize, u32, u32),
    counters: &Counters,
    x: &mut [f32],
) {
    let words = pixels / 4;
    for b in 0..batch {
        let row = counters.cursor + b as u32;
        if row >= pass_rows {
            x[b * pixels..(b + 1) * pixels].fill(0.0);
            continue;
        }
        let image = order[row as usize] as usize;
        if image < first_image || image - first_image >= shard_images {
            continue;
        }
        for w in 0..words {
            let draw_step = if binarize == Binarize::Static { 0 } else { counters.step };
            let bits = philox4x32_10([(image * words + w) as u32, draw_step, 0, stream], [seed, 0]);
            for i in 0..4 {
                let p = images[(image - first_image) * pixels + 4 * w + i] as f32 / 255.0;
                x[b * pixels + 4 * w + i] = match binarize {
                    Binarize::None => p,
                    _ => (uniform_open(bits[i]) < p) as u32 as f32,
                };
            }
        }
    }
}

/// y [batch]: the labels of the batch's rows, 0 for padding rows.
pub fn gather_labels(labels: &[u32], order: &[u32], batch: usize, pass_rows: u32, counters: &Counters) -> Vec<u32> {
    (0..batch)
        .map(|b| {
            let row = counters.cursor + b as u32;
            if row < pass_rows {
                labels[order[row as usize] as usize]
            } else {
                0
            }
        })
        .collect()
}
