//! Filters that drop rows (and then the users and items left without ratings), and rating
//! normalisation with its inverse.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::interactions::{Dataset, IdMap, Interactions, Vocab, count};

impl Dataset {
    /// Keeps the rows for which `keep` is true and compacts the vocabularies to the users and
    /// items that still have ratings (their order is kept). Titles follow their items.
    pub fn retain(&self, mut keep: impl FnMut(usize) -> bool) -> Dataset {
        let rows: Vec<usize> = (0..self.interactions.len()).filter(|&r| keep(r)).collect();
        let sel = self.interactions.select(&rows);
        let (user_map, user_raw) = compact(&sel.users, self.interactions.n_users, &self.ids.users);
        let (item_map, item_raw) = compact(&sel.items, self.interactions.n_items, &self.ids.items);
        let items = if self.items.is_empty() {
            Vec::new()
        } else {
            (0..self.interactions.n_items)
                .filter(|&i| item_map[i] != u32::MAX)
                .map(|i| self.items[i].clone())
                .collect()
        };
        let interactions = Interactions {
            users: sel.users.iter().map(|&u| user_map[u as usize]).collect(),
            items: sel.items.iter().map(|&i| item_map[i as usize]).collect(),
            ratings: sel.ratings,
            timestamps: sel.timestamps,
            n_users: user_raw.len(),
            n_items: item_raw.len(),
        };
        Dataset {
            interactions,
            ids: IdMap {
                users: Vocab::from_raw(user_raw).expect("distinct ids"),
                items: Vocab::from_raw(item_raw).expect("distinct ids"),
            },
            items,
            scale: self.scale,
            source: self.source.clone(),
            scale_inferred: self.scale_inferred,
            notes: self.notes.clone(),
        }
    }

    /// Drops items with fewer than `min_item` ratings and users with fewer than `min_user`
    /// (one pass each, items first, as the NeuMF notebook does). With `until_stable`, repeats
    /// until every remaining user and item meets its minimum (the k-core).
    pub fn min_counts(&self, min_user: u32, min_item: u32, until_stable: bool) -> Dataset {
        let mut ds = self.clone();
        loop {
            let before = ds.interactions.len();
            if min_item > 1 {
                let c = ds.interactions.item_counts();
                let items = &ds.interactions.items;
                ds = ds.retain(|r| c[items[r] as usize] >= min_item);
            }
            if min_user > 1 {
                let c = ds.interactions.user_counts();
                let users = &ds.interactions.users;
                ds = ds.retain(|r| c[users[r] as usize] >= min_user);
            }
            if !until_stable || ds.interactions.len() == before {
                return ds;
            }
        }
    }

    /// Keeps the `n` users with the most ratings (ties: the lower index), as the AutoRec notebook
    /// keeps the 60,000 most active users.
    pub fn top_users(&self, n: usize) -> Dataset {
        let c = self.interactions.user_counts();
        let mut order: Vec<u32> = (0..c.len() as u32).collect();
        order.sort_by(|&a, &b| c[b as usize].cmp(&c[a as usize]).then(a.cmp(&b)));
        let mut keep = vec![false; c.len()];
        for &u in order.iter().take(n) {
            keep[u as usize] = true;
        }
        let users = &self.interactions.users;
        self.retain(|r| keep[users[r] as usize])
    }

    /// Keeps the ratings above `threshold` (strictly, as the retrieval notebook keeps ratings > 3)
    /// as implicit positives with rating 1.
    pub fn implicit(&self, threshold: f32) -> Dataset {
        let ratings = &self.interactions.ratings;
        let mut ds = self.retain(|r| ratings[r] > threshold);
        ds.interactions.ratings.iter_mut().for_each(|r| *r = 1.0);
        ds.scale = (0.0, 1.0);
        ds
    }
}

impl Dataset {
    /// The same ratings with items keyed by title (as the TensorFlow Recommenders tutorial keys
    /// movies): items that share a title become one item, whose raw id is the title. Fails when
    /// the data has no titles for every item.
    pub fn items_by_title(&self) -> Result<Dataset> {
        let n = self.interactions.n_items;
        if self.items.len() != n || self.items.iter().any(|i| i.is_none()) {
            return Err(DataError::Invalid(format!(
                "{}: items can be keyed by title only when every item has one",
                self.source
            )));
        }
        let mut index: std::collections::HashMap<&str, u32> = Default::default();
        let mut titles: Vec<String> = Vec::new();
        let mut infos = Vec::new();
        let map: Vec<u32> = self
            .items
            .iter()
            .map(|info| {
                let info = info.as_ref().expect("checked");
                *index.entry(info.title.as_str()).or_insert_with(|| {
                    titles.push(info.title.clone());
                    infos.push(Some(info.clone()));
                    (titles.len() - 1) as u32
                })
            })
            .collect();
        let mut interactions = self.interactions.clone();
        interactions
            .items
            .iter_mut()
            .for_each(|i| *i = map[*i as usize]);
        interactions.n_items = titles.len();
        Ok(Dataset {
            interactions,
            ids: IdMap {
                users: self.ids.users.clone(),
                items: Vocab::from_raw(titles).expect("distinct titles"),
            },
            items: infos,
            scale: self.scale,
            source: self.source.clone(),
            scale_inferred: self.scale_inferred,
            notes: self.notes.clone(),
        })
    }
}

/// Maps old indices to new ones (u32::MAX for dropped) and lists the kept raw ids.
fn compact(col: &[u32], n: usize, vocab: &Vocab) -> (Vec<u32>, Vec<String>) {
    let present = count(col, n);
    let mut map = vec![u32::MAX; n];
    let mut raw = Vec::new();
    for k in 0..n {
        if present[k] > 0 {
            map[k] = raw.len() as u32;
            raw.push(vocab.raw_id(k as u32).to_string());
        }
    }
    (map, raw)
}

/// Which rating normalisation a run trains with (`--normalize`, the run's `[normalize] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum NormalizeKind {
    /// Ratings unchanged.
    #[default]
    None,
    /// Divided by the top of the rating scale.
    Max,
    /// Min-max scaled into [0, 1].
    #[cfg_attr(feature = "clap", value(alias = "min-max"))]
    #[serde(alias = "min-max")]
    Minmax,
    /// The training mean subtracted.
    #[cfg_attr(feature = "clap", value(alias = "mean"))]
    #[serde(alias = "mean")]
    Center,
}

impl NormalizeKind {
    pub fn name(self) -> &'static str {
        match self {
            NormalizeKind::None => "none",
            NormalizeKind::Max => "max",
            NormalizeKind::Minmax => "minmax",
            NormalizeKind::Center => "center",
        }
    }
}

/// A rating normalisation and its inverse. Fitted on training ratings, saved with a run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Normalizer {
    /// Ratings unchanged.
    #[default]
    None,
    /// `r / max` (the ML-20M notebook divides by 5).
    DivideByMax { max: f32 },
    /// `(r - min) / (max - min)`, into [0, 1] (Keras version 4).
    MinMax { min: f32, max: f32 },
    /// `r - mean`.
    MeanCentre { mean: f32 },
}

impl Normalizer {
    /// Fits a normalisation named `none`, `max`, `min-max` or `mean` on `scale` and `ratings`.
    pub fn fit(kind: &str, scale: (f32, f32), ratings: &[f32]) -> Result<Self> {
        let kind = match kind {
            "none" => NormalizeKind::None,
            "max" | "divide-by-max" => NormalizeKind::Max,
            "min-max" | "minmax" => NormalizeKind::Minmax,
            "mean" | "mean-centre" | "mean-center" | "center" => NormalizeKind::Center,
            other => {
                return Err(DataError::Invalid(format!(
                    "unknown normalisation {other:?}: expected none, max, min-max or mean"
                )));
            }
        };
        let mean = if ratings.is_empty() {
            0.0
        } else {
            ratings.iter().map(|&r| r as f64).sum::<f64>() / ratings.len() as f64
        };
        Self::fit_kind(kind, scale, mean)
    }

    /// Fits normalisation `kind` on the rating `scale` and the training `mean` rating.
    pub fn fit_kind(kind: NormalizeKind, scale: (f32, f32), mean: f64) -> Result<Self> {
        Ok(match kind {
            NormalizeKind::None => Normalizer::None,
            NormalizeKind::Max => {
                if scale.1.is_nan() || scale.1 <= 0.0 {
                    return Err(DataError::Invalid(format!(
                        "dividing by the maximum needs a positive maximum, got {scale:?}"
                    )));
                }
                Normalizer::DivideByMax { max: scale.1 }
            }
            NormalizeKind::Minmax => {
                if scale.0.is_nan() || scale.1.is_nan() || scale.1 <= scale.0 {
                    return Err(DataError::Invalid(format!(
                        "min-max needs max > min, got {scale:?}"
                    )));
                }
                Normalizer::MinMax {
                    min: scale.0,
                    max: scale.1,
                }
            }
            NormalizeKind::Center => Normalizer::MeanCentre { mean: mean as f32 },
        })
    }

    pub fn is_none(&self) -> bool {
        *self == Normalizer::None
    }

    /// `data` with its ratings normalised: a copy, or `data` itself when there is nothing to do.
    pub fn applied<'a>(&self, data: &'a Interactions) -> std::borrow::Cow<'a, Interactions> {
        if self.is_none() {
            return std::borrow::Cow::Borrowed(data);
        }
        let mut out = data.clone();
        self.apply(&mut out.ratings);
        std::borrow::Cow::Owned(out)
    }

    /// Normalises one rating.
    pub fn forward(&self, r: f32) -> f32 {
        match *self {
            Normalizer::None => r,
            Normalizer::DivideByMax { max } => r / max,
            Normalizer::MinMax { min, max } => (r - min) / (max - min),
            Normalizer::MeanCentre { mean } => r - mean,
        }
    }

    /// Maps a normalised value back to the rating scale.
    pub fn inverse(&self, v: f32) -> f32 {
        match *self {
            Normalizer::None => v,
            Normalizer::DivideByMax { max } => v * max,
            Normalizer::MinMax { min, max } => v * (max - min) + min,
            Normalizer::MeanCentre { mean } => v + mean,
        }
    }

    /// Normalises ratings in place.
    pub fn apply(&self, ratings: &mut [f32]) {
        ratings.iter_mut().for_each(|r| *r = self.forward(*r));
    }
}
