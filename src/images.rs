//! Greyscale PNG grids of images with values in [0, 1].
use std::path::Path;

use anyhow::Result;

const PAD: usize = 2;

/// Writes `images` [n, h * w] as a grid with `cols` columns, atomically (files::write_png).
pub fn write_grid(path: &Path, images: &[f32], n: usize, (h, w): (usize, usize), cols: usize) -> Result<()> {
    let rows = n.div_ceil(cols);
    let (width, height) = (cols * (w + PAD) + PAD, rows * (h + PAD) + PAD);
    let mut pixels = vec![64u8; width * height];
    for i in 0..n {
        let (r, c) = (i / cols, i % cols);
        for y in 0..h {
            for x in 0..w {
                let v = images[i * h * w + y * w + x].clamp(0.0, 1.0);
                pixels[(PAD + r * (h + PAD) + y) * width + PAD + c * (w + PAD) + x] = (v * 255.0).round() as u8;
            }
        }
    }
    crate::files::write_png(path, &pixels, (width as u32, height as u32), image::ExtendedColorType::L8)
}
