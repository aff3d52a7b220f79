// GroupNorm (PyTorch's nn.GroupNorm, affine) over NCHW rows, forward and backward.
// Prelude: common.wgsl.
//
//   x, y [rows, channels, spatial] (spatial = h w), weight gamma and bias beta [channels].
//   The channels fall into `groups` runs of channels / groups, and each (row, group) is normalised
//   over its m = channels / groups x spatial values: x^ = (x - mean) rstd, rstd = 1 / sqrt(var +
//   eps), var the biased variance (as PyTorch's), and y = act(x^ gamma[c] + beta[c]).
//   Backward, with a = dy gamma[c] and means over the group: dx = rstd (a - mean(a) - x^ mean(a x^)),
//   dgamma[c] = sum over rows and positions of dy x^, dbeta[c] = the sum of dy.
// Bindings: 0 dims, 1 src (x forward, dy backward), 2 weight (gamma), 3 aux (beta forward, x
// backward), 4 stats ([rows, groups] of (mean, rstd)), 5 sums ([rows, groups] of (mean(a),
// mean(a x^))), 6 dst.
// Dispatch: the per-value entries one invocation per value written (flat_index in common.wgsl);
// the reductions one 64-lane workgroup per (row, group) or per channel, in rows of groups.x
// workgroups (Gpu::grid_1d of their count x 64), each lane summing every 64th value and a tree
// adding the lanes' sums (reference/group_norm.rs adds in the same order).

struct GroupNormDims {
    rows: u32,
    channels: u32,
    groups: u32,
    spatial: u32,
    relu: u32, // forward: ReLU on the output; backward input: mask where the input x is 0
    eps: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> dims: GroupNormDims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read> sums: array<f32>;
@group(0) @binding(6) var<storage, read_write> dst: array<f32>;

var<workgroup> lane_sums: array<vec2<f32>, 64>;

// Adds the 64 lanes' partial sums by a tree; every lane gets the total.
fn workgroup_total(lane: u32, part: vec2<f32>) -> vec2<f32> {
    lane_sums[lane] = part;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half /= 2u) {
        if (lane < half) {
            lane_sums[lane] += lane_sums[lane + half];
        }
        workgroupBarrier();
    }
    let total = lane_sums[0];
    workgroupBarrier();
    return total;
}

// Values per group, and where (row, group) i's values start: they are contiguous in NCHW.
fn group_len() -> u32 {
    return dims.channels / dims.groups * dims.spatial;
}

// The (row, group) of flat value index v.
fn group_of(v: u32) -> u32 {
    return v / group_len();
}

// (mean, rstd) of each (row, group) of x (src), into dst. Two passes: the mean, then the mean
// square deviation from it.
@compute @workgroup_size(64)
fn group_norm_stats(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = wg.y * groups.x + wg.x;
    if (i >= dims.rows * dims.groups) {
        return;
    }
    let m = group_len();
    let start = i * m;
    var part = 0.0;
    for (var k = lane; k < m; k += 64u) {
        part += src[start + k];
    }
    let mean = workgroup_total(lane, vec2<f32>(part, 0.0)).x / f32(m);
    part = 0.0;
    for (var k = lane; k < m; k += 64u) {
        let dev = src[start + k] - mean;
        part += dev * dev;
    }
    let variance = workgroup_total(lane, vec2<f32>(part, 0.0)).x / f32(m);
    if (lane == 0u) {
        dst[2u * i] = mean;
        dst[2u * i + 1u] = 1.0 / sqrt(variance + dims.eps);
    }
}

// y = act(x^ gamma + beta). One invocation per value.
@compute @workgroup_size(64)
fn group_norm_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let v = flat_index(id, groups);
    if (v >= dims.rows * dims.channels * dims.spatial) {
        return;
    }
    let c = (v / dims.spatial) % dims.channels;
    let g = group_of(v);
    let y = (src[v] - stats[2u * g]) * stats[2u * g + 1u] * weight[c] + aux[c];
    dst[v] = select(y, max(y, 0.0), dims.relu != 0u);
}

// (mean(a), mean(a x^)) of each (row, group), a = dy gamma, into dst.
@compute @workgroup_size(64)
fn group_norm_backward_stats(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = wg.y * groups.x + wg.x;
    if (i >= dims.rows * dims.groups) {
        return;
    }
    let m = group_len();
    let start = i * m;
    let mean = stats[2u * i];
    let rstd = stats[2u * i + 1u];
    var part = vec2<f32>(0.0);
    for (var k = lane; k < m; k += 64u) {
        let v = start + k;
        let a = src[v] * weight[(v / dims.spatial) % dims.channels];
        part += vec2<f32>(a, a * ((aux[v] - mean) * rstd));
    }
    let total = workgroup_total(lane, part) / f32(m);
    if (lane == 0u) {
        dst[2u * i] = total.x;
        dst[2u * i + 1u] = total.y;
    }
}

// dx = rstd (a - mean(a) - x^ mean(a x^)), masked where x (a ReLU output) is 0. One invocation per
// value.
@compute @workgroup_size(64)
fn group_norm_backward_input(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let v = flat_index(id, groups);
    if (v >= dims.rows * dims.channels * dims.spatial) {
        return;
    }
    let c = (v / dims.spatial) % dims.channels;
    let g = group_of(v);
    let mean = stats[2u * g];
    let rstd = stats[2u * g + 1u];
    let x_hat = (aux[v] - mean) * rstd;
    let dx = rstd * (src[v] * weight[c] - sums[2u * g] - x_hat * sums[2u * g + 1u]);
    dst[v] = select(dx, 0.0, dims.relu != 0u && aux[v] == 0.0);
}

// dgamma[c] = the sum over rows and positions of dy x^. One workgroup per channel.
@compute @workgroup_size(64)
fn group_norm_backward_weight(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let c = wg.y * groups.x + wg.x;
    if (c >= dims.channels) {
        return;
    }
    let per_group = dims.channels / dims.groups;
    var part = 0.0;
    for (var k = lane; k < dims.rows * dims.spatial; k += 64u) {
        let row = k / dims.spatial;
        let v = (row * dims.channels + c) * dims.spatial + k % dims.spatial;
        let g = row * dims.groups + c / per_group;
        part += src[v] * ((aux[v] - stats[2u * g]) * stats[2u * g + 1u]);
    }
    let total = workgroup_total(lane, vec2<f32>(part, 0.0));
    if (lane == 0u) {
        dst[c] = total.x;
    }
}

// dbeta[c] = the sum over rows and positions of dy. One workgroup per channel.
@compute @workgroup_size(64)
fn group_norm_backward_bias(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let c = wg.y * groups.x + wg.x;
    if (c >= dims.channels) {
        return;
    }
    var part = 0.0;
    for (var k = lane; k < dims.rows * dims.spatial; k += 64u) {
        part += src[(k / dims.spatial * dims.channels + c) * dims.spatial + k % dims.spatial];
    }
    let total = workgroup_total(lane, vec2<f32>(part, 0.0));
    if (lane == 0u) {
        dst[c] = total.x;
    }
}
