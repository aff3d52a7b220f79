// The three products of shaders/linear_rows.wgsl for CPU adapters whose
// subgroups are 8 lanes (lavapipe at 256 bits): the same tiles, the same sums in the same order
// (so the two agree to the bit), and one load of W (dy for the weight gradient) per step where
// there were 8.
//
// Why: every lane of a workgroup reads the same TILE_COLS = 8 vec4s of W per step, and lavapipe
// turns each of those loads into a loop over its 8 lanes (linear_vec4_subgroup.wgsl says more).
// Here lane s loads the s-th of them and subgroupBroadcast hands it to every lane.
// Dispatch, bindings and dims: as linear_rows.wgsl.

const WG: u32 = 64u;
const LANE_ROWS: u32 = 4u;
const TILE_COLS: u32 = 8u; // two vec4 of outputs: one W row per lane of a subgroup
const SLICE: u32 = 256u; // the weight gradient's rows per partial sum
const SG: u32 = 8u; // the subgroup size this module is written for
const_assert SG == TILE_COLS;

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

// y[m, n..n+8] = act(sum_k x[m, k] W[n.., k] + b[n..]) for LANE_ROWS rows m, as linear_forward_rows.
// lhs = x [batch, n_in], rhs = W [n_out, n_in], aux = b [n_out], out = y [batch, n_out].
@compute @workgroup_size(WG)
fn linear_forward_rows_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
    @builtin(subgroup_invocation_id) s: u32,
) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let m0 = (wg.x * WG + lane) * LANE_ROWS;
    let n0 = wg.y * TILE_COLS;
    var x_at: array<u32, LANE_ROWS>;
    for (var r = 0u; r < LANE_ROWS; r++) {
        x_at[r] = min(m0 + r, dims.rows - 1u) * q_in;
    }
    let w_at = min(n0 + s, dims.n_out - 1u) * q_in; // lane s loads W's row n0 + s
    var acc: array<vec4<f32>, 8>; // [row r][half h] at 2 r + h: columns n0 + 4 h ..
    for (var i = 0u; i < q_in; i++) {
        let ws = rhs[w_at + i];
        let w0 = subgroupBroadcast(ws, 0u);
        let w1 = subgroupBroadcast(ws, 1u);
        let w2 = subgroupBroadcast(ws, 2u);
        let w3 = subgroupBroadcast(ws, 3u);
        let w4 = subgroupBroadcast(ws, 4u);
        let w5 = subgroupBroadcast(ws, 5u);
        let w6 = subgroupBroadcast(ws, 6u);
        let w7 = subgroupBroadcast(ws, 7u);
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
// dims.relu says whether x came out of a ReLU. As linear_backward_input_rows.
@compute @workgroup_size(WG)
fn linear_backward_input_rows_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
    @builtin(subgroup_invocation_id) s: u32,
) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let m0 = (wg.x * WG + lane) * LANE_ROWS;
    let k4 = wg.y * (TILE_COLS / 4u); // this workgroup's first vec4 of dx columns
    // Lane s loads W's row 4 i + s % 4 at the low vec4 of columns (s < 4) or the high one.
    let column = min(k4 + s / 4u, q_in - 1u) + (s % 4u) * q_in;
    var dy_at: array<u32, LANE_ROWS>;
    for (var r = 0u; r < LANE_ROWS; r++) {
        dy_at[r] = min(m0 + r, dims.rows - 1u) * q_out;
    }
    var acc: array<vec4<f32>, 8>; // [row r][half h] at 2 r + h
    for (var i = 0u; i < q_out; i++) {
        let row = 4u * i * q_in;
        let ws = rhs[row + column];
        let l0 = subgroupBroadcast(ws, 0u);
        let l1 = subgroupBroadcast(ws, 1u);
        let l2 = subgroupBroadcast(ws, 2u);
        let l3 = subgroupBroadcast(ws, 3u);
        let h0 = subgroupBroadcast(ws, 4u);
        let h1 = subgroupBroadcast(ws, 5u);
        let h2 = subgroupBroadcast(ws, 6u);
        let h3 = subgroupBroadcast(ws, 7u);
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

// linear_backward_weight_rows with dy's two shared vec4s loaded once per subgroup: for n_in a
// multiple of 32, the 8 lanes of a subgroup are 8 column vec4s of one block of rows n and one
// slice, so they read the same dy; lane s loads it for row m0 + s of each block of SG rows m and
// subgroupBroadcast hands row m0 + j to every lane, then the rows past the last block one by one:
// the same sums in the same order as linear_backward_weight_rows. Dispatch and bindings: its.
@compute @workgroup_size(WG)
fn linear_backward_weight_rows_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
    @builtin(subgroup_invocation_id) s: u32,
) {
    let q_in = dims.n_in / 4u;
    let q_out = dims.n_out / 4u;
    let blocks = (dims.n_out + TILE_COLS - 1u) / TILE_COLS;
    let slices = (dims.rows + SLICE - 1u) / SLICE;
    let total = q_in * blocks * slices; // a multiple of SG: whole subgroups are past it or not
    let id = min((wg.y * groups.x + wg.x) * WG + lane, total - 1u);
    let c4 = id % q_in;
    let n0 = ((id / q_in) % blocks) * TILE_COLS;
    let slice = id / (q_in * blocks);
    let lo = min(n0 / 4u, q_out - 1u);
    let hi = min(n0 / 4u + 1u, q_out - 1u);
    let first = slice * SLICE;
    let end = min(first + SLICE, dims.rows);
    let full = first + (end - first) / SG * SG;
    var acc: array<vec4<f32>, TILE_COLS>;
    for (var m0 = first; m0 < full; m0 += SG) {
        let lo_s = lhs[(m0 + s) * q_out + lo];
        let hi_s = lhs[(m0 + s) * q_out + hi];
        add_rows(&acc, subgroupBroadcast(lo_s, 0u), subgroupBroadcast(hi_s, 0u), rhs[m0 * q_in + c4]);
        add_rows(&acc, subgroupBroadcast(lo_s, 1u), subgroupBroadcast(hi_s, 1u), rhs[(m0 + 1u) * q_in + c4]);
        add_rows(&acc, subgroupBroadcast(lo_s, 2u), subgroupBroadcast(hi_s, 2u), rhs[(m0 + 2u) * q_in + c4]);
        add_rows(&acc, subgroupBroadcast(lo_s, 3u), subgroupBroadcast(hi_s, 3u), rhs[(m0 + 3u) * q_in + c4]);
        add_rows(&acc, subgroupBroadcast(lo_s, 4u), subgroupBroadcast(hi_s, 4u), rhs[(m0 + 4u) * q_in + c4]);
        add_rows(&acc, subgroupBroadcast(lo_s, 5u), subgroupBroadcast(hi_s, 5u), rhs[(m0 + 5u) * q_in + c4]);
        add_rows(&acc, subgroupBroadcast(lo_s, 6u), subgroupBroadcast(hi_s, 6u), rhs[(m0 + 6u) * q_in + c4]);
        add_rows(&acc, subgroupBroadcast(lo_s, 7u), subgroupBroadcast(hi_s, 7u), rhs[(m0 + 7u) * q_in + c4]);
    }
    for (var m = full; m < end; m++) {
        add_rows(&acc, lhs[m * q_out + lo], lhs[m * q_out + hi], rhs[m * q_in + c4]);
    }
    if ((wg.y * groups.x + wg.x) * WG + lane >= total) {
        return;
    }
    for (var r = 0u; r < TILE_COLS; r++) {
        let n = n0 + r;
        if (n < dims.n_out) {
            out[(slice * dims.n_out + n) * q_in + c4] = acc[r];
        }
    }
}

// One row m's terms of dW's rows n0 .. n0 + 8 at one column vec4, in linear_backward_weight_rows' order.
fn add_rows(acc: ptr<function, array<vec4<f32>, TILE_COLS>>, d0: vec4<f32>, d1: vec4<f32>, xv: vec4<f32>) {
    (*acc)[0] += d0.x * xv;
    (*acc)[1] += d0.y * xv;
    (*acc)[2] += d0.z * xv;
    (*acc)[3] += d0.w * xv;
    (*acc)[4] += d1.x * xv;
    (*acc)[5] += d1.y * xv;
    (*acc)[6] += d1.z * xv;
    (*acc)[7] += d1.w * xv;
}
