// The GPU family's narrow products on adapters with subgroups, of any size: the products of
// shaders/linear_tiled.wgsl (same math, layout, bindings and dims) whose output has a side of at
// most one tile, such as the latent layers (400 -> 40, 20 <- 400 and their weight gradients).
// linear_tiled.wgsl gives such a product a handful of 64 x 64 tiles; to fill the GPU it must cut
// the reduction into slices, write their partial sums to memory and add them in a second launch.
//
// Here a workgroup owns a BLOCK x BLOCK block of outputs and cuts the reduction among its own WG
// lanes instead: lane t takes k = t, t + WG, ..., so adjacent lanes read adjacent k (coalesced
// where k is the contiguous index of both operands, as in the forward product). subgroupAdd adds
// each subgroup's lanes, and lanes 0 .. OUTPUTS - 1 (and OUTPUTS .. SUMS - 1 for the bias
// gradient) add the subgroups' sums in subgroup order from workgroup memory: one launch, no
// partial sums in memory, the same result on every run. The subgroup size is whatever the
// adapter runs (4 to 128 lanes in WebGPU; any size up to WG fills its own slots, larger ones one).
//
// Dispatch: (ceil(cols / BLOCK), ceil(rows / BLOCK), 1). dims.slice_len and dims.slices unused.

const WG: u32 = 64u;
const BLOCK: u32 = 4u;
const OUTPUTS: u32 = 16u; // BLOCK * BLOCK
const SUMS: u32 = 20u; // per subgroup: OUTPUTS sums, then BLOCK row sums (the bias gradient)
const MAX_SUBGROUPS: u32 = 64u; // WG lanes in subgroups of at least 1 (WebGPU promises 4)

struct TiledDims {
    rows: u32,
    n_in: u32,
    n_out: u32,
    relu: u32, // forward: ReLU on y; backward input: x came out of a ReLU
    slice_len: u32, // linear_tiled.wgsl's slices: unused here
    slices: u32, // unused here
    bias: u32, // weight gradient: also write db (from the same dy)
    pad: u32,
}

@group(0) @binding(0) var<uniform> dims: TiledDims;
@group(0) @binding(1) var<storage, read> lhs: array<f32>;
@group(0) @binding(2) var<storage, read> rhs: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> bias_out: array<f32>;

var<workgroup> subgroup_sums: array<f32, 1280>; // [MAX_SUBGROUPS][SUMS]

// One operand as the product sees it: element (t, k) at t * along_tile + k * along_k of its
// buffer, t < tiles (a row of C for A, a column for B), as in linear_tiled.wgsl.
struct Operand {
    along_tile: u32,
    along_k: u32,
    tiles: u32,
}

// Where an invocation is: its lane in the workgroup, its subgroup's index, how many subgroups
// there are, and whether it speaks for its subgroup.
struct Place {
    lane: u32,
    subgroup: u32,
    subgroups: u32,
    leader: bool, // the subgroup's first active invocation, which stores its sums
}

fn place(lane: u32, subgroup: u32, subgroups: u32, sub_lane: u32) -> Place {
    return Place(lane, subgroup, subgroups, subgroupBroadcastFirst(sub_lane) == sub_lane);
}

// The block's sums C(i0 + r, j0 + c) at [r BLOCK + c] of subgroup_sums' rows, and with
// `row_sums` the sums of A's rows alone at [OUTPUTS + r]; returns after a barrier, so every lane
// may read them.
fn block_sums(at: Place, a: Operand, b: Operand, i0: u32, j0: u32, depth: u32, row_sums: bool) {
    // Rows past the operand are clamped for loading; their sums are never stored.
    var a_at: array<u32, BLOCK>;
    var b_at: array<u32, BLOCK>;
    for (var r = 0u; r < BLOCK; r++) {
        a_at[r] = min(i0 + r, a.tiles - 1u) * a.along_tile;
        b_at[r] = min(j0 + r, b.tiles - 1u) * b.along_tile;
    }
    var acc: array<f32, OUTPUTS>;
    var rows: array<f32, BLOCK>;
    for (var k = at.lane; k < depth; k += WG) {
        var av: array<f32, BLOCK>;
        var bv: array<f32, BLOCK>;
        for (var r = 0u; r < BLOCK; r++) {
            av[r] = lhs[a_at[r] + k * a.along_k];
            bv[r] = rhs[b_at[r] + k * b.along_k];
        }
        for (var r = 0u; r < BLOCK; r++) {
            for (var c = 0u; c < BLOCK; c++) {
                acc[r * BLOCK + c] += av[r] * bv[c];
            }
            rows[r] += av[r];
        }
    }
    for (var o = 0u; o < OUTPUTS; o++) {
        let sum = subgroupAdd(acc[o]);
        if (at.leader) {
            subgroup_sums[at.subgroup * SUMS + o] = sum;
        }
    }
    if (row_sums) {
        for (var r = 0u; r < BLOCK; r++) {
            let sum = subgroupAdd(rows[r]);
            if (at.leader) {
                subgroup_sums[at.subgroup * SUMS + OUTPUTS + r] = sum;
            }
        }
    }
    workgroupBarrier();
}

// Sum `slot` (< SUMS) of block_sums over the subgroups, in subgroup order.
fn total(at: Place, slot: u32) -> f32 {
    var v = 0.0;
    for (var g = 0u; g < at.subgroups; g++) {
        v += subgroup_sums[g * SUMS + slot];
    }
    return v;
}

// y[m, n] = act(sum_k x[m, k] W[n, k] + b[n]): A = x, B(k, n) = W[n, k].
// lhs = x [batch, n_in], rhs = W [n_out, n_in], aux = b [n_out], out = y [batch, n_out].
@compute @workgroup_size(WG)
fn linear_forward_split_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
    @builtin(subgroup_invocation_id) sub_lane: u32,
) {
    let at = place(lane, subgroup, subgroups, sub_lane);
    let i0 = wg.y * BLOCK;
    let j0 = wg.x * BLOCK;
    block_sums(at, Operand(dims.n_in, 1u, dims.rows), Operand(dims.n_in, 1u, dims.n_out), i0, j0, dims.n_in, false);
    let m = i0 + lane / BLOCK;
    let n = j0 + lane % BLOCK;
    if (lane < OUTPUTS && m < dims.rows && n < dims.n_out) {
        let y = total(at, lane) + aux[n];
        out[m * dims.n_out + n] = select(y, max(y, 0.0), dims.relu == 1u);
    }
}

// dx[m, k] = (sum_n dy[m, n] W[n, k]) act'(x[m, k]): A = dy, B = W.
// lhs = dy [batch, n_out], rhs = W [n_out, n_in], aux = x [batch, n_in], out = dx [batch, n_in].
@compute @workgroup_size(WG)
fn linear_backward_input_split_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
    @builtin(subgroup_invocation_id) sub_lane: u32,
) {
    let at = place(lane, subgroup, subgroups, sub_lane);
    let i0 = wg.y * BLOCK;
    let j0 = wg.x * BLOCK;
    block_sums(at, Operand(dims.n_out, 1u, dims.rows), Operand(1u, dims.n_in, dims.n_in), i0, j0, dims.n_out, false);
    let m = i0 + lane / BLOCK;
    let k = j0 + lane % BLOCK;
    if (lane < OUTPUTS && m < dims.rows && k < dims.n_in) {
        let at_x = m * dims.n_in + k;
        out[at_x] = select(total(at, lane), 0.0, dims.relu == 1u && aux[at_x] <= 0.0);
    }
}

// dW[n, k] = sum_m dy[m, n] x[m, k]: A(n, m) = dy[m, n], B = x; with dims.bias the workgroups of
// the first column block also write db[n] = sum_m dy[m, n] from the dy they read anyway.
// lhs = dy [batch, n_out], rhs = x [batch, n_in], out = dW [n_out, n_in], bias_out = db [n_out].
@compute @workgroup_size(WG)
fn linear_backward_weight_split_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
    @builtin(subgroup_invocation_id) sub_lane: u32,
) {
    let at = place(lane, subgroup, subgroups, sub_lane);
    let i0 = wg.y * BLOCK;
    let j0 = wg.x * BLOCK;
    let with_bias = dims.bias == 1u && wg.x == 0u;
    block_sums(at, Operand(1u, dims.n_out, dims.n_out), Operand(1u, dims.n_in, dims.n_in), i0, j0, dims.rows, with_bias);
    let n = i0 + lane / BLOCK;
    let k = j0 + lane % BLOCK;
    if (lane < OUTPUTS && n < dims.n_out && k < dims.n_in) {
        out[n * dims.n_in + k] = total(at, lane);
    }
    if (with_bias && lane >= OUTPUTS && lane < SUMS && i0 + lane - OUTPUTS < dims.n_out) {
        bias_out[i0 + lane - OUTPUTS] = total(at, lane);
    }
}
