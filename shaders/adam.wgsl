// Adam (Kingma & Ba 2015) over every parameter of the model at once: weights, gradients and both
// moments are each one flat buffer with the same layout (src/model.rs), so a step is one dispatch.
// Prelude: common.wgsl. Bias correction uses t = counters.step + 1 (finish_step runs after this).
// Workgroup size 64, one parameter per invocation. Dispatch: count invocations on a 1-D grid (flat_index).

struct AdamParams {
    count: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: AdamParams;
@group(0) @binding(1) var<storage, read> counters: Counters;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(64)
fn adam_step(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(id, groups);
    if (i >= params.count) {
        return;
    }
    let u = adam_update(grads[i], m[i], v[i], f32(counters.step + 1u), params.lr, params.beta1, params.beta2, params.eps);
    m[i] = u.x;
    v[i] = u.y;
    weights[i] -= u.z;
}
