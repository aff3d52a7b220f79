// The Bernoulli reconstruction term and the per-step bookkeeping. Prelude: common.wgsl.
//
// rec[b] = sum_d softplus(l) - x l = -log p(x | z) for grey levels x in [0, 1] (the binary cross
// entropy pytorch/examples uses), with softplus(l) = max(l, 0) + log1p(exp(-|l|)), never log(sigmoid).
// Shapes: logits, x, dlogits [batch, pixels]; rec, kl [batch].
// Workgroup size 64: one row or one element per invocation, no shared memory.

struct LossParams {
    batch: u32,
    pixels: u32,
    pass_rows: u32, // rows in this pass; batch rows at cursor + b >= pass_rows are padding
    training: u32,  // 1: finish_step advances the optimizer step
}

struct LossTotals {
    rec_sum: f32,
    kl_sum: f32,
    examples: f32,
    pad: f32,
}

@group(0) @binding(0) var<uniform> params: LossParams;
@group(0) @binding(1) var<storage, read_write> counters: Counters;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> rec: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(6) var<storage, read> kl: array<f32>;
@group(0) @binding(7) var<storage, read_write> totals: LossTotals;

// Dispatch: (ceil(batch / 64), 1, 1).
@compute @workgroup_size(64)
fn bernoulli_rec_forward(@builtin(global_invocation_id) id: vec3<u32>) {
    let b = id.x;
    if (b >= params.batch) {
        return;
    }
    var s = 0.0;
    for (var d = 0u; d < params.pixels; d++) {
        let l = logits[b * params.pixels + d];
        s += softplus(l) - x[b * params.pixels + d] * l;
    }
    rec[b] = s;
}

// dlogits = sigmoid(l) - x: the gradient of the batch's summed loss, as pytorch/examples sums it.
// Dispatch: (ceil(batch * pixels / 64), 1, 1).
@compute @workgroup_size(64)
fn bernoulli_rec_backward(@builtin(global_invocation_id) id: vec3<u32>) {
    let e = id.x;
    if (e >= params.batch * params.pixels) {
        return;
    }
    dlogits[e] = 1.0 / (1.0 + exp(-logits[e])) - x[e];
}

// One invocation: add the batch's real rows to the pass totals, note the first non-finite loss,
// move the cursor to the next batch and, in training, count the optimizer step.
@compute @workgroup_size(1)
fn finish_step() {
    var rec_sum = 0.0;
    var kl_sum = 0.0;
    var n = 0.0;
    for (var b = 0u; b < params.batch; b++) {
        if (counters.cursor + b < params.pass_rows) {
            rec_sum += rec[b];
            kl_sum += kl[b];
            n += 1.0;
        }
    }
    if ((is_non_finite(rec_sum) || is_non_finite(kl_sum)) && counters.bad_step == NO_BAD_STEP) {
        counters.bad_step = counters.step;
    }
    totals.rec_sum += rec_sum;
    totals.kl_sum += kl_sum;
    totals.examples += n;
    counters.cursor += params.batch;
    if (params.training == 1u) {
        counters.step += 1u;
    }
}
