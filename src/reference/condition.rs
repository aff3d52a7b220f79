//! CPU mirrors of shaders/condition.wgsl: columns moved between buffers of rows, and a
//! class-conditional VAE's one-hot class block.

/// dst[r, dst_offset + c] = src[r, src_offset + c] for c < count.
#[allow(clippy::too_many_arguments)]
pub fn copy_columns(
    src: &[f32],
    dst: &mut [f32],
    rows: usize,
    src_width: usize,
    dst_width: usize,
    count: usize,
    src_offset: usize,
    dst_offset: usize,
) {
    for r in 0..rows {
        for c in 0..count {
            dst[r * dst_width + dst_offset + c] = src[r * src_width + src_offset + c];
        }
    }
}

/// dst[r, dst_offset + c] = [c == labels[r / repeat]] for c < count.
pub fn one_hot_columns(
    labels: &[u32],
    dst: &mut [f32],
    rows: usize,
    dst_width: usize,
    count: usize,
    dst_offset: usize,
    repeat: usize,
) {
    for r in 0..rows {
        for c in 0..count {
            dst[r * dst_width + dst_offset + c] = (labels[r / repeat] == c as u32) as u32 as f32;
        }
    }
}
