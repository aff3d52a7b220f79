//! Whether a run's sizes fit an adapter, decided from its kernel plan before anything is
//! allocated, so a described adapter (`wgvae devices --plan --profile`) is checked as a real one is.
use anyhow::{bail, Result};

use crate::config::spec::Network;
use crate::config::RunConfig;
use crate::model::Model;
use crate::network::conv_kinds;
use crate::network::LayerKind;
use crate::plan::{ConvVariant, KernelPlan, LinearOp};
use crate::shaders::linear::TILE_ROWS;

/// Refuses a run whose buffers the adapter cannot bind, before anything is allocated: an image (a
/// shard holds whole images), or the parameters, or the widest activation, naming the flags.
/// (1-D launches past the workgroups of one grid dimension run on 2-D grids: Gpu::grid_1d.)
pub fn check_limits(plan: &KernelPlan, config: &RunConfig, model: &Model) -> Result<()> {
    let limits = plan.adapter().limits;
    let max = limits.max_binding_bytes();
    let max_groups = limits.max_compute_workgroups_per_dimension as usize;
    let image = config.shape.pixels() as u64;
    if image > max {
        bail!(
            "images of {} take {image} bytes, more than this adapter's largest storage binding ({max} bytes)",
            config.shape
        );
    }
    let params = model.param_count as u64 * 4;
    if params > max {
        let widths = match &config.model.network {
            Network::Conv(conv) => format!("--conv-channels {:?}", conv.channels),
            Network::Mlp { hidden } | Network::Auto { hidden, .. } => format!("--hidden {hidden:?}"),
        };
        bail!(
            "the model's {} parameters ({widths}, --latent {}) take {params} bytes, more than this adapter's \
             largest storage binding ({max} bytes): use a smaller --hidden, --conv-channels or --latent",
            model.param_count,
            config.latent_width()
        );
    }
    let rows = (config.batch * config.samples()) as u64;
    let width = model.layers().map(|l| l.n_in.max(l.n_out) as u64).max().unwrap_or(0);
    if rows * width * 4 > max {
        bail!(
            "--batch {} x {} {} = {rows} rows of the widest layer ({width} values) take {} bytes, more than \
             this adapter's largest storage binding ({max} bytes): at most {} rows fit",
            config.batch,
            config.samples_flag(),
            config.samples(),
            rows * width * 4,
            max / (width * 4).max(1)
        );
    }
    // On CPU adapters a convolution copies its patches into rows (network/conv.rs): one buffer of
    // them per layer, and as many matrix rows as images x positions. (The importance sampler
    // sizes its chunks to fit: importance::chunk_rows.)
    if plan.conv() == ConvVariant::Gemm {
        let rows = config.batch * config.samples();
        for layer in model.layers() {
            let Some((bytes, patch_rows)) = conv_kinds::gemm_sizes(layer, rows) else { continue };
            if bytes > max || patch_rows.div_ceil(TILE_ROWS as usize) > max_groups {
                bail!(
                    "a convolution of {rows} images needs {bytes} bytes of patches in {patch_rows} rows, more than \
                     this adapter allows ({max} bytes in one binding, {} rows): use a smaller --batch or {}",
                    max_groups * TILE_ROWS as usize,
                    config.samples_flag()
                );
            }
        }
    }
    check_scratch(plan, model, config.batch * config.samples(), max)
}

/// The partial sums of the linear products whose reductions the plan cuts into slices (each its
/// own buffer, added by a second launch) must each fit one binding too.
fn check_scratch(plan: &KernelPlan, model: &Model, rows: usize, max: u64) -> Result<()> {
    for layer in model.layers().filter(|l| l.kind == LayerKind::Linear) {
        for op in [LinearOp::Forward, LinearOp::BackwardInput, LinearOp::BackwardWeight] {
            let bytes = plan.linear_scratch_bytes((layer.n_in, layer.n_out), op, rows);
            if bytes > max {
                bail!(
                    "the {op:?} product of a {} -> {} layer over {rows} rows writes {bytes} bytes of partial sums, \
                     more than this adapter's largest storage binding ({max} bytes): use a smaller --batch",
                    layer.n_in,
                    layer.n_out
                );
            }
        }
    }
    Ok(())
}
