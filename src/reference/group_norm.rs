//! shaders/group_norm.wgsl on the CPU, an entry point per function of the same name. Sums run in
//! the kernels' order (`lane_sum`), so the two agree to a few ulp.
use crate::network::group_norm::{GroupNorm, EPS};
use crate::network::{Layer, Mirror};

/// A GroupNorm over a batch: `rows` of [channels, spatial] values, the channels in `groups` runs
/// of channels / groups, each (row, group) normalised with `eps` added to its variance.
#[derive(Clone, Copy, Debug)]
pub struct GroupNormSizes {
    pub rows: usize,
    pub channels: usize,
    pub groups: usize,
    pub spatial: usize,
    pub eps: f32,
}

impl GroupNormSizes {
    /// Values per (row, group), contiguous in NCHW.
    fn group_len(&self) -> usize {
        self.channels / self.groups * self.spatial
    }

    fn values(&self) -> usize {
        self.rows * self.channels * self.spatial
    }

    /// (channel, (row, group)) of flat value index v.
    fn place(&self, v: usize) -> (usize, usize) {
        ((v / self.spatial) % self.channels, v / self.group_len())
    }
}

/// A 64-lane workgroup's sum of value(0..n): lane l adds values l, l + 64, ..., then a tree adds
/// the lanes' sums.
fn lane_sum(n: usize, value: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [0.0f32; 64];
    for (l, lane) in lanes.iter_mut().enumerate() {
        for k in (l..n).step_by(64) {
            *lane += value(k);
        }
    }
    let mut half = 32;
    while half > 0 {
        for l in 0..half {
            lanes[l] += lanes[l + half];
        }
        half /= 2;
    }
    lanes[0]
}

/// [rows, groups] of (mean, 1 / sqrt(biased variance + eps)) of x.
pub fn group_norm_stats(d: &GroupNormSizes, x: &[f32]) -> Vec<f32> {
    let m = d.group_len();
    let mut stats = vec![0.0; 2 * d.rows * d.groups];
    for i in 0..d.rows * d.groups {
        let group = &x[i * m..(i + 1) * m];
        let mean = lane_sum(m, |k| group[k]) / m as f32;
        let variance = lane_sum(m, |k| (group[k] - mean) * (group[k] - mean)) / m as f32;
        stats[2 * i] = mean;
        stats[2 * i + 1] = 1.0 / (variance + d.eps).sqrt();
    }
    stats
}

/// y = act((x - mean) rstd gamma[c] + beta[c]).
pub fn group_norm_forward(
    d: &GroupNormSizes,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &[f32],
    relu: bool,
) -> Vec<f32> {
    (0..d.values())
        .map(|v| {
            let (c, g) = d.place(v);
            let y = (x[v] - stats[2 * g]) * stats[2 * g + 1] * gamma[c] + beta[c];
            if relu {
                y.max(0.0)
            } else {
                y
            }
        })
        .collect()
}

/// [rows, groups] of (mean(a), mean(a x^)), a = dy gamma[c], x^ = (x - mean) rstd.
pub fn group_norm_backward_stats(d: &GroupNormSizes, dy: &[f32], gamma: &[f32], x: &[f32], stats: &[f32]) -> Vec<f32> {
    let m = d.group_len();
    let mut sums = vec![0.0; 2 * d.rows * d.groups];
    for i in 0..d.rows * d.groups {
        let (mean, rstd) = (stats[2 * i], stats[2 * i + 1]);
        let a = |k: usize| dy[i * m + k] * gamma[d.place(i * m + k).0];
        sums[2 * i] = lane_sum(m, a) / m as f32;
        sums[2 * i + 1] = lane_sum(m, |k| a(k) * ((x[i * m + k] - mean) * rstd)) / m as f32;
    }
    sums
}

/// dx = rstd (dy gamma[c] - mean(a) - x^ mean(a x^)), masked where x (a ReLU output) is 0.
pub fn group_norm_backward_input(
    d: &GroupNormSizes,
    dy: &[f32],
    gamma: &[f32],
    x: &[f32],
    stats: &[f32],
    sums: &[f32],
    relu_input: bool,
) -> Vec<f32> {
    (0..d.values())
        .map(|v| {
            let (c, g) = d.place(v);
            let (mean, rstd) = (stats[2 * g], stats[2 * g + 1]);
            let x_hat = (x[v] - mean) * rstd;
            let dx = rstd * (dy[v] * gamma[c] - sums[2 * g] - x_hat * sums[2 * g + 1]);
            if relu_input && x[v] == 0.0 {
                0.0
            } else {
                dx
            }
        })
        .collect()
}

/// The flat index of channel c's k-th value over rows and positions.
fn channel_value(d: &GroupNormSizes, c: usize, k: usize) -> usize {
    (k / d.spatial * d.channels + c) * d.spatial + k % d.spatial
}

/// dgamma[c] = the sum over rows and positions of dy x^.
pub fn group_norm_backward_weight(d: &GroupNormSizes, dy: &[f32], x: &[f32], stats: &[f32]) -> Vec<f32> {
    (0..d.channels)
        .map(|c| {
            lane_sum(d.rows * d.spatial, |k| {
                let (v, g) = (channel_value(d, c, k), k / d.spatial * d.groups + c / (d.channels / d.groups));
                dy[v] * ((x[v] - stats[2 * g]) * stats[2 * g + 1])
            })
        })
        .collect()
}

/// dbeta[c] = the sum over rows and positions of dy.
pub fn group_norm_backward_bias(d: &GroupNormSizes, dy: &[f32]) -> Vec<f32> {
    (0..d.channels).map(|c| lane_sum(d.rows * d.spatial, |k| dy[channel_value(d, c, k)])).collect()
}

fn sizes(k: &GroupNorm, rows: usize) -> GroupNormSizes {
    GroupNormSizes { rows, channels: k.channels, groups: k.groups, spatial: k.spatial, eps: EPS }
}

impl Mirror for GroupNorm {
    fn reference_forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
        let ((gamma, beta), d) = (layer.tensors_in(params), sizes(self, rows));
        let stats = group_norm_stats(&d, input);
        group_norm_forward(&d, input, gamma, beta, &stats, layer.relu)
    }

    fn reference_backward_input(
        &self,
        layer: &Layer,
        params: &[f32],
        input: &[f32],
        d_output: &[f32],
        rows: usize,
    ) -> Vec<f32> {
        let ((gamma, _), d) = (layer.tensors_in(params), sizes(self, rows));
        let stats = group_norm_stats(&d, input);
        let sums = group_norm_backward_stats(&d, d_output, gamma, input, &stats);
        group_norm_backward_input(&d, d_output, gamma, input, &stats, &sums, layer.relu_input)
    }

    fn reference_backward_params(&self, _: &Layer, input: &[f32], d_output: &[f32], rows: usize) -> [Vec<f32>; 2] {
        let d = sizes(self, rows);
        let stats = group_norm_stats(&d, input);
        [group_norm_backward_weight(&d, d_output, input, &stats), group_norm_backward_bias(&d, d_output)]
    }
}
