// Adam (Kingma & Ba 2015) over every parameter of the model at once: weights, gradients and both
// moments are each one flat buffer with the same layout (src/model.rs), so a step is one dispatch.
// Prelude: common.wgsl. Bias correction uses t = counters.step + 1 (finish_step runs after this).
// Two variants: adam_step, one parameter per invocation, for any count; adam_step_vec4, four per
// invocation through vec4 views of the same buffers, for counts that are multiples of 4 (the
// model's parameters always are: every tensor starts at a multiple of 64 floats). On lavapipe the
// vec4 loads halve the step's time (docs/measurements.md), and on a GPU they are 16-byte
// coalesced accesses.

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
// The same four buffers as vec4s, for adam_step_vec4 (a binding has one type per module).
@group(0) @binding(6) var<storage, read> grads4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> weights4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> v4: array<vec4<f32>>;

// Dispatch: count invocations on a 1-D grid (flat_index).
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

// adam_update on parameters 4i .. 4i + 3, the same arithmetic per component.
// Dispatch: count / 4 invocations on a 1-D grid (flat_index); count a multiple of 4.
@compute @workgroup_size(64)
fn adam_step_vec4(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(id, groups);
    if (i >= params.count / 4u) {
        return;
    }
    let t = f32(counters.step + 1u);
    let beta1 = params.beta1;
    let beta2 = params.beta2;
    let g = grads4[i];
    let m_new = beta1 * m4[i] + (1.0 - beta1) * g;
    let v_new = beta2 * v4[i] + (1.0 - beta2) * g * g;
    let m_hat = m_new / (1.0 - pow(beta1, t));
    let v_hat = v_new / (1.0 - pow(beta2, t));
    m4[i] = m_new;
    v4[i] = v_new;
    weights4[i] -= params.lr * m_hat / (sqrt(v_hat) + params.eps);
}
