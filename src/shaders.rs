//! WGSL sources, embedded in the binary. build.rs has validated every module with naga.

include!("shader_modules.rs");

const FILES: &[(&str, &str)] = &[
    ("common.wgsl", include_str!("../shaders/common.wgsl")),
    ("linear.wgsl", include_str!("../shaders/linear.wgsl")),
    ("linear_vec4.wgsl", include_str!("../shaders/linear_vec4.wgsl")),
    ("latent.wgsl", include_str!("../shaders/latent.wgsl")),
    ("loss.wgsl", include_str!("../shaders/loss.wgsl")),
    ("adam.wgsl", include_str!("../shaders/adam.wgsl")),
    ("data.wgsl", include_str!("../shaders/data.wgsl")),
    ("importance.wgsl", include_str!("../shaders/importance.wgsl")),
    ("samples.wgsl", include_str!("../shaders/samples.wgsl")),
    ("rows.wgsl", include_str!("../shaders/rows.wgsl")),
    ("condition.wgsl", include_str!("../shaders/condition.wgsl")),
    ("categorical.wgsl", include_str!("../shaders/categorical.wgsl")),
    ("table.wgsl", include_str!("../shaders/table.wgsl")),
];

/// The full source of module `name` (its files joined in order).
pub fn module_source(name: &str) -> String {
    let (_, files) = SHADER_MODULES
        .iter()
        .find(|(module, _)| *module == name)
        .unwrap_or_else(|| panic!("no shader module named {name}"));
    files
        .iter()
        .map(|file| {
            FILES.iter().find(|(f, _)| f == file).unwrap_or_else(|| panic!("shader file {file} is not embedded")).1
        })
        .collect::<Vec<_>>()
        .join("\n")
}
