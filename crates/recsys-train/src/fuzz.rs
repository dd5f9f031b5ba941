//! Entry points for the fuzzers (`fuzz/`, run by `cargo xtask fuzz`) and the smoke test in
//! `cargo test` (`tests/fuzz_smoke.rs`): the readers of a run directory and of `--config`
//! files, plus every target of [`recsys_data::fuzz`], so that one list names them all.
//!
//! Each target writes its input as the file a command reads, in a scratch folder of the thread,
//! and calls the same reader the command calls. Errors are fine; a panic, hang or unbounded
//! allocation is a bug.

use burn::tensor::Device;
pub use recsys_data::fuzz::Target;
use recsys_data::fuzz::{lay_out, parts};

use crate::config::RunConfig;
use crate::family::{Family, with_family};
use crate::run_dir::{Checkpoint, RunDir};
use crate::setup::{ConfigFile, Overrides, draft, size};

/// The targets of this crate's readers.
pub const TARGETS: &[Target] = &[
    Target {
        name: "config",
        files: "a --config file, then the same text as a run's config.toml",
        run: config,
        seeds: config_seeds,
    },
    Target {
        name: "metrics",
        files: "metrics.jsonl",
        run: metrics,
        seeds: metrics_seeds,
    },
    Target {
        name: "train-rows",
        files: "train-rows.bin",
        run: train_rows,
        seeds: train_rows_seeds,
    },
    Target {
        name: "bpk",
        files: "model-best.bpk of a small MF model",
        run: bpk,
        seeds: bpk_seeds,
    },
];

/// Every target: the data crate's, then this crate's.
pub fn all() -> impl Iterator<Item = &'static Target> {
    recsys_data::fuzz::TARGETS.iter().chain(TARGETS)
}

pub fn target(name: &str) -> Option<&'static Target> {
    all().find(|t| t.name == name)
}

pub fn names() -> Vec<&'static str> {
    all().map(|t| t.name).collect()
}

/// A run directory in a fresh scratch folder holding `files` and an empty `config.toml` when
/// `files` gives none.
fn run_dir(files: &[(&str, &[u8])]) -> RunDir {
    let dir = lay_out(files);
    if !dir.join(crate::run_dir::CONFIG_FILE).exists() {
        std::fs::write(dir.join(crate::run_dir::CONFIG_FILE), b"").expect("scratch file");
    }
    RunDir::open(dir).expect("scratch run")
}

fn config(data: &[u8]) {
    let run = run_dir(&[("config.toml", data)]);
    if let Ok(file) = ConfigFile::read(&run.config_path()) {
        for model in ["mf", "neumf", "autorec"] {
            let _ = draft(model, Some(&file), Overrides::default());
        }
    }
    let _ = run.read_config::<RunConfig>();
}

/// The weights file of a run from before manifests, whose presence makes every line of its
/// `metrics.jsonl` count.
const LEGACY_LAST: &str = "model-last.bpk";
const LEGACY_BEST: &str = "model-best.bpk";

fn metrics(data: &[u8]) {
    let _ = read_metrics(data);
}

/// `metrics.jsonl` read as `eval` and `--resume` read it: under a `manifest.json` (the input's
/// first part, before a 0 byte), whose line count, size and checksum the lines must match; or,
/// when that part is empty, as a run from before manifests, where every line counts.
fn read_metrics(data: &[u8]) -> crate::error::Result<Vec<crate::record::EpochRecord>> {
    let p = parts(data, 2);
    let lines = p.get(1).copied().unwrap_or_default();
    let run = if p[0].is_empty() {
        run_dir(&[(LEGACY_LAST, b""), ("metrics.jsonl", lines)])
    } else {
        run_dir(&[("manifest.json", p[0]), ("metrics.jsonl", lines)])
    };
    run.read_metrics()
}

fn train_rows(data: &[u8]) {
    let run = run_dir(&[("train-rows.bin", data)]);
    // The shape of the seed's ratings; other shapes are refused before any allocation.
    let _ = run.read_train_rows((3, 4));
}

/// The small MF configuration whose weights the `bpk` target reads.
fn small_mf() -> RunConfig {
    let overrides = Overrides {
        model: crate::family::ModelOverrides {
            embedding_dim: Some(3),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut config = draft("mf", None, overrides).expect("mf configuration");
    size(&mut config, 6, 5, (1.0, 5.0), (10, 3.0), Default::default()).expect("a small model");
    config
}

fn cpu() -> Device {
    crate::device::device(crate::device::BackendKind::Flex, 0)
        .expect("flex device")
        .without_autodiff()
}

fn bpk(data: &[u8]) {
    let _ = load_bpk(data);
}

/// The input loaded as the best weights of a small MF run (a run from before manifests, whose
/// weights files are trusted without checksums, so that the bytes reach Burn's reader).
fn load_bpk(data: &[u8]) -> crate::error::Result<()> {
    let run = run_dir(&[(LEGACY_LAST, data), (LEGACY_BEST, data)]);
    let config = small_mf();
    let device = cpu();
    with_family!(&config.model, F, c => {
        let model = c.init(&device)?;
        run.load_model(model, Checkpoint::Best).map(|_| ())
    })
}

// --- seeds ------------------------------------------------------------------------------------

fn config_seeds() -> Vec<Vec<u8>> {
    let mut config = small_mf();
    config.data.source = "synthetic:tiny".into();
    let full = toml::to_string_pretty(&config).expect("config serialises");
    vec![
        full.into_bytes(),
        b"[train]\nepochs = 3\nlr = 0.01\n\n[model]\nembedding_dim = 8\n".to_vec(),
        b"[task]\nkind = \"implicit\"\nloss = \"bpr\"\n".to_vec(),
    ]
}

fn metrics_seeds() -> Vec<Vec<u8>> {
    let a = r#"{"epoch":1,"train_loss":1.2,"train_penalty":0.0,"valid":{"rmse":0.95,"mae":0.75,"mse":0.9025,"mape":30.1,"r2":0.2,"n":40},"lr":0.01,"seconds":0.5,"samples_per_s":1000.0,"best":true}"#;
    let b = r#"{"epoch":2,"train_loss":0.9,"train_penalty":0.01,"valid":null,"ranking":{"hr@10":0.5,"ndcg@10":0.3,"n":20},"lr":0.005,"seconds":0.4,"samples_per_s":1200.0,"best":false}"#;
    let lines = format!("{a}\n{b}\n");
    let manifest = serde_json::json!({
        "format": 1,
        "epoch": 2,
        "metrics": {"lines": 2, "bytes": lines.len(), "sha256": sha256_hex(lines.as_bytes())},
        "model": {"path": "checkpoints/model-e0002.bpk", "bytes": 10, "sha256": sha256_hex(b"")},
    });
    let with = |head: &[u8]| [head, b"\0", lines.as_bytes()].concat();
    vec![with(b""), with(manifest.to_string().as_bytes())]
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn train_rows_seeds() -> Vec<Vec<u8>> {
    let data = recsys_data::Interactions::new(
        vec![0, 1, 2, 2],
        vec![1, 0, 2, 3],
        vec![4.0, 3.5, 1.0, 5.0],
        None,
        3,
        4,
    )
    .expect("rows");
    let run = run_dir(&[]);
    run.write_train_rows(&data).expect("rows written");
    vec![std::fs::read(run.path().join(crate::run_dir::TRAIN_ROWS_FILE)).expect("rows")]
}

fn bpk_seeds() -> Vec<Vec<u8>> {
    let config = small_mf();
    let device = cpu();
    let run = run_dir(&[]);
    with_family!(&config.model, F, c => {
        let model = c.init(&device).expect("small model");
        run.publish_weights(&model).expect("weights written");
    });
    let path = run.model_path(Checkpoint::Last).expect("published weights");
    vec![std::fs::read(path).expect("weights")]
}

#[cfg(test)]
mod reach {
    use super::*;

    /// The seeds reach the readers they fuzz: a target whose every input stops before its
    /// parser would fuzz nothing.
    #[test]
    fn the_run_directory_seeds_are_read() {
        for seed in metrics_seeds() {
            let records = read_metrics(&seed).unwrap();
            assert_eq!(records.len(), 2, "{}", String::from_utf8_lossy(&seed));
        }
        for seed in bpk_seeds() {
            load_bpk(&seed).unwrap();
        }
        for seed in train_rows_seeds() {
            let run = run_dir(&[(crate::run_dir::TRAIN_ROWS_FILE, &seed)]);
            assert_eq!(run.read_train_rows((3, 4)).unwrap().len(), 4);
        }
    }

    /// Found by the `train-rows` fuzzer: a rating count whose byte size overflows (`12 * len`
    /// wrapped to the file's size) panicked on a slice; it is a format error now, as is a file
    /// of another shape than the model's.
    #[test]
    fn a_training_rows_file_of_impossible_size_or_other_shape_is_an_error() {
        let mut overflow = b"RSROWS1\n".to_vec();
        for word in [3u64, 4, (1u64 << 62) + 1] {
            overflow.extend_from_slice(&word.to_le_bytes());
        }
        overflow.extend_from_slice(&[0; 12]);
        let run = run_dir(&[(crate::run_dir::TRAIN_ROWS_FILE, &overflow)]);
        let err = run.read_train_rows((3, 4)).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        let seed = &train_rows_seeds()[0];
        let run = run_dir(&[(crate::run_dir::TRAIN_ROWS_FILE, seed)]);
        let err = run.read_train_rows((3, 5)).unwrap_err().to_string();
        assert!(err.contains("3 users and 4 items"), "{err}");
    }
}
