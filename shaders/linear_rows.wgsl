// The three products of shaders/linear_vec4.wgsl for narrow layers, with the lanes over rows
// instead of columns. linear_vec4.wgsl gives each of a workgroup's 64 lanes 4
// columns, so an output narrower than 256 columns leaves lanes idle (48 of 64 for a 64-wide
// output: a conv layer's channels, the latent heads); here each lane owns LANE_ROWS rows and a
// workgroup TILE_COLS columns, so every lane works whatever the width.
//
// The same math in the same order as linear_vec4.wgsl (each output sums the same vec4 dot
// products, in the same sequence), so the two agree to the bit. Widths must be multiples of 4.
// Dispatch: (ceil(rows / (WG LANE_ROWS)), ceil(cols / TILE_COLS), 1) for the `cols` written;
// the weight gradient's is below.
// Bindings: as linear_vec4.wgsl.

const WG: u32 = 64u;
const LANE_ROWS: u32 = 4u;
const TILE_COLS: u32 = 8u; // two vec4 of outputs
const SLICE: u32 = 256u; // rows per partial sum of the weight gradient

struct Dims {
    rows: u32,
    n_in: u32,
    n_out: u32,
    relu: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> lhs: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> rhs: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> aux: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

// y[m, n..n+8] = act(sum_k x[m, k] W[n.., k] + b[n..]) for LANE_ROWS rows m.
// lhs = x [batch, n_in], rhs = W [n_out, n_in], aux = b [n_out], out = y [batch, n_out].
@compute @workgroup_size(WG)
fn linear_forward_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let m0 = (wg.x * WG + lane) * LANE_ROWS;
    let n0 = wg.y * TILE_COLS;
    var x_at: array<u32, LANE_ROWS>;
    for (var r = 0u; r < LANE_ROWS; r++) {
        x_at[r] = min(m0 + r, dims.rows - 1u) * q_in;
    }
    var w_at: array<u32, TILE_COLS>;
    for (var j = 0u; j < TILE_COLS; j++) {
        w_at[j] = min(n0 + j, dims.n_out - 1u) * q_in;
    }
    var acc: array<vec4<f32>, 8>; // [row r][half h] at 2 r + h: columns n0 + 4 h ..
    for (var i = 0u; i < q_in; i++) {
        let w0 = rhs[w_at[0] + i];
        let w1 = rhs[w_at[1] + i];
        let w2 = rhs[w_at[2] + i];
        let w3 = rhs[w_at[3] + i];
        let w4 = rhs[w_at[4] + i];
        let w5 = rhs[w_at[5] + i];
        let w6 = rhs[w_at[6] + i];
        let w7 = rhs[w_at[7] + i];
        for (var r = 0u; r < LANE_ROWS; r++) {
            let a = lhs[x_at[r] + i];
            acc[2u * r] += vec4<f32>(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3));
            acc[2u * r + 1u] += vec4<f32>(dot(a, w4), dot(a, w5), dot(a, w6), dot(a, w7));
        }
    }
    for (var r = 0u; r < LANE_ROWS; r++) {
        let m = m0 + r;
        for (var h = 0u; h < 2u; h++) {
            let c4 = n0 / 4u + h;
            if (m < dims.rows && c4 < q_out) {
                var y = acc[2u * r + h] + aux[c4];
                if (dims.relu == 1u) {
                    y = max(y, vec4<f32>(0.0));
                }
                out[m * q_out + c4] = y;
            }
        }
    }
}

// dx[m, k..k+8] = (sum_n dy[m, n] W[n, k..k+8]) * act'(x[m, k..k+8]) for LANE_ROWS rows m.
// lhs = dy [batch, n_out], rhs = W [n_out, n_in], aux = x [batch, n_in], out = dx [batch, n_in];
// dims.relu says whether x came out of a ReLU.
@compute @workgroup_size(WG)
fn linear_backward_input_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let m0 = (wg.x * WG + lane) * LANE_ROWS;
    let k4 = wg.y * (TILE_COLS / 4u); // this workgroup's first vec4 of dx columns
    let lo = min(k4, q_in - 1u);
    let hi = min(k4 + 1u, q_in - 1u);
    var dy_at: array<u32, LANE_ROWS>;
    for (var r = 0u; r < LANE_ROWS; r++) {
        dy_at[r] = min(m0 + r, dims.rows - 1u) * q_out;
    }
    var acc: array<vec4<f32>, 8>; // [row r][half h] at 2 r + h
    for (var i = 0u; i < q_out; i++) {
        let row = 4u * i * q_in;
        let l0 = rhs[row + lo];
        let l1 = rhs[row + q_in + lo];
        let l2 = rhs[row + 2u * q_in + lo];
        let l3 = rhs[row + 3u * q_in + lo];
        let h0 = rhs[row + hi];
        let h1 = rhs[row + q_in + hi];
        let h2 = rhs[row + 2u * q_in + hi];
        let h3 = rhs[row + 3u * q_in + hi];
        for (var r = 0u; r < LANE_ROWS; r++) {
            let a = lhs[dy_at[r] + i];
            acc[2u * r] += a.x * l0 + a.y * l1 + a.z * l2 + a.w * l3;
            acc[2u * r + 1u] += a.x * h0 + a.y * h1 + a.z * h2 + a.w * h3;
        }
    }
    for (var r = 0u; r < LANE_ROWS; r++) {
        let m = m0 + r;
        for (var h = 0u; h < 2u; h++) {
            let c4 = k4 + h;
            if (m < dims.rows && c4 < q_in) {
                var dx = acc[2u * r + h];
                if (dims.relu == 1u) {
                    dx = select(dx, vec4<f32>(0.0), aux[m * q_in + c4] <= vec4<f32>(0.0));
                }
                out[m * q_in + c4] = dx;
            }
        }
    }
}

// Partial dW[n, k..k+4] = sum over one slice of SLICE rows m of dy[m, n] x[m, k..k+4], for
// TILE_COLS rows n: linear_backward_weight_vec4's tile, with the invocations numbered over (vec4
// column fastest, then the block of n, then the slice), so that a narrow n_in (a conv layer's
// patch of 16, fc3's 20) still fills every lane, and a long batch (images x positions) is cut
// into slices that run in parallel. One slice (batch <= SLICE) writes dW itself, in the same order
// as linear_vec4.wgsl; more write [slices, n_out, n_in] partials for linear_sum_slices.
// lhs = dy [batch, n_out], rhs = x [batch, n_in], out = dW or the partials; aux unused.
// Dispatch: (min(g, 65535), ceil(g / 65535), 1) for g = ceil(q_in ceil(n_out / 8) slices / WG).
@compute @workgroup_size(WG)
fn linear_backward_weight_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let blocks = (dims.n_out + TILE_COLS - 1u) / TILE_COLS;
    let slices = (dims.rows + SLICE - 1u) / SLICE;
    let id = (wg.y * groups.x + wg.x) * WG + lane;
    if (id >= q_in * blocks * slices) {
        return;
    }
    let c4 = id % q_in;
    let n0 = ((id / q_in) % blocks) * TILE_COLS;
    let s = id / (q_in * blocks);
    let lo = min(n0 / 4u, q_out - 1u);
    let hi = min(n0 / 4u + 1u, q_out - 1u);
    var acc: array<vec4<f32>, TILE_COLS>;
    for (var m = s * SLICE; m < min(s * SLICE + SLICE, dims.rows); m++) {
        let xv = rhs[m * q_in + c4];
        let d0 = lhs[m * q_out + lo];
        let d1 = lhs[m * q_out + hi];
        acc[0] += d0.x * xv;
        acc[1] += d0.y * xv;
        acc[2] += d0.z * xv;
        acc[3] += d0.w * xv;
        acc[4] += d1.x * xv;
        acc[5] += d1.y * xv;
        acc[6] += d1.z * xv;
        acc[7] += d1.w * xv;
    }
    for (var r = 0u; r < TILE_COLS; r++) {
        let n = n0 + r;
        if (n < dims.n_out) {
            out[(s * dims.n_out + n) * q_in + c4] = acc[r];
        }
    }
}

// dW[n, k..k+4] = the sum of the slices' partials, in slice order. lhs = the partials
// [slices, n_out, n_in] (slices from dims.rows), out = dW [n_out, n_in]; rhs and aux unused.
// Dispatch: n_out q_in invocations on a 1-D grid (flat_index).
@compute @workgroup_size(WG)
fn linear_sum_slices(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let flat = flat_index(id, groups);
    let size = dims.n_out * dims.n_in / 4u;
    if (flat >= size) {
        return;
    }
    let slices = (dims.rows + SLICE - 1u) / SLICE;
    var acc = vec4<f32>(0.0);
    for (var s = 0u; s < slices; s++) {
        acc += lhs[s * size + flat];
    }
    out[flat] = acc;
}
