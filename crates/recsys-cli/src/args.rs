//! Argument groups several commands share.

use clap::Args;
use recsys_train::BackendKind;

/// Which device to run on.
#[derive(Args, Clone, Default)]
pub struct BackendArgs {
    /// ndarray, flex (fast CPU) or wgpu (GPU through Vulkan, Metal or DX12).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Which wgpu adapter (0 = the first discrete GPU, else the first integrated one).
    #[arg(long)]
    pub device_index: Option<usize>,
}

impl BackendArgs {
    /// The backend and adapter asked for, if any (else a run's own).
    pub fn chosen(&self) -> Option<(BackendKind, usize)> {
        self.backend
            .map(|kind| (kind, self.device_index.unwrap_or(0)))
    }
}
