//! `cargo xtask killtest`: kills `recsys train` (and some of the resumes after it) with SIGKILL
//! at random moments, then checks what each kill left: the run directory must hold one of the
//! committed states of an uninterrupted run (its manifest's epoch, metrics lines, best and last
//! weights, the weights scored by `recsys eval` giving the validation RMSE recorded for their
//! epoch), and `recsys train --resume` must end with exactly the uninterrupted run's metrics.
//! The kill harness at every file operation is the test `crash` of the command-line tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct KillTestArgs {
    /// How many runs to kill at a random moment while they train (runs that end before their
    /// moment are counted apart and do not count).
    #[arg(long, default_value_t = 50)]
    random: usize,
    /// Seed of the moments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The data the runs train on (a `recsys train --data` value).
    #[arg(long, default_value = "synthetic:100k")]
    data: String,
}

/// The `recsys` binary next to this one, built first.
fn recsys_binary() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "recsys-cli"])
        .status()
        .context("runs cargo build")?;
    ensure!(status.success(), "cargo build -p recsys-cli failed");
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name(format!("recsys{}", std::env::consts::EXE_SUFFIX));
    ensure!(bin.is_file(), "{} was not built", bin.display());
    Ok(bin)
}

/// A small random generator (SplitMix64): the moments of the kills.
struct Moments(u64);

impl Moments {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Harness {
    bin: PathBuf,
    data: String,
}

impl Harness {
    fn train_args(&self, out: &Path) -> Vec<String> {
        let out = out.display().to_string();
        [
            "train",
            "--data",
            &self.data,
            "--backend",
            "flex",
            "--epochs",
            "3",
            "--quiet",
            "--json",
            "--out",
            &out,
        ]
        .map(str::to_string)
        .to_vec()
    }

    fn resume_args(dir: &Path) -> Vec<String> {
        let d = dir.display().to_string();
        ["train", "--resume", &d, "--quiet", "--json"]
            .map(str::to_string)
            .to_vec()
    }

    fn output(&self, args: &[String]) -> Result<Output> {
        Ok(Command::new(&self.bin).args(args).output()?)
    }

    /// Starts `args` and kills it with SIGKILL after `after`; whether it was still running.
    fn kill_after(&self, args: &[String], after: Duration) -> Result<bool> {
        let mut child = Command::new(&self.bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let start = Instant::now();
        while start.elapsed() < after {
            if child.try_wait()?.is_some() {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill()?;
        let status = child.wait()?;
        Ok(!status.success())
    }
}

fn json_of(o: &Output, what: &str) -> Result<Value> {
    let out = String::from_utf8_lossy(&o.stdout);
    ensure!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(serde_json::from_str(out.lines().last().unwrap_or(""))?)
}

/// The lines of a `metrics.jsonl` text without the timing fields.
fn records(text: &str) -> Result<Vec<Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: Value = serde_json::from_str(l)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("seconds");
                o.remove("samples_per_s");
            }
            Ok(v)
        })
        .collect()
}

struct Reference {
    records: Vec<Value>,
    json: Value,
    seconds: f64,
}

/// The committed epoch of what a kill left in `dir` (0 without a manifest), after checking it
/// is one of the reference's states; `Err` describing the inconsistency otherwise.
fn check_state(h: &Harness, dir: &Path, r: &Reference) -> Result<usize> {
    let d = dir.display().to_string();
    let manifest = dir.join("manifest.json");
    if !manifest.is_file() {
        let o = h.output(&["eval", "--run", &d, "--part", "valid"].map(str::to_string))?;
        let err = String::from_utf8_lossy(&o.stderr);
        ensure!(
            o.status.code() == Some(1) && !err.contains("panicked"),
            "no manifest, and eval did not fail cleanly: {err}"
        );
        return Ok(0);
    }
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest)?)?;
    let epoch = m["epoch"].as_u64().context("manifest epoch")? as usize;
    ensure!((1..=r.records.len()).contains(&epoch), "epoch {epoch}");
    let text = std::fs::read(dir.join("metrics.jsonl"))?;
    let n = m["metrics"]["bytes"].as_u64().context("metrics bytes")? as usize;
    ensure!(text.len() >= n, "metrics.jsonl is shorter than committed");
    let got = records(std::str::from_utf8(&text[..n])?)?;
    ensure!(
        got == r.records[..epoch],
        "committed metrics differ from the reference's"
    );
    let best = m["best"]["epoch"].as_u64().context("best epoch")? as usize;
    let want_best = r.records[..epoch]
        .iter()
        .rposition(|x| x["best"] == true)
        .context("a best epoch")?
        + 1;
    ensure!(
        best == want_best,
        "best epoch {best}, the reference's {want_best}"
    );
    for (checkpoint, e) in [("best", best), ("last", epoch)] {
        let args = [
            "eval",
            "--run",
            &d,
            "--part",
            "valid",
            "--checkpoint",
            checkpoint,
            "--json",
        ]
        .map(str::to_string);
        let v = json_of(&h.output(&args)?, "eval")?;
        let want = &r.records[e - 1]["valid"]["rmse"];
        ensure!(
            v["metrics"]["rmse"] == *want,
            "{checkpoint} weights score {} on the validation part; epoch {e} recorded {want}",
            v["metrics"]["rmse"]
        );
    }
    Ok(epoch)
}

/// Finishes a killed run and checks it ends as the reference, with no temporary file left.
fn check_resume(h: &Harness, dir: &Path, r: &Reference) -> Result<()> {
    let args = if dir.join("config.toml").is_file() {
        Harness::resume_args(dir)
    } else {
        h.train_args(dir)
    };
    let v = json_of(&h.output(&args)?, "resume")?;
    ensure!(
        v["metrics"] == r.json["metrics"],
        "final metrics {} vs {}",
        v["metrics"],
        r.json["metrics"]
    );
    let got = records(&std::fs::read_to_string(dir.join("metrics.jsonl"))?)?;
    ensure!(
        got == r.records,
        "metrics after resuming differ from the reference's"
    );
    for folder in [dir.to_path_buf(), dir.join("checkpoints")] {
        for e in std::fs::read_dir(&folder)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            ensure!(!name.contains(".tmp-"), "temporary file {name} left");
        }
    }
    Ok(())
}

pub fn run(args: KillTestArgs) -> Result<()> {
    let h = Harness {
        bin: recsys_binary()?,
        data: args.data.clone(),
    };
    let tmp = tempfile::tempdir()?;
    let ref_dir = tmp.path().join("reference");
    let start = Instant::now();
    let json = json_of(&h.output(&h.train_args(&ref_dir))?, "the reference run")?;
    let reference = Reference {
        records: records(&std::fs::read_to_string(ref_dir.join("metrics.jsonl"))?)?,
        json,
        seconds: start.elapsed().as_secs_f64(),
    };
    println!(
        "reference: recsys {} ({:.2} s)",
        h.train_args(Path::new("R")).join(" "),
        reference.seconds
    );
    let mut moments = Moments(args.seed);
    let (mut killed, mut finished, mut resume_kills) = (0, 0, 0);
    let mut by_epoch = [0usize; 4];
    let mut inconsistent = Vec::new();
    let mut trial = 0;
    while killed < args.random {
        trial += 1;
        ensure!(
            trial <= 4 * args.random,
            "{finished} of {trial} runs ended before their kill: the reference run is too short"
        );
        let dir = tmp.path().join(format!("t{trial}"));
        let at = Duration::from_secs_f64(moments.unit() * reference.seconds);
        if !h.kill_after(&h.train_args(&dir), at)? {
            finished += 1;
            std::fs::remove_dir_all(&dir).ok();
            continue;
        }
        killed += 1;
        let mut outcome = check_state(&h, &dir, &reference);
        if let Ok(epoch) = outcome {
            by_epoch[epoch.min(3)] += 1;
            // Every other unfinished run has its resume killed too, then checked again.
            if epoch < 3 && trial % 2 == 0 && dir.join("config.toml").is_file() {
                let at = Duration::from_secs_f64(moments.unit() * reference.seconds);
                if h.kill_after(&Harness::resume_args(&dir), at)? {
                    resume_kills += 1;
                }
                // Killed or finished, the resume moved the run on.
                outcome = check_state(&h, &dir, &reference);
            }
        }
        let outcome = outcome.and_then(|epoch| match epoch {
            3 => Ok(()),
            _ => check_resume(&h, &dir, &reference),
        });
        if let Err(e) = outcome {
            println!("trial {trial} (killed after {at:?}): INCONSISTENT: {e:#}");
            inconsistent.push(trial);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    println!(
        "random kills: {trial} runs, {killed} killed while training ({} with no epoch committed, \
         {} after epoch 1, {} after epoch 2, {} after epoch 3), {finished} finished before \
         their kill; {resume_kills} resumes killed as well; inconsistent states: {}; every \
         unfinished run resumed to the uninterrupted run's metrics: {}",
        by_epoch[0],
        by_epoch[1],
        by_epoch[2],
        by_epoch[3],
        inconsistent.len(),
        if inconsistent.is_empty() { "yes" } else { "no" }
    );
    if !inconsistent.is_empty() {
        bail!("inconsistent states after trials {inconsistent:?}");
    }
    Ok(())
}
