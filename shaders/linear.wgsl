// Fully connected layer y = act(x W^T + b) and its backward pass, PyTorch layout:
//   x [batch, n_in], W [n_out, n_in] (row-major, as nn.Linear), b [n_out], y [batch, n_out].
//
// Every entry point is the same product out[r, c] = sum_i lhs(r, i) * rhs(i, c) with a different
// epilogue: register-tiled, or one output per invocation for narrow outputs (the _narrow ones). A workgroup owns TILE_ROWS rows; every invocation in it reads the same
// lhs values (uniform loads: one load and a broadcast on SIMD CPUs like lavapipe, a broadcast on
// GPUs). Each invocation owns COLS_PER_LANE columns spaced WG apart (coalesced on GPUs), so per
// inner step it does TILE_ROWS * COLS_PER_LANE FMAs for only COLS_PER_LANE per-lane loads. No
// shared memory or barriers: they are very slow on lavapipe (see design-notes.md).
//
// Dispatch: (ceil(cols / (WG * COLS_PER_LANE)), ceil(rows / TILE_ROWS), 1), the _narrow ones' below.
// Bindings: 0 dims, 1 lhs, 2 rhs, 3 aux (bias or activation mask), 4 out; each entry point says
// what they hold.

const WG: u32 = 64u;
const TILE_ROWS: u32 = 8u;
const COLS_PER_LANE: u32 = 4u;

struct Dims {
    rows: u32,
    n_in: u32,
    n_out: u32,
    relu: u32, // 1: the layer's activation is ReLU, 0: identity
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> lhs: array<f32>;
@group(0) @binding(2) var<storage, read> rhs: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

struct Tile {
    acc: array<array<f32, COLS_PER_LANE>, TILE_ROWS>,
    row0: u32,
    col0: u32,
}

// lhs(r, i) = lhs[r * l_row + i * l_inner]; rhs(i, c) = rhs[i * r_inner + c * r_col].
// Out-of-range rows and columns are clamped for loading and must be skipped when storing.
fn tile_product(wg: vec3<u32>, lane: u32, rows: u32, cols: u32, inner: u32,
                l_row: u32, l_inner: u32, r_inner: u32, r_col: u32) -> Tile {
    var t: Tile;
    t.row0 = wg.y * TILE_ROWS;
    t.col0 = wg.x * WG * COLS_PER_LANE + lane;
    var l_base: array<u32, TILE_ROWS>;
    for (var r = 0u; r < TILE_ROWS; r++) {
        l_base[r] = min(t.row0 + r, rows - 1u) * l_row;
    }
    var r_base: array<u32, COLS_PER_LANE>;
    for (var c = 0u; c < COLS_PER_LANE; c++) {
        r_base[c] = min(t.col0 + c * WG, cols - 1u) * r_col;
    }
    for (var i = 0u; i < inner; i++) {
        var a: array<f32, TILE_ROWS>;
        for (var r = 0u; r < TILE_ROWS; r++) {
            a[r] = lhs[l_base[r] + i * l_inner];
        }
        var b: array<f32, COLS_PER_LANE>;
        for (var c = 0u; c < COLS_PER_LANE; c++) {
            b[c] = rhs[r_base[c] + i * r_inner];
        }
        for (var r = 0u; r < TILE_ROWS; r++) {
            for (var c = 0u; c < COLS_PER_LANE; c++) {
                t.acc[r][c] = fma(a[r], b[c], t.acc[r][c]);
            }
        }
    }
    return t;
}

// y[m, n] = act(sum_k x[m, k] W[n, k] + b[n]).
// lhs = x [batch, n_in], rhs = W [n_out, n_in], aux = b [n_out], out = y [batch, n_out].
@compute @workgroup_size(WG)
fn linear_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = tile_product(wg, lane, dims.rows, dims.n_out, dims.n_in, dims.n_in, 1u, 1u, dims.n_in);
    for (var r = 0u; r < TILE_ROWS; r++) {
        for (var c = 0u; c < COLS_PER_LANE; c++) {
            let m = t.row0 + r;
            let n = t.col0 + c * WG;
            if (m < dims.rows && n < dims.n_out) {
                var y = t.acc[r][c] + aux[n];
                if (dims.relu == 1u) {
                    y = max(y, 0.0);
                }
                out[m * dims.n_out + n] = y;
            }
        }
    }
}

// dx[m, k] = (sum_n dy[m, n] W[n, k]) * act'(x[m, k]), where relu' is read off the stored input x,
// itself the previous layer's ReLU output (x > 0 exactly where its pre-activation was > 0).
// lhs = dy [batch, n_out], rhs = W [n_out, n_in], aux = x [batch, n_in], out = dx [batch, n_in].
// Here dims.relu says whether x came out of a ReLU.
@compute @workgroup_size(WG)
fn linear_backward_input(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = tile_product(wg, lane, dims.rows, dims.n_in, dims.n_out, dims.n_out, 1u, dims.n_in, 1u);
    for (var r = 0u; r < TILE_ROWS; r++) {
        for (var c = 0u; c < COLS_PER_LANE; c++) {
            let m = t.row0 + r;
            let k = t.col0 + c * WG;
            if (m < dims.rows && k < dims.n_in) {
                var dx = t.acc[r][c];
                if (dims.relu == 1u && aux[m * dims.n_in + k] <= 0.0) {
                    dx = 0.0;
                }
                out[m * dims.n_in + k] = dx;
            }
        }
    }
}

// dW[n, k] = sum_m dy[m, n] x[m, k].
// lhs = dy [batch, n_out], rhs = x [batch, n_in], out = dW [n_out, n_in]; aux unused.
@compute @workgroup_size(WG)
fn linear_backward_weight(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = tile_product(wg, lane, dims.n_out, dims.n_in, dims.rows, 1u, dims.n_out, dims.n_in, 1u);
    for (var r = 0u; r < TILE_ROWS; r++) {
        for (var c = 0u; c < COLS_PER_LANE; c++) {
            let n = t.row0 + r;
            let k = t.col0 + c * WG;
            if (n < dims.n_out && k < dims.n_in) {
                out[n * dims.n_in + k] = t.acc[r][c];
            }
        }
    }
}

// db[n] = sum_m dy[m, n]. lhs = dy [batch, n_out], out = db [n_out].
// Dispatch: n_out invocations on a 1-D grid (flat_index).
@compute @workgroup_size(WG)
fn linear_backward_bias(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat_index(id, groups);
    if (n >= dims.n_out) {
        return;
    }
    var s = 0.0;
    for (var m = 0u; m < dims.rows; m++) {
        s += lhs[m * dims.n_out + n];
    }
    out[n] = s;
}

// The three products for outputs narrower than a workgroup's lanes (the tiles above leave most of
// their 64 lanes idle there: 63 of 64 for a one-column output): one output per invocation,
// numbered row-major over the `cols` columns written, each summed in tile_product's order (the
// same fma chain from 0), so bit-identical to the entry points above. Any widths.
// Dispatch: (min(g, 65535), ceil(g / 65535), 1) for g = ceil(written / WG) (flat_index).
fn narrow_product(at: u32, cols: u32, inner: u32, l_row: u32, l_inner: u32, r_inner: u32, r_col: u32) -> f32 {
    let l_base = (at / cols) * l_row;
    let r_base = (at % cols) * r_col;
    var acc = 0.0;
    for (var i = 0u; i < inner; i++) {
        acc = fma(lhs[l_base + i * l_inner], rhs[i * r_inner + r_base], acc);
    }
    return acc;
}

// linear_forward's y, one element each.
@compute @workgroup_size(WG)
fn linear_forward_narrow(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = flat_index(id, groups);
    if (at >= dims.rows * dims.n_out) {
        return;
    }
    var y = narrow_product(at, dims.n_out, dims.n_in, dims.n_in, 1u, 1u, dims.n_in) + aux[at % dims.n_out];
    if (dims.relu == 1u) {
        y = max(y, 0.0);
    }
    out[at] = y;
}

// linear_backward_input's dx, one element each.
@compute @workgroup_size(WG)
fn linear_backward_input_narrow(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = flat_index(id, groups);
    if (at >= dims.rows * dims.n_in) {
        return;
    }
    var dx = narrow_product(at, dims.n_in, dims.n_out, dims.n_out, 1u, dims.n_in, 1u);
    if (dims.relu == 1u && aux[at] <= 0.0) {
        dx = 0.0;
    }
    out[at] = dx;
}

// linear_backward_weight's dW, one element each.
@compute @workgroup_size(WG)
fn linear_backward_weight_narrow(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = flat_index(id, groups);
    if (at >= dims.n_out * dims.n_in) {
        return;
    }
    out[at] = narrow_product(at, dims.n_in, dims.rows, 1u, dims.n_out, dims.n_in, 1u);
}
