// The shader modules and the files each is made of, concatenated in order. A prelude (common.wgsl)
// declares types and functions only, so each module is plain WGSL that naga validates as written.
// Shared by build.rs (validation) and src/shaders.rs (embedding), so the two cannot drift apart.
pub const SHADER_MODULES: &[(&str, &[&str])] = &[
    ("linear", &["linear.wgsl"]),
    ("linear_vec4", &["linear_vec4.wgsl"]),
    ("latent", &["common.wgsl", "latent.wgsl"]),
    ("loss", &["common.wgsl", "loss.wgsl"]),
    ("adam", &["common.wgsl", "adam.wgsl"]),
    ("data", &["common.wgsl", "data.wgsl"]),
    ("importance", &["common.wgsl", "importance.wgsl"]),
    ("samples", &["common.wgsl", "samples.wgsl"]),
    ("rows", &["rows.wgsl"]),
    ("condition", &["condition.wgsl"]),
    ("categorical", &["common.wgsl", "categorical.wgsl"]),
    ("table", &["common.wgsl", "table.wgsl"]),
];
