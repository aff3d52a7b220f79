// 2-D convolutions and transposed convolutions in PyTorch's layouts (NCHW), forward and backward.
// Prelude: common.wgsl.
//
//   input x [batch, c_in, h_in, w_in], output y [batch, c_out, h_out, w_out], bias [c_out];
//   Conv2d weight [c_out, c_in, k, k], h_out = (h_in + 2 padding - k) / stride + 1;
//   ConvTranspose2d weight [c_in, c_out, k, k], h_out = (h_in - 1) stride - 2 padding + k.
// NCHW inside too: the checkpoint's tensors are the kernels' buffers, and PyTorch loads them as
// they are. Each entry point is one invocation per value it writes, summing over the taps that land
// inside the other tensor (this direct form is the register-light variant for CPU adapters).
// Bindings: 0 dims, 1 src (x forward, dy backward), 2 weight, 3 aux (the bias forward; the layer's
// input x for the weight gradient and for the ReLU mask of the input gradient), 4 dst.
// Dispatch: one invocation per value written, on a 1-D grid (flat_index in common.wgsl).

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
    relu: u32, // forward: ReLU on the output; backward input: mask where the input x is 0
    pad0: u32,
}

@group(0) @binding(0) var<uniform> dims: ConvDims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// The tap at output coordinate o and kernel offset k reads input coordinate o stride + k - padding
// (Conv2d); it is inside when 0 <= that < size. Returns the coordinate, or -1 outside.
fn conv_tap(o: u32, k: u32, size: u32) -> i32 {
    let i = i32(o * dims.stride + k) - i32(dims.padding);
    return select(-1, i, i >= 0 && i < i32(size));
}

// The inverse: the taps k that reach input coordinate i are those with i + padding - k a
// non-negative multiple of stride, so they start at (i + padding) % stride and step by stride
// (only 1 in stride^2 of a 2-D kernel's taps, so the loops below visit no others). Tap k reads
// output coordinate (i + padding - k) / stride, or -1 when that lies outside `size` or k is past
// i + padding.
fn conv_source(i: u32, k: u32, size: u32) -> i32 {
    if (k > i + dims.padding) {
        return -1;
    }
    let o = (i + dims.padding - k) / dims.stride;
    return select(-1, i32(o), o < size);
}

// The (a, b, c, d) coordinates of flat index i into an [_, nb, nc, nd] array (at4's inverse).
fn split4(i: u32, nb: u32, nc: u32, nd: u32) -> vec4<u32> {
    return vec4<u32>(i / (nd * nc * nb), (i / (nd * nc)) % nb, (i / nd) % nc, i % nd);
}

fn at4(a: u32, b: u32, c: u32, d: u32, nb: u32, nc: u32, nd: u32) -> u32 {
    return ((a * nb + b) * nc + c) * nd + d;
}

// y = act(conv(x, W) + b). One invocation per output value.
@compute @workgroup_size(64)
fn conv2d_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let d = dims;
    let i = flat_index(id, groups);
    if (i >= d.rows * d.c_out * d.h_out * d.w_out) {
        return;
    }
    let at = split4(i, d.c_out, d.h_out, d.w_out);
    let n = at.x; let co = at.y; let oy = at.z; let ox = at.w;
    var acc = aux[co];
    for (var ci = 0u; ci < d.c_in; ci++) {
        for (var ky = 0u; ky < d.kernel; ky++) {
            let iy = conv_tap(oy, ky, d.h_in);
            for (var kx = 0u; kx < d.kernel; kx++) {
                let ix = conv_tap(ox, kx, d.w_in);
                if (iy >= 0 && ix >= 0) {
                    acc += weight[at4(co, ci, ky, kx, d.c_in, d.kernel, d.kernel)]
                        * src[at4(n, ci, u32(iy), u32(ix), d.c_in, d.h_in, d.w_in)];
                }
            }
        }
    }
    dst[i] = select(acc, max(acc, 0.0), d.relu != 0u);
}

// dx = the transposed convolution of dy with W, masked where x (a ReLU output) is 0. One
// invocation per input value.
@compute @workgroup_size(64)
fn conv2d_backward_input(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let d = dims;
    let i = flat_index(id, groups);
    if (i >= d.rows * d.c_in * d.h_in * d.w_in) {
        return;
    }
    let at = split4(i, d.c_in, d.h_in, d.w_in);
    let n = at.x; let ci = at.y; let iy = at.z; let ix = at.w;
    var acc = 0.0;
    for (var co = 0u; co < d.c_out; co++) {
        for (var ky = (iy + d.padding) % d.stride; ky < d.kernel; ky += d.stride) {
            let oy = conv_source(iy, ky, d.h_out);
            for (var kx = (ix + d.padding) % d.stride; kx < d.kernel; kx += d.stride) {
                let ox = conv_source(ix, kx, d.w_out);
                if (oy >= 0 && ox >= 0) {
                    acc += weight[at4(co, ci, ky, kx, d.c_in, d.kernel, d.kernel)]
                        * src[at4(n, co, u32(oy), u32(ox), d.c_out, d.h_out, d.w_out)];
                }
            }
        }
    }
    dst[i] = select(acc, 0.0, d.relu != 0u && aux[i] <= 0.0);
}

// dW [c_out, c_in, k, k] = sum over the batch and output positions of dy times the tapped x.
@compute @workgroup_size(64)
fn conv2d_backward_weight(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let d = dims;
    let i = flat_index(id, groups);
    if (i >= d.c_out * d.c_in * d.kernel * d.kernel) {
        return;
    }
    let at = split4(i, d.c_in, d.kernel, d.kernel);
    let co = at.x; let ci = at.y; let ky = at.z; let kx = at.w;
    var acc = 0.0;
    for (var n = 0u; n < d.rows; n++) {
        for (var oy = 0u; oy < d.h_out; oy++) {
            let iy = conv_tap(oy, ky, d.h_in);
            for (var ox = 0u; ox < d.w_out; ox++) {
                let ix = conv_tap(ox, kx, d.w_in);
                if (iy >= 0 && ix >= 0) {
                    acc += src[at4(n, co, oy, ox, d.c_out, d.h_out, d.w_out)]
                        * aux[at4(n, ci, u32(iy), u32(ix), d.c_in, d.h_in, d.w_in)];
                }
            }
        }
    }
    dst[i] = acc;
}

// db [c_out] = the sum of dy over the batch and positions (Conv2d and ConvTranspose2d alike).
@compute @workgroup_size(64)
fn conv_backward_bias(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let d = dims;
    let i = flat_index(id, groups);
    if (i >= d.c_out) {
        return;
    }
    let plane = d.h_out * d.w_out;
    var acc = 0.0;
    for (var n = 0u; n < d.rows; n++) {
        for (var p = 0u; p < plane; p++) {
            acc += src[(n * d.c_out + i) * plane + p];
        }
    }
    dst[i] = acc;
}

// y = act(conv_transpose(x, W) + b), W [c_in, c_out, k, k]. One invocation per output value: the
// input positions whose taps land on it.
@compute @workgroup_size(64)
fn conv_transpose2d_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let d = dims;
    let i = flat_index(id, groups);
    if (i >= d.rows * d.c_out * d.h_out * d.w_out) {
        return;
    }
    let at = split4(i, d.c_out, d.h_out, d.w_out);
    let n = at.x; let co = at.y; let oy = at.z; let ox = at.w;
    var acc = aux[co];
    for (var ci = 0u; ci < d.c_in; ci++) {
        for (var ky = (oy + d.padding) % d.stride; ky < d.kernel; ky += d.stride) {
            let iy = conv_source(oy, ky, d.h_in);
            for (var kx = (ox + d.padding) % d.stride; kx < d.kernel; kx += d.stride) {
                let ix = conv_source(ox, kx, d.w_in);
                if (iy >= 0 && ix >= 0) {
                    acc += weight[at4(ci, co, ky, kx, d.c_out, d.kernel, d.kernel)]
                        * src[at4(n, ci, u32(iy), u32(ix), d.c_in, d.h_in, d.w_in)];
                }
            }
        }
    }
    dst[i] = select(acc, max(acc, 0.0), d.relu != 0u);
}

// dx = the convolution of dy with W, masked where x (a ReLU output) is 0. One invocation per input.
@compute @workgroup_size(64)
fn conv_transpose2d_backward_input(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let d = dims;
    let i = flat_index(id, groups);
    if (i >= d.rows * d.c_in * d.h_in * d.w_in) {
        return;
    }
    let at = split4(i, d.c_in, d.h_in, d.w_in);
    let n = at.x; let ci = at.y; let iy = at.z; let ix = at.w;
    var acc = 0.0;
    for (var co = 0u; co < d.c_out; co++) {
        for (var ky = 0u; ky < d.kernel; ky++) {
            let oy = conv_tap(iy, ky, d.h_out);
            for (var kx = 0u; kx < d.kernel; kx++) {
                let ox = conv_tap(ix, kx, d.w_out);
                if (oy >= 0 && ox >= 0) {
                    acc += weight[at4(ci, co, ky, kx, d.c_out, d.kernel, d.kernel)]
                        * src[at4(n, co, u32(oy), u32(ox), d.c_out, d.h_out, d.w_out)];
                }
            }
        }
    }
    dst[i] = select(acc, 0.0, d.relu != 0u && aux[i] <= 0.0);
}

// dW [c_in, c_out, k, k] = sum over the batch and input positions of x times the dy it reaches.
@compute @workgroup_size(64)
fn conv_transpose2d_backward_weight(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let d = dims;
    let i = flat_index(id, groups);
    if (i >= d.c_in * d.c_out * d.kernel * d.kernel) {
        return;
    }
    let at = split4(i, d.c_out, d.kernel, d.kernel);
    let ci = at.x; let co = at.y; let ky = at.z; let kx = at.w;
    var acc = 0.0;
    for (var n = 0u; n < d.rows; n++) {
        for (var iy = 0u; iy < d.h_in; iy++) {
            let oy = conv_tap(iy, ky, d.h_out);
            for (var ix = 0u; ix < d.w_in; ix++) {
                let ox = conv_tap(ix, kx, d.w_out);
                if (oy >= 0 && ox >= 0) {
                    acc += aux[at4(n, ci, iy, ix, d.c_in, d.h_in, d.w_in)]
                        * src[at4(n, co, u32(oy), u32(ox), d.c_out, d.h_out, d.w_out)];
                }
            }
        }
    }
    dst[i] = acc;
}
