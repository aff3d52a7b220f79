//! shaders/adam.wgsl and shaders/table.wgsl: Adam over a flat buffer, and over the rows of the
//! per-datapoint table that the batch uses.
use crate::config::AdamConfig;
use crate::gpu::kernels::bind;
use crate::gpu::params::{AdamParams, TableParams};
use crate::gpu::{Launch, Launcher};
use crate::shaders::{adam, table, Entry};

/// weights -= Adam(grads), with moments (m, v), over `count` floats; bias correction from the step
/// in `counters`.
pub fn adam_step(
    l: Launcher,
    config: &AdamConfig,
    counters: &wgpu::Buffer,
    (grads, weights): (&wgpu::Buffer, &wgpu::Buffer),
    (m, v): (&wgpu::Buffer, &wgpu::Buffer),
    count: usize,
) -> Launch {
    let p = AdamParams {
        count: count as u32,
        lr: config.lr,
        beta1: config.beta1,
        beta2: config.beta2,
        eps: config.eps,
        pad: [0; 3],
    };
    let u = l.uniform("adam params", &p);
    // Four parameters per invocation where the count allows (adam.wgsl says why).
    use adam::{COUNTERS, GRADS, GRADS4, M, M4, PARAMS, V, V4, WEIGHTS, WEIGHTS4};
    let (entry, binds, invocations) = match count % 4 {
        0 => (Entry::AdamStepVec4, [GRADS4, WEIGHTS4, M4, V4], count / 4),
        _ => (Entry::AdamStep, [GRADS, WEIGHTS, M, V], count),
    };
    let [g, w, m_at, v_at] = binds;
    l.over(
        entry,
        &[bind(PARAMS, &u), bind(COUNTERS, counters), bind(g, grads), bind(w, weights), bind(m_at, m), bind(v_at, v)],
        invocations,
    )
    .with_bytes(7 * 4 * count as u64) // reads g, w, m, v; writes w, m, v
}

/// The per-datapoint table: (mu, logvar) [images, width] per training image with its Adam moments,
/// read in the pass's `order` at the cursor in `counters`.
pub struct Table<'a> {
    pub table: &'a wgpu::Buffer,
    pub m: &'a wgpu::Buffer,
    pub v: &'a wgpu::Buffer,
    pub order: &'a wgpu::Buffer,
    pub counters: &'a wgpu::Buffer,
}

impl Table<'_> {
    fn binds<'b>(&'b self, params: &'b wgpu::Buffer) -> Vec<crate::gpu::kernels::Bind<'b>> {
        use table::{COUNTERS, ORDER, PARAMS, TABLE};
        vec![bind(PARAMS, params), bind(COUNTERS, self.counters), bind(ORDER, self.order), bind(TABLE, self.table)]
    }

    /// mulv [batch, width] = the batch's rows of the table (`params`: TableParams).
    pub fn gather(&self, l: Launcher, params: &wgpu::Buffer, mulv: &wgpu::Buffer, n: usize) -> Launch {
        let mut binds = self.binds(params);
        binds.push(bind(table::MULV, mulv));
        l.over(Entry::GatherTableRows, &binds, n)
    }

    /// One Adam update of the batch's rows of the table from their gradient d_mulv [batch, width].
    pub fn adam_step(&self, l: Launcher, params: &wgpu::Buffer, d_mulv: &wgpu::Buffer, n: usize) -> Launch {
        let mut binds = self.binds(params);
        binds.extend([bind(table::DMULV, d_mulv), bind(table::M, self.m), bind(table::V, self.v)]);
        l.over(Entry::TableAdamStep, &binds, n)
    }
}

/// TableParams of update `update_index` of `updates_per_step` per optimizer step.
pub fn table_params(l: Launcher, p: TableParams) -> wgpu::Buffer {
    l.uniform("table params", &p)
}
