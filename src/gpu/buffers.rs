//! Buffer creation and the readbacks (a map request as a future, so the browser can await it).
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use wgpu::util::DeviceExt;

use super::faults::GpuFault;
use super::Gpu;

/// Storage buffers are bound in sub-ranges (one parameter buffer holds every layer); offsets must be
/// multiples of min_storage_buffer_offset_alignment, at most 256 bytes on every adapter.
pub const ALIGN_FLOATS: usize = 64;

pub fn align_floats(n: usize) -> usize {
    n.div_ceil(ALIGN_FLOATS) * ALIGN_FLOATS
}

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// `count` zeroed values of T: how every program and launcher makes its scratch buffers (with
/// `storage_with` for those that start from data), sized by element, never by hand-counted bytes.
pub fn zeroed<T: bytemuck::Pod>(gpu: &Gpu, label: &str, count: usize) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (count * std::mem::size_of::<T>()).max(16) as u64,
        usage: STORAGE,
        mapped_at_creation: false,
    })
}

pub fn storage_with<T: bytemuck::Pod>(gpu: &Gpu, label: &str, data: &[T]) -> wgpu::Buffer {
    if data.is_empty() {
        return zeroed::<u32>(gpu, label, 4);
    }
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(data),
        usage: STORAGE,
    })
}

/// Image bytes [n, pixels] as a storage buffer of u32 words, 4 pixels a word, little-endian (the
/// layout gather_batch reads; pixels per image must be a multiple of 4).
pub fn images_with(gpu: &Gpu, label: &str, images: &[u8]) -> wgpu::Buffer {
    let words: Vec<u32> = images.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    storage_with(gpu, label, &words)
}

/// The largest storage binding this device allows: the smaller of its binding and buffer limits.
pub fn max_binding_bytes(gpu: &Gpu) -> u64 {
    gpu.plan().adapter().limits.max_binding_bytes()
}

/// The most bytes of images one shard holds: the largest binding, or less when WGVAE_SHARD_BYTES
/// says so (to exercise sharding on any adapter, or to keep buffers small).
pub fn shard_bytes(gpu: &Gpu) -> u64 {
    let device = max_binding_bytes(gpu);
    let requested = std::env::var("WGVAE_SHARD_BYTES").ok().and_then(|v| v.parse::<u64>().ok());
    requested.map_or(device, |r| r.clamp(4, device))
}

/// A split's images on the GPU in shards of whole images, each within one storage binding:
/// (buffer, first image, images) in order.
pub struct ImageShards {
    pub shards: Vec<(wgpu::Buffer, usize, usize)>,
    pub images: usize,
}

impl ImageShards {
    /// Uploads `images` [n, pixels] in as few shards as the device's largest binding allows (one,
    /// unless the split is larger). An image larger than a binding is refused before this, by
    /// session::check_limits.
    pub fn new(gpu: &Gpu, label: &str, images: &[u8], pixels: usize) -> ImageShards {
        let n = images.len() / pixels.max(1);
        let per_shard = ((shard_bytes(gpu) / pixels.max(1) as u64) as usize).clamp(1, n.max(1));
        let shards = (0..n.max(1))
            .step_by(per_shard)
            .map(|first| {
                let count = per_shard.min(n - first.min(n));
                let bytes = &images[first * pixels..(first + count) * pixels];
                (images_with(gpu, &format!("{label} {first}.."), bytes), first, count)
            })
            .collect();
        ImageShards { shards, images: n }
    }
}

pub fn uniform_with<T: bytemuck::Pod>(gpu: &Gpu, label: &str, value: &T) -> wgpu::Buffer {
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::bytes_of(value),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

/// Copies `len` elements at element `offset` of `buffer` back to the host, waiting for the copy
/// (and all work submitted before it) to finish. Native only: a browser cannot block.
#[cfg(not(target_arch = "wasm32"))]
pub fn read<T: bytemuck::Pod>(gpu: &Gpu, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<T>, GpuFault> {
    pollster::block_on(read_async(gpu, buffer, offset, len))
}

#[cfg(not(target_arch = "wasm32"))]
pub fn read_all<T: bytemuck::Pod>(gpu: &Gpu, buffer: &wgpu::Buffer) -> Result<Vec<T>, GpuFault> {
    read(gpu, buffer, 0, buffer.size() as usize / std::mem::size_of::<T>())
}

/// A buffer of `bytes` the host maps to read what the GPU copied into it.
pub fn staging(gpu: &Gpu, label: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// `read` as a future, for both targets: on native it waits for the submission inside (the map
/// callback fires in device.poll) and is ready when first polled; in a browser it is pending
/// until the map callback, which needs the event loop, wakes it. The device's first failure, if
/// it failed before the copy was done, instead of the data.
pub async fn read_async<T: bytemuck::Pod>(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    offset: usize,
    len: usize,
) -> Result<Vec<T>, GpuFault> {
    let size = std::mem::size_of::<T>();
    let bytes = (len * size) as u64;
    let staging = staging(gpu, "readback", bytes);
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, (offset * size) as u64, &staging, 0, bytes);
    let submission = gpu.queue.submit([encoder.finish()]);
    let slice = staging.slice(..bytes);
    let mapping = Mapping::request(&slice);
    mapping.wait(gpu, submission).await?;
    let out = bytemuck::cast_slice(&mapped_range(gpu, &slice)?).to_vec();
    staging.unmap();
    Ok(out)
}

pub async fn read_all_async<T: bytemuck::Pod>(gpu: &Gpu, buffer: &wgpu::Buffer) -> Result<Vec<T>, GpuFault> {
    read_async(gpu, buffer, 0, buffer.size() as usize / std::mem::size_of::<T>()).await
}

/// The bytes of a slice `Mapping::wait` has mapped; wgpu refuses them only if the device failed.
pub fn mapped_range(gpu: &Gpu, slice: &wgpu::BufferSlice) -> Result<wgpu::BufferView, GpuFault> {
    slice.get_mapped_range().map_err(|e| gpu.lost(&e.to_string()))
}

/// A map_async request as a future: the callback stores the result and wakes the task that
/// awaits it. Mapping is asynchronous everywhere; only how the callback gets to run differs
/// (`wait`).
pub struct Mapping(Arc<Mutex<MapState>>);

#[derive(Default)]
struct MapState {
    result: Option<Result<(), wgpu::BufferAsyncError>>,
    waker: Option<Waker>,
}

fn lock(state: &Mutex<MapState>) -> MutexGuard<'_, MapState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mapping {
    /// Asks for `slice` mapped for reading once the work submitted before it has run.
    pub fn request(slice: &wgpu::BufferSlice) -> Mapping {
        let state = Arc::new(Mutex::new(MapState::default()));
        let shared = state.clone();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let mut s = lock(&shared);
            s.result = Some(r);
            if let Some(waker) = s.waker.take() {
                waker.wake();
            }
        });
        Mapping(state)
    }

    /// Resolves once the buffer is mapped; `submission` is the one whose work it waits for. On
    /// native this blocks in device.poll (where the callback runs) until that submission is done;
    /// in a browser the callback comes from the event loop. A failed map means the device is gone;
    /// a failure before it (faults.rs) means the data is not what was asked for.
    pub async fn wait(self, gpu: &Gpu, submission: wgpu::SubmissionIndex) -> Result<(), GpuFault> {
        #[cfg(not(target_arch = "wasm32"))]
        wait_for(gpu, submission)?;
        #[cfg(target_arch = "wasm32")]
        let _ = submission;
        self.await.map_err(|e| gpu.lost(&e.to_string()))?;
        gpu.check()
    }
}

impl Future for Mapping {
    type Output = Result<(), wgpu::BufferAsyncError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = lock(&self.0);
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Blocks until `submission` (and what was submitted before it) has run, not later submissions.
#[cfg(not(target_arch = "wasm32"))]
pub fn wait_for(gpu: &Gpu, submission: wgpu::SubmissionIndex) -> Result<(), GpuFault> {
    let wait = wgpu::PollType::Wait { submission_index: Some(submission), timeout: None };
    gpu.device.poll(wait).map_err(|e| gpu.lost(&e.to_string()))?;
    gpu.check()
}

/// Blocks until every submitted command has run; the device's first failure, if it failed.
#[cfg(not(target_arch = "wasm32"))]
pub fn wait(gpu: &Gpu) -> Result<(), GpuFault> {
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| gpu.lost(&e.to_string()))?;
    gpu.check()
}
