// The data movement that turns a convolution into the linear layer's matrix products (the Gemm
// variant of src/network/conv.rs, for CPU adapters): patches out of NCHW maps (im2col), patches
// summed back into maps (col2im), and NCHW maps to and from rows of channels.
// Prelude: common.wgsl.
//
// Why: on lavapipe a load costs one scalar load per SIMD lane whatever it fetches, so the vec4
// loads of linear_vec4.wgsl are 4x cheaper per value than the scalar, unaligned loads a direct
// convolution needs (design-notes.md). Copying the patches once costs one load and one store per
// value; the products then run at the matmul's speed.
//
// All in the geometry of a Conv2d ("in" is what its taps read, "out" what they write; a
// ConvTranspose2d is passed with its sides swapped, src/network/conv.rs's `conv_view`):
//   col [batch h_out w_out, c_in k k]: row (n, oy, ox) holds the patch its taps read, zero outside
//   rows [batch h_out w_out, c_out]: an "out" map with the channels innermost.
// Bindings: 0 dims, 1 src, 2 aux, 3 dst. One invocation per value written (im2col: per kernel
// row), numbered across a 2-D grid: (min(g, 65535), ceil(g / 65535), 1) workgroups for
// g = ceil(invocations / WG).

const WG: u32 = 64u;

struct ConvDims {
    rows: u32,
    c_in: u32,
    h_in: u32,
    w_in: u32,
    c_out: u32,
    h_out: u32,
    w_out: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    relu: u32, // col2im_bias: ReLU on the output; col2im_masked, rows_to_nchw: mask where aux is 0
    pad0: u32,
}

@group(0) @binding(0) var<uniform> dims: ConvDims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// col = the patches of src (an "in" map); aux unused. One invocation per (row, ci, ky): the k
// values of one kernel row, which are consecutive in col and share their decoded indices.
@compute @workgroup_size(WG)
fn im2col(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let d = dims;
    let i = (wg.y * groups.x + wg.x) * WG + lane;
    if (i >= d.rows * d.h_out * d.w_out * d.c_in * d.kernel) {
        return;
    }
    let ky = i % d.kernel;
    let ci = (i / d.kernel) % d.c_in;
    let row = i / (d.kernel * d.c_in);
    let ox = row % d.w_out;
    let oy = (row / d.w_out) % d.h_out;
    let n = row / (d.w_out * d.h_out);
    let iy = i32(oy * d.stride + ky) - i32(d.padding);
    let row_inside = iy >= 0 && iy < i32(d.h_in);
    let source = ((n * d.c_in + ci) * d.h_in + u32(clamp(iy, 0, i32(d.h_in) - 1))) * d.w_in;
    for (var kx = 0u; kx < d.kernel; kx++) {
        let ix = i32(ox * d.stride + kx) - i32(d.padding);
        var v = 0.0;
        if (row_inside && ix >= 0 && ix < i32(d.w_in)) {
            v = src[source + u32(ix)];
        }
        dst[i * d.kernel + kx] = v; // col [row, (ci k + ky) k + kx]
    }
}

// The "in" map value at flat index i: the sum of the col entries whose taps read it (the
// (ky, kx) with iy + padding - ky a non-negative multiple of stride, and so on for x).
fn col2im_sum(i: u32) -> f32 {
    let d = dims;
    let ix = i % d.w_in;
    let iy = (i / d.w_in) % d.h_in;
    let ci = (i / (d.w_in * d.h_in)) % d.c_in;
    let n = i / (d.w_in * d.h_in * d.c_in);
    let width = d.c_in * d.kernel * d.kernel;
    var acc = 0.0;
    for (var ky = (iy + d.padding) % d.stride; ky < d.kernel && ky <= iy + d.padding; ky += d.stride) {
        let oy = (iy + d.padding - ky) / d.stride;
        if (oy >= d.h_out) {
            continue;
        }
        for (var kx = (ix + d.padding) % d.stride; kx < d.kernel && kx <= ix + d.padding; kx += d.stride) {
            let ox = (ix + d.padding - kx) / d.stride;
            if (ox < d.w_out) {
                acc += src[((n * d.h_out + oy) * d.w_out + ox) * width + (ci * d.kernel + ky) * d.kernel + kx];
            }
        }
    }
    return acc;
}

// dst (an "in" map) = act(col2im(src) + aux[channel]): a ConvTranspose2d's forward.
@compute @workgroup_size(WG)
fn col2im_bias(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let d = dims;
    let i = (wg.y * groups.x + wg.x) * WG + lane;
    if (i >= d.rows * d.c_in * d.h_in * d.w_in) {
        return;
    }
    let y = col2im_sum(i) + aux[(i / (d.h_in * d.w_in)) % d.c_in];
    dst[i] = select(y, max(y, 0.0), d.relu != 0u);
}

// dst (an "in" map) = col2im(src), zero where aux (the same map, a ReLU output) is 0 when
// dims.relu: a Conv2d's input gradient.
@compute @workgroup_size(WG)
fn col2im_masked(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let d = dims;
    let i = (wg.y * groups.x + wg.x) * WG + lane;
    if (i >= d.rows * d.c_in * d.h_in * d.w_in) {
        return;
    }
    dst[i] = select(col2im_sum(i), 0.0, d.relu != 0u && aux[i] <= 0.0);
}

// rows [batch h_out w_out, c_out] = src, an "out" map [batch, c_out, h_out, w_out]; aux unused.
@compute @workgroup_size(WG)
fn nchw_to_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let d = dims;
    let i = (wg.y * groups.x + wg.x) * WG + lane;
    let plane = d.h_out * d.w_out;
    if (i >= d.rows * plane * d.c_out) {
        return;
    }
    let c = i % d.c_out;
    let p = (i / d.c_out) % plane;
    let n = i / (d.c_out * plane);
    dst[i] = src[(n * d.c_out + c) * plane + p];
}

// dst, an "out" map = src rows, zero where aux (the same map, a ReLU output) is 0 when dims.relu.
@compute @workgroup_size(WG)
fn rows_to_nchw(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let d = dims;
    let i = (wg.y * groups.x + wg.x) * WG + lane;
    let plane = d.h_out * d.w_out;
    if (i >= d.rows * d.c_out * plane) {
        return;
    }
    let p = i % plane;
    let c = (i / plane) % d.c_out;
    let n = i / (plane * d.c_out);
    let v = src[(n * plane + p) * d.c_out + c];
    dst[i] = select(v, 0.0, d.relu != 0u && aux[i] <= 0.0);
}
