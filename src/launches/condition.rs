//! shaders/condition.wgsl: columns moved between buffers of rows, and a conditional model's
//! one-hot class block.
use crate::gpu::kernels::bind;
use crate::gpu::params::ColumnParams;
use crate::gpu::{Launch, Launcher};
use crate::shaders::{condition, Entry};

/// Some columns of a buffer of rows: (buffer, row width, first column).
pub type Columns<'a> = (&'a wgpu::Buffer, usize, usize);

/// dst's `count` columns from dst's first = src's `count` columns from src's first, over `n` rows.
pub fn copy_columns(
    l: Launcher,
    n: usize,
    (src, src_w, src_off): Columns,
    (dst, dst_w, dst_off): Columns,
    count: usize,
) -> Launch {
    let p = ColumnParams {
        rows: n as u32,
        src_width: src_w as u32,
        dst_width: dst_w as u32,
        count: count as u32,
        src_offset: src_off as u32,
        dst_offset: dst_off as u32,
        repeat: 1,
        pad: 0,
    };
    let u = l.uniform("column params", &p);
    use condition::{DST, PARAMS, SRC};
    l.over(Entry::CopyColumns, &[bind(PARAMS, &u), bind(SRC, src), bind(DST, dst)], n * count)
}

/// dst's `classes` columns from its first = onehot(labels), one label per `repeat` rows, over `n` rows.
pub fn one_hot_columns(
    l: Launcher,
    n: usize,
    labels: &wgpu::Buffer,
    repeat: usize,
    classes: usize,
    (dst, dst_w, dst_off): Columns,
) -> Launch {
    let p = ColumnParams {
        rows: n as u32,
        src_width: 0,
        dst_width: dst_w as u32,
        count: classes as u32,
        src_offset: 0,
        dst_offset: dst_off as u32,
        repeat: repeat as u32,
        pad: 0,
    };
    let u = l.uniform("one-hot params", &p);
    use condition::{DST, LABELS, PARAMS};
    l.over(Entry::OneHotColumns, &[bind(PARAMS, &u), bind(DST, dst), bind(LABELS, labels)], n * classes)
}
