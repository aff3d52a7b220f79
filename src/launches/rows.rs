//! shaders/rows.wgsl: per-input rows to per-sample rows and back.
use crate::gpu::kernels::bind;
use crate::gpu::params::RowParams;
use crate::gpu::{Launch, Launcher};
use crate::shaders::{rows, Entry};

/// RowParams: `inputs` rows of `width`, `samples` rows per input on the per-sample side.
pub fn row_params(l: Launcher, inputs: usize, samples: usize, width: usize) -> wgpu::Buffer {
    let p = RowParams { inputs: inputs as u32, samples: samples as u32, width: width as u32, pad: 0 };
    l.uniform("row params", &p)
}

/// dst [inputs x samples, width] = each row of src [inputs, width] repeated `samples` times.
pub fn repeat_rows(l: Launcher, params: &wgpu::Buffer, src: &wgpu::Buffer, dst: &wgpu::Buffer, n: usize) -> Launch {
    l.over(Entry::RepeatRows, &[bind(rows::PARAMS, params), bind(rows::SRC, src), bind(rows::DST, dst)], n)
}

/// dst [inputs, width] = the sum of each input's `samples` rows of src.
pub fn sum_row_groups(l: Launcher, params: &wgpu::Buffer, src: &wgpu::Buffer, dst: &wgpu::Buffer, n: usize) -> Launch {
    l.over(Entry::SumRowGroups, &[bind(rows::PARAMS, params), bind(rows::SRC, src), bind(rows::DST, dst)], n)
}
