//! CPU mirrors of shaders/rows.wgsl: per-input rows to per-sample rows and back; row r belongs
//! to input r / samples.

/// [inputs * samples, width] from [inputs, width], each row repeated.
pub fn repeat_rows(src: &[f32], inputs: usize, samples: usize, width: usize) -> Vec<f32> {
    (0..inputs * samples * width).map(|e| src[(e / width / samples) * width + e % width]).collect()
}

/// [inputs, width]: the sum of each input's sample rows.
pub fn sum_row_groups(src: &[f32], inputs: usize, samples: usize, width: usize) -> Vec<f32> {
    (0..inputs * width)
        .map(|e| (0..samples).map(|k| src[((e / width) * samples + k) * width + e % width]).sum())
        .collect()
}
