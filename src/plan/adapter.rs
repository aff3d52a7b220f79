//! An adapter as the kernel plan sees it: its type, graphics API, subgroup sizes and the limits
//! wgvae's launches and buffers meet. Read from a real adapter (`Adapter::of`) or described
//! (plan/profiles.rs), so the plan of a GPU nobody here has can still be computed and reviewed.

/// The limits the plan and the size checks read (wgpu's names, in its units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdapterLimits {
    /// Bytes one storage binding may cover: the dataset, the parameters, the widest activation.
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    /// Workgroups per grid dimension (WebGPU and wgpu: at most 65,535).
    pub max_compute_workgroups_per_dimension: u32,
    pub max_storage_buffers_per_shader_stage: u32,
    /// Bytes of workgroup memory: linear_tiled.wgsl's tiles take 2 x 64 x 16 floats (8 KiB).
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
}

impl AdapterLimits {
    /// The most bytes one storage buffer may bind: the binding limit, or the buffer limit where smaller.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_storage_buffer_binding_size.min(self.max_buffer_size)
    }

    pub fn of(limits: &wgpu::Limits) -> AdapterLimits {
        AdapterLimits {
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        }
    }
}

/// The subgroup sizes a device with subgroup operations may run a kernel at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubgroupSizes {
    pub min: u32,
    pub max: u32,
}

impl SubgroupSizes {
    /// The one size every kernel runs at, where min and max agree (lavapipe: 8 lanes, one SIMD vector).
    pub fn fixed(self) -> Option<u32> {
        (self.min == self.max).then_some(self.min)
    }
}

/// What the plan knows of an adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adapter {
    pub name: String,
    pub device_type: wgpu::DeviceType,
    pub backend: wgpu::Backend,
    /// None where the device has no subgroup operations (Features::SUBGROUP not granted).
    pub subgroups: Option<SubgroupSizes>,
    pub limits: AdapterLimits,
}

impl Adapter {
    /// The facts of an opened device: `features` and `limits` as granted, the sizes from `info`.
    pub fn of(info: &wgpu::AdapterInfo, features: wgpu::Features, limits: &wgpu::Limits) -> Adapter {
        let subgroups = features
            .contains(wgpu::Features::SUBGROUP)
            .then_some(SubgroupSizes { min: info.subgroup_min_size, max: info.subgroup_max_size });
        Adapter {
            name: info.name.clone(),
            device_type: info.device_type,
            backend: info.backend,
            subgroups,
            limits: AdapterLimits::of(limits),
        }
    }

    /// "lavapipe (Vulkan, Cpu, 8-lane subgroups)".
    pub fn describe(&self) -> String {
        let subgroups = match self.subgroups {
            None => "no subgroups".to_string(),
            Some(s) => match s.fixed() {
                Some(lanes) => format!("{lanes}-lane subgroups"),
                None => format!("subgroups of {}-{} lanes", s.min, s.max),
            },
        };
        format!("{} ({:?}, {:?}, {subgroups})", self.name, self.backend, self.device_type)
    }
}
