// The three products of shaders/linear_vec4.wgsl for CPU adapters whose subgroups are 8 lanes
// (lavapipe at 256 bits): the same tiles, the same sums in the same order, and 2 to 3 times
// fewer loads.
//
// Why: lavapipe runs a subgroup as one 8-wide SIMD vector, and inside a loop it turns every
// storage load into a loop over the 8 lanes (a bounds check and a scalar load per lane and
// component), even when all lanes read the same address. linear_vec4.wgsl's uniform loads (the
// rows of x, dy shared by a workgroup) therefore cost as much as per-lane ones. Here lane s of a
// subgroup loads row s of the tile's rows and subgroupBroadcast hands each row to every lane, a
// vector shuffle: one load of a vec4 brings 8 rows instead of 1.
//
// Each invocation owns one vec4 of columns and TILE_ROWS = 16 rows, as in linear_vec4.wgsl (whose
// dispatch this shares): (ceil(cols / 256), ceil(rows / TILE_ROWS), 1). Bindings as linear.wgsl's.
// Host side: chosen only where the adapter reports subgroups of exactly SG lanes.

const WG: u32 = 64u;
const TILE_ROWS: u32 = 16u;
const SG: u32 = 8u; // the subgroup size this module is written for

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

// The tile's 16 rows of lhs at column i: rows row0 + s (lo) and row0 + SG + s (hi) in lane s.
// Clamped rows for loading; the stores skip them.
struct RowPair {
    lo: u32,
    hi: u32,
}

fn row_pair(row0: u32, lane: u32, rows: u32, width: u32) -> RowPair {
    return RowPair(min(row0 + lane, rows - 1u) * width, min(row0 + SG + lane, rows - 1u) * width);
}

// (a . w0, a . w1, a . w2, a . w3): one row's contribution to four columns, as linear_vec4.wgsl's forward.
fn dots(a: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3));
}

// y = act(x W^T + b) as linear_forward_vec4. lhs = x [batch, n_in], rhs = W [n_out, n_in],
// aux = b [n_out], out = y [batch, n_out].
@compute @workgroup_size(WG)
fn linear_forward_vec4_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
    @builtin(subgroup_invocation_id) s: u32,
) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let c4 = wg.x * WG + lane;
    let row0 = wg.y * TILE_ROWS;
    var w_at: array<u32, 4>;
    for (var j = 0u; j < 4u; j++) {
        w_at[j] = min(4u * c4 + j, dims.n_out - 1u) * q_in;
    }
    let x_at = row_pair(row0, s, dims.rows, q_in);
    var acc: array<vec4<f32>, TILE_ROWS>;
    for (var i = 0u; i < q_in; i++) {
        let w0 = rhs[w_at[0] + i];
        let w1 = rhs[w_at[1] + i];
        let w2 = rhs[w_at[2] + i];
        let w3 = rhs[w_at[3] + i];
        let lo = lhs[x_at.lo + i];
        let hi = lhs[x_at.hi + i];
        acc[0] += dots(subgroupBroadcast(lo, 0u), w0, w1, w2, w3);
        acc[1] += dots(subgroupBroadcast(lo, 1u), w0, w1, w2, w3);
        acc[2] += dots(subgroupBroadcast(lo, 2u), w0, w1, w2, w3);
        acc[3] += dots(subgroupBroadcast(lo, 3u), w0, w1, w2, w3);
        acc[4] += dots(subgroupBroadcast(lo, 4u), w0, w1, w2, w3);
        acc[5] += dots(subgroupBroadcast(lo, 5u), w0, w1, w2, w3);
        acc[6] += dots(subgroupBroadcast(lo, 6u), w0, w1, w2, w3);
        acc[7] += dots(subgroupBroadcast(lo, 7u), w0, w1, w2, w3);
        acc[8] += dots(subgroupBroadcast(hi, 0u), w0, w1, w2, w3);
        acc[9] += dots(subgroupBroadcast(hi, 1u), w0, w1, w2, w3);
        acc[10] += dots(subgroupBroadcast(hi, 2u), w0, w1, w2, w3);
        acc[11] += dots(subgroupBroadcast(hi, 3u), w0, w1, w2, w3);
        acc[12] += dots(subgroupBroadcast(hi, 4u), w0, w1, w2, w3);
        acc[13] += dots(subgroupBroadcast(hi, 5u), w0, w1, w2, w3);
        acc[14] += dots(subgroupBroadcast(hi, 6u), w0, w1, w2, w3);
        acc[15] += dots(subgroupBroadcast(hi, 7u), w0, w1, w2, w3);
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

// a.x w0 + a.y w1 + a.z w2 + a.w w3: one row of dy times four rows of W, as linear_vec4.wgsl's.
fn combine(a: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
    return a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3;
}

// dx = (dy W) * act'(x) as linear_backward_input_vec4. lhs = dy [batch, n_out], rhs = W
// [n_out, n_in], aux = x [batch, n_in], out = dx [batch, n_in].
@compute @workgroup_size(WG)
fn linear_backward_input_vec4_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
    @builtin(subgroup_invocation_id) s: u32,
) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let c4 = wg.x * WG + lane;
    let c4_load = min(c4, q_in - 1u);
    let row0 = wg.y * TILE_ROWS;
    let dy_at = row_pair(row0, s, dims.rows, q_out);
    var acc: array<vec4<f32>, TILE_ROWS>;
    for (var i = 0u; i < q_out; i++) {
        let w0 = rhs[(4u * i) * q_in + c4_load];
        let w1 = rhs[(4u * i + 1u) * q_in + c4_load];
        let w2 = rhs[(4u * i + 2u) * q_in + c4_load];
        let w3 = rhs[(4u * i + 3u) * q_in + c4_load];
        let lo = lhs[dy_at.lo + i];
        let hi = lhs[dy_at.hi + i];
        acc[0] += combine(subgroupBroadcast(lo, 0u), w0, w1, w2, w3);
        acc[1] += combine(subgroupBroadcast(lo, 1u), w0, w1, w2, w3);
        acc[2] += combine(subgroupBroadcast(lo, 2u), w0, w1, w2, w3);
        acc[3] += combine(subgroupBroadcast(lo, 3u), w0, w1, w2, w3);
        acc[4] += combine(subgroupBroadcast(lo, 4u), w0, w1, w2, w3);
        acc[5] += combine(subgroupBroadcast(lo, 5u), w0, w1, w2, w3);
        acc[6] += combine(subgroupBroadcast(lo, 6u), w0, w1, w2, w3);
        acc[7] += combine(subgroupBroadcast(lo, 7u), w0, w1, w2, w3);
        acc[8] += combine(subgroupBroadcast(hi, 0u), w0, w1, w2, w3);
        acc[9] += combine(subgroupBroadcast(hi, 1u), w0, w1, w2, w3);
        acc[10] += combine(subgroupBroadcast(hi, 2u), w0, w1, w2, w3);
        acc[11] += combine(subgroupBroadcast(hi, 3u), w0, w1, w2, w3);
        acc[12] += combine(subgroupBroadcast(hi, 4u), w0, w1, w2, w3);
        acc[13] += combine(subgroupBroadcast(hi, 5u), w0, w1, w2, w3);
        acc[14] += combine(subgroupBroadcast(hi, 6u), w0, w1, w2, w3);
        acc[15] += combine(subgroupBroadcast(hi, 7u), w0, w1, w2, w3);
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

// acc[4v .. 4v + 4) += d.x xv, d.y xv, d.z xv, d.w xv: one m of dW's rows n0 + 4v ...
fn add_outer(acc: ptr<function, array<vec4<f32>, TILE_ROWS>>, v: u32, d: vec4<f32>, xv: vec4<f32>) {
    (*acc)[4u * v] += d.x * xv;
    (*acc)[4u * v + 1u] += d.y * xv;
    (*acc)[4u * v + 2u] += d.z * xv;
    (*acc)[4u * v + 3u] += d.w * xv;
}

// dW[n, k..k+4] = sum_m dy[m, n] x[m, k..k+4] as linear_backward_weight_vec4, m in the same
// order: blocks of SG batch rows, lane s loading row m0 + s of dy's four vec4s (the workgroup's
// 16 rows n) and each m's handed out by subgroupBroadcast; then the rows past the last full block
// one by one. lhs = dy [batch, n_out], rhs = x [batch, n_in], out = dW [n_out, n_in].
@compute @workgroup_size(WG)
fn linear_backward_weight_vec4_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
    @builtin(subgroup_invocation_id) s: u32,
) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let c4 = wg.x * WG + lane;
    let c4_load = min(c4, q_in - 1u);
    let n0 = wg.y * TILE_ROWS; // rows n0 .. n0 + 16 of dW are four whole vec4s of dy
    var d_at: array<u32, 4>;
    for (var v = 0u; v < 4u; v++) {
        d_at[v] = min(n0 / 4u + v, q_out - 1u);
    }
    var acc: array<vec4<f32>, TILE_ROWS>;
    let full = dims.rows / SG * SG;
    for (var m0 = 0u; m0 < full; m0 += SG) {
        let at = (m0 + s) * q_out;
        let d0 = lhs[at + d_at[0]];
        let d1 = lhs[at + d_at[1]];
        let d2 = lhs[at + d_at[2]];
        let d3 = lhs[at + d_at[3]];
        for (var j = 0u; j < SG; j++) {
            let xv = rhs[(m0 + j) * q_in + c4_load];
            add_outer(&acc, 0u, subgroupShuffle(d0, j), xv);
            add_outer(&acc, 1u, subgroupShuffle(d1, j), xv);
            add_outer(&acc, 2u, subgroupShuffle(d2, j), xv);
            add_outer(&acc, 3u, subgroupShuffle(d3, j), xv);
        }
    }
    for (var m = full; m < dims.rows; m++) {
        let xv = rhs[m * q_in + c4_load];
        for (var v = 0u; v < 4u; v++) {
            add_outer(&acc, v, lhs[m * q_out + d_at[v]], xv);
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
