//! Shared by every family: the test device (it must exist: these tests never skip), seeded
//! inputs, upload and readback, the tolerance check, and the uniforms several families use.
use std::sync::OnceLock;

pub use rand::{Rng, SeedableRng};
pub use wgvae::gpu::kernels::submit;
pub use wgvae::gpu::params::*;
pub use wgvae::gpu::{self, Gpu, Kernels, Launch};
pub use wgvae::model::Decoder;
pub use wgvae::objective::ObjectiveSettings;
pub use wgvae::plan::{KernelFamily, KernelPlan};
pub use wgvae::reference::kernels as r;
pub use wgvae::shaders::{self, Entry};

pub fn gpu() -> &'static (Gpu, Kernels) {
    static GPU: OnceLock<(Gpu, Kernels)> = OnceLock::new();
    GPU.get_or_init(|| {
        let mut gpu = Gpu::open(&Default::default()).unwrap_or_else(|e| panic!("GPU tests need an adapter: {e:#}"));
        // Rows of 2 workgroups: every 1-D launch past 128 invocations runs on a 2-D grid, as
        // launches past 65,535 workgroups do on a real device (flat_index in common.wgsl).
        gpu.grid_x = 2;
        let kernels = Kernels::new(&gpu);
        (gpu, kernels)
    })
}

/// The launcher over the test device and its kernels.
pub fn launcher() -> gpu::Launcher<'static> {
    gpu::Launcher { gpu: &gpu().0, kernels: &gpu().1 }
}

/// The test device under a plan of `family`, with subgroup kernels where `subgroups` and the
/// adapter has them: the same device and kernels (`gpu().1`), another choice of kernel.
pub fn gpu_with(family: KernelFamily, subgroups: bool) -> Gpu {
    let g = &gpu().0;
    g.with_plan(KernelPlan::forced(g.plan().adapter().clone(), family, subgroups))
}

/// Whether `module` was built on the test adapter, so its test can run. Where it was not, its test
/// checks instead that no plan of this adapter ever picks it (over layer shapes, row counts and
/// products that cover every rule of the plan), and fails where WGVAE_REQUIRE_MODULES (a comma-separated
/// list) names it: CI names the 8-lane modules on lavapipe at its default width, so that their
/// absence there is a failure, not a silent pass.
pub fn built_or_never_planned(module: &str) -> bool {
    use wgvae::plan::LinearOp;
    let adapter = gpu().0.plan().adapter().clone();
    if wgvae::plan::builds(&adapter, module) {
        return true;
    }
    let required = std::env::var("WGVAE_REQUIRE_MODULES").unwrap_or_default();
    assert!(
        !required.split(',').any(|m| m.trim() == module),
        "WGVAE_REQUIRE_MODULES names {module}, but this adapter cannot build it: {}. The 8-lane modules need \
         lavapipe at its default 256-bit width on an x86 CPU with AVX2 (apt-get install -y mesa-vulkan-drivers, \
         LP_NATIVE_VECTOR_WIDTH unset)",
        adapter.describe()
    );
    let shapes =
        [(784, 400), (400, 40), (20, 400), (400, 784), (48, 8), (36, 20), (32, 12), (96, 12), (150, 5), (9, 3)];
    for family in [KernelFamily::Cpu, KernelFamily::Gpu] {
        for subgroups in [false, true] {
            let plan = KernelPlan::forced(adapter.clone(), family, subgroups);
            for (shape, rows) in shapes.iter().flat_map(|s| [1, 13, 128, 300, 2048, 5096].map(|r| (*s, r))) {
                for op in [LinearOp::Forward, LinearOp::BackwardInput, LinearOp::BackwardWeight] {
                    let kernel = plan.linear(shape, op, rows);
                    assert_ne!(kernel.module(), module, "{plan:?} picks {kernel:?} for {op:?} of {shape:?} x {rows}");
                }
            }
        }
    }
    eprintln!("{module} cannot be built on {}: checked that no plan picks it instead", adapter.describe());
    false
}

pub fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

pub fn run(launch: Launch) {
    submit(&gpu().0, &[std::slice::from_ref(&launch)]).unwrap();
}

/// Runs the launches; returns the entry points they ran, in order.
pub fn run_all(launches: Vec<Launch>) -> Vec<&'static str> {
    let names = launches.iter().map(|l| l.name).collect();
    for launch in launches {
        run(launch);
    }
    names
}

pub fn storage(data: &[f32]) -> wgpu::Buffer {
    gpu::storage_with(&gpu().0, "test", data)
}

pub fn uniform<T: bytemuck::Pod>(value: &T) -> wgpu::Buffer {
    gpu::uniform_with(&gpu().0, "test params", value)
}

pub fn read(buffer: &wgpu::Buffer, len: usize) -> Vec<f32> {
    gpu::read(&gpu().0, buffer, 0, len).unwrap()
}

/// Max |a - b| / (1 + |b|) must stay under tol; prints the first mismatches otherwise.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // !(a <= b) also catches NaN
pub fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: lengths differ");
    let err = |i: usize| (got[i] - want[i]).abs() / (1.0 + want[i].abs());
    let worst = (0..got.len()).map(err).fold(0.0f32, f32::max);
    if !(worst <= tol) {
        let bad: Vec<String> = (0..got.len())
            .filter(|&i| !(err(i) <= tol))
            .take(5)
            .map(|i| format!("[{i}] gpu {} ref {}", got[i], want[i]))
            .collect();
        panic!("{name}: max relative error {worst} > {tol}; first mismatches: {}", bad.join(", "));
    }
}

// The tolerances, from WGSL's accuracy rules (WGSL spec, "Floating Point Accuracy"), so that the
// suite passes on every conformant driver, not only on the one whose rounding it was written on:
// - +, -, *, and conversions between f32 and integers are correctly rounded: a kernel and a
//   reference that do the same operations in the same order agree exactly (tolerance 0), and so do
//   a *_subgroup module and its plain twin (the same sums, bit for bit);
// - x / y has an error of 2.5 ulp: DIVISION_ULPS;
// - log: 3 ulp outside [0.5, 2], 2^-21 absolute inside; exp: 3 + 2|x| ulp; sqrt as 1 / inverseSqrt
//   (2 ulp + 2.5 ulp); sin and cos: 2^-11 absolute on [-pi, pi]. Sums of products that follow the
//   kernel's order keep the 1e-5 relative bounds their tests state: only +, * and their rounding.
// - The draws' log, cos and sin are common.wgsl's own (ln_unit, cos_sin: +, -, *, / and bits), so
//   a draw agrees with random.rs's to a few ulp on every driver: DRAW_ABS. With the built-ins
//   SwiftShader's draws were 1e-4 from lavapipe's, and the training steps' ReLUs and free-bits
//   gates turned that into gradients 2% apart.
// - Compositions: DRAWN_REL for what a network computes from draws, through exp and log.

/// x / y: 2.5 ulp, rounded up to whole ulps.
pub const DIVISION_ULPS: u32 = 3;

/// The largest Box-Muller radius sqrt(-2 ln u): uniform_open's smallest u is 2^-25.
const DRAW_RADIUS: f32 = 5.9;

/// A standard normal draw r cos(t), r = sqrt(-2 ln_unit(u)) (common.wgsl's normal4): ln_unit's
/// division (2.5 ulp) and sums (1 ulp each where a driver fuses a multiply-add), the square root
/// (4.5 ulp, as 1 / inverseSqrt), cos_sin's polynomials (a few ulp of 1): 16 ulp of the radius.
/// For mu + sigma eps, scale by sigma's largest.
pub const DRAW_ABS: f32 = DRAW_RADIUS * 16.0 * f32::EPSILON;

/// What a model computes from draws (a training step's losses and gradients, importance weights):
/// the draws agree, and exp (3 + 2|x| ulp) and log (3 ulp, or 2^-21 absolute near 1) of sigma,
/// the KL and the reconstruction loss, and sums in another order than the reference's, each
/// carry a few ulp, which the decoder's layers and the loss add up over hundreds of terms:
/// 2e-4 (on the drivers at hand the worst is 5e-5).
pub const DRAWN_REL: f32 = 2e-4;

/// `got` within `ulps` units in the last place of `want`, element by element.
pub fn assert_ulps(name: &str, got: &[f32], want: &[f32], ulps: u32) {
    assert_eq!(got.len(), want.len(), "{name}: lengths differ");
    let apart = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let same_sign = a.is_sign_negative() == b.is_sign_negative() || a == b;
        assert!(same_sign && apart(a, b) <= ulps as u64, "{name}: [{i}] gpu {a} ref {b}: more than {ulps} ulp apart");
    }
}

// Awkward sizes: rows, latents and pixels that are not multiples of the workgroup sizes or of 4.
pub const B: usize = 13;
pub const LATENT: usize = 7;
pub const PIXELS: usize = 83;

pub fn latent_params(batch: usize) -> wgpu::Buffer {
    latent_params_with(batch, 1.0, 0, 0.0, 1.0)
}

pub fn latent_params_with(
    batch: usize,
    beta: f32,
    warmup_steps: u32,
    free_bits: f32,
    sample_scale: f32,
) -> wgpu::Buffer {
    uniform(&LatentParams {
        rows: batch as u32,
        latent: LATENT as u32,
        seed: 1234,
        stream: 3,
        beta,
        warmup_steps,
        free_bits,
        sample_scale,
    })
}

pub fn counters(step: u32, cursor: u32) -> Counters {
    Counters { step, cursor, ..Counters::new() }
}

pub fn loss_params_repeat(pass_rows: u32, training: bool, repeat: usize) -> wgpu::Buffer {
    uniform(&LossParams {
        rows: B as u32,
        pixels: PIXELS as u32,
        pass_rows,
        training: training as u32,
        repeat: repeat as u32,
        fixed_batch: 0,
        pad: [0; 2],
    })
}

// ---- finite differences ----

/// Central difference of f at x along coordinate i.
pub fn numeric_grad(f: &dyn Fn(&[f32]) -> f64, x: &[f32], i: usize, h: f32) -> f64 {
    let (mut up, mut down) = (x.to_vec(), x.to_vec());
    up[i] += h;
    down[i] -= h;
    (f(&up) - f(&down)) / (2.0 * h as f64)
}

/// Compares analytic with central differences on about 40 coordinates. `smooth(up, down)` says
/// whether f is differentiable between the two perturbed points (no ReLU changed side); a
/// difference across a kink measures nothing, so those coordinates are skipped, and at least
/// three quarters of them must be checked.
pub fn check_grad(
    name: &str,
    f: &dyn Fn(&[f32]) -> f64,
    smooth: &dyn Fn(&[f32], &[f32]) -> bool,
    x: &[f32],
    analytic: &[f32],
) {
    let h = 1e-2;
    let (mut checked, mut tried) = (0, 0);
    for i in (0..x.len()).step_by(x.len().div_ceil(40).max(1)) {
        tried += 1;
        let (mut up, mut down) = (x.to_vec(), x.to_vec());
        up[i] += h;
        down[i] -= h;
        if !smooth(&up, &down) {
            continue;
        }
        checked += 1;
        let num = numeric_grad(f, x, i, h);
        let err = (num - analytic[i] as f64).abs() / (1.0 + num.abs());
        assert!(err < 2e-2, "{name}[{i}]: analytic {} vs finite difference {num}", analytic[i]);
    }
    assert!(4 * checked >= 3 * tried, "{name}: only {checked} of {tried} coordinates were away from a ReLU kink");
}

pub fn always(_: &[f32], _: &[f32]) -> bool {
    true
}

pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Mean over the batch of latent dimension j's KL.
pub fn dim_mean_kl(mulv: &[f32], batch: usize, latent: usize, j: usize) -> f64 {
    (0..batch)
        .map(|b| {
            let (m, l) = (mulv[b * 2 * latent + j] as f64, mulv[b * 2 * latent + latent + j] as f64);
            -0.5 * (1.0 + l - m * m - l.exp())
        })
        .sum::<f64>()
        / batch as f64
}
