// Conditioning on a class (seeds 000, 002: q(z|x, y), p(x|z, y)): the class enters a network as a
// one-hot block of columns appended to its input, [x | onehot(y)] for the encoder and
// [z | onehot(y)] for the decoder. The block is `classes` columns wide (the class count rounded up
// to a multiple of 4, so the widths stay vec4-friendly; the extra columns stay 0).
// Workgroup size 64, one element per invocation, no shared memory.

struct ColumnParams {
    rows: u32,
    src_width: u32,
    dst_width: u32,
    count: u32,      // columns copied, or the one-hot block's width
    src_offset: u32,
    dst_offset: u32,
    repeat: u32,     // one_hot_columns: rows per label (samples per input)
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: ColumnParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;

// dst[r, dst_offset + c] = src[r, src_offset + c] for c < count. Dispatch: rows * count invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn copy_columns(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.count) {
        return;
    }
    let r = e / params.count;
    let c = e % params.count;
    dst[r * params.dst_width + params.dst_offset + c] = src[r * params.src_width + params.src_offset + c];
}

// dst[r, dst_offset + c] = 1 if c == labels[r / repeat] else 0, for c < count.
// Dispatch: rows * count invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn one_hot_columns(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.count) {
        return;
    }
    let r = e / params.count;
    let c = e % params.count;
    dst[r * params.dst_width + params.dst_offset + c] = select(0.0, 1.0, labels[r / params.repeat] == c);
}
