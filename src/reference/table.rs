//! CPU mirrors of shaders/table.wgsl: per-datapoint variational parameters.
use crate::gpu::params::Counters;
use crate::gpu::params::TableParams;

/// mulv [batch, width] = the batch's rows of table (0 for padding rows).
pub fn gather_table_rows(p: &TableParams, table: &[f32], order: &[u32], counters: &Counters) -> Vec<f32> {
    let w = p.width as usize;
    (0..p.batch as usize * w)
        .map(|e| {
            let row = counters.cursor as usize + e / w;
            if row >= p.pass_rows as usize {
                0.0
            } else {
                table[order[row] as usize * w + e % w]
            }
        })
        .collect()
}

/// Adam on the batch's rows of table, gradient dmulv, t = step x updates_per_step + update_index + 1.
pub fn table_adam_step(
    p: &TableParams,
    table: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    dmulv: &[f32],
    order: &[u32],
    counters: &Counters,
) {
    let w = p.width as usize;
    let t = (counters.step * p.updates_per_step + p.update_index + 1) as f32;
    for e in 0..p.batch as usize * w {
        let row = counters.cursor as usize + e / w;
        if row >= p.pass_rows as usize {
            continue;
        }
        let at = order[row] as usize * w + e % w;
        let g = dmulv[e];
        m[at] = p.beta1 * m[at] + (1.0 - p.beta1) * g;
        v[at] = p.beta2 * v[at] + (1.0 - p.beta2) * g * g;
        let (m_hat, v_hat) = (m[at] / (1.0 - p.beta1.powf(t)), v[at] / (1.0 - p.beta2.powf(t)));
        table[at] -= p.lr * m_hat / (v_hat.sqrt() + p.eps);
    }
}
