//! Helpers shared by the command-line tests: run the binary, read its JSON, check clean failures.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn recsys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recsys"))
        .args(args)
        .output()
        .expect("runs recsys")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last line of stdout as JSON.
pub fn json(o: &Output) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().last().unwrap_or("");
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out}\nstderr: {}", stderr(o)))
}

/// The last line of stdout as JSON, after checking success.
pub fn json_ok(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    json(o)
}

/// Fails unless the command exited with code 1 (a clean error), without a panic, with all
/// `needles` in stderr.
pub fn assert_fails_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected exit code 1 (a clean error), stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

/// The ML-100K folder under `RECSYS_DATA_DIR`, when `RECSYS_QUALITY_SLOW=1` is set too (tests
/// of minutes that CI leaves out); otherwise prints that `test` skips.
pub fn slow_real_data(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("RECSYS_DATA_DIR").map(|d| Path::new(&d).join("ml-100k"));
    match dir {
        Some(d) if d.is_dir() && std::env::var("RECSYS_QUALITY_SLOW").as_deref() == Ok("1") => {
            Some(d)
        }
        _ => {
            eprintln!("SKIP {test}: set RECSYS_DATA_DIR and RECSYS_QUALITY_SLOW=1 to run it");
            None
        }
    }
}
