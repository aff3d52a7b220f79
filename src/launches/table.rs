//! shaders/table.wgsl: the per-datapoint table's rows that the batch uses, gathered, and Adam
//! over them.
use crate::gpu::kernels::bind;
use crate::gpu::params::TableParams;
use crate::gpu::{Launch, Launcher};
use crate::shaders::{table, Entry};

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
