//! One compute pipeline per WGSL entry point, built once, and `Launch`: a pipeline with its bind
//! group and workgroup count, recorded once and replayed every step.
use std::collections::HashMap;

use super::faults::GpuFault;
use super::Gpu;
use crate::shaders::Entry;

#[derive(Clone)]
pub struct Kernel {
    pub name: &'static str,
    pub entry: Entry,
    pipeline: wgpu::ComputePipeline,
}

/// A buffer, or part of one, bound at a binding index.
#[derive(Clone, Copy)]
pub struct Bind<'a> {
    pub binding: u32,
    pub buffer: &'a wgpu::Buffer,
    /// (first element, element count) in f32/u32 units; None binds the whole buffer.
    pub range: Option<(usize, usize)>,
}

impl<'a> Bind<'a> {
    /// The whole buffer as an operand, at the binding its launcher gives it.
    pub fn whole(buffer: &'a wgpu::Buffer) -> Bind<'a> {
        Bind { binding: 0, buffer, range: None }
    }
}

pub fn bind(binding: u32, buffer: &wgpu::Buffer) -> Bind<'_> {
    Bind { binding, buffer, range: None }
}

pub fn bind_range(binding: u32, buffer: &wgpu::Buffer, first: usize, count: usize) -> Bind<'_> {
    Bind { binding, buffer, range: Some((first, count)) }
}

impl Kernel {
    /// `launch` with the workgroups covering `n` invocations of a 1-D kernel (Gpu::grid_1d).
    pub fn launch_over(&self, gpu: &Gpu, binds: &[Bind], n: usize) -> Launch {
        debug_assert_eq!(self.entry.workgroup_size()[0], 64, "{}: 1-D kernels have 64 lanes", self.name);
        self.launch(gpu, binds, gpu.grid_1d(n))
    }

    /// Binds `binds` and fixes the workgroup count: the finished, replayable launch.
    pub fn launch(&self, gpu: &Gpu, binds: &[Bind], workgroups: [u32; 3]) -> Launch {
        let layout = self.pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = binds
            .iter()
            .map(|b| wgpu::BindGroupEntry {
                binding: b.binding,
                resource: match b.range {
                    None => b.buffer.as_entire_binding(),
                    Some((first, count)) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: b.buffer,
                        offset: (first * 4) as u64,
                        size: std::num::NonZeroU64::new((count.max(1) * 4) as u64),
                    }),
                },
            })
            .collect();
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.name),
            layout: &layout,
            entries: &entries,
        });
        Launch { name: self.name, pipeline: self.pipeline.clone(), bind_group, workgroups, flops: 0, bytes: 0 }
    }
}

#[derive(Clone)]
pub struct Launch {
    pub name: &'static str,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
    /// Floating-point operations it does (2 per multiply-add), where the builder counts them (the
    /// matrix products and convolutions): what `bench` divides by time.
    pub flops: u64,
    /// Bytes it must move at least (each input read once, each output written once), where the
    /// builder counts them: what `bench` divides by time for GB/s.
    pub bytes: u64,
}

impl Launch {
    pub fn with_flops(self, flops: u64) -> Launch {
        Launch { flops, ..self }
    }

    pub fn with_bytes(self, bytes: u64) -> Launch {
        Launch { bytes, ..self }
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Records `launches` in order into one compute pass and submits them; the index is what
/// `gpu::wait_for` waits on. The device's first failure instead, if it has failed (faults.rs).
pub fn submit(gpu: &Gpu, launches: &[&[Launch]]) -> Result<wgpu::SubmissionIndex, GpuFault> {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for list in launches {
            for launch in list.iter() {
                launch.record(&mut pass);
            }
        }
    }
    let submission = gpu.queue.submit([encoder.finish()]);
    gpu.check().map(|()| submission)
}

/// A pipeline for every entry point of every module the adapter can build (plan::builds), by
/// `Entry`: every plan of the adapter finds its kernels here, and the tests find every variant the
/// adapter can run, whichever the plan picks.
#[derive(Clone)]
pub struct Kernels {
    by_entry: HashMap<Entry, Kernel>,
}

impl Kernels {
    pub fn new(gpu: &Gpu) -> Kernels {
        let mut modules: HashMap<&str, wgpu::ShaderModule> = HashMap::new();
        let mut by_entry = HashMap::new();
        let adapter = gpu.plan().adapter();
        for &entry in Entry::ALL.iter().filter(|e| crate::plan::builds(adapter, e.module())) {
            // Checked modules (naga adds bounds checks): the design notes measured no cost from
            // them on lavapipe, and they keep a host-side shape bug from reading out of bounds.
            let module = modules.entry(entry.module()).or_insert_with(|| {
                gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(entry.module()),
                    source: wgpu::ShaderSource::Wgsl(entry.source().into()),
                })
            });
            let pipeline = gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry.name()),
                layout: None,
                module,
                entry_point: Some(entry.name()),
                compilation_options: Default::default(),
                cache: None,
            });
            by_entry.insert(entry, Kernel { name: entry.name(), entry, pipeline });
        }
        Kernels { by_entry }
    }

    /// Whether `entry`'s module was built (plan::builds holds for it on this adapter).
    pub fn has(&self, entry: Entry) -> bool {
        self.by_entry.contains_key(&entry)
    }

    /// The kernel of `entry`. Every module a plan of this adapter picks was built (KernelPlan only
    /// takes modules plan::builds allows, and `new` built all of those), so only a launcher that
    /// bypassed the plan can reach the panic.
    pub fn get(&self, entry: Entry) -> &Kernel {
        match self.by_entry.get(&entry) {
            Some(kernel) => kernel,
            None => panic!(
                "{} was not built: its module {} needs subgroups this adapter lacks",
                entry.name(),
                entry.module()
            ),
        }
    }
}

/// The device and its kernels together: what every launch builder needs.
#[derive(Clone, Copy)]
pub struct Launcher<'a> {
    pub gpu: &'a Gpu,
    pub kernels: &'a Kernels,
}

impl Launcher<'_> {
    /// Which kernel each launch gets.
    pub fn plan(&self) -> &crate::plan::KernelPlan {
        self.gpu.plan()
    }

    /// `entry` over `n` invocations of a 1-D kernel.
    pub fn over(&self, entry: Entry, binds: &[Bind], n: usize) -> Launch {
        self.kernels.get(entry).launch_over(self.gpu, binds, n)
    }

    /// `entry` with an explicit grid.
    pub fn grid(&self, entry: Entry, binds: &[Bind], workgroups: [u32; 3]) -> Launch {
        self.kernels.get(entry).launch(self.gpu, binds, workgroups)
    }

    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        super::uniform_with(self.gpu, label, value)
    }
}
