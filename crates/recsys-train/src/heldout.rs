//! The ranking evaluation of one part of a run's split (`recsys eval --protocol`): which items
//! each held-out pair is ranked among, and the sampled protocol's negatives, read from an NCF
//! file or stored once in the run directory.

use std::collections::HashSet;
use std::path::Path;

use recsys_data::{Interactions, TestNegatives, UserHistory};

use crate::error::{Result, TrainError};
use crate::loaded::LoadedRun;
use crate::ranking::RankingTask;
use crate::task::{ImplicitTask, Protocol, Task};

/// A part of a run's split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Part {
    Test,
    Valid,
    Train,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Test => "test",
            Part::Valid => "valid",
            Part::Train => "train",
        }
    }
}

/// The training, validation and test parts of a run's split.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    pub train: &'a Interactions,
    pub valid: &'a Interactions,
    pub test: &'a Interactions,
}

impl<'a> Parts<'a> {
    pub fn get(&self, part: Part) -> &'a Interactions {
        match part {
            Part::Test => self.test,
            Part::Valid => self.valid,
            Part::Train => self.train,
        }
    }

    /// The non-empty parts other than `part`: everything known about the users except it.
    fn others(&self, part: Part) -> Vec<&'a Interactions> {
        [Part::Train, Part::Valid, Part::Test]
            .into_iter()
            .filter(|&p| p != part && !self.get(p).is_empty())
            .map(|p| self.get(p))
            .collect()
    }
}

/// The ranking evaluation of `part` for `run` (trained in `dir`): `full` (all items, the
/// user's other known items excluded), `factorized` (all items) or `sampled` among fixed
/// negatives, read from `negatives` (an NCF `.test.negative` file), else from `<part>.negative`
/// in the run directory, else drawn once from the run's seed and stored there.
pub fn heldout_ranking(
    dir: &Path,
    run: &LoadedRun,
    parts: Parts<'_>,
    part: Part,
    protocol: Protocol,
    ks: &[usize],
    negatives: Option<&Path>,
) -> Result<RankingTask> {
    let held = parts.get(part);
    let name = part.name();
    if held.is_empty() {
        return Err(invalid(format!(
            "the {name} part of the run's split is empty"
        )));
    }
    let others = parts.others(part);
    match protocol {
        Protocol::Full => RankingTask::full(held, &Interactions::concat(&others), ks),
        Protocol::Factorized => RankingTask::factorized(held, ks),
        Protocol::Sampled => {
            let (n_users, n_items) = (run.ids.users.len(), run.ids.items.len());
            let stored = dir.join(format!("{name}.negative"));
            let (cases, path) = match negatives {
                Some(p) => (TestNegatives::read(p, n_users, n_items)?, p.to_path_buf()),
                None if stored.is_file() => {
                    (TestNegatives::read(&stored, n_users, n_items)?, stored)
                }
                None => {
                    let k = match &run.config.task {
                        Task::Implicit(t) => t.eval_negatives,
                        Task::Rating => ImplicitTask::default().eval_negatives,
                    };
                    let mut all = others.clone();
                    all.push(held);
                    let seen = UserHistory::new(&Interactions::concat(&all));
                    let cases = TestNegatives::sample(held, &seen, k, run.config.train.seed)?;
                    cases.write(&stored)?;
                    (cases, stored)
                }
            };
            check_cases(&cases, held, name, &path)?;
            RankingTask::sampled(cases, ks).map_err(|e| match e {
                TrainError::Config(m) => TrainError::format(&path, m),
                other => other,
            })
        }
    }
}

fn invalid(message: String) -> TrainError {
    TrainError::Data(recsys_data::DataError::Invalid(message))
}

/// `Err` unless the held-out pairs of `cases` are exactly the pairs of `part`.
fn check_cases(
    cases: &TestNegatives,
    part: &Interactions,
    part_name: &str,
    path: &Path,
) -> Result<()> {
    let pairs: HashSet<(u32, u32)> = part
        .users
        .iter()
        .copied()
        .zip(part.items.iter().copied())
        .collect();
    for (line, c) in cases.cases.iter().enumerate() {
        if !pairs.contains(&(c.user, c.item)) {
            return Err(invalid(format!(
                "{}:{}: the pair ({},{}) is not in the {part_name} part of the run's split \
                 (negatives for other data?)",
                path.display(),
                line + 1,
                c.user,
                c.item
            )));
        }
    }
    if cases.cases.len() != pairs.len() {
        return Err(invalid(format!(
            "{}: {} held-out pairs, but the {part_name} part has {}",
            path.display(),
            cases.cases.len(),
            pairs.len()
        )));
    }
    Ok(())
}
