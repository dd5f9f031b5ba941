//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The real-data folder named by `RECSYS_DATA_DIR` joined with `sub`, or `None` (with a printed
/// note naming the test) when it is absent.
pub fn real_data(sub: &str, test: &str) -> Option<PathBuf> {
    match std::env::var_os("RECSYS_DATA_DIR") {
        Some(dir) => {
            let p = PathBuf::from(dir).join(sub);
            if p.exists() {
                Some(p)
            } else {
                eprintln!("SKIP {test}: {} does not exist", p.display());
                None
            }
        }
        None => {
            eprintln!("SKIP {test}: set RECSYS_DATA_DIR to a folder with {sub} to run it");
            None
        }
    }
}

/// The seeds a quality test trains with: `RECSYS_QUALITY_SEEDS` (comma-separated, such as
/// `1,2,3,42`), 42 without it. A test given several seeds prints each seed's figures and checks
/// their mean, which shows how much of a figure is the draw of one seed.
pub fn quality_seeds() -> Vec<u64> {
    quality_seeds_or(&[42])
}

/// [`quality_seeds`] with `default` instead of seed 42 alone, for a test whose target holds for
/// a mean over seeds.
pub fn quality_seeds_or(default: &[u64]) -> Vec<u64> {
    let Ok(list) = std::env::var("RECSYS_QUALITY_SEEDS") else {
        return default.to_vec();
    };
    let seeds: Vec<u64> = list
        .split(',')
        .map(|s| {
            s.trim().parse().unwrap_or_else(|_| {
                panic!("RECSYS_QUALITY_SEEDS: {s:?} is not a seed (a list such as 1,2,42)")
            })
        })
        .collect();
    assert!(!seeds.is_empty(), "RECSYS_QUALITY_SEEDS names no seed");
    seeds
}

/// Whether a quality test also trains the models it only reports beside the one it checks
/// (README's comparison figures, which no threshold reads): `RECSYS_QUALITY_COMPARE=1`. Off by
/// default, so that a plain `cargo test` trains only what an `assert!` reads.
pub fn quality_compare() -> bool {
    std::env::var_os("RECSYS_QUALITY_COMPARE").is_some_and(|v| !v.is_empty() && v != "0")
}
