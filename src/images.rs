//! PNG grids of images with values in [0, 1]: greyscale for one channel, RGB for three (the images
//! channel-major, [c][h][w], as the model sees them).
use std::path::Path;

use anyhow::Result;

use crate::data::ImageShape;

const PAD: usize = 2;

/// A grid of images as 8-bit pixels, row-major, `channels` per pixel (1 or 3).
pub struct Grid {
    pub pixels: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
}

impl Grid {
    /// `images` [n, shape.pixels()] in `cols` columns, on a dark grey ground.
    pub fn new(images: &[f32], n: usize, shape: ImageShape, cols: usize) -> Grid {
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
        Grid { pixels, width, height, channels }
    }

    /// The pixels as RGBA, opaque: what a canvas's ImageData holds.
    pub fn rgba(&self) -> Vec<u8> {
        self.pixels
            .chunks(self.channels)
            .flat_map(|p| if self.channels == 3 { [p[0], p[1], p[2], 255] } else { [p[0], p[0], p[0], 255] })
            .collect()
    }
}

impl Grid {
    /// The grid as a PNG file's bytes.
    pub fn png(&self) -> Result<Vec<u8>> {
        let colour = if self.channels == 3 { image::ExtendedColorType::Rgb8 } else { image::ExtendedColorType::L8 };
        crate::files::png_bytes(&self.pixels, (self.width as u32, self.height as u32), colour)
    }
}

/// Writes `images` [n, shape.pixels()] as a grid with `cols` columns, atomically.
pub fn write_grid(path: &Path, images: &[f32], n: usize, shape: ImageShape, cols: usize) -> Result<()> {
    crate::files::write_atomic(path, &Grid::new(images, n, shape, cols).png()?)
}

/// Rows of 8 inputs, each followed by a row of their reconstructions, as one list of images for
/// a grid of 8 columns.
pub fn reconstruction_rows(x: &[f32], probs: &[f32], n: usize, shape: ImageShape) -> Vec<f32> {
    let pixels = shape.pixels();
    let mut grid = Vec::with_capacity(2 * n * pixels);
    for start in (0..n).step_by(8) {
        let end = (start + 8).min(n);
        grid.extend_from_slice(&x[start * pixels..end * pixels]);
        grid.resize(grid.len() + (8 - (end - start)) * pixels, 0.0);
        grid.extend_from_slice(&probs[start * pixels..end * pixels]);
        grid.resize(grid.len() + (8 - (end - start)) * pixels, 0.0);
    }
    grid
}

/// Rows of 8 inputs, each followed by a row of their reconstructions.
pub fn write_reconstructions(path: &Path, x: &[f32], probs: &[f32], n: usize, shape: ImageShape) -> Result<()> {
    let grid = reconstruction_rows(x, probs, n, shape);
    write_grid(path, &grid, grid.len() / shape.pixels(), shape, 8)
}
