//! CPU mirrors of shaders/im2col.wgsl, in its Conv2d geometry ("in" [batch, c_in, h_in, w_in] is
//! what the taps read, "out" [batch, c_out, h_out, w_out] what they write): col [batch h_out w_out,
//! c_in k k], rows [batch h_out w_out, c_out]. col2im is written as a scatter over the col entries,
//! the other way round from the kernel's gather.
use super::conv::{mask, relu_if, sizes};
use crate::gpu::params::ConvDims;

/// Visits every col entry as (its flat index, the flat index of the "in" value it holds, if any).
fn col_entries(d: &ConvDims, mut f: impl FnMut(usize, Option<usize>)) {
    let [b, c_in, h_in, w_in, _, h_out, w_out, k, s, p] = sizes(d);
    let mut at = 0;
    for n in 0..b {
        for oy in 0..h_out {
            for ox in 0..w_out {
                for ci in 0..c_in {
                    for ky in 0..k {
                        for kx in 0..k {
                            let (iy, ix) = ((oy * s + ky) as isize - p as isize, (ox * s + kx) as isize - p as isize);
                            let inside = iy >= 0 && ix >= 0 && (iy as usize) < h_in && (ix as usize) < w_in;
                            let source = ((n * c_in + ci) * h_in + iy.max(0) as usize) * w_in + ix.max(0) as usize;
                            f(at, inside.then_some(source));
                            at += 1;
                        }
                    }
                }
            }
        }
    }
}

/// col = the patches of an "in" map x.
pub fn im2col(d: &ConvDims, x: &[f32]) -> Vec<f32> {
    let [b, c_in, _, _, _, h_out, w_out, k, ..] = sizes(d);
    let mut col = vec![0.0; b * h_out * w_out * c_in * k * k];
    col_entries(d, |at, source| col[at] = source.map_or(0.0, |i| x[i]));
    col
}

fn col2im(d: &ConvDims, col: &[f32]) -> Vec<f32> {
    let [b, c_in, h_in, w_in, ..] = sizes(d);
    let mut x = vec![0.0; b * c_in * h_in * w_in];
    col_entries(d, |at, source| {
        if let Some(i) = source {
            x[i] += col[at];
        }
    });
    x
}

/// act(col2im(col) + bias[channel]), an "in" map.
pub fn col2im_bias(d: &ConvDims, col: &[f32], bias: &[f32]) -> Vec<f32> {
    let plane = (d.h_in * d.w_in) as usize;
    let mut x = col2im(d, col);
    for (i, v) in x.iter_mut().enumerate() {
        *v += bias[(i / plane) % d.c_in as usize];
    }
    relu_if(&mut x, d.relu != 0);
    x
}

/// col2im(col), zero where `mask_by` (an "in" map, a ReLU output) is 0 when d.relu.
pub fn col2im_masked(d: &ConvDims, col: &[f32], mask_by: &[f32]) -> Vec<f32> {
    let mut x = col2im(d, col);
    mask(&mut x, mask_by, d.relu != 0);
    x
}

/// Every value of an "out" map as (its NCHW index, its index in rows [batch h_out w_out, c_out]).
fn nchw_and_row_indices(d: &ConvDims) -> impl Iterator<Item = (usize, usize)> {
    let (b, c, plane) = (d.rows as usize, d.c_out as usize, (d.h_out * d.w_out) as usize);
    (0..b * c * plane).map(move |i| {
        let (n, ch, p) = (i / (c * plane), (i / plane) % c, i % plane);
        (i, (n * plane + p) * c + ch)
    })
}

/// rows [batch h_out w_out, c_out] of an "out" map y [batch, c_out, h_out, w_out].
pub fn nchw_to_rows(d: &ConvDims, y: &[f32]) -> Vec<f32> {
    let mut rows = vec![0.0; y.len()];
    nchw_and_row_indices(d).for_each(|(at, row)| rows[row] = y[at]);
    rows
}

/// The "out" map of `rows`, zero where `mask_by` (the same map, a ReLU output) is 0 when d.relu.
pub fn rows_to_nchw(d: &ConvDims, rows: &[f32], mask_by: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; rows.len()];
    nchw_and_row_indices(d).for_each(|(at, row)| y[at] = rows[row]);
    mask(&mut y, mask_by, d.relu != 0);
    y
}
