// Moving between per-input rows and per-sample rows when each input gets several samples:
// repeat_rows copies each input's row to its samples' rows (the encoder's output to the latent
// layer), sum_row_groups adds the samples' rows back into their input's row (the gradient on the
// way back to the encoder). Shapes: per-input [inputs, width], per-sample [inputs * samples, width],
// row r of the latter belonging to input r / samples.
// Workgroup size 64, one element per invocation, no shared memory.

struct RowParams {
    inputs: u32,
    samples: u32,
    width: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: RowParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// dst [inputs * samples, width] = src [inputs, width] repeated. Dispatch: inputs * samples * width invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn repeat_rows(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.inputs * params.samples * params.width) {
        return;
    }
    let r = e / params.width;
    let c = e % params.width;
    dst[e] = src[(r / params.samples) * params.width + c];
}

// dst [inputs, width] = sum over each input's samples of src [inputs * samples, width].
// Dispatch: inputs * width invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn sum_row_groups(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.inputs * params.width) {
        return;
    }
    let b = e / params.width;
    let c = e % params.width;
    var s = 0.0;
    for (var k = 0u; k < params.samples; k++) {
        s += src[(b * params.samples + k) * params.width + c];
    }
    dst[e] = s;
}
