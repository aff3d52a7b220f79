//! shaders/toy.wgsl: the notes' worked example, both estimators side by side. A step draws
//! `draws` single-sample gradient estimates per estimator, then moves each theta by SGD and
//! records it and the estimates' mean and variance.
use crate::gpu::kernels::bind;
use crate::gpu::{Launch, Launcher};
use crate::shaders::toy::{GRADS, MOMENTS, PARAMS, STEP, THETA, TRAJECTORY};
use crate::shaders::Entry;

/// ToyParams in `params`; theta [2], the step counter, grads [2, draws], trajectory
/// [steps + 1, 2], moments [steps, 2, 2].
pub struct ToyBuffers<'a> {
    pub draws: usize,
    pub params: &'a wgpu::Buffer,
    pub theta: &'a wgpu::Buffer,
    pub step: &'a wgpu::Buffer,
    pub grads: &'a wgpu::Buffer,
    pub trajectory: &'a wgpu::Buffer,
    pub moments: &'a wgpu::Buffer,
}

impl ToyBuffers<'_> {
    /// The step's gradient estimates: `draws` per estimator at the current thetas.
    pub fn draws(&self, l: Launcher) -> Launch {
        let binds =
            [bind(PARAMS, self.params), bind(THETA, self.theta), bind(STEP, self.step), bind(GRADS, self.grads)];
        l.over(Entry::ToyDraws, &binds, self.draws)
    }

    /// The SGD update of both thetas and the step's records (one invocation).
    pub fn sgd_step(&self, l: Launcher) -> Launch {
        let binds = [
            bind(PARAMS, self.params),
            bind(THETA, self.theta),
            bind(STEP, self.step),
            bind(GRADS, self.grads),
            bind(TRAJECTORY, self.trajectory),
            bind(MOMENTS, self.moments),
        ];
        l.grid(Entry::ToyStep, &binds, [1, 1, 1])
    }
}
