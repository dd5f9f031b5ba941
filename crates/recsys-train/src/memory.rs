//! Sizes checked before allocating: a model's embedding tables and dense layers, from its
//! configuration, against the memory this machine has, so that a mistyped flag
//! (`--embedding-dim 1000000000`) is a message naming it instead of an aborted allocation.

use crate::config::RunConfig;
use crate::error::{Result, TrainError};

/// Bytes of one parameter (`f32`).
const PARAM: u128 = 4;

/// Copies of every parameter that training keeps: the weights, their gradients and Adam's two
/// moments.
const TRAINING_COPIES: u128 = 4;

/// The parameters of a configuration, counted from the sizes every family's `[model]` table
/// names alike (`n_users`, `n_items`, `embedding_dim`, `hidden`): one embedding row per user
/// and item, and dense layers between consecutive widths (the first fed by the widest input a
/// family uses: two embeddings, or a user's or item's whole rating row for AutoRec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSize {
    pub embedding: u128,
    pub dense: u128,
    pub embedding_dim: u128,
    pub widest_layer: u128,
}

impl ModelSize {
    pub fn of(config: &RunConfig) -> Self {
        let table = toml::Value::try_from(&config.model).ok();
        let get = |key: &str| -> Option<&toml::Value> { table.as_ref()?.get(key) };
        let num = |key: &str| {
            get(key)
                .and_then(toml::Value::as_integer)
                .unwrap_or(0)
                .max(0) as u128
        };
        let (n_users, n_items, d) = (num("n_users"), num("n_items"), num("embedding_dim"));
        let hidden: Vec<u128> = get("hidden")
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(toml::Value::as_integer)
                    .map(|h| h.max(0) as u128)
                    .collect()
            })
            .unwrap_or_default();
        let input = if d > 0 { 2 * d } else { n_users.max(n_items) };
        let mut dense = 0u128;
        let mut prev = input;
        for &h in &hidden {
            dense = dense.saturating_add(prev.saturating_mul(h));
            prev = h;
        }
        ModelSize {
            embedding: (n_users + n_items).saturating_mul(d),
            dense,
            embedding_dim: d,
            widest_layer: hidden.iter().copied().max().unwrap_or(0),
        }
    }
}

/// Memory this machine can give now (`MemAvailable`), in bytes; `None` where unknown.
pub fn available_memory() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `1.2 GB`, `3.7 TB`: bytes in decimal units.
pub fn human_bytes(bytes: u128) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < units.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// `Err` naming the flag when the model of `config` cannot fit in `available` bytes: its
/// parameters once (loading a run) or with the copies training keeps (`training`).
pub fn check_fits(config: &RunConfig, training: bool, available: u128) -> Result<()> {
    let size = ModelSize::of(config);
    let copies = if training { TRAINING_COPIES } else { 1 };
    let need = |params: u128| params.saturating_mul(PARAM).saturating_mul(copies);
    let fail = |flag: String, what: &str, params: u128| {
        let once = params.saturating_mul(PARAM);
        let training = if training {
            format!(
                " ({} to train, with gradients and optimizer state)",
                human_bytes(need(params))
            )
        } else {
            String::new()
        };
        Err(TrainError::Config(format!(
            "{flag} needs {} for {what}{training}; this machine has {} available",
            human_bytes(once),
            human_bytes(available)
        )))
    };
    if need(size.embedding) > available {
        let rows = size.embedding / size.embedding_dim.max(1);
        return fail(
            format!("--embedding-dim {}", size.embedding_dim),
            &format!("the embedding tables of {rows} users and items"),
            size.embedding,
        );
    }
    if need(size.dense) > available {
        return fail(
            format!("--hidden (widest layer {})", size.widest_layer),
            "the dense layers",
            size.dense,
        );
    }
    let total = size.embedding.saturating_add(size.dense);
    if need(total) > available {
        return fail(
            "--embedding-dim with --hidden".to_string(),
            "the model",
            total,
        );
    }
    Ok(())
}

/// [`check_fits`] against [`available_memory`] (no check where it is unknown).
pub fn check_memory(config: &RunConfig, training: bool) -> Result<()> {
    match available_memory() {
        Some(available) => check_fits(config, training, available),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::{Overrides, draft, size};

    /// Model `name` with `model` overrides, sized for ML-100K.
    fn sized(name: &str, model: crate::family::ModelOverrides) -> RunConfig {
        let overrides = Overrides {
            model,
            ..Default::default()
        };
        let mut c = draft(name, None, overrides).unwrap();
        size(
            &mut c,
            943,
            1682,
            (1.0, 5.0),
            (80_000, 3.5),
            Default::default(),
        )
        .unwrap();
        c
    }

    fn mf(dim: usize) -> RunConfig {
        sized(
            "mf",
            crate::family::ModelOverrides {
                embedding_dim: Some(dim),
                ..Default::default()
            },
        )
    }

    #[test]
    fn tables_are_counted_from_the_configuration() {
        let s = ModelSize::of(&mf(8));
        assert_eq!(s.embedding, (943 + 1682) * 8);
        assert_eq!(s.embedding_dim, 8);
    }

    #[test]
    fn a_huge_embedding_dim_is_refused_naming_the_flag() {
        let config = mf(1_000_000_000);
        let err = check_fits(&config, true, 24_000_000_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--embedding-dim 1000000000"), "{err}");
        assert!(err.contains("TB") && err.contains("24.0 GB"), "{err}");
        assert!(check_fits(&mf(64), true, 24_000_000_000).is_ok());
    }

    #[test]
    fn wide_dense_layers_are_refused_naming_the_flag() {
        let c = sized(
            "autorec",
            crate::family::ModelOverrides {
                hidden: Some(vec![1 << 20, 1 << 20]),
                ..Default::default()
            },
        );
        let err = check_fits(&c, true, 24_000_000_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--hidden"), "{err}");
    }
}
