// The three products of a linear layer shaped for GPUs (the kernel family `--kernels gpu`): the
// same math as shaders/linear.wgsl, y = act(x W^T + b), dx = (dy W) act'(x), dW = dy^T x and
// db = column sums of dy, in PyTorch's layout (x [batch, n_in], W [n_out, n_in], y [batch, n_out]).
//
// Every entry point is one product C[i, j] = sum_k A(i, k) B(k, j) over a TILE x TILE output tile
// per workgroup of WG_SIDE x WG_SIDE invocations. Each stage copies a TILE x BK block of A and a
// BK x TILE block of B into workgroup memory with the lanes along whichever index is contiguous in
// memory (so adjacent invocations read adjacent addresses: coalesced), then every invocation does
// PER_LANE^2 FMAs per k from workgroup memory. An invocation owns rows ty + WG_SIDE r and columns
// tx + WG_SIDE c, so its workgroup-memory reads are broadcasts (A) or consecutive (B), and adjacent
// invocations store adjacent outputs.
//
// Narrow products (the latent layers, small batches) leave most of a big GPU idle, so the host
// splits the reduction into `slices` of `slice_len` (grid z): with one slice the kernel writes the
// finished result; with more it writes raw partial sums [slices, rows, cols] and the entry point's
// `_sum` kernel below adds them and applies the epilogue.
//
// Dispatch: (ceil(cols / TILE), ceil(rows / TILE), slices) for the products; the `_sum` kernels
// are 1-D over the outputs (flat_index). Any widths (no multiple-of-4 requirement).
// Bindings: 0 dims, 1 lhs, 2 rhs, 3 aux, 4 out, 5 bias_out; each entry point says what they hold
// (and linear_forward_gather_tiled's own 6 to 10).

const WG_SIDE: u32 = 16u;
const PER_LANE: u32 = 4u;
const TILE: u32 = 64u; // WG_SIDE * PER_LANE
const BK: u32 = 16u; // reduction indices per stage
const STAGE_STRIDE: u32 = 65u; // TILE + 1: the k-major copy of a row-contiguous operand has no bank conflicts

struct TiledDims {
    rows: u32,
    n_in: u32,
    n_out: u32,
    relu: u32, // forward: ReLU on y; backward input: x came out of a ReLU
    slice_len: u32, // reduction indices per slice, a multiple of BK
    slices: u32, // 1: write the result; more: write partial sums for the _sum kernel
    bias: u32, // weight gradient: also write db (from the same staged dy)
    pad: u32,
}

@group(0) @binding(0) var<uniform> dims: TiledDims;
@group(0) @binding(1) var<storage, read> lhs: array<f32>;
@group(0) @binding(2) var<storage, read> rhs: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> bias_out: array<f32>;

var<workgroup> a_stage: array<f32, 1040>; // [BK][STAGE_STRIDE]: A(i0 + i, k0 + k) at k STAGE_STRIDE + i
var<workgroup> b_stage: array<f32, 1040>; // [BK][STAGE_STRIDE]: B(k0 + k, j0 + j) at k STAGE_STRIDE + j

// One operand as the product sees it: element (t, k), t along the tile (a row of C for A, a column
// for B), at t * along_tile + k * along_k of its buffer; `tiles` is how many t there are.
struct Operand {
    along_tile: u32,
    along_k: u32,
    tiles: u32,
}

// Where lane e of a TILE x BK copy goes: along k first when k is the contiguous index.
fn stage_slot(e: u32, op: Operand) -> vec2<u32> {
    if (op.along_k == 1u) {
        return vec2<u32>(e / BK, e % BK);
    }
    return vec2<u32>(e % TILE, e / TILE);
}

fn stage_a(lane: u32, a: Operand, t0: u32, k0: u32, k_end: u32) {
    for (var e = lane; e < TILE * BK; e += WG_SIDE * WG_SIDE) {
        let tk = stage_slot(e, a);
        var v = 0.0;
        if (t0 + tk.x < a.tiles && k0 + tk.y < k_end) {
            v = lhs[(t0 + tk.x) * a.along_tile + (k0 + tk.y) * a.along_k];
        }
        a_stage[tk.y * STAGE_STRIDE + tk.x] = v;
    }
}

fn stage_b(lane: u32, b: Operand, t0: u32, k0: u32, k_end: u32) {
    for (var e = lane; e < TILE * BK; e += WG_SIDE * WG_SIDE) {
        let tk = stage_slot(e, b);
        var v = 0.0;
        if (t0 + tk.x < b.tiles && k0 + tk.y < k_end) {
            v = rhs[(t0 + tk.x) * b.along_tile + (k0 + tk.y) * b.along_k];
        }
        b_stage[tk.y * STAGE_STRIDE + tk.x] = v;
    }
}

// An invocation's PER_LANE x PER_LANE sums, and with `row_sums` the sums of its A rows alone.
struct Sums {
    acc: array<f32, 16>, // [r PER_LANE + c]: C(i0 + ty + WG_SIDE r, j0 + tx + WG_SIDE c)
    row_sums: array<f32, PER_LANE>,
}

// This workgroup's slice (wg.z) of the reduction over `depth` indices: [k_begin, k_end).
fn slice_of(wg: vec3<u32>, depth: u32) -> vec2<u32> {
    let k_begin = wg.z * dims.slice_len;
    return vec2<u32>(k_begin, min(k_begin + dims.slice_len, depth));
}

fn tile_sums(wg: vec3<u32>, lane: u32, a: Operand, b: Operand, depth: u32, row_sums: bool) -> Sums {
    let ks = slice_of(wg, depth);
    var s: Sums;
    for (var k0 = ks.x; k0 < ks.y; k0 += BK) {
        stage_a(lane, a, wg.y * TILE, k0, ks.y);
        stage_b(lane, b, wg.x * TILE, k0, ks.y);
        workgroupBarrier();
        add_stage(&s, lane, row_sums);
        workgroupBarrier();
    }
    return s;
}

// Adds the staged BK indices' products to an invocation's sums.
fn add_stage(s: ptr<function, Sums>, lane: u32, row_sums: bool) {
    let tx = lane % WG_SIDE;
    let ty = lane / WG_SIDE;
    for (var k = 0u; k < BK; k++) {
        var av: array<f32, PER_LANE>;
        var bv: array<f32, PER_LANE>;
        for (var r = 0u; r < PER_LANE; r++) {
            av[r] = a_stage[k * STAGE_STRIDE + ty + WG_SIDE * r];
            bv[r] = b_stage[k * STAGE_STRIDE + tx + WG_SIDE * r];
        }
        for (var r = 0u; r < PER_LANE; r++) {
            for (var c = 0u; c < PER_LANE; c++) {
                (*s).acc[r * PER_LANE + c] += av[r] * bv[c];
            }
        }
        if (row_sums) {
            for (var r = 0u; r < PER_LANE; r++) {
                (*s).row_sums[r] += av[r];
            }
        }
    }
}

// y[m, n] = act(sum_k x[m, k] W[n, k] + b[n]): A = x, B(k, n) = W[n, k].
// lhs = x [batch, n_in], rhs = W [n_out, n_in], aux = b [n_out], out = y or partials.
@compute @workgroup_size(WG_SIDE, WG_SIDE)
fn linear_forward_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let a = Operand(dims.n_in, 1u, dims.rows);
    let b = Operand(dims.n_in, 1u, dims.n_out);
    store_forward(wg, lane, tile_sums(wg, lane, a, b, dims.n_in, false));
}

// An invocation's outputs of the forward product: y, or with slices its slice's partial sums.
fn store_forward(wg: vec3<u32>, lane: u32, s: Sums) {
    for (var r = 0u; r < PER_LANE; r++) {
        for (var c = 0u; c < PER_LANE; c++) {
            let m = wg.y * TILE + lane / WG_SIDE + WG_SIDE * r;
            let n = wg.x * TILE + lane % WG_SIDE + WG_SIDE * c;
            if (m < dims.rows && n < dims.n_out) {
                let v = s.acc[r * PER_LANE + c];
                if (dims.slices == 1u) {
                    out[m * dims.n_out + n] = forward_epilogue(v, n);
                } else {
                    out[(wg.z * dims.rows + m) * dims.n_out + n] = v;
                }
            }
        }
    }
}

fn forward_epilogue(sum: f32, n: u32) -> f32 {
    let y = sum + aux[n];
    return select(y, max(y, 0.0), dims.relu == 1u);
}

// linear_forward_gather_tiled only: the batch as data.wgsl's gather_batch gathers it from one
// shard of the resident dataset (its order read at counters.cursor), and where x goes.
@group(0) @binding(6) var<uniform> gather_params: GatherParams;
@group(0) @binding(7) var<storage, read> counters: Counters;
@group(0) @binding(8) var<storage, read> images: array<u32>;
@group(0) @binding(9) var<storage, read> order: array<u32>;
@group(0) @binding(10) var<storage, read_write> x: array<f32>;

const WORDS_PER_STAGE: u32 = 4u; // BK / 4: a stage of TILE rows is one image word per invocation
const_assert TILE * WORDS_PER_STAGE == WG_SIDE * WG_SIDE;
const_assert BK == 4u * WORDS_PER_STAGE;

// The encoder's first layer with the batch gather inside it, one launch fewer: the product of
// linear_forward_tiled with A = x staged straight from the images (x[m, k] as gather_batch makes
// it), and the workgroups of the first column tile also write x [batch, n_in] for the kernels
// that read it later (the reconstruction loss, this layer's weight gradient). No lhs; n_in =
// gather_params.words * 4, so a stage's BK indices are whole words.
@compute @workgroup_size(WG_SIDE, WG_SIDE)
fn linear_forward_gather_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let b = Operand(dims.n_in, 1u, dims.n_out);
    let ks = slice_of(wg, dims.n_in);
    var s: Sums;
    for (var k0 = ks.x; k0 < ks.y; k0 += BK) {
        stage_gathered(lane, wg.y * TILE, k0, ks.y, wg.x == 0u);
        stage_b(lane, b, wg.x * TILE, k0, ks.y);
        workgroupBarrier();
        add_stage(&s, lane, false);
        workgroupBarrier();
    }
    store_forward(wg, lane, s);
}

// A TILE x BK block of x into a_stage, a word per invocation: row t0 + lane / WORDS_PER_STAGE,
// indices k .. k + 3 with k = k0 + 4 (lane % WORDS_PER_STAGE); with `write_x` into x as well.
// Rows past the pass are zeros, as gather_batch writes them.
fn stage_gathered(lane: u32, t0: u32, k0: u32, k_end: u32, write_x: bool) {
    let t = lane / WORDS_PER_STAGE;
    let k = k0 + 4u * (lane % WORDS_PER_STAGE);
    let m = t0 + t;
    var v = vec4<f32>(0.0);
    if (m < dims.rows && k < k_end) {
        let row = counters.cursor + m;
        if (row < gather_params.pass_rows) {
            let image = order[row];
            let w = k / 4u;
            let word = images[(image - gather_params.first_image) * gather_params.words + w];
            v = gathered_pixels(word, image * gather_params.words + w, counters.step, gather_params);
        }
        if (write_x) {
            for (var i = 0u; i < 4u; i++) {
                x[m * dims.n_in + k + i] = v[i];
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        a_stage[(k - k0 + i) * STAGE_STRIDE + t] = v[i];
    }
}

// dx[m, k] = (sum_n dy[m, n] W[n, k]) act'(x[m, k]): A = dy, B = W.
// lhs = dy [batch, n_out], rhs = W [n_out, n_in], aux = x [batch, n_in], out = dx or partials.
@compute @workgroup_size(WG_SIDE, WG_SIDE)
fn linear_backward_input_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let a = Operand(dims.n_out, 1u, dims.rows);
    let b = Operand(1u, dims.n_in, dims.n_in);
    let s = tile_sums(wg, lane, a, b, dims.n_out, false);
    for (var r = 0u; r < PER_LANE; r++) {
        for (var c = 0u; c < PER_LANE; c++) {
            let m = wg.y * TILE + lane / WG_SIDE + WG_SIDE * r;
            let k = wg.x * TILE + lane % WG_SIDE + WG_SIDE * c;
            if (m < dims.rows && k < dims.n_in) {
                let v = s.acc[r * PER_LANE + c];
                if (dims.slices == 1u) {
                    out[m * dims.n_in + k] = backward_input_epilogue(v, m * dims.n_in + k);
                } else {
                    out[(wg.z * dims.rows + m) * dims.n_in + k] = v;
                }
            }
        }
    }
}

fn backward_input_epilogue(sum: f32, at: u32) -> f32 {
    return select(sum, 0.0, dims.relu == 1u && aux[at] <= 0.0);
}

// dW[n, k] = sum_m dy[m, n] x[m, k]: A(n, m) = dy[m, n], B = x; with dims.bias the workgroups of
// the first column tile also write db[n] = sum_m dy[m, n] from the dy they staged anyway.
// lhs = dy [batch, n_out], rhs = x [batch, n_in], out = dW or partials, bias_out = db or partials.
@compute @workgroup_size(WG_SIDE, WG_SIDE)
fn linear_backward_weight_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let a = Operand(1u, dims.n_out, dims.n_out);
    let b = Operand(1u, dims.n_in, dims.n_in);
    let with_bias = dims.bias == 1u && wg.x == 0u;
    let s = tile_sums(wg, lane, a, b, dims.rows, with_bias);
    let size = dims.n_out * dims.n_in;
    for (var r = 0u; r < PER_LANE; r++) {
        let n = wg.y * TILE + lane / WG_SIDE + WG_SIDE * r;
        for (var c = 0u; c < PER_LANE; c++) {
            let k = wg.x * TILE + lane % WG_SIDE + WG_SIDE * c;
            if (n < dims.n_out && k < dims.n_in) {
                out[wg.z * size + n * dims.n_in + k] = s.acc[r * PER_LANE + c];
            }
        }
        if (with_bias && lane % WG_SIDE == 0u && n < dims.n_out) {
            bias_out[wg.z * dims.n_out + n] = s.row_sums[r];
        }
    }
}

// The partial sums [slices, ...] of the products above, added in slice order, with each
// product's epilogue. 1-D over the outputs.

// lhs = the partials of y, aux = b, out = y [batch, n_out].
@compute @workgroup_size(64)
fn linear_forward_tiled_sum(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    let size = dims.rows * dims.n_out;
    if (e >= size) {
        return;
    }
    out[e] = forward_epilogue(slice_sum(e, size), e % dims.n_out);
}

// lhs = the partials of dx, aux = x, out = dx [batch, n_in].
@compute @workgroup_size(64)
fn linear_backward_input_tiled_sum(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    let size = dims.rows * dims.n_in;
    if (e >= size) {
        return;
    }
    out[e] = backward_input_epilogue(slice_sum(e, size), e);
}

// lhs = the partials of dW, rhs = those of db (with dims.bias), out = dW, bias_out = db.
@compute @workgroup_size(64)
fn linear_backward_weight_tiled_sum(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    let size = dims.n_out * dims.n_in;
    if (e >= size) {
        return;
    }
    out[e] = slice_sum(e, size);
    if (dims.bias == 1u && e < dims.n_out) {
        var db = 0.0;
        for (var s = 0u; s < dims.slices; s++) {
            db += rhs[s * dims.n_out + e];
        }
        bias_out[e] = db;
    }
}

fn slice_sum(e: u32, size: u32) -> f32 {
    var v = 0.0;
    for (var s = 0u; s < dims.slices; s++) {
        v += lhs[s * size + e];
    }
    return v;
}
