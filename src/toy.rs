//! The seed-004 worked example on the GPU (shaders/toy.wgsl): minimise F(theta) = E[z^2] with
//! z ~ N(a theta + b, 1), by SGD with the REINFORCE and the reparameterization estimators of
//! F'(theta), and the closed forms the measurements are checked against.
use crate::gpu::faults::GpuResult;
use crate::gpu::kernels::submit;
use crate::gpu::params::ToyParams;
use crate::gpu::{self, Gpu, Kernels, Launch, Launcher};
use crate::launches::ToyBuffers;

/// SGD steps recorded per submission: the queue stays short, the host never reads in between.
const STEPS_PER_SUBMIT: usize = 256;

/// The two estimators, in the shader's order.
pub const ESTIMATORS: [&str; 2] = ["reinforce", "reparameterization"];

/// The problem F(theta) = E_{z ~ N(a theta + b, 1)}[z^2] = (a theta + b)^2 + 1.
#[derive(Clone, Copy, Debug)]
pub struct Problem {
    pub a: f32,
    pub b: f32,
}

impl Problem {
    pub fn mean(&self, theta: f64) -> f64 {
        self.a as f64 * theta + self.b as f64
    }

    /// F'(theta) = 2 a (a theta + b).
    pub fn exact_grad(&self, theta: f64) -> f64 {
        2.0 * self.a as f64 * self.mean(theta)
    }

    /// Where F'(theta) = 0.
    pub fn optimum(&self) -> f64 {
        -(self.b as f64) / self.a as f64
    }

    /// E[g^p] of one draw of `estimator` (0 REINFORCE, 1 reparameterization) at theta.
    ///
    /// Both estimates are polynomials in eps ~ N(0, 1), whose moments are E[eps^n] = (n - 1)!! for
    /// even n and 0 for odd n. With mu = a theta + b, REINFORCE's g = a eps (mu + eps)^2, so
    /// g^p = a^p eps^p (mu + eps)^(2p) = a^p sum_j C(2p, j) mu^(2p - j) eps^(p + j); the
    /// reparameterization's g = 2a (mu + eps), so g^p = (2a)^p sum_j C(p, j) mu^(p - j) eps^j.
    /// (p = 2 gives the variances a^2 (mu^4 + 14 mu^2 + 15) and 4 a^2.)
    pub fn moment(&self, estimator: usize, theta: f64, p: u32) -> f64 {
        let (a, mu) = (self.a as f64, self.mean(theta));
        let (scale, degree, eps_shift) = if estimator == 0 { (a, 2 * p, p) } else { (2.0 * a, p, 0) };
        let sum: f64 = (0..=degree)
            .map(|j| binomial(degree, j) * mu.powi((degree - j) as i32) * normal_moment(eps_shift + j))
            .sum();
        scale.powi(p as i32) * sum
    }

    /// Var[g] of one draw.
    pub fn variance(&self, estimator: usize, theta: f64) -> f64 {
        self.moment(estimator, theta, 2) - self.moment(estimator, theta, 1).powi(2)
    }

    /// E[(g - E g)^4] of one draw: it sets how closely a sample variance of N draws estimates
    /// Var[g] (its own variance is about (E[(g - E g)^4] - Var[g]^2) / N).
    pub fn central_fourth(&self, estimator: usize, theta: f64) -> f64 {
        let m = |p| self.moment(estimator, theta, p);
        let m1 = m(1);
        m(4) - 4.0 * m(3) * m1 + 6.0 * m(2) * m1 * m1 - 3.0 * m1.powi(4)
    }
}

fn binomial(n: u32, k: u32) -> f64 {
    (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64)
}

/// E[eps^n] for eps ~ N(0, 1).
fn normal_moment(n: u32) -> f64 {
    if n % 2 == 1 {
        0.0
    } else {
        (1..n).step_by(2).map(|k| k as f64).product()
    }
}

/// What a run measured on the GPU.
#[derive(Clone, Debug)]
pub struct ToyRun {
    /// theta per estimator before the first step and after each: [steps + 1][2].
    pub trajectory: Vec<[f32; 2]>,
    /// (mean, sample variance) of the single-draw estimates per step and estimator: [steps][2].
    pub moments: Vec<[(f32, f32); 2]>,
}

/// Runs `steps` SGD steps of both estimators from `theta`, `samples` draws each per step; reads the
/// GPU once, at the end.
pub fn run(
    gpu: &Gpu,
    kernels: &Kernels,
    problem: Problem,
    theta: f32,
    (samples, steps): (usize, usize),
    lr: f32,
    seed: u32,
) -> GpuResult<ToyRun> {
    let p = ToyParams { draws: samples as u32, a: problem.a, b: problem.b, lr, seed };
    let params = gpu::uniform_with(gpu, "toy params", &p);
    let theta_buf = gpu::storage_with(gpu, "toy theta", &[theta, theta]);
    let step = gpu::storage_with(gpu, "toy step", &[0u32]);
    let grads = gpu::zeroed::<f32>(gpu, "toy grads", 2 * samples);
    let mut start = vec![0.0f32; (steps + 1) * 2];
    start[..2].copy_from_slice(&[theta, theta]);
    let trajectory = gpu::storage_with(gpu, "toy trajectory", &start);
    let moments = gpu::zeroed::<f32>(gpu, "toy moments", steps * 4);
    let l = Launcher { gpu, kernels };
    let bufs = ToyBuffers {
        draws: samples,
        params: &params,
        theta: &theta_buf,
        step: &step,
        grads: &grads,
        trajectory: &trajectory,
        moments: &moments,
    };
    let one_step: Vec<Launch> = vec![bufs.draws(l), bufs.sgd_step(l)];
    let mut done = 0;
    while done < steps {
        let n = STEPS_PER_SUBMIT.min(steps - done);
        let lists: Vec<&[Launch]> = (0..n).map(|_| one_step.as_slice()).collect();
        submit(gpu, &lists)?;
        done += n;
    }
    let t: Vec<f32> = gpu::read_all(gpu, &trajectory)?;
    let m: Vec<f32> = gpu::read_all(gpu, &moments)?;
    Ok(ToyRun {
        trajectory: t.chunks(2).take(steps + 1).map(|c| [c[0], c[1]]).collect(),
        moments: m.chunks(4).take(steps).map(|c| [(c[0], c[1]), (c[2], c[3])]).collect(),
    })
}
