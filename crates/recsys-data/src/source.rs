//! Opening a data set from a command-line style spec: a path, or `synthetic:<preset>[:<seed>]`.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::interactions::Dataset;
use crate::load::{LoadOptions, load};
use crate::synth::{SynthConfig, generate};

/// The spec used when none is given: synthetic ML-100K-shaped data, so everything runs with no
/// download.
pub const DEFAULT_SOURCE: &str = "synthetic:100k";

/// Opens `spec`: `synthetic:100k`, `synthetic:1m:7` (preset and seed) or a file or folder path.
pub fn open(spec: &str, options: &LoadOptions) -> Result<Dataset> {
    if let Some(rest) = spec.strip_prefix("synthetic:") {
        let mut parts = rest.split(':');
        let preset = parts.next().unwrap_or("100k");
        let mut cfg = SynthConfig::preset(preset)?;
        if let Some(seed) = parts.next() {
            let seed = seed.parse().map_err(|_| {
                DataError::Invalid(format!("synthetic seed {seed:?} is not a number"))
            })?;
            cfg = cfg.with_seed(seed);
        }
        return Ok(generate(&cfg));
    }
    load(Path::new(spec), options)
}
