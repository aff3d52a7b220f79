//! Per-datapoint inference's part of the training step: the table of each training image's
//! (mu, logvar), its inner steps on the batch's rows (decoder fixed), and Adam on those rows.
use super::Parts;
use crate::gpu::params::{LatentParams, TableParams, STREAM_INNER_EPS};
use crate::gpu::Launch;
use crate::launches::{GaussianRows, Table};
use crate::trainer::buffers::GpuSplit;

impl Parts<'_> {
    /// Per-datapoint inference's launches on the table: gathering the batch's rows (update 0), or
    /// Adam on them (update `index` of the step's inner + 1).
    pub(super) fn table(&self, split: &GpuSplit, adam_index: Option<usize>) -> Launch {
        let (b, s) = (self.b, self.s);
        let [table, m, v] = b.table.as_ref().expect("a per-datapoint run has a table");
        let (inner, lr) = s.objective.per_datapoint.expect("per-datapoint settings");
        let width = self.model.arch.encoder_outputs();
        let p = TableParams {
            batch: s.batch as u32,
            width: width as u32,
            pass_rows: split.order_rows(s.batch) as u32,
            updates_per_step: (inner + 1) as u32,
            update_index: adam_index.unwrap_or(0) as u32,
            lr,
            beta1: s.adam.beta1,
            beta2: s.adam.beta2,
            eps: s.adam.eps,
            pad: [0; 3],
        };
        let u = self.l.uniform("table params", &p);
        let t = Table { table, m, v, order: &split.order, counters: &b.counters };
        match adam_index {
            None => t.gather(self.l, &u, b.mulv(), s.batch * width),
            Some(_) => t.adam_step(self.l, &u, b.d_mulv(), s.batch * width),
        }
    }

    /// Per-datapoint inference's inner step `i`: the batch's (mu, logvar) alone, decoder fixed, on
    /// a fresh draw of eps, then Adam on their table rows.
    pub(super) fn inner_step(&self, split: &GpuSplit, i: usize, train_loss: &wgpu::Buffer) -> Vec<Launch> {
        let (b, s, l) = (self.b, &self.s.objective, self.l);
        let latent = self.model.arch.latent;
        let u = l.uniform(
            "inner latent params",
            &LatentParams {
                rows: self.rows as u32,
                latent: latent as u32,
                seed: self.s.seed,
                stream: STREAM_INNER_EPS + i as u32,
                beta: s.beta,
                warmup_steps: s.warmup_steps,
                free_bits: 0.0,
                sample_scale: 1.0,
            },
        );
        let (counters, mulv, d_mulv, eps, z, dz) = (&b.counters, b.mulv(), b.d_mulv(), &b.eps, &b.z, &b.dz);
        let q = GaussianRows { rows: self.rows, latent, counters, mulv, d_mulv, eps, z, dz };
        let mut launches = vec![self.table(split, None), q.reparam_forward(l, &u)]; // mulv = table rows; z
        launches.extend(self.decoder_forward());
        launches.push(self.rec_backward(train_loss));
        launches.extend(self.decoder_backward(true)); // (the decoder's gradients are overwritten later)
        launches.extend(q.reparam_kl_backward(l, &u, false));
        launches.push(self.table(split, Some(i)));
        launches
    }
}
