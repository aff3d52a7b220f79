//! EM on the GPU: each iteration is one submission, the validation E-step, then per chunk of
//! training rows the E-step (a linear product and the responsibilities) and the sufficient
//! statistics (the same layer's weight gradient), then the M-step; the host reads back only the
//! per-row log-likelihoods and the K x D parameters. reference/mixture.rs follows the same order.
use anyhow::{bail, Result};

use super::{Mixture, Spec};
use crate::data::{ImageShape, Split};
use crate::gpu::faults::GpuResult;
use crate::gpu::kernels::submit;
use crate::gpu::{self, Gpu, Kernels, Launch, Launcher};
use crate::launches::mixture::{self, MixtureState};
use crate::network::{linear, Layer, LayerKind};

/// Bytes of one chunk's widest buffer (x [rows, F] or logits [rows, K]): chunks stay far below any
/// adapter's binding limit and the E-step's buffers small.
const CHUNK_BYTES: usize = 64 << 20;
const MAX_GROUPS: usize = 65_535;

/// The state the GPU keeps between iterations.
struct State {
    nat: wgpu::Buffer,
    totals: wgpu::Buffer,
    stats: wgpu::Buffer,
    means: wgpu::Buffer,
    variances: wgpu::Buffer,
    log_weights: wgpu::Buffer,
}

/// One split's rows on the GPU in chunks, each with its images and its launches.
struct SplitPasses {
    rows: usize,
    loglik: wgpu::Buffer,
    /// Per chunk: the E-step (unpack, product, responsibilities).
    e_step: Vec<Launch>,
    /// Per chunk: the E-step and the statistics (empty for validation).
    e_and_statistics: Vec<Launch>,
}

pub struct GpuMixture {
    pub spec: Spec,
    pub shape: ImageShape,
    state: State,
    train: SplitPasses,
    val: SplitPasses,
    m_step: Vec<Launch>,
}

/// The E-step's layer: logits [rows, K] = x [rows, F] W^T + bias, W and bias read from nat.
pub fn layer(spec: &Spec) -> Layer {
    Layer {
        kind: LayerKind::Linear,
        n_in: spec.features(),
        n_out: spec.padded(),
        relu: false,
        relu_input: false,
        weight_at: 0,
        bias_at: spec.bias_at(),
    }
}

/// Rows per chunk: as many as keep x and logits within CHUNK_BYTES and the grids within limits.
pub fn chunk_rows(spec: &Spec) -> usize {
    let widest = spec.features().max(spec.padded()) * 4;
    (CHUNK_BYTES / widest).clamp(1, MAX_GROUPS)
}

/// Refuses sizes the adapter cannot hold, before anything is allocated.
pub fn check_limits(gpu: &Gpu, spec: &Spec) -> Result<()> {
    let max = gpu::max_binding_bytes(gpu) as usize;
    let params = spec.stats_len() * 4;
    if params > max {
        bail!(
            "--components {}: the mixture's {} parameters take {params} bytes, more than this adapter's largest \
             storage binding ({max} bytes)",
            spec.components,
            spec.stats_len()
        );
    }
    if spec.padded() > MAX_GROUPS {
        bail!("--components {}: at most {MAX_GROUPS} (one workgroup row per component)", spec.components);
    }
    Ok(())
}

impl GpuMixture {
    /// Uploads both splits in chunks of at most `chunk` rows (chunk_rows) and starts from
    /// `initial` statistics (mixture::initial_totals): its M-step runs at once, with the start's K
    /// rows as the total.
    pub fn new(
        (gpu, kernels): (&Gpu, &Kernels),
        spec: Spec,
        shape: ImageShape,
        data: (&Split, &Split),
        initial: &[f32],
        chunk: usize,
    ) -> Result<GpuMixture> {
        check_limits(gpu, &spec)?;
        let l = Launcher { gpu, kernels };
        let (k, d) = (spec.padded(), spec.pixels);
        let chunk = chunk.min(chunk_rows(&spec)).min(data.0.len().max(data.1.len())).max(1);
        let state = State {
            nat: gpu::zeroed::<f32>(gpu, "mixture nat", spec.stats_len()),
            totals: gpu::storage_with(gpu, "mixture totals", initial),
            stats: gpu::zeroed::<f32>(gpu, "mixture stats", spec.stats_len()),
            means: gpu::zeroed::<f32>(gpu, "mixture means", k * d),
            variances: gpu::storage_with(gpu, "mixture variances", &vec![spec.var_floor; k * d]),
            log_weights: gpu::zeroed::<f32>(gpu, "mixture log weights", k),
        };
        let x = gpu::zeroed::<f32>(gpu, "mixture x", chunk * spec.features());
        let logits = gpu::zeroed::<f32>(gpu, "mixture logits", chunk * k);
        let scratch = (&x, &logits);
        let val = SplitPasses::new(l, &spec, &state.nat, data.1, chunk, scratch, None);
        let statistics = Some((&state.stats, &state.totals));
        let train = SplitPasses::new(l, &spec, &state.nat, data.0, chunk, scratch, statistics);
        let m_step = m_step_launches(l, &spec, &state, data.0.len());
        let start = m_step_launches(l, &spec, &state, spec.components);
        submit(gpu, &[&start])?;
        Ok(GpuMixture { spec, shape, state, train, val, m_step })
    }

    /// One EM iteration: the (train, validation) log-likelihoods log p(x_n) under the current
    /// parameters, summed over rows in f64; then the M-step moves them.
    pub fn iterate(&self, gpu: &Gpu) -> GpuResult<(f64, f64)> {
        submit(gpu, &[&self.val.e_step, &self.train.e_and_statistics, &self.m_step])?;
        Ok((self.train.total(gpu)?, self.val.total(gpu)?))
    }

    /// The log-likelihoods under the current parameters, with no M-step: per row, (train, val).
    pub fn evaluate(&self, gpu: &Gpu) -> GpuResult<(Vec<f32>, Vec<f32>)> {
        submit(gpu, &[&self.val.e_step, &self.train.e_step])?;
        Ok((
            gpu::read(gpu, &self.train.loglik, 0, self.train.rows)?,
            gpu::read(gpu, &self.val.loglik, 0, self.val.rows)?,
        ))
    }

    /// The parameters, read back.
    pub fn read(&self, gpu: &Gpu) -> GpuResult<Mixture> {
        let kd = self.spec.components * self.spec.pixels;
        Ok(Mixture {
            spec: self.spec,
            shape: self.shape,
            log_weights: gpu::read(gpu, &self.state.log_weights, 0, self.spec.components)?,
            means: gpu::read(gpu, &self.state.means, 0, kd)?,
            variances: gpu::read(gpu, &self.state.variances, 0, kd)?,
        })
    }
}

/// log p(x) [n] of every image of `split` under a fitted mixture (a file's, scored as
/// Mixture::normalised): the E-step alone, in chunks, one submission.
pub fn log_densities((gpu, kernels): (&Gpu, &Kernels), fit: &Mixture, split: &Split) -> Result<Vec<f32>> {
    let spec = fit.spec;
    check_limits(gpu, &spec)?;
    let l = Launcher { gpu, kernels };
    let chunk = chunk_rows(&spec).min(split.len()).max(1);
    let nat = gpu::storage_with(gpu, "mixture nat", &fit.normalised().e_step_weights());
    let x = gpu::zeroed::<f32>(gpu, "mixture x", chunk * spec.features());
    let logits = gpu::zeroed::<f32>(gpu, "mixture logits", chunk * spec.padded());
    let passes = SplitPasses::new(l, &spec, &nat, split, chunk, (&x, &logits), None);
    submit(gpu, &[&passes.e_step])?;
    Ok(gpu::read(gpu, &passes.loglik, 0, passes.rows)?)
}

fn m_step_launches(l: Launcher, spec: &Spec, s: &State, total_rows: usize) -> Vec<Launch> {
    let u = l.uniform("mixture m-step params", &spec.params(0, 0, total_rows));
    let state = MixtureState {
        totals: &s.totals,
        nat: &s.nat,
        means: &s.means,
        variances: &s.variances,
        log_weights: &s.log_weights,
    };
    mixture::m_step(l, &u, &state, (spec.padded(), spec.pixels))
}

impl SplitPasses {
    /// `statistics`: (stats, totals) to accumulate the sufficient statistics into, for training.
    fn new(
        l: Launcher,
        spec: &Spec,
        nat: &wgpu::Buffer,
        split: &Split,
        chunk: usize,
        (x, logits): (&wgpu::Buffer, &wgpu::Buffer),
        statistics: Option<(&wgpu::Buffer, &wgpu::Buffer)>,
    ) -> SplitPasses {
        let loglik = gpu::zeroed::<f32>(l.gpu, "mixture loglik", split.len());
        let layer = layer(spec);
        let (mut e_step, mut e_and_statistics) = (Vec::new(), Vec::new());
        for first in (0..split.len()).step_by(chunk) {
            let rows = chunk.min(split.len() - first);
            let mut bytes = split.images[first * spec.pixels..(first + rows) * spec.pixels].to_vec();
            bytes.resize(bytes.len().next_multiple_of(4), 0);
            let images = gpu::images_with(l.gpu, "mixture chunk images", &bytes);
            let u = l.uniform("mixture chunk params", &spec.params(rows, first, split.len()));
            let mut chunk_e_step = vec![mixture::unpack(l, &u, &images, x, (rows, spec.pixels))];
            chunk_e_step.extend(linear::forward(l, &layer, nat, rows, linear::Forward { input: x, output: logits }));
            chunk_e_step.push(mixture::responsibilities(l, &u, logits, &loglik, rows));
            if let Some((stats, totals)) = statistics {
                e_and_statistics.extend(chunk_e_step.iter().cloned());
                e_and_statistics.extend(linear::backward_params(l, &layer, stats, rows, (x, logits)));
                e_and_statistics.push(mixture::accumulate(l, &u, stats, totals, spec.stats_len()));
            }
            e_step.extend(chunk_e_step);
        }
        SplitPasses { rows: split.len(), loglik, e_step, e_and_statistics }
    }

    fn total(&self, gpu: &Gpu) -> GpuResult<f64> {
        let ll: Vec<f32> = gpu::read(gpu, &self.loglik, 0, self.rows)?;
        Ok(ll.iter().map(|&v| v as f64).sum())
    }
}
