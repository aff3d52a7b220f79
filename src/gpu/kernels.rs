//! One compute pipeline per WGSL entry point, built once, and `Launch`: a pipeline with its bind
//! group and workgroup count, recorded once and replayed every step.
use std::collections::HashMap;

use super::Gpu;
use crate::shaders::{module_source, SHADER_MODULES};

#[derive(Clone)]
pub struct Kernel {
    pub name: &'static str,
    pipeline: wgpu::ComputePipeline,
}

/// A buffer, or part of one, bound at a binding index.
pub struct Bind<'a> {
    pub binding: u32,
    pub buffer: &'a wgpu::Buffer,
    /// (first element, element count) in f32/u32 units; None binds the whole buffer.
    pub range: Option<(usize, usize)>,
}

pub fn bind(binding: u32, buffer: &wgpu::Buffer) -> Bind<'_> {
    Bind { binding, buffer, range: None }
}

pub fn bind_range(binding: u32, buffer: &wgpu::Buffer, first: usize, count: usize) -> Bind<'_> {
    Bind { binding, buffer, range: Some((first, count)) }
}

impl Kernel {
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
        Launch { name: self.name, pipeline: self.pipeline.clone(), bind_group, workgroups }
    }
}

#[derive(Clone)]
pub struct Launch {
    pub name: &'static str,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
}

impl Launch {
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Records `launches` in order into one compute pass and submits them.
pub fn submit(gpu: &Gpu, launches: &[&[Launch]]) {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for list in launches {
            for launch in list.iter() {
                launch.record(&mut pass);
            }
        }
    }
    gpu.queue.submit([encoder.finish()]);
}

/// Every entry point of every module, by name.
pub struct Kernels {
    by_name: HashMap<&'static str, Kernel>,
}

pub const ENTRY_POINTS: &[(&str, &[&str])] = &[
    ("linear", &["linear_forward", "linear_backward_input", "linear_backward_weight", "linear_backward_bias"]),
    ("linear_vec4", &["linear_forward_vec4", "linear_backward_input_vec4", "linear_backward_weight_vec4"]),
    (
        "latent",
        &[
            "reparam_forward",
            "reparam_backward",
            "gaussian_kl_forward",
            "gaussian_kl_backward",
            "gaussian_kl2_forward",
            "gaussian_kl2_backward",
        ],
    ),
    (
        "loss",
        &[
            "bernoulli_rec_forward",
            "bernoulli_rec_backward",
            "gaussian_rec_forward",
            "gaussian_rec_backward",
            "finish_step",
        ],
    ),
    ("adam", &["adam_step"]),
    ("data", &["gather_batch", "gather_labels"]),
    ("importance", &["iw_sample", "iw_log_weight", "iw_log_weight_gaussian", "iw_accumulate"]),
    (
        "samples",
        &["log_weight_forward", "iwae_weights", "sampled_latent_backward", "score_backward", "score_baseline_update"],
    ),
    ("rows", &["repeat_rows", "sum_row_groups"]),
    ("condition", &["copy_columns", "one_hot_columns"]),
    ("table", &["gather_table_rows", "table_adam_step"]),
    (
        "categorical",
        &["gumbel_softmax_forward", "gumbel_softmax_backward", "categorical_kl_forward", "categorical_kl_backward"],
    ),
];

impl Kernels {
    pub fn new(gpu: &Gpu) -> Kernels {
        let mut by_name = HashMap::new();
        for (module_name, _) in SHADER_MODULES {
            let source = module_source(module_name);
            // Checked module (naga adds bounds checks): the design notes measured no cost from
            // them on lavapipe, and they keep a host-side shape bug from reading out of bounds.
            let module = gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(module_name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let entries = ENTRY_POINTS
                .iter()
                .find(|(m, _)| m == module_name)
                .map(|(_, e)| *e)
                .unwrap_or_else(|| panic!("no entry points listed for module {module_name}"));
            for entry in entries {
                let pipeline = gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                by_name.insert(*entry, Kernel { name: entry, pipeline });
            }
        }
        Kernels { by_name }
    }

    pub fn get(&self, name: &str) -> &Kernel {
        self.by_name.get(name).unwrap_or_else(|| panic!("no kernel named {name}"))
    }
}
