//! PNG grids of images with values in [0, 1]: greyscale for one channel, RGB for three (the images
//! channel-major, [c][h][w], as the model sees them).
use std::path::Path;

use anyhow::Result;

use crate::data::ImageShape;

const PAD: usize = 2;

/// Writes `images` [n, shape.pixels()] as a grid with `cols` columns, atomically (files::write_png).
pub fn write_grid(path: &Path, images: &[f32], n: usize, shape: ImageShape, cols: usize) -> Result<()> {
    let (h, w, channels) = (shape.height, shape.width, shape.channels);
    let rows = n.div_ceil(cols);
    let (width, height) = (cols * (w + PAD) + PAD, rows * (h + PAD) + PAD);
    let mut pixels = vec![64u8; width * height * channels];
    for i in 0..n {
        let (r, c) = (i / cols, i % cols);
        for ch in 0..channels {
            for y in 0..h {
                for x in 0..w {
                    let v = images[i * shape.pixels() + (ch * h + y) * w + x].clamp(0.0, 1.0);
                    let at = (PAD + r * (h + PAD) + y) * width + PAD + c * (w + PAD) + x;
                    pixels[at * channels + ch] = (v * 255.0).round() as u8;
                }
            }
        }
    }
    let colour = if channels == 3 { image::ExtendedColorType::Rgb8 } else { image::ExtendedColorType::L8 };
    crate::files::write_png(path, &pixels, (width as u32, height as u32), colour)
}

/// Rows of 8 inputs, each followed by a row of their reconstructions.
pub fn write_reconstructions(path: &Path, x: &[f32], probs: &[f32], n: usize, shape: ImageShape) -> Result<()> {
    let pixels = shape.pixels();
    let mut grid = Vec::with_capacity(2 * n * pixels);
    for start in (0..n).step_by(8) {
        let end = (start + 8).min(n);
        grid.extend_from_slice(&x[start * pixels..end * pixels]);
        grid.resize(grid.len() + (8 - (end - start)) * pixels, 0.0);
        grid.extend_from_slice(&probs[start * pixels..end * pixels]);
        grid.resize(grid.len() + (8 - (end - start)) * pixels, 0.0);
    }
    write_grid(path, &grid, grid.len() / pixels, shape, 8)
}
