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

/// The environment variable that tells a child process of [`per_seed_in_processes`] its seed.
const CHILD_SEED: &str = "RECSYS_QUALITY_CHILD_SEED";

/// Runs `train(seed)` for every seed of `seeds`, each in a process of its own (this test binary
/// running test `test` alone), as many at a time as there are cores, and returns the results in
/// the order of `seeds`. A process per seed keeps each seed's figures independent of what else
/// runs (the CPU backends' random generator is process-wide) and uses both cores of a small
/// machine. In a child process (the seed in `RECSYS_QUALITY_CHILD_SEED`) it trains that seed,
/// prints its result for the parent and returns `None`: the caller then returns.
pub fn per_seed_in_processes(
    test: &str,
    seeds: &[u64],
    train: impl Fn(u64) -> Vec<f64>,
) -> Option<Vec<Vec<f64>>> {
    if let Ok(seed) = std::env::var(CHILD_SEED) {
        let seed: u64 = seed.parse().expect("a seed");
        let values: Vec<String> = train(seed).iter().map(|v| v.to_string()).collect();
        println!("RECSYS_SEED_RESULT {seed} {}", values.join(" "));
        return None;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = |seed: u64| -> (String, Vec<f64>) {
        let out = std::process::Command::new(&exe)
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .env(CHILD_SEED, seed.to_string())
            .output()
            .expect("runs the test binary");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "seed {seed} failed:\n{stdout}\n{stderr}"
        );
        // The harness prints the test's name on the same line, before the test's own output.
        let line = stdout
            .lines()
            .find_map(|l| Some(&l[l.find("RECSYS_SEED_RESULT ")? + "RECSYS_SEED_RESULT ".len()..]))
            .unwrap_or_else(|| panic!("seed {seed} printed no result:\n{stdout}"));
        let values = line
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().expect("a number"))
            .collect();
        (stderr, values)
    };
    let mut results = Vec::new();
    for group in seeds.chunks(cores.max(1)) {
        results.extend(std::thread::scope(|scope| {
            let handles: Vec<_> = group
                .iter()
                .map(|&seed| scope.spawn(move || run(seed)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a seed's process"))
                .map(|(stderr, values)| {
                    // Each seed's figures, in the order of `seeds` whichever finished first.
                    eprint!("{stderr}");
                    values
                })
                .collect::<Vec<_>>()
        }));
    }
    Some(results)
}
