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
