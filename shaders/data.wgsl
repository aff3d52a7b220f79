// Batch gather from the GPU-resident dataset. Prelude: common.wgsl (GatherParams, gathered_pixels:
// linear_tiled.wgsl's first-layer product gathers the same way).
//
// images: one shard of the dataset, images first_image .. first_image + shard_images, each image's
// bytes packed little-endian into u32 words (4 values a word; 784 pixels = 196 words, so images stay
// word-aligned). A dataset larger than one storage binding is several shards, gathered by one
// launch each: a row whose image lies in another shard is left to that shard's launch.
// order: the pass's image indices (a shuffle for training).
// x [batch, words * 4] gets pixel / 255, or a binarized version:
//   binarize 0: none (grey levels, as pytorch/examples);
//   binarize 1: dynamic, a fresh Bernoulli(pixel / 255) draw every step;
//   binarize 2: static, one fixed Bernoulli draw per image and pixel (keyed by image, not step).
// Rows at cursor + b >= pass_rows are padding and get zeros.
// One invocation per word. Dispatch: batch * words invocations on a 1-D grid (flat_index).

@group(0) @binding(0) var<uniform> params: GatherParams;
@group(0) @binding(1) var<storage, read> counters: Counters;
@group(0) @binding(2) var<storage, read> images: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read> labels: array<u32>;
@group(0) @binding(6) var<storage, read_write> y: array<u32>;

// y[b] = the label of the batch's row b (0 for padding rows). Dispatch: batch invocations on a 1-D grid (flat_index).
@compute @workgroup_size(64)
fn gather_labels(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_index(id, groups);
    if (b >= params.batch) {
        return;
    }
    let row = counters.cursor + b;
    y[b] = select(0u, labels[order[row]], row < params.pass_rows);
}

@compute @workgroup_size(64)
fn gather_batch(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let flat = flat_index(id, groups);
    let b = flat / params.words;
    let w = flat % params.words;
    if (b >= params.batch) {
        return;
    }
    let row = counters.cursor + b;
    let out_at = flat * 4u;
    if (row >= params.pass_rows) {
        x[out_at] = 0.0;
        x[out_at + 1u] = 0.0;
        x[out_at + 2u] = 0.0;
        x[out_at + 3u] = 0.0;
        return;
    }
    let image = order[row];
    if (image < params.first_image || image - params.first_image >= params.shard_images) {
        return;
    }
    let word = images[(image - params.first_image) * params.words + w];
    let value = gathered_pixels(word, image * params.words + w, counters.step, params);
    for (var i = 0u; i < 4u; i++) {
        x[out_at + i] = value[i];
    }
}
