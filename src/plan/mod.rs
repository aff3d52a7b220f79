//! The kernel plan: every choice of kernel that depends on the adapter, made in one place from the
//! adapter's facts (plan/adapter.rs) and `--kernels`. Launchers ask it and never look at the
//! adapter; `wgvae devices --plan` prints it for real and described adapters (plan/profiles.rs).
//!
//! Two families of kernels: one shaped for CPU adapters (lavapipe, SwiftShader: SIMD lanes, where
//! loads per FMA bound a kernel) and one for GPUs (many invocations, adjacent ones reading adjacent
//! addresses, workgroup memory). Within a family, subgroup modules are taken where the adapter
//! has the subgroups they are written for.
mod adapter;
pub mod linear;
pub mod profiles;

pub use adapter::{Adapter, AdapterLimits, SubgroupSizes};
pub use linear::{LinearKernel, LinearOp, LinearVariant, TiledPlan};

/// The subgroup size linear_vec4_subgroup.wgsl and linear_rows_subgroup.wgsl are written for
/// (lavapipe's 8-lane SIMD vectors).
pub const SUBGROUP_LANES: u32 = crate::shaders::linear_vec4_subgroup::SG;
const _: () = assert!(crate::shaders::linear_rows_subgroup::SG == SUBGROUP_LANES);

/// The modules that need subgroups of exactly SUBGROUP_LANES lanes.
pub const EIGHT_LANE_MODULES: [&str; 2] = ["linear_vec4_subgroup", "linear_rows_subgroup"];

/// Whether `adapter` can build `module`: modules named *_subgroup use subgroup operations
/// (build.rs lets only those use them), the EIGHT_LANE_MODULES on exactly 8 lanes.
pub fn builds(adapter: &Adapter, module: &str) -> bool {
    let Some(sizes) = adapter.subgroups else { return !module.ends_with("_subgroup") };
    !EIGHT_LANE_MODULES.contains(&module) || sizes.fixed() == Some(SUBGROUP_LANES)
}

/// The kernels shaped for CPU adapters or for GPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFamily {
    Cpu,
    Gpu,
}

/// `--kernels`: the family the adapter's type picks, or one forced (to compare them on one
/// adapter, or where the type misleads: a GPU that reports itself as Other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelChoice {
    #[default]
    Auto,
    Cpu,
    Gpu,
}

/// The kernel families that compute a convolution layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvVariant {
    /// conv.wgsl: one invocation per value written, the most parallel form, and adjacent
    /// invocations read adjacent positions: the one for GPUs until a workgroup-memory family exists.
    Direct,
    /// im2col.wgsl and the linear products: for CPU adapters, where the matmul's vec4 loads make
    /// it many times faster than the direct kernels' scalar ones (docs/measurements.md). Needs a buffer of
    /// patches per layer (rows x positions x c_in k^2 floats).
    Gemm,
}

impl ConvVariant {
    /// Every variant, for the tests (each is tested whatever the adapter picks).
    pub const ALL: [ConvVariant; 2] = [ConvVariant::Direct, ConvVariant::Gemm];
}

/// Steps per tick on a CPU adapter, where a default step takes milliseconds: the host reads the
/// running loss once per tick, never per step, and the progress bar moves every few seconds at worst.
pub const CPU_TICK_STEPS: usize = 25;

/// Steps per tick on a GPU, where a default step takes tens of microseconds: enough that a tick's
/// GPU time outweighs its submission, readback and wake-up (tens of microseconds each) many times.
pub const GPU_TICK_STEPS: usize = 200;

/// Which kernel every launch gets on one adapter. Built once per device; a test or `--kernels`
/// forces another with `forced`. It only ever picks modules `builds` allows on its adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelPlan {
    adapter: Adapter,
    family: KernelFamily,
    /// Whether subgroup modules are taken (of any size; the 8-lane ones where the size is 8).
    subgroups: bool,
}

impl KernelPlan {
    /// The plan for `adapter`: the family its type picks (CPU adapters get the CPU family; in a
    /// browser, Chromium reports SwiftShader as a fallback adapter, which wgpu gives as Cpu) unless
    /// `choice` forces one, and every subgroup module it can build.
    pub fn new(adapter: Adapter, choice: KernelChoice) -> KernelPlan {
        let family = match (choice, adapter.device_type) {
            (KernelChoice::Cpu, _) | (KernelChoice::Auto, wgpu::DeviceType::Cpu) => KernelFamily::Cpu,
            _ => KernelFamily::Gpu,
        };
        KernelPlan::forced(adapter, family, true)
    }

    /// The plan of `family` on `adapter`, with subgroup modules where `subgroups` and the adapter
    /// has them (tests: each family on the test adapter, or a family as an adapter without
    /// subgroups would run it).
    pub fn forced(adapter: Adapter, family: KernelFamily, subgroups: bool) -> KernelPlan {
        let subgroups = subgroups && adapter.subgroups.is_some();
        KernelPlan { adapter, family, subgroups }
    }

    pub fn adapter(&self) -> &Adapter {
        &self.adapter
    }

    pub fn family(&self) -> KernelFamily {
        self.family
    }

    /// Whether the plan takes subgroup modules of any size (linear_split_subgroup.wgsl).
    pub fn subgroups(&self) -> bool {
        self.subgroups
    }

    /// Whether the plan takes the 8-lane modules (EIGHT_LANE_MODULES).
    pub fn eight_lanes(&self) -> bool {
        self.subgroups && builds(&self.adapter, EIGHT_LANE_MODULES[0])
    }

    /// The kernel for `op` of a linear layer `n_in -> n_out` over `rows`.
    pub fn linear(&self, layer: (usize, usize), op: LinearOp, rows: usize) -> LinearKernel {
        if self.family == KernelFamily::Cpu {
            return LinearKernel::Variant(LinearVariant::choose(layer, op, rows, self.eight_lanes()));
        }
        let (out_rows, out_cols, depth) = TiledPlan::shape(layer, op, rows);
        let tiled = TiledPlan::new(out_rows, out_cols, depth);
        let max_groups = self.adapter.limits.max_compute_workgroups_per_dimension;
        match linear::split_grid(&tiled, (out_rows, out_cols), max_groups) {
            Some(grid) if self.subgroups => LinearKernel::Split(grid),
            _ => LinearKernel::Tiled(tiled),
        }
    }

    /// Bytes of partial sums `op` of a layer over `rows` writes before a second launch adds them
    /// (0 when it writes its output directly): what the size checks count beside the activations.
    pub fn linear_scratch_bytes(&self, layer: (usize, usize), op: LinearOp, rows: usize) -> u64 {
        let (out_rows, out_cols, _) = TiledPlan::shape(layer, op, rows);
        let slices = match self.linear(layer, op, rows) {
            LinearKernel::Variant(v) => v.slices(op, rows),
            LinearKernel::Tiled(t) => t.slices,
            LinearKernel::Split(_) => 1,
        };
        if slices == 1 {
            0
        } else {
            4 * (slices * out_rows * out_cols) as u64
        }
    }

    /// How convolutions run.
    pub fn conv(&self) -> ConvVariant {
        match self.family {
            KernelFamily::Cpu => ConvVariant::Gemm,
            KernelFamily::Gpu => ConvVariant::Direct,
        }
    }

    /// Whether reductions over a batch (the step's loss totals, the score function's baseline, the
    /// importance sampler's log-sum-exps, the reconstruction loss per row) take a workgroup and a
    /// tree (GPUs) or an invocation each, serially (CPU adapters, whose lanes are few).
    pub fn tree_reductions(&self) -> bool {
        self.family == KernelFamily::Gpu
    }

    /// Whether the reconstruction loss writes its gradient in the forward launch: on GPUs, for
    /// objectives whose coefficient is fixed before the loss (`coef_fixed`: an ELBO's, not IWAE's).
    /// CPU adapters run the elementwise backward launch, which suits their lanes better.
    pub fn rec_writes_gradient(&self, coef_fixed: bool) -> bool {
        self.family == KernelFamily::Gpu && coef_fixed
    }

    /// Whether a first linear layer `n_in -> n_out` over `rows` gathers its own batch from the
    /// resident dataset (linear_forward_gather_tiled): GPU kernels, where its forward product is
    /// on the tiled kernel. (The trainer adds what the model must be: see trainer/step.rs.)
    pub fn first_layer_gathers(&self, layer: (usize, usize), rows: usize) -> bool {
        matches!(self.linear(layer, LinearOp::Forward, rows), LinearKernel::Tiled(_))
    }

    /// Training steps per submission: by the adapter's type, as a step's time is.
    pub fn tick_steps(&self) -> usize {
        match self.adapter.device_type {
            wgpu::DeviceType::Cpu => CPU_TICK_STEPS,
            _ => GPU_TICK_STEPS,
        }
    }

    /// "GPU kernels, subgroups of 32 lanes used".
    pub fn describe(&self) -> String {
        let subgroups = match (self.subgroups, self.eight_lanes()) {
            (false, _) => "no subgroup kernels",
            (true, true) => "subgroup kernels (8-lane ones too)",
            (true, false) => "subgroup kernels (not the 8-lane ones)",
        };
        format!("{:?} kernels, {subgroups}", self.family)
    }
}
