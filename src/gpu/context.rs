//! Getting an adapter and a device. Everything after this takes a `&Gpu`, so tests hand in theirs.
use anyhow::{bail, Context, Result};

use super::faults::{Faults, GpuFault};
pub use crate::plan::KernelChoice;
use crate::plan::{Adapter, KernelPlan};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

impl Backend {
    fn flags(backend: Option<Backend>) -> wgpu::Backends {
        match backend {
            None => wgpu::Backends::all(),
            Some(Backend::Vulkan) => wgpu::Backends::VULKAN,
            Some(Backend::Metal) => wgpu::Backends::METAL,
            Some(Backend::Dx12) => wgpu::Backends::DX12,
            Some(Backend::Gl) => wgpu::Backends::GL,
        }
    }

    /// The API an adapter wgpu found runs on (None for one wgvae does not offer, e.g. WebGPU).
    pub fn of(backend: wgpu::Backend) -> Option<Backend> {
        match backend {
            wgpu::Backend::Vulkan => Some(Backend::Vulkan),
            wgpu::Backend::Metal => Some(Backend::Metal),
            wgpu::Backend::Dx12 => Some(Backend::Dx12),
            wgpu::Backend::Gl => Some(Backend::Gl),
            _ => None,
        }
    }
}

/// Which adapter to open: a graphics API (all by default) and a part of the adapter's name; and
/// which kernel family to run on it (by the adapter's type unless forced).
#[derive(Clone, Debug, Default)]
pub struct DeviceChoice {
    pub backend: Option<Backend>,
    pub adapter: Option<String>,
    pub kernels: KernelChoice,
}

#[derive(Clone)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// Workgroups in one row of a 1-D kernel's grid: the device's limit per dimension, or fewer
    /// (WGVAE_GRID_X, or a test) so that small launches exercise the rows of grid_1d.
    pub grid_x: u32,
    /// Which kernel each launch gets on this device (plan/mod.rs): the one holder of the
    /// adapter's facts that choice depends on.
    plan: KernelPlan,
    /// The device's first failure, returned by every later submission and readback.
    faults: Faults,
}

/// Subgroup operations where the adapter offers them, natively: the *_subgroup modules are written
/// without WGSL's `enable subgroups;` (the prelude comes first), which a browser requires.
#[cfg(not(target_arch = "wasm32"))]
const SUBGROUPS: wgpu::Features = wgpu::Features::SUBGROUP;
#[cfg(target_arch = "wasm32")]
const SUBGROUPS: wgpu::Features = wgpu::Features::empty();

pub const NO_ADAPTER_HINT: &str = "no GPU adapter found. On Linux without a GPU install Mesa's software \
Vulkan driver (lavapipe): `sudo apt-get install -y mesa-vulkan-drivers`; `wgvae devices` lists what wgpu sees";

fn instance(backend: Option<Backend>) -> wgpu::Instance {
    // llvmpipe's vector width is left at Mesa's default (256 bits on x86 with AVX, also on AVX-512
    // CPUs): its 8-lane subgroups are what linear_vec4_subgroup.wgsl is written for, and that
    // module cut the matmuls' time 2-3x where 512-bit vectors had given 1.6x (design-notes.md).
    // set_var is only sound while no other thread reads the environment, hence the Once (tests
    // open devices from several threads). (A browser has no environment to set.)
    #[cfg(not(target_arch = "wasm32"))]
    static ENVIRONMENT: std::sync::Once = std::sync::Once::new();
    #[cfg(not(target_arch = "wasm32"))]
    ENVIRONMENT.call_once(|| {
        // Mesa's device-select Vulkan layer reorders adapters for a display and, on a headless
        // machine, prints "XDG_RUNTIME_DIR is invalid" twice while looking for one. wgvae ranks
        // adapters itself (Gpu::open), so the layer has nothing to do.
        if std::env::var_os("NODEVICE_SELECT").is_none() {
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    });
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: Backend::flags(backend),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

/// Every adapter wgpu can see for `backend` (all backends when None).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters(backend: Option<Backend>) -> Vec<wgpu::AdapterInfo> {
    let adapters = pollster::block_on(instance(backend).enumerate_adapters(Backend::flags(backend)));
    adapters.iter().map(|a| a.get_info()).collect()
}

impl Gpu {
    /// Opens the adapter whose name contains `choice.adapter` (case-insensitive), or the first
    /// one, preferring real GPUs over software ones when no name is given.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(choice: &DeviceChoice) -> Result<Gpu> {
        pollster::block_on(Gpu::open_async(choice))
    }

    /// `open` as a future. In a browser the one adapter is the one WebGPU offers.
    pub async fn open_async(choice: &DeviceChoice) -> Result<Gpu> {
        let (backend, adapter_name) = (choice.backend, choice.adapter.as_deref());
        let instance = instance(backend);
        #[cfg(not(target_arch = "wasm32"))]
        let mut adapters = instance.enumerate_adapters(Backend::flags(backend)).await;
        #[cfg(target_arch = "wasm32")]
        let mut adapters: Vec<wgpu::Adapter> = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .into_iter()
            .collect();
        if adapters.is_empty() {
            bail!("{NO_ADAPTER_HINT}");
        }
        let adapter = match adapter_name {
            Some(name) => {
                let wanted = name.to_lowercase();
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                let at = adapters
                    .iter()
                    .position(|a| a.get_info().name.to_lowercase().contains(&wanted))
                    .with_context(|| format!("--adapter {name:?} matches none of the adapters: {names:?}"))?;
                adapters.swap_remove(at)
            }
            None => {
                let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
                    wgpu::DeviceType::DiscreteGpu => 0,
                    wgpu::DeviceType::IntegratedGpu => 1,
                    wgpu::DeviceType::VirtualGpu => 2,
                    wgpu::DeviceType::Other => 3,
                    wgpu::DeviceType::Cpu => 4,
                };
                adapters.sort_by_key(rank);
                adapters.swap_remove(0)
            }
        };
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgvae"),
                // Timestamps only time kernels in `bench`; subgroups only pick faster kernels.
                required_features: adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | SUBGROUPS),
                // The dataset is one storage buffer: ask for as large a binding as the adapter allows.
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("opening a device on adapter {:?}", info.name))?;
        let faults = Faults::install(&device, &info.name);
        let (needed, entry) = crate::shaders::MOST_STORAGE_BUFFERS;
        let allowed = device.limits().max_storage_buffers_per_shader_stage;
        if allowed < needed {
            bail!(
                "adapter {:?} allows {allowed} storage buffers per shader stage; wgvae's kernels bind up to {needed} \
                 ({entry})",
                info.name
            );
        }
        let limit = device.limits().max_compute_workgroups_per_dimension;
        let requested = std::env::var("WGVAE_GRID_X").ok().and_then(|v| v.parse::<u32>().ok());
        let grid_x = requested.map_or(limit, |r| r.clamp(1, limit));
        let plan = KernelPlan::new(Adapter::of(&info, device.features(), &device.limits()), choice.kernels);
        Ok(Gpu { device, queue, info, grid_x, plan, faults })
    }

    /// Workgroups for `n` invocations of a 1-D kernel of 64-lane workgroups (flat_index in
    /// common.wgsl): rows of grid_x workgroups, as many rows as it takes (at least one workgroup).
    pub fn grid_1d(&self, n: usize) -> [u32; 3] {
        let groups = n.div_ceil(64).max(1) as u64;
        let x = groups.min(self.grid_x as u64);
        [x as u32, groups.div_ceil(x) as u32, 1]
    }

    pub fn plan(&self) -> &KernelPlan {
        &self.plan
    }

    /// The device's first failure so far (faults.rs), if any.
    pub fn check(&self) -> Result<(), GpuFault> {
        self.faults.check()
    }

    /// Records the loss of the device, which wgpu reported as `detail` at a poll or a map.
    pub fn lost(&self, detail: &str) -> GpuFault {
        self.faults.lost(detail)
    }

    /// This device under another plan (`KernelPlan::forced` on `plan().adapter()`): the same
    /// device and queue, so the same `Kernels` serve both.
    pub fn with_plan(&self, plan: KernelPlan) -> Gpu {
        assert_eq!(plan.adapter(), self.plan.adapter(), "a plan for another adapter");
        Gpu { plan, ..self.clone() }
    }

    pub fn describe(&self) -> String {
        let subgroups = match self.plan.adapter().subgroups {
            None => String::new(),
            Some(s) => match s.fixed() {
                Some(lanes) => format!(", {lanes}-lane subgroups"),
                None => format!(", subgroups of {}-{} lanes", s.min, s.max),
            },
        };
        format!(
            "{} ({:?}, {:?}, driver {} {}), {:?} kernels{subgroups}",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info,
            self.plan.family()
        )
    }
}
