// The three products of shaders/linear.wgsl, for layers whose n_in and n_out are multiples of 4
// (every layer of the default 784-400-20 model): the same math, loaded as vec4.
//
// Why a second module: on lavapipe (and other SIMD CPUs) each load instruction costs about the
// same whether it fetches one float or four, and loads, not FMAs, bound these kernels (tiles with
// more loads per FMA were slower whatever else changed). With vec4 loads an invocation
// does 128 FMAs per 12 loads instead of 32 per 12. On GPUs vec4 loads are 16-byte transactions.
//
// Each invocation owns 4 consecutive columns (one vec4 of the output) of TILE_ROWS = 16 rows (8
// in linear.wgsl: with vec4 loads twice the rows per load of W pay, docs/measurements.md); a
// workgroup owns 64 * 4 = 256 columns and TILE_ROWS rows:
// (ceil(cols / 256), ceil(rows / TILE_ROWS), 1). No shared memory, no barriers.
// Bindings: 0 dims, 1 lhs, 2 rhs, 3 aux, 4 out, all as vec4 arrays; each entry point says what
// they hold. Out-of-range rows and columns are clamped for loading and skipped when storing.

const WG: u32 = 64u;
const TILE_ROWS: u32 = 16u;
const D_VECS: u32 = TILE_ROWS / 4u; // the weight gradient's vec4s of dy per m

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

// y[m, n..n+4] = act(sum_k x[m, k] W[n.., k] + b[n..]).
// lhs = x [batch, n_in], rhs = W [n_out, n_in], aux = b [n_out], out = y [batch, n_out].
@compute @workgroup_size(WG)
fn linear_forward_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let c4 = wg.x * WG + lane; // this invocation's vec4 column: outputs 4 c4 .. 4 c4 + 3
    let row0 = wg.y * TILE_ROWS;
    var w_at: array<u32, 4>;
    for (var j = 0u; j < 4u; j++) {
        w_at[j] = min(4u * c4 + j, dims.n_out - 1u) * q_in;
    }
    var x_at: array<u32, TILE_ROWS>;
    for (var r = 0u; r < TILE_ROWS; r++) {
        x_at[r] = min(row0 + r, dims.rows - 1u) * q_in;
    }
    var acc: array<vec4<f32>, TILE_ROWS>;
    for (var i = 0u; i < q_in; i++) {
        let w0 = rhs[w_at[0] + i];
        let w1 = rhs[w_at[1] + i];
        let w2 = rhs[w_at[2] + i];
        let w3 = rhs[w_at[3] + i];
        for (var r = 0u; r < TILE_ROWS; r++) {
            let a = lhs[x_at[r] + i];
            acc[r] += vec4<f32>(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3));
        }
    }
    if (c4 >= q_out) {
        return;
    }
    let bias = aux[c4];
    for (var r = 0u; r < TILE_ROWS; r++) {
        let m = row0 + r;
        if (m < dims.rows) {
            var y = acc[r] + bias;
            if (dims.relu == 1u) {
                y = max(y, vec4<f32>(0.0));
            }
            out[m * q_out + c4] = y;
        }
    }
}

// dx[m, k..k+4] = (sum_n dy[m, n] W[n, k..k+4]) * act'(x[m, k..k+4]).
// lhs = dy [batch, n_out], rhs = W [n_out, n_in], aux = x [batch, n_in], out = dx [batch, n_in];
// dims.relu says whether x came out of a ReLU.
@compute @workgroup_size(WG)
fn linear_backward_input_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let c4 = wg.x * WG + lane;
    let c4_load = min(c4, q_in - 1u);
    let row0 = wg.y * TILE_ROWS;
    var dy_at: array<u32, TILE_ROWS>;
    for (var r = 0u; r < TILE_ROWS; r++) {
        dy_at[r] = min(row0 + r, dims.rows - 1u) * q_out;
    }
    var acc: array<vec4<f32>, TILE_ROWS>;
    for (var i = 0u; i < q_out; i++) {
        let w0 = rhs[(4u * i) * q_in + c4_load];
        let w1 = rhs[(4u * i + 1u) * q_in + c4_load];
        let w2 = rhs[(4u * i + 2u) * q_in + c4_load];
        let w3 = rhs[(4u * i + 3u) * q_in + c4_load];
        for (var r = 0u; r < TILE_ROWS; r++) {
            let a = lhs[dy_at[r] + i];
            acc[r] += a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3;
        }
    }
    if (c4 >= q_in) {
        return;
    }
    for (var r = 0u; r < TILE_ROWS; r++) {
        let m = row0 + r;
        if (m < dims.rows) {
            var dx = acc[r];
            if (dims.relu == 1u) {
                dx = select(dx, vec4<f32>(0.0), aux[m * q_in + c4] <= vec4<f32>(0.0));
            }
            out[m * q_in + c4] = dx;
        }
    }
}

// dW[n, k..k+4] = sum_m dy[m, n] x[m, k..k+4], for TILE_ROWS (16, four vec4s) rows n per workgroup.
// lhs = dy [batch, n_out], rhs = x [batch, n_in], out = dW [n_out, n_in]; aux unused.
@compute @workgroup_size(WG)
fn linear_backward_weight_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let c4 = wg.x * WG + lane;
    let c4_load = min(c4, q_in - 1u);
    let n0 = wg.y * TILE_ROWS; // a multiple of 4, so rows n0 .. n0 + TILE_ROWS are whole vec4s of dy
    var d_at: array<u32, D_VECS>;
    for (var v = 0u; v < D_VECS; v++) {
        d_at[v] = min(n0 / 4u + v, q_out - 1u);
    }
    var acc: array<vec4<f32>, TILE_ROWS>;
    for (var m = 0u; m < dims.rows; m++) {
        let xv = rhs[m * q_in + c4_load];
        for (var v = 0u; v < D_VECS; v++) {
            let d = lhs[m * q_out + d_at[v]];
            acc[4u * v] += d.x * xv;
            acc[4u * v + 1u] += d.y * xv;
            acc[4u * v + 2u] += d.z * xv;
            acc[4u * v + 3u] += d.w * xv;
        }
    }
    if (c4 >= q_in) {
        return;
    }
    for (var r = 0u; r < TILE_ROWS; r++) {
        let n = n0 + r;
        if (n < dims.n_out) {
            out[n * q_in + c4] = acc[r];
        }
    }
}
