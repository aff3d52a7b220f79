//! GroupNorm as a layer kind (PyTorch's nn.GroupNorm, affine: weight gamma and bias beta per
//! channel): its launches of shaders/group_norm.wgsl (reference/group_norm.rs mirrors them).
//! Stateless: the backward pass recomputes the forward's statistics from the input rather than
//! keeping them, one more read of x.
use super::{Kind, Layer};
use crate::gpu::kernels::{bind, bind_range};
use crate::gpu::{self, Launch, Launcher};
use crate::shaders::group_norm::{AUX, DIMS, DST, SRC, STATS, SUMS, WEIGHT};
use crate::shaders::Entry;
use wgpu::Buffer;

/// PyTorch's default epsilon.
pub const EPS: f32 = 1e-5;

/// nn.GroupNorm(groups, channels) over maps of `spatial` = h w positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupNorm {
    pub channels: usize,
    pub groups: usize,
    pub spatial: usize,
}

/// Mirror of `GroupNormDims` in shaders/group_norm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GroupNormDims {
    pub rows: u32,
    pub channels: u32,
    pub groups: u32,
    pub spatial: u32,
    pub relu: u32,
    pub eps: f32,
    pub pad: [u32; 2],
}
crate::gpu::params::mirrors!(
    GroupNormDims,
    crate::shaders::layout::GROUP_NORM_DIMS,
    [rows, channels, groups, spatial, relu, eps]
);

impl GroupNorm {
    fn dims(&self, l: Launcher, rows: usize, relu: bool) -> Buffer {
        let (c, g, s) = (self.channels as u32, self.groups as u32, self.spatial as u32);
        let d = GroupNormDims {
            rows: rows as u32,
            channels: c,
            groups: g,
            spatial: s,
            relu: relu as u32,
            eps: EPS,
            pad: [0; 2],
        };
        l.uniform("group norm dims", &d)
    }

    /// A launch of one 64-lane workgroup per (row, group) or per channel: `count` of them.
    fn per_workgroup(l: Launcher, entry: Entry, binds: &[gpu::kernels::Bind], count: usize) -> Launch {
        l.grid(entry, binds, l.gpu.grid_1d(count * 64))
    }

    /// (mean, rstd) of each (row, group) of `input` into a new [rows, groups, 2] buffer.
    fn stats(&self, l: Launcher, dims: &Buffer, rows: usize, input: &Buffer) -> (Buffer, Launch) {
        let stats = gpu::zeroed::<f32>(l.gpu, "group norm stats", rows * self.groups * 2);
        let binds = [bind(DIMS, dims), bind(SRC, input), bind(DST, &stats)];
        let launch = Self::per_workgroup(l, Entry::GroupNormStats, &binds, rows * self.groups);
        (stats, launch)
    }
}

impl Kind for GroupNorm {
    fn shapes(&self, _: &Layer) -> [Vec<usize>; 2] {
        [vec![self.channels], vec![self.channels]]
    }

    /// About four operations per value forward (its statistics and the affine map).
    fn macs_per_row(&self, layer: &Layer) -> usize {
        2 * layer.n_out
    }

    /// nn.GroupNorm's: weight 1, bias 0 (no random draws).
    fn init(&self, _: &Layer, _: &mut rand::rngs::StdRng) -> [Vec<f32>; 2] {
        [vec![1.0; self.channels], vec![0.0; self.channels]]
    }

    fn forward(&self, l: Launcher, layer: &Layer, params: &Buffer, rows: usize, io: (&Buffer, &Buffer)) -> Vec<Launch> {
        let (input, output) = io;
        let dims = self.dims(l, rows, layer.relu);
        let (stats, stats_launch) = self.stats(l, &dims, rows, input);
        let binds = [
            bind(DIMS, &dims),
            bind(SRC, input),
            bind_range(WEIGHT, params, layer.weight_at, self.channels),
            bind_range(AUX, params, layer.bias_at, self.channels),
            bind(STATS, &stats),
            bind(DST, output),
        ];
        vec![stats_launch, l.over(Entry::GroupNormForward, &binds, rows * layer.n_out)]
    }

    fn backward(
        &self,
        l: Launcher,
        layer: &Layer,
        (params, grads): (&Buffer, Option<&Buffer>),
        rows: usize,
        (input, d_output): (&Buffer, &Buffer),
        d_input: Option<&Buffer>,
    ) -> Vec<Launch> {
        let dims = self.dims(l, rows, layer.relu_input);
        let (stats, stats_launch) = self.stats(l, &dims, rows, input);
        let gamma = bind_range(WEIGHT, params, layer.weight_at, self.channels);
        let mut launches = vec![stats_launch];
        if let Some(d_input) = d_input {
            let sums = gpu::zeroed::<f32>(l.gpu, "group norm sums", rows * self.groups * 2);
            let (dy, x) = (bind(SRC, d_output), bind(AUX, input));
            let binds = [bind(DIMS, &dims), dy, gamma, x, bind(STATS, &stats), bind(DST, &sums)];
            launches.push(Self::per_workgroup(l, Entry::GroupNormBackwardStats, &binds, rows * self.groups));
            let binds = [bind(DIMS, &dims), dy, gamma, x, bind(STATS, &stats), bind(SUMS, &sums), bind(DST, d_input)];
            launches.push(l.over(Entry::GroupNormBackwardInput, &binds, rows * layer.n_in));
        }
        if let Some(grads) = grads {
            let d_gamma = bind_range(DST, grads, layer.weight_at, self.channels);
            let binds = [bind(DIMS, &dims), bind(SRC, d_output), bind(AUX, input), bind(STATS, &stats), d_gamma];
            launches.push(Self::per_workgroup(l, Entry::GroupNormBackwardWeight, &binds, self.channels));
            let d_beta = bind_range(DST, grads, layer.bias_at, self.channels);
            let binds = [bind(DIMS, &dims), bind(SRC, d_output), d_beta];
            launches.push(Self::per_workgroup(l, Entry::GroupNormBackwardBias, &binds, self.channels));
        }
        launches
    }
}
