// Per-datapoint (non-amortized) inference, the seeds' first algorithm (seeds 000, 001): each
// training image i has its own variational parameters, row i of table [images, 2 * latent]
// ([mu | logvar] as the encoder would output), fitted by Adam alongside the decoder.
// gather_table_rows reads the batch's rows; table_adam_step updates just those rows (sparse Adam:
// a row's moments change only when it is in a batch). Prelude: common.wgsl.
// Workgroup size 64, one element per invocation, no shared memory.

struct TableParams {
    batch: u32,
    width: u32,     // 2 * latent
    pass_rows: u32, // rows of the pass; batch rows past it are padding
    updates_per_step: u32, // table updates per optimizer step (the inner steps and the main one)
    update_index: u32,     // which of them this launch is
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: TableParams;
@group(0) @binding(1) var<storage, read> counters: Counters;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read_write> table: array<f32>;
@group(0) @binding(4) var<storage, read> dmulv: array<f32>;
@group(0) @binding(5) var<storage, read_write> mulv: array<f32>;
@group(0) @binding(6) var<storage, read_write> m: array<f32>;
@group(0) @binding(7) var<storage, read_write> v: array<f32>;

// mulv[b] = table[order[cursor + b]] (0 for padding rows). Dispatch: batch * width invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn gather_table_rows(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.batch * params.width) {
        return;
    }
    let row = counters.cursor + e / params.width;
    if (row >= params.pass_rows) {
        mulv[e] = 0.0;
        return;
    }
    mulv[e] = table[order[row] * params.width + e % params.width];
}

// Adam on the batch's rows of the table with gradient dmulv. Dispatch: batch * width invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn table_adam_step(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.batch * params.width) {
        return;
    }
    let row = counters.cursor + e / params.width;
    if (row >= params.pass_rows) {
        return;
    }
    let at = order[row] * params.width + e % params.width;
    // Adam's step count for the bias correction: table updates so far, this one included.
    let t = f32(counters.step * params.updates_per_step + params.update_index + 1u);
    let u = adam_update(dmulv[e], m[at], v[at], t, params.lr, params.beta1, params.beta2, params.eps);
    m[at] = u.x;
    v[at] = u.y;
    table[at] -= u.z;
}
