//! The `devices` command: the adapters wgpu finds and, with --plan, the kernel plan a run would
//! follow on each of them or on a described adapter (--profile, plan/profiles.rs): every linear
//! launch of the model with its kernel and grid, the step's other decisions, and whether the
//! model's sizes fit. The text is stable: tests/golden/plans/ holds it for every profile.
use std::fmt::Write as _;

use anyhow::{bail, Result};

use crate::config::spec::{Bound, Method};
use crate::config::RunConfig;
use crate::gpu::{self, Backend, DeviceChoice, Gpu};
use crate::model::Model;
use crate::network::{Layer, LayerKind};
use crate::plan::linear::Groups;
use crate::plan::{profiles, ConvVariant, KernelPlan, LinearOp};

pub struct DevicesOptions {
    pub backend: Option<Backend>,
    /// Print each adapter's plan for `config`.
    pub plan: bool,
    /// Print the plan for this described adapter instead of the ones found.
    pub profile: Option<String>,
    pub config: RunConfig,
    pub device: DeviceChoice,
}

/// The adapters wgpu can use, one per line; with `plan`, each one's kernel plan after it.
pub fn devices(o: &DevicesOptions) -> Result<()> {
    if let Some(name) = &o.profile {
        let profile = profiles::named(name)?;
        let plan = KernelPlan::new(profile.adapter, o.device.kernels);
        print!("{}", plan_table(&format!("profile {}", profile.name), &plan, &o.config));
        return Ok(());
    }
    let adapters = gpu::list_adapters(o.backend);
    if adapters.is_empty() {
        bail!("{}", gpu::context::NO_ADAPTER_HINT);
    }
    for a in adapters {
        println!("{}\t{:?}\t{:?}\tdriver: {} {}", a.name, a.backend, a.device_type, a.driver, a.driver_info);
        if o.plan {
            let choice =
                DeviceChoice { backend: Backend::of(a.backend), adapter: Some(a.name.clone()), ..o.device.clone() };
            let gpu = Gpu::open(&choice)?;
            print!("{}", plan_table("adapter", gpu.plan(), &o.config));
        }
    }
    Ok(())
}

/// The plan of `config`'s model on `plan`'s adapter, as text.
pub fn plan_table(title: &str, plan: &KernelPlan, config: &RunConfig) -> String {
    let model = Model::new(config.architecture());
    let rows = config.batch * config.method.samples();
    let mut t = String::new();
    let _ = writeln!(t, "{title}: {}", plan.adapter().describe());
    let _ = writeln!(t, "  kernels: {}", plan.describe());
    let _ = writeln!(
        t,
        "  model: {}, batch {} x {} sample(s) = {rows} rows",
        model_name(&model),
        config.batch,
        config.method.samples()
    );
    let _ = writeln!(t, "  steps per submission: {}", plan.tick_steps());
    let _ = writeln!(
        t,
        "  reductions over a batch: {}",
        if plan.tree_reductions() { "a tree per workgroup" } else { "serial, an invocation each" }
    );
    let elbo = !matches!(config.method, Method::Gaussian { bound: Bound::Iwae { .. }, .. });
    let rec = if plan.rec_writes_gradient(elbo) { "in the loss's forward launch" } else { "a launch of its own" };
    let _ = writeln!(t, "  reconstruction gradient: {rec}");
    let first = &model.encoder[0];
    let gathers = first.kind == LayerKind::Linear && plan.first_layer_gathers((first.n_in, first.n_out), rows);
    let gather =
        if gathers { "the first layer's forward launch (dataset in one shard)" } else { "a launch of its own" };
    let _ = writeln!(t, "  batch gather: {gather}");
    if model.layers().any(|l| l.kind != LayerKind::Linear) {
        let conv = match plan.conv() {
            ConvVariant::Gemm => "patches copied into rows, then the linear kernels",
            ConvVariant::Direct => "direct convolution kernels",
        };
        let _ = writeln!(t, "  convolutions: {conv}");
    }
    let _ = writeln!(t, "  linear launches:");
    let paths = [("encoder", &model.encoder), ("decoder", &model.decoder)];
    for (path, layers) in paths {
        for (i, layer) in layers.iter().enumerate().filter(|(_, l)| l.kind == LayerKind::Linear) {
            // The first layer's forward product gathers its own batch where the plan says so.
            let gathered = gathers && path == "encoder" && i == 0;
            linear_rows(&mut t, plan, (path, i, gathered), layer, rows);
        }
    }
    let _ = writeln!(t, "  fits: {}", fits(plan, config, &model));
    t
}

/// "mlp 784-400-20 | 10-400-784" or "conv 784-6272-20 | ...": the widths along each path.
fn model_name(model: &Model) -> String {
    let widths = |layers: &[Layer]| {
        let mut w: Vec<String> = layers.iter().take(1).map(|l| l.n_in.to_string()).collect();
        w.extend(layers.iter().map(|l| l.n_out.to_string()));
        w.join("-")
    };
    let kind = if model.arch.conv.is_some() { "conv" } else { "mlp" };
    format!("{kind} {} | {}", widths(&model.encoder), widths(&model.decoder))
}

/// One line per launch of the layer's three products.
fn linear_rows(
    t: &mut String,
    plan: &KernelPlan,
    (path, i, gathered): (&str, usize, bool),
    layer: &Layer,
    rows: usize,
) {
    let shape = (layer.n_in, layer.n_out);
    for op in [LinearOp::Forward, LinearOp::BackwardInput, LinearOp::BackwardWeight] {
        let launches = plan.linear(shape, op, rows).launches(shape, op, rows, gathered);
        for (entry, groups) in launches {
            let grid = match groups {
                Groups::Grid([x, y, z]) => format!("{x} x {y} x {z} workgroups"),
                Groups::Over(n) => format!("over {n} values"),
            };
            let name = format!("{path} {i} ({} -> {})", layer.n_in, layer.n_out);
            let _ = writeln!(t, "    {name:<24} {:<16} {:<42} {grid}", format!("{op:?}"), entry.name());
        }
    }
}

/// "yes (7 of 8 storage buffers per stage)" or "no: <the reason a run would be refused>".
fn fits(plan: &KernelPlan, config: &RunConfig, model: &Model) -> String {
    let (needed, entry) = crate::shaders::MOST_STORAGE_BUFFERS;
    let have = plan.adapter().limits.max_storage_buffers_per_shader_stage;
    if needed > have {
        return format!("no: {entry} binds {needed} storage buffers, the adapter {have}");
    }
    match crate::fits::check_limits(plan, config, model) {
        Ok(()) => format!("yes (at most {needed} of {have} storage buffers per stage, in {entry})"),
        Err(e) => format!("no: {e}"),
    }
}
