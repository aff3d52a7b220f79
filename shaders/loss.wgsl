// The reconstruction terms and the per-step bookkeeping. Prelude: common.wgsl.
//
// Bernoulli decoder: rec[b] = sum_d softplus(l) - x l = -log p(x | z) for grey levels x in [0, 1]
// (the binary cross entropy pytorch/examples uses), with softplus(l) = max(l, 0) + log1p(exp(-|l|)),
// never log(sigmoid). Gaussian decoder: the logits row holds the means, then the log-variances
// (clamped to [-6, 4]); rec[b] = sum_d -log N(x_d; mean_d, exp(logvar_d)).
// Shapes: logits, dlogits [batch, pixels]; x [batch / repeat, pixels]; rec, kl, coef [batch]. With
// several samples per input, "batch" counts rows, row b is a sample of input b / repeat, and coef
// is each row's weight in the objective (1 / samples for an ELBO, normalised importance weights for
// IWAE).
// Workgroup size 64: one row or one element per invocation, or (the _rows kernels) one row per
// workgroup.

struct LossParams {
    rows: u32,
    pixels: u32,
    pass_rows: u32, // inputs in this pass; rows of inputs at cursor + b / repeat >= pass_rows are padding
    training: u32,  // 1: finish_step advances the optimizer step
    repeat: u32,    // samples (rows) per input
    fixed_batch: u32, // 1: the cursor stays (the same batch is revisited: refine)
    pad1: u32,
    pad2: u32,
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
@group(0) @binding(8) var<storage, read> coef: array<f32>;

// Dispatch: batch invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn bernoulli_rec_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_index(id, groups);
    if (b >= params.rows) {
        return;
    }
    let input = b / params.repeat;
    var s = 0.0;
    for (var d = 0u; d < params.pixels; d++) {
        let l = logits[b * params.pixels + d];
        s += bernoulli_nll(x[input * params.pixels + d], l);
    }
    rec[b] = s;
}

// The same per-row sums for GPU adapters, where one invocation per row leaves most of the device
// idle and reads a row's pixels serially: a workgroup per row, its 64 lanes taking every 64th pixel
// (adjacent lanes, adjacent pixels), then a tree over the lanes in workgroup memory.
// Dispatch: one workgroup per row, in rows of groups.x workgroups (Gpu::grid_1d of rows x 64).
var<workgroup> lane_sums: array<f32, 64>;

// The sum of the 64 lanes' `part`, for every lane of the workgroup.
fn workgroup_sum(lane: u32, part: f32) -> f32 {
    lane_sums[lane] = part;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half /= 2u) {
        if (lane < half) {
            lane_sums[lane] += lane_sums[lane + half];
        }
        workgroupBarrier();
    }
    return lane_sums[0];
}

@compute @workgroup_size(64)
fn bernoulli_rec_forward_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let b = wg.y * groups.x + wg.x;
    if (b >= params.rows) {
        return;
    }
    let input = b / params.repeat;
    var s = 0.0;
    for (var d = lane; d < params.pixels; d += 64u) {
        s += bernoulli_nll(x[input * params.pixels + d], logits[b * params.pixels + d]);
    }
    let total = workgroup_sum(lane, s);
    if (lane == 0u) {
        rec[b] = total;
    }
}

@compute @workgroup_size(64)
fn gaussian_rec_forward_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let b = wg.y * groups.x + wg.x;
    if (b >= params.rows) {
        return;
    }
    let input = b / params.repeat;
    let row = b * 2u * params.pixels;
    var s = 0.0;
    for (var d = lane; d < params.pixels; d += 64u) {
        s += gaussian_nll(x[input * params.pixels + d], logits[row + d], logits[row + params.pixels + d]);
    }
    let total = workgroup_sum(lane, s);
    if (lane == 0u) {
        rec[b] = total;
    }
}

// The forward and backward together, for GPU adapters where coef is known before rec (the ELBO's
// 1 / samples; IWAE's weights come from rec, so IWAE runs the two kernels): rec[b] as
// bernoulli_rec_forward_rows sums it, and dlogits as bernoulli_rec_backward writes it, from one
// read of the row. Dispatch: one workgroup per row (Gpu::grid_1d of rows x 64).
@compute @workgroup_size(64)
fn bernoulli_rec_forward_backward_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let b = wg.y * groups.x + wg.x;
    if (b >= params.rows) {
        return;
    }
    let input = b / params.repeat;
    let c = coef[b];
    var s = 0.0;
    for (var d = lane; d < params.pixels; d += 64u) {
        let l = logits[b * params.pixels + d];
        let t = x[input * params.pixels + d];
        s += bernoulli_nll(t, l);
        dlogits[b * params.pixels + d] = c * (1.0 / (1.0 + exp(-l)) - t);
    }
    let total = workgroup_sum(lane, s);
    if (lane == 0u) {
        rec[b] = total;
    }
}

// gaussian_rec_forward_rows and gaussian_rec_backward in one kernel, as the Bernoulli's above.
@compute @workgroup_size(64)
fn gaussian_rec_forward_backward_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let b = wg.y * groups.x + wg.x;
    if (b >= params.rows) {
        return;
    }
    let input = b / params.repeat;
    let row = b * 2u * params.pixels;
    let c = coef[b];
    var s = 0.0;
    for (var d = lane; d < params.pixels; d += 64u) {
        let t = x[input * params.pixels + d];
        let m = logits[row + d];
        let raw = logits[row + params.pixels + d];
        s += gaussian_nll(t, m, raw);
        let lv = clamp(raw, LOGVAR_MIN, LOGVAR_MAX);
        let r = t - m;
        let inv_var = exp(-lv);
        dlogits[row + d] = c * -r * inv_var;
        dlogits[row + params.pixels + d] = select(0.0, c * 0.5 * (1.0 - r * r * inv_var), raw > LOGVAR_MIN && raw < LOGVAR_MAX);
    }
    let total = workgroup_sum(lane, s);
    if (lane == 0u) {
        rec[b] = total;
    }
}

// dlogits = coef (sigmoid(l) - x): the gradient of the batch's summed loss, as pytorch/examples
// sums it, each row weighted by coef. Dispatch: batch * pixels invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn bernoulli_rec_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.pixels) {
        return;
    }
    let b = e / params.pixels;
    let d = e % params.pixels;
    dlogits[e] = coef[b] * (1.0 / (1.0 + exp(-logits[e])) - x[(b / params.repeat) * params.pixels + d]);
}

// The Gaussian decoder N(mean, exp(logvar)): each row of `logits` is [means (pixels) | raw
// log-variances (pixels)]; the log-variance is clamped to [LOGVAR_MIN, LOGVAR_MAX] (common.wgsl).
// rec[b] = sum_d gaussian_nll(x, m, lv) = -log N(x; m, exp(lv)).

// Dispatch: batch invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn gaussian_rec_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_index(id, groups);
    if (b >= params.rows) {
        return;
    }
    let input = b / params.repeat;
    let row = b * 2u * params.pixels;
    var s = 0.0;
    for (var d = 0u; d < params.pixels; d++) {
        s += gaussian_nll(x[input * params.pixels + d], logits[row + d], logits[row + params.pixels + d]);
    }
    rec[b] = s;
}

// dmean = coef (m - x) exp(-lv); dlogvar = coef (1 - (x - m)^2 exp(-lv)) / 2 inside the clamp, 0
// outside. dlogits has the logits' [batch, 2 * pixels] layout. Dispatch: batch * pixels invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn gaussian_rec_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_index(id, groups);
    if (e >= params.rows * params.pixels) {
        return;
    }
    let b = e / params.pixels;
    let d = e % params.pixels;
    let row = b * 2u * params.pixels;
    let m = logits[row + d];
    let raw = logits[row + params.pixels + d];
    let lv = clamp(raw, LOGVAR_MIN, LOGVAR_MAX);
    let r = x[(b / params.repeat) * params.pixels + d] - m;
    let inv_var = exp(-lv);
    dlogits[row + d] = coef[b] * -r * inv_var;
    dlogits[row + params.pixels + d] = select(0.0, coef[b] * 0.5 * (1.0 - r * r * inv_var), raw > LOGVAR_MIN && raw < LOGVAR_MAX);
}

// finish_step for GPU adapters: a workgroup of 64 lanes adds every 64th row, a tree adds the lanes'
// sums, and lane 0 does the rest as finish_step does (the totals may differ from its serial sums in
// the last bits). Dispatch: (1, 1, 1).
var<workgroup> lane_sums3: array<vec3<f32>, 64>;

@compute @workgroup_size(64)
fn finish_step_tree(@builtin(local_invocation_index) lane: u32) {
    let cursor = counters.cursor;
    var part = vec3<f32>(0.0);
    for (var b = lane; b < params.rows; b += 64u) {
        if (cursor + b / params.repeat < params.pass_rows) {
            part += vec3<f32>(rec[b], kl[b], 1.0);
        }
    }
    lane_sums3[lane] = part;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half /= 2u) {
        if (lane < half) {
            lane_sums3[lane] += lane_sums3[lane + half];
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        let sums = lane_sums3[0];
        end_step(sums.x, sums.y, sums.z);
    }
}

// One invocation: add the batch's real rows to the pass totals (examples counts rows, so the totals'
// means are per input, averaged over its samples), note the first non-finite loss, move the cursor
// to the next batch of inputs and, in training, count the optimizer step.
@compute @workgroup_size(1)
fn finish_step() {
    var rec_sum = 0.0;
    var kl_sum = 0.0;
    var n = 0.0;
    for (var b = 0u; b < params.rows; b++) {
        if (counters.cursor + b / params.repeat < params.pass_rows) {
            rec_sum += rec[b];
            kl_sum += kl[b];
            n += 1.0;
        }
    }
    end_step(rec_sum, kl_sum, n);
}

// The batch's sums into the totals, the first non-finite step, the cursor and the step.
fn end_step(rec_sum: f32, kl_sum: f32, n: f32) {
    if ((is_non_finite(rec_sum) || is_non_finite(kl_sum)) && counters.bad_step == NO_BAD_STEP) {
        counters.bad_step = counters.step;
    }
    totals.rec_sum += rec_sum;
    totals.kl_sum += kl_sum;
    totals.examples += n;
    if (params.fixed_batch == 0u) {
        counters.cursor += params.rows / params.repeat;
    }
    if (params.training == 1u) {
        counters.step += 1u;
    }
}
