//! Described adapters: the facts the plan reads of the adapters wgvae is meant for, as wgpu 30
//! reports them (after wgpu-hal's clamps: a Vulkan storage binding of 4 GiB becomes i32::MAX
//! rounded down to 4 bytes, wgpu-hal/src/vulkan/adapter.rs and auxil/mod.rs `adjust_raw_limits`),
//! so `wgvae devices --plan --profile NAME` and the golden test show what runs where without the
//! hardware. Sources, per profile:
//! - vulkan.gpuinfo.org reports, as cited in IREE's Vulkan target table
//!   (iree compiler/src/iree/compiler/Dialect/Vulkan/Utils/TargetTriple.cpp): id=11252 NVIDIA
//!   Turing/Ampere, id=10906 AMD RDNA, id=14673 Apple M1, id=19818 Intel Arc;
//! - Mesa: lavapipe's lvp_device.c `lvp_get_properties`, llvmpipe's lp_screen.c compute caps and
//!   lp_bld_init_common.c (subgroup = native vector width / 32), RADV's radv_physical_device.c,
//!   ANV's anv_physical_device.c;
//! - SwiftShader: src/Vulkan/VkPhysicalDevice.cpp `getLimits` and VkConfig.hpp;
//! - wgpu 30: wgpu-types limits.rs `Limits::defaults()` (WebGPU's default limits), wgpu-hal
//!   metal/adapter.rs (Metal's limits; subgroup sizes 4..64 are hard-coded in metal/mod.rs),
//!   gles/adapter.rs (GL, llvmpipe reported as a CPU).
//!
//! Where no report exists (no public Vulkan report of an H100), the profile takes its
//! architecture family's report and says so.
use super::{Adapter, AdapterLimits, SubgroupSizes};
use wgpu::{Backend, DeviceType};

/// i32::MAX rounded down to 4 bytes: wgpu 30's cap on a Vulkan storage binding.
const VULKAN_BINDING: u64 = 2_147_483_644;
const I32_MAX: u64 = 2_147_483_647;

/// A described adapter: its `--profile` name and facts.
pub struct Profile {
    pub name: &'static str,
    pub adapter: Adapter,
}

fn limits(binding: u64, buffer: u64, storage_buffers: u32, workgroup_bytes: u32, invocations: u32) -> AdapterLimits {
    AdapterLimits {
        max_storage_buffer_binding_size: binding,
        max_buffer_size: buffer,
        max_compute_workgroups_per_dimension: 65_535,
        max_storage_buffers_per_shader_stage: storage_buffers,
        max_compute_workgroup_storage_size: workgroup_bytes,
        max_compute_invocations_per_workgroup: invocations,
    }
}

fn adapter(
    name: &str,
    device_type: DeviceType,
    backend: Backend,
    lanes: Option<(u32, u32)>,
    limits: AdapterLimits,
) -> Adapter {
    let subgroups = lanes.map(|(min, max)| SubgroupSizes { min, max });
    Adapter { name: name.to_string(), device_type, backend, subgroups, limits }
}

/// Every profile, in the order `devices --plan` prints them: the software adapters, then GPUs.
pub fn all() -> Vec<Profile> {
    let mut profiles = software();
    profiles.extend(gpus());
    profiles
}

fn p(name: &'static str, adapter: Adapter) -> Profile {
    Profile { name, adapter }
}

/// The drivers CI runs on, llvmpipe's GL, and a browser's WebGPU.
fn software() -> Vec<Profile> {
    vec![
        // lavapipe: 128 MiB bindings (LP_MAX_TGSI_SHADER_BUFFER_SIZE), buffers to i32::MAX, 32 KiB
        // of workgroup memory; storage buffers per stage as wgpu trims Mesa's 1,000,000.
        p(
            "lavapipe",
            adapter(
                "llvmpipe (LLVM, 256 bits)",
                DeviceType::Cpu,
                Backend::Vulkan,
                Some((8, 8)),
                limits(134_217_728, I32_MAX, 48, 32_768, 1024),
            ),
        ),
        p(
            "lavapipe-128",
            adapter(
                "llvmpipe (LLVM, 128 bits)",
                DeviceType::Cpu,
                Backend::Vulkan,
                Some((4, 4)),
                limits(134_217_728, I32_MAX, 48, 32_768, 1024),
            ),
        ),
        // SwiftShader: 1 GiB allocations and bindings, 256 invocations, SIMD::Width = 4 lanes; wgpu
        // trims 30 storage buffers per stage to 10 (maxFragmentCombinedOutputResources 28).
        p(
            "swiftshader",
            adapter(
                "SwiftShader Device",
                DeviceType::Cpu,
                Backend::Vulkan,
                Some((4, 4)),
                limits(1 << 30, 1 << 30, 10, 32_768, 256),
            ),
        ),
        // llvmpipe through GL: no subgroups; 128 MiB shader storage blocks; 16 storage blocks per
        // stage (Mesa's GL clamp; unpublished, the lower end of llvmpipe's range).
        p(
            "llvmpipe-gl",
            adapter(
                "llvmpipe (GL)",
                DeviceType::Cpu,
                Backend::Gl,
                None,
                limits(134_217_728, I32_MAX, 16, 32_768, 1024),
            ),
        ),
        // A browser's WebGPU on a GPU: WebGPU's default limits (wgpu-types Limits::defaults), and no
        // subgroups (wgpu 30 does not request them on wasm32).
        p(
            "webgpu",
            adapter(
                "WebGPU (browser)",
                DeviceType::Other,
                Backend::BrowserWebGpu,
                None,
                limits(134_217_728, 268_435_456, 8, 16_384, 256),
            ),
        ),
    ]
}

/// The GPUs wgvae is meant for.
fn gpus() -> Vec<Profile> {
    vec![
        // NVIDIA H100 on Vulkan (Linux): no public report; NVIDIA's Turing/Ampere report (gpuinfo
        // id=11252: 32-lane subgroups, 48 KiB shared, 1024 invocations) and its Linux driver's 4 GiB
        // storage range, which wgpu caps; its buffers are not capped on NVIDIA (maxMemoryAllocationSize
        // 0xffe00000); storage buffers per stage as wgpu trims 1,048,576.
        p(
            "h100",
            adapter(
                "NVIDIA H100 (Vulkan)",
                DeviceType::DiscreteGpu,
                Backend::Vulkan,
                Some((32, 32)),
                limits(VULKAN_BINDING, 0xffe0_0000, 524_288, 49_152, 1024),
            ),
        ),
        // AMD RDNA2/3 on RADV: wave32 or wave64 (gpuinfo id=10906; radv: min 32 on GFX10+, max 64),
        // 64 KiB of LDS per workgroup, 4 GiB ranges capped by wgpu.
        p(
            "rdna",
            adapter(
                "AMD Radeon RDNA (RADV)",
                DeviceType::DiscreteGpu,
                Backend::Vulkan,
                Some((32, 64)),
                limits(VULKAN_BINDING, I32_MAX, 1_048_576, 65_536, 1024),
            ),
        ),
        // Apple M-series on Metal: wgpu reports subgroups of 4..64 (the hardware's SIMD groups are 32,
        // gpuinfo id=14673), 32 KiB of threadgroup memory, 29 buffers, and maxBufferLength for both
        // sizes, which grows with memory (36 GiB on a 64 GB M1 Max, wgpu PR 2502); taken here as
        // 4 GiB, what the u32 byte offsets of one binding address.
        p(
            "apple-m",
            adapter(
                "Apple M1 (Metal)",
                DeviceType::IntegratedGpu,
                Backend::Metal,
                Some((4, 64)),
                limits(4_294_967_292, 4_294_967_292, 29, 32_768, 1024),
            ),
        ),
        // Intel Iris Xe / UHD on ANV: SIMD8..32 (gpuinfo id=19818 for Arc; ANV: min 8, max 32), 48 KiB
        // of shared local memory (ANV's MAX_SLM_SIZE), 4 GiB ranges capped by wgpu.
        p(
            "intel-xe",
            adapter(
                "Intel Iris Xe (ANV)",
                DeviceType::IntegratedGpu,
                Backend::Vulkan,
                Some((8, 32)),
                limits(VULKAN_BINDING, I32_MAX, 102, 49_152, 1024),
            ),
        ),
    ]
}

/// The profile named `name`, or an error listing the names.
pub fn named(name: &str) -> anyhow::Result<Profile> {
    let profiles = all();
    let names: Vec<&str> = profiles.iter().map(|p| p.name).collect();
    profiles
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| anyhow::anyhow!("no adapter profile {name:?}; the profiles are {}", names.join(", ")))
}
