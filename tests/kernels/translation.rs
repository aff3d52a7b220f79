//! Every entry point, translated by naga (the version wgpu uses) as wgpu's backends translate it:
//! SPIR-V for Vulkan, MSL for Metal, HLSL for DX12. The drivers at hand run only the SPIR-V, so a
//! module that Metal or DX12 would reject at pipeline creation shows here, named by module and entry.
//! The SPIR-V also goes through Khronos' `spirv-val` (package spirv-tools) for Vulkan 1.1 where it is
//! installed; CI installs it and sets WGVAE_REQUIRE_SPIRV_VAL=1 so that it cannot be missed there.
use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ModuleInfo, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};
use naga::ShaderStage;
use std::io::Write;
use std::process::{Command, Stdio};
use wgvae::shaders::Entry;

/// The lowest versions wgpu runs on, and the ones its subgroup support needs: SPIR-V 1.3 (Vulkan
/// 1.1) for OpGroupNonUniform, MSL 2.1 for simdgroup functions, HLSL shader model 6.0 for wave ops.
struct Targets {
    spv: (u8, u8),
    msl: (u8, u8),
    hlsl: hlsl::ShaderModel,
}

fn targets(subgroups: bool) -> Targets {
    if subgroups {
        Targets { spv: (1, 3), msl: (2, 1), hlsl: hlsl::ShaderModel::V6_0 }
    } else {
        Targets { spv: (1, 0), msl: (1, 2), hlsl: hlsl::ShaderModel::V5_1 }
    }
}

/// Parses and validates `entry`'s module with what `backend` supports; subgroups only for the
/// `*_subgroup` modules (as build.rs and the plan have it).
fn validated(entry: Entry, backend: Capabilities) -> (naga::Module, ModuleInfo) {
    let source = entry.source();
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("module {}: {}", entry.module(), e.emit_to_string(source)));
    let mut capabilities = backend & !(Capabilities::SUBGROUP | Capabilities::SUBGROUP_BARRIER);
    if entry.module().ends_with("_subgroup") {
        capabilities |= Capabilities::SUBGROUP;
    }
    let mut validator = Validator::new(ValidationFlags::all(), capabilities);
    validator.subgroup_stages(ShaderStages::COMPUTE);
    validator.subgroup_operations(SubgroupOperationSet::all());
    let info = validator
        .validate(&module)
        .unwrap_or_else(|e| panic!("module {} for this backend: {}", entry.module(), e.emit_to_string(source)));
    (module, info)
}

fn to_spirv(entry: Entry) -> Vec<u32> {
    let (module, info) = validated(entry, spv::supported_capabilities());
    let options =
        spv::Options { lang_version: targets(entry.module().ends_with("_subgroup")).spv, ..Default::default() };
    let pipeline = spv::PipelineOptions { shader_stage: ShaderStage::Compute, entry_point: entry.name().into() };
    spv::write_vec(&module, &info, &options, Some(&pipeline))
        .unwrap_or_else(|e| panic!("{}::{} to SPIR-V: {e}", entry.module(), entry.name()))
}

fn to_msl(entry: Entry) -> String {
    let (module, info) = validated(entry, msl::supported_capabilities());
    let options =
        msl::Options { lang_version: targets(entry.module().ends_with("_subgroup")).msl, ..Default::default() };
    let pipeline =
        msl::PipelineOptions { entry_point: Some((ShaderStage::Compute, entry.name().into())), ..Default::default() };
    msl::write_string(&module, &info, &options, &pipeline)
        .unwrap_or_else(|e| panic!("{}::{} to MSL: {e}", entry.module(), entry.name()))
        .0
}

fn to_hlsl(entry: Entry) -> String {
    let (module, info) = validated(entry, hlsl::supported_capabilities());
    let options =
        hlsl::Options { shader_model: targets(entry.module().ends_with("_subgroup")).hlsl, ..Default::default() };
    let pipeline = hlsl::PipelineOptions { entry_point: Some((ShaderStage::Compute, entry.name().into())) };
    let mut out = String::new();
    hlsl::Writer::new(&mut out, &options, &pipeline)
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{}::{} to HLSL: {e}", entry.module(), entry.name()));
    out
}

/// `spirv-val` on one entry's SPIR-V: None where the tool is not installed.
fn spirv_val(entry: Entry, words: &[u32]) -> Option<Result<(), String>> {
    let target = if entry.module().ends_with("_subgroup") { "vulkan1.1" } else { "vulkan1.0" };
    let mut child = Command::new("spirv-val")
        .args(["--target-env", target, "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    child.stdin.take().expect("piped stdin").write_all(&bytes).expect("spirv-val reads its input");
    let out = child.wait_with_output().expect("spirv-val runs");
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    })
}

#[test]
fn every_entry_point_should_translate_to_spirv_msl_and_hlsl() {
    let require_val = std::env::var_os("WGVAE_REQUIRE_SPIRV_VAL").is_some();
    let mut failures = Vec::new();
    for &entry in Entry::ALL {
        let words = to_spirv(entry);
        match spirv_val(entry, &words) {
            Some(Ok(())) => {}
            Some(Err(report)) => failures.push(format!("{}::{}: spirv-val: {report}", entry.module(), entry.name())),
            None if require_val => {
                panic!("WGVAE_REQUIRE_SPIRV_VAL is set but spirv-val did not run: apt-get install -y spirv-tools")
            }
            None => {}
        }
        let msl = to_msl(entry);
        let hlsl = to_hlsl(entry);
        // The entry point is in each translation (MSL and HLSL keep WGSL's names where they are
        // not reserved words, and none of ours are).
        for (language, text) in [("MSL", &msl), ("HLSL", &hlsl)] {
            if !text.contains(entry.name()) {
                failures.push(format!(
                    "{}::{}: the {language} has no function of that name",
                    entry.module(),
                    entry.name()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} translations failed:\n{}", failures.len(), failures.join("\n"));
}
