//! Backend selection: a [`BackendKind`] name in, an autodiff [`Device`] out.
//!
//! For wgpu the adapters are enumerated first (through the `wgpu` crate Burn re-exports, on the
//! graphics API Burn's runtime settles on), so a machine with no adapter at all gets an error that
//! says so instead of a panic deep inside the runtime.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind, Tensor};
use serde::{Deserialize, Serialize};

/// The compute backends a run can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Burn's NdArray CPU backend (deprecated upstream, kept as a reference).
    Ndarray,
    /// Burn's pure-Rust Flex CPU backend.
    #[default]
    Flex,
    /// wgpu: Vulkan / Metal / DX12 / GL, on a GPU or a software rasteriser (Mesa lavapipe).
    Wgpu,
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [BackendKind::Ndarray, BackendKind::Flex, BackendKind::Wgpu];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ndarray" => Ok(BackendKind::Ndarray),
            "flex" => Ok(BackendKind::Flex),
            "wgpu" => Ok(BackendKind::Wgpu),
            _ => Err(DeviceError::UnknownBackend(s.to_string())),
        }
    }
}

/// Why no device could be had.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown backend {0:?}: expected one of ndarray, flex, wgpu")]
    UnknownBackend(String),
    #[error(
        "no wgpu adapter found: this machine has no GPU driver and no software Vulkan \
         (e.g. Mesa lavapipe: apt-get install mesa-vulkan-drivers libvulkan1); \
         use `--backend flex` to train on the CPU"
    )]
    NoAdapter,
    #[error("wgpu {kind} adapter {index} does not exist; adapters found: {available}")]
    NoSuchAdapter {
        kind: &'static str,
        index: usize,
        available: String,
    },
    #[error(
        "could not start wgpu on {adapter}: {message}; use `--backend flex` to train on the CPU"
    )]
    Init { adapter: String, message: String },
}

/// The type of a wgpu adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdapterType {
    DiscreteGpu,
    IntegratedGpu,
    VirtualGpu,
    Cpu,
    Other,
}

impl AdapterType {
    fn name(self) -> &'static str {
        match self {
            AdapterType::DiscreteGpu => "discrete GPU",
            AdapterType::IntegratedGpu => "integrated GPU",
            AdapterType::VirtualGpu => "virtual GPU",
            AdapterType::Cpu => "CPU",
            AdapterType::Other => "other",
        }
    }
}

/// One wgpu adapter as the driver describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    pub name: String,
    pub adapter_type: AdapterType,
    /// Graphics API (`Vulkan`, `Metal`, `Gl`, ...).
    pub api: String,
    pub driver: String,
}

impl fmt::Display for AdapterInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}",
            self.name,
            self.adapter_type.name(),
            self.api
        )?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        f.write_str(")")
    }
}

/// Polls a future that completes without waiting on anything external (wgpu's native adapter
/// enumeration is synchronous behind its async signature).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

fn probe(api: wgpu::Backend) -> Vec<AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: api.into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    block_on(instance.enumerate_adapters(api.into()))
        .iter()
        .map(|a| {
            let info = a.get_info();
            AdapterInfo {
                name: info.name.clone(),
                adapter_type: match info.device_type {
                    wgpu::DeviceType::DiscreteGpu => AdapterType::DiscreteGpu,
                    wgpu::DeviceType::IntegratedGpu => AdapterType::IntegratedGpu,
                    wgpu::DeviceType::VirtualGpu => AdapterType::VirtualGpu,
                    wgpu::DeviceType::Cpu => AdapterType::Cpu,
                    wgpu::DeviceType::Other => AdapterType::Other,
                },
                api: format!("{:?}", info.backend),
                driver: info.driver.clone(),
            }
        })
        .collect()
}

/// The adapters wgpu sees, on the graphics API Burn's automatic selection settles on: the first
/// of Vulkan, DX12, GL (Metal on macOS) with a non-CPU adapter, else the first with any adapter.
/// Empty when there are none; never panics on a machine without drivers.
pub fn wgpu_adapters() -> Vec<AdapterInfo> {
    static CACHE: OnceLock<Vec<AdapterInfo>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let chain: &[wgpu::Backend] = if cfg!(target_os = "macos") {
                &[wgpu::Backend::Metal]
            } else {
                &[
                    wgpu::Backend::Vulkan,
                    wgpu::Backend::Dx12,
                    wgpu::Backend::Gl,
                ]
            };
            let mut software_only = None;
            for &api in chain {
                if !wgpu::Instance::enabled_backend_features().contains(api.into()) {
                    continue;
                }
                let found = std::panic::catch_unwind(|| probe(api)).unwrap_or_default();
                if found.iter().any(|a| a.adapter_type != AdapterType::Cpu) {
                    return found;
                }
                if software_only.is_none() && !found.is_empty() {
                    software_only = Some(found);
                }
            }
            software_only.unwrap_or_default()
        })
        .clone()
}

/// Picks the adapter: discrete GPU number `index` if there is any discrete GPU, else integrated,
/// virtual, CPU (software) in that order, counted within the chosen type.
fn select_adapter(
    adapters: &[AdapterInfo],
    index: usize,
) -> Result<(DeviceKind, AdapterInfo), DeviceError> {
    if adapters.is_empty() {
        return Err(DeviceError::NoAdapter);
    }
    let order = [
        AdapterType::DiscreteGpu,
        AdapterType::IntegratedGpu,
        AdapterType::VirtualGpu,
        AdapterType::Cpu,
    ];
    for ty in order {
        let of_type: Vec<&AdapterInfo> = adapters.iter().filter(|a| a.adapter_type == ty).collect();
        if of_type.is_empty() {
            continue;
        }
        let Some(&chosen) = of_type.get(index) else {
            return Err(DeviceError::NoSuchAdapter {
                kind: ty.name(),
                index,
                available: list(adapters),
            });
        };
        let kind = match ty {
            AdapterType::DiscreteGpu => DeviceKind::DiscreteGpu(index),
            AdapterType::IntegratedGpu => DeviceKind::IntegratedGpu(index),
            AdapterType::VirtualGpu => DeviceKind::VirtualGpu(index),
            _ => DeviceKind::Cpu,
        };
        return Ok((kind, chosen.clone()));
    }
    // Only adapters of type `Other` (some GL drivers): let wgpu pick.
    Ok((DeviceKind::DefaultDevice, adapters[0].clone()))
}

fn list(adapters: &[AdapterInfo]) -> String {
    adapters
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A started wgpu device: the device, its adapter's name, and whether the adapter is a GPU.
type Started = (Device, String, bool);

/// wgpu devices already started in this process (a runtime can be initialised once), with the
/// adapter each runs on.
fn started() -> &'static Mutex<HashMap<String, Started>> {
    static STARTED: OnceLock<Mutex<HashMap<String, Started>>> = OnceLock::new();
    STARTED.get_or_init(|| Mutex::new(HashMap::new()))
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the runtime panicked".to_string())
}

fn wgpu_device(index: usize) -> Result<Device, DeviceError> {
    let (kind, adapter) = select_adapter(&wgpu_adapters(), index)?;
    let key = format!("{kind:?}");
    let mut started = started().lock().unwrap_or_else(|e| e.into_inner());
    if let Some((device, _, _)) = started.get(&key) {
        return Ok(device.clone());
    }
    let adapter_label = adapter.to_string();
    let gpu = matches!(
        kind,
        DeviceKind::DiscreteGpu(_) | DeviceKind::IntegratedGpu(_) | DeviceKind::VirtualGpu(_)
    );
    let init = std::panic::catch_unwind(|| -> Result<Device, String> {
        let device = Device::wgpu_options()
            .device_kind(kind)
            .init()
            .map_err(|e| e.to_string())?;
        // One round trip, so a device that cannot run kernels fails here and not mid-training.
        Tensor::<1>::from_floats([1.0, 2.0], &device)
            .sum()
            .try_into_scalar::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        Ok(device)
    });
    let device = match init {
        Ok(Ok(device)) => device,
        Ok(Err(message)) => {
            return Err(DeviceError::Init {
                adapter: adapter_label,
                message,
            });
        }
        Err(payload) => {
            return Err(DeviceError::Init {
                adapter: adapter_label,
                message: panic_message(payload),
            });
        }
    };
    started.insert(key, (device.clone(), adapter.name.clone(), gpu));
    Ok(device)
}

/// An autodiff device of `kind`. `device_index` picks the wgpu adapter (see [`wgpu_adapters`]:
/// the `index`-th discrete GPU, else integrated, virtual, CPU); the CPU backends ignore it.
///
/// Never panics: a machine without any wgpu adapter gets [`DeviceError::NoAdapter`], whose message
/// suggests `--backend flex`.
pub fn device(kind: BackendKind, device_index: usize) -> Result<Device, DeviceError> {
    let device = match kind {
        #[allow(deprecated)]
        BackendKind::Ndarray => {
            keep_freed_tensor_memory();
            Device::ndarray()
        }
        BackendKind::Flex => {
            keep_freed_tensor_memory();
            Device::flex()
        }
        BackendKind::Wgpu => wgpu_device(device_index)?,
    };
    Ok(device.autodiff())
}

/// Makes Burn's default device the Flex CPU backend (`BURN_DEVICE=flex`) unless the environment
/// already names one. Burn puts a few things on its default device whatever device a run chose:
/// loading an optimiser's state does (the state moves to the parameters' device at the next
/// step), and with wgpu compiled in, that default would start a wgpu runtime, probing Vulkan,
/// on a run that asked for `flex` or `ndarray`.
///
/// # Safety
///
/// Sets an environment variable: call it before the process starts any other thread.
pub unsafe fn default_device_on_cpu() {
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: the caller guarantees that no other thread runs yet.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
}

/// CPU backends allocate every tensor on the heap; with glibc, blocks above the mmap threshold
/// (at most 32 MiB by default) get fresh pages from the kernel on each allocation, which the
/// kernel zeroes: with large batches (a two-tower's `[4096, 4096]` logits are 64 MiB) that page
/// zeroing took a third of the training time. Raising the mmap and trim thresholds lets freed
/// blocks be reused instead. Called once per process, for the CPU backends only.
fn keep_freed_tensor_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; it is called before the
            // backend's first allocation and has no memory-safety preconditions.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
                libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            }
        });
    }
}

/// Whether `device` runs on a GPU (a wgpu device on a discrete, integrated or virtual GPU; not
/// the CPU backends, nor wgpu on a CPU rasteriser such as llvmpipe). Work is shaped by it where
/// the best shape differs: a GPU wants large, parallel launches and few waits.
pub fn is_gpu(device: &Device) -> bool {
    let plain = device.clone().without_autodiff();
    let started = started().lock().unwrap_or_else(|e| e.into_inner());
    started.values().any(|(d, _, gpu)| *gpu && *d == plain)
}

/// A human-readable name of what `device` runs on: the adapter for wgpu, the backend for CPU ones.
pub fn adapter_name(device: &Device) -> String {
    let plain = device.clone().without_autodiff();
    {
        let started = started().lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, name, _)) = started.values().find(|(d, _, _)| *d == plain) {
            return name.clone();
        }
    }
    let debug = format!("{plain:?}");
    if debug.contains("NdArray") {
        "ndarray (CPU)".to_string()
    } else if debug.contains("Flex") {
        "flex (CPU)".to_string()
    } else if let Some(identity) = plain.identity() {
        identity.name
    } else {
        debug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.to_string().parse::<BackendKind>().unwrap(), kind);
        }
        assert_eq!("FLEX".parse::<BackendKind>().unwrap(), BackendKind::Flex);
        let err = "cuda".parse::<BackendKind>().unwrap_err().to_string();
        assert!(err.contains("ndarray, flex, wgpu"), "{err}");
    }

    #[test]
    fn cpu_devices_are_autodiff() {
        for kind in [BackendKind::Flex, BackendKind::Ndarray] {
            let d = device(kind, 0).unwrap();
            assert!(d.is_autodiff());
            assert!(
                adapter_name(&d).contains(kind.name()),
                "{}",
                adapter_name(&d)
            );
        }
    }

    #[test]
    fn adapter_selection_prefers_discrete_then_falls_back() {
        let a = |name: &str, t| AdapterInfo {
            name: name.into(),
            adapter_type: t,
            api: "Vulkan".into(),
            driver: String::new(),
        };
        assert!(matches!(
            select_adapter(&[], 0),
            Err(DeviceError::NoAdapter)
        ));
        assert!(
            DeviceError::NoAdapter
                .to_string()
                .contains("--backend flex")
        );
        let soft = [a("llvmpipe", AdapterType::Cpu)];
        assert_eq!(select_adapter(&soft, 0).unwrap().0, DeviceKind::Cpu);
        let mixed = [
            a("igpu", AdapterType::IntegratedGpu),
            a("gpu0", AdapterType::DiscreteGpu),
            a("gpu1", AdapterType::DiscreteGpu),
            a("llvmpipe", AdapterType::Cpu),
        ];
        let (kind, info) = select_adapter(&mixed, 1).unwrap();
        assert_eq!(kind, DeviceKind::DiscreteGpu(1));
        assert_eq!(info.name, "gpu1");
        assert!(matches!(
            select_adapter(&mixed, 2),
            Err(DeviceError::NoSuchAdapter { .. })
        ));
        let (kind, _) = select_adapter(&mixed[..1], 0).unwrap();
        assert_eq!(kind, DeviceKind::IntegratedGpu(0));
    }
}
