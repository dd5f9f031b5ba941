//! The core types: [`Interactions`] (dense indices, ratings, optional timestamps), the id
//! vocabularies ([`Vocab`], [`IdMap`]) and [`Dataset`], which bundles them with item titles.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Ratings in columnar form: row `k` says that user `users[k]` gave item `items[k]` the rating
/// `ratings[k]` (at `timestamps[k]` where the release has timestamps).
///
/// Indices are dense (`0..n_users`, `0..n_items`) and always refer to the [`IdMap`] the data was
/// loaded with; splits and filters keep `n_users` and `n_items` so every part of a split shares one
/// id space.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interactions {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    pub ratings: Vec<f32>,
    pub timestamps: Option<Vec<i64>>,
    pub n_users: usize,
    pub n_items: usize,
}

impl Interactions {
    /// Builds and validates interactions: equal column lengths, indices in range.
    pub fn new(
        users: Vec<u32>,
        items: Vec<u32>,
        ratings: Vec<f32>,
        timestamps: Option<Vec<i64>>,
        n_users: usize,
        n_items: usize,
    ) -> Result<Self> {
        let n = users.len();
        if items.len() != n
            || ratings.len() != n
            || timestamps.as_ref().is_some_and(|t| t.len() != n)
        {
            return Err(DataError::Invalid(format!(
                "columns of unequal length: {} users, {} items, {} ratings",
                n,
                items.len(),
                ratings.len()
            )));
        }
        if let Some(&u) = users.iter().find(|&&u| u as usize >= n_users) {
            return Err(DataError::Invalid(format!(
                "user index {u} out of range 0..{n_users}"
            )));
        }
        if let Some(&i) = items.iter().find(|&&i| i as usize >= n_items) {
            return Err(DataError::Invalid(format!(
                "item index {i} out of range 0..{n_items}"
            )));
        }
        Ok(Self {
            users,
            items,
            ratings,
            timestamps,
            n_users,
            n_items,
        })
    }

    /// Number of ratings.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The rows at `rows`, in that order, with the same id space.
    pub fn select(&self, rows: &[usize]) -> Interactions {
        Interactions {
            users: rows.iter().map(|&r| self.users[r]).collect(),
            items: rows.iter().map(|&r| self.items[r]).collect(),
            ratings: rows.iter().map(|&r| self.ratings[r]).collect(),
            timestamps: self
                .timestamps
                .as_ref()
                .map(|t| rows.iter().map(|&r| t[r]).collect()),
            n_users: self.n_users,
            n_items: self.n_items,
        }
    }

    /// The rows for which `keep(row)` is true.
    pub fn filter_rows(&self, mut keep: impl FnMut(usize) -> bool) -> Interactions {
        let rows: Vec<usize> = (0..self.len()).filter(|&r| keep(r)).collect();
        self.select(&rows)
    }

    /// Concatenates parts that share one id space.
    pub fn concat(parts: &[&Interactions]) -> Interactions {
        let first = parts.first().expect("concat needs at least one part");
        let has_ts = parts.iter().all(|p| p.timestamps.is_some());
        let mut out = Interactions {
            n_users: first.n_users,
            n_items: first.n_items,
            timestamps: has_ts.then(Vec::new),
            ..Default::default()
        };
        for p in parts {
            assert_eq!(
                (p.n_users, p.n_items),
                (first.n_users, first.n_items),
                "concat of parts with different id spaces"
            );
            out.users.extend_from_slice(&p.users);
            out.items.extend_from_slice(&p.items);
            out.ratings.extend_from_slice(&p.ratings);
            if let (Some(o), Some(t)) = (out.timestamps.as_mut(), p.timestamps.as_ref()) {
                o.extend_from_slice(t);
            }
        }
        out
    }

    /// Number of ratings of each user.
    pub fn user_counts(&self) -> Vec<u32> {
        count(&self.users, self.n_users)
    }

    /// Number of ratings of each item.
    pub fn item_counts(&self) -> Vec<u32> {
        count(&self.items, self.n_items)
    }

    /// Smallest and largest rating (0, 0 when empty).
    pub fn rating_range(&self) -> (f32, f32) {
        if self.ratings.is_empty() {
            return (0.0, 0.0);
        }
        self.ratings
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &r| {
                (lo.min(r), hi.max(r))
            })
    }

    /// Mean rating (0 when empty).
    pub fn mean_rating(&self) -> f64 {
        if self.ratings.is_empty() {
            return 0.0;
        }
        self.ratings.iter().map(|&r| r as f64).sum::<f64>() / self.ratings.len() as f64
    }

    /// Bytes held by the columns: the in-memory columnar size.
    pub fn heap_bytes(&self) -> usize {
        self.users.capacity() * 4
            + self.items.capacity() * 4
            + self.ratings.capacity() * 4
            + self.timestamps.as_ref().map_or(0, |t| t.capacity() * 8)
    }

    /// Packs `(user, item)` into one key, for sets of pairs.
    pub fn pair_key(user: u32, item: u32) -> u64 {
        ((user as u64) << 32) | item as u64
    }
}

pub(crate) fn count(idx: &[u32], n: usize) -> Vec<u32> {
    let mut c = vec![0u32; n];
    for &i in idx {
        c[i as usize] += 1;
    }
    c
}

/// A vocabulary: raw ids as written in the data (`raw_user_id`) and their dense indices.
///
/// Dense indices follow the raw ids' order (numeric order when every id is a number), so the
/// same data always gives the same indices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    raw: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl Vocab {
    /// A vocabulary over `raw` ids in the given order (index `k` is `raw[k]`).
    pub fn from_raw(raw: Vec<String>) -> Result<Self> {
        let mut index = HashMap::with_capacity(raw.len());
        for (k, id) in raw.iter().enumerate() {
            if index.insert(id.clone(), k as u32).is_some() {
                return Err(DataError::Invalid(format!(
                    "id {id:?} appears twice in a vocabulary"
                )));
            }
        }
        Ok(Self { raw, index })
    }

    /// Rebuilds the lookup after deserialisation.
    pub(crate) fn rebuild_index(&mut self) {
        self.index = self
            .raw
            .iter()
            .enumerate()
            .map(|(k, id)| (id.clone(), k as u32))
            .collect();
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Dense index of a raw id.
    pub fn index_of(&self, raw_id: &str) -> Option<u32> {
        if self.index.is_empty() && !self.raw.is_empty() {
            // Deserialised without `rebuild_index`: fall back to a scan.
            return self.raw.iter().position(|r| r == raw_id).map(|k| k as u32);
        }
        self.index.get(raw_id).copied()
    }

    /// Raw id of a dense index.
    pub fn raw_id(&self, idx: u32) -> &str {
        &self.raw[idx as usize]
    }

    /// All raw ids, in index order.
    pub fn raw_ids(&self) -> &[String] {
        &self.raw
    }
}

/// The two vocabularies of a data set. Saved with every trained model, so raw ids map in once
/// and out once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdMap {
    pub users: Vocab,
    pub items: Vocab,
}

impl IdMap {
    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// Dense user index of a raw id, or an error naming it.
    pub fn user(&self, raw_user_id: &str) -> Result<u32> {
        self.users
            .index_of(raw_user_id)
            .ok_or_else(|| DataError::UnknownId {
                kind: "user",
                id: raw_user_id.to_string(),
                context: String::new(),
            })
    }

    /// Dense item index of a raw id, or an error naming it.
    pub fn item(&self, raw_item_id: &str) -> Result<u32> {
        self.items
            .index_of(raw_item_id)
            .ok_or_else(|| DataError::UnknownId {
                kind: "item",
                id: raw_item_id.to_string(),
                context: String::new(),
            })
    }

    /// Writes the map as JSON.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let json = serde_json::to_vec(self).expect("IdMap serialises");
        crate::io::write_atomic(path, &json)
    }

    /// Reads a map written by [`IdMap::save`].
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let mut map: IdMap = serde_json::from_slice(&bytes)
            .map_err(|e| DataError::parse(path, e.line() as u64, format!("not an id map: {e}")))?;
        map.users.rebuild_index();
        map.items.rebuild_index();
        Ok(map)
    }
}

/// What a release says about an item: its title and genres.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemInfo {
    pub title: String,
    pub genres: Vec<String>,
}

/// A loaded data set: ratings, vocabularies, item metadata where the release has it, and the
/// rating scale.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub interactions: Interactions,
    pub ids: IdMap,
    /// Indexed by dense item index; empty when the release has no item file.
    pub items: Vec<Option<ItemInfo>>,
    /// The declared rating scale (min, max).
    pub scale: (f32, f32),
    /// Where the data came from (a path, or `synthetic:<preset>`).
    pub source: String,
    /// The scale was not declared (a generic file without one) but taken from the ratings' range.
    pub scale_inferred: bool,
    /// What the loader had to guess or go without (an inferred scale, missing titles), one
    /// sentence each, for commands to show once.
    pub notes: Vec<String>,
}

impl Dataset {
    /// Title of a dense item index, if the release has titles.
    pub fn title(&self, item: u32) -> Option<&str> {
        self.items
            .get(item as usize)?
            .as_ref()
            .map(|i| i.title.as_str())
    }

    /// Dense index of an item by title (exact match), or an error naming the title.
    pub fn item_by_title(&self, title: &str) -> Result<u32> {
        self.items
            .iter()
            .position(|i| i.as_ref().is_some_and(|i| i.title == title))
            .map(|k| k as u32)
            .ok_or_else(|| DataError::UnknownId {
                kind: "item title",
                id: title.to_string(),
                context: String::new(),
            })
    }

    /// A label for an item: its title, or its raw id.
    pub fn item_label(&self, item: u32) -> String {
        match self.title(item) {
            Some(t) => t.to_string(),
            None => format!("item {}", self.ids.items.raw_id(item)),
        }
    }

    /// Replaces the interactions, keeping ids and metadata (after a filter or a split).
    pub fn with_interactions(&self, interactions: Interactions) -> Dataset {
        Dataset {
            interactions,
            ids: self.ids.clone(),
            items: self.items.clone(),
            scale: self.scale,
            source: self.source.clone(),
            scale_inferred: self.scale_inferred,
            notes: self.notes.clone(),
        }
    }
}

/// A data set's ratings expressed in another id map's dense indices ([`Dataset::remap`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Remapped {
    /// The rows whose user and item the other map knows, in its indices (its `n_users`,
    /// `n_items`).
    pub interactions: Interactions,
    /// Rows left out: their user or item is unknown to the other map.
    pub unknown_pairs: usize,
    /// The distinct raw user ids the other map lacks, in order of first appearance.
    pub unknown_users: Vec<String>,
    /// The distinct raw item ids the other map lacks, in order of first appearance.
    pub unknown_items: Vec<String>,
}

impl Dataset {
    /// The ratings in the dense indices of `to` (e.g. a trained run's id map), matched by raw
    /// id; rows whose user or item `to` lacks are counted in [`Remapped`], not kept.
    pub fn remap(&self, to: &IdMap) -> Remapped {
        let lookup = |from: &Vocab, to: &Vocab| -> Vec<Option<u32>> {
            from.raw_ids().iter().map(|r| to.index_of(r)).collect()
        };
        let users = lookup(&self.ids.users, &to.users);
        let items = lookup(&self.ids.items, &to.items);
        let x = &self.interactions;
        let mut out = Remapped {
            interactions: Interactions {
                n_users: to.n_users(),
                n_items: to.n_items(),
                ..Default::default()
            },
            ..Default::default()
        };
        let (mut seen_u, mut seen_i) = (vec![false; users.len()], vec![false; items.len()]);
        for k in 0..x.len() {
            let (u, i) = (x.users[k] as usize, x.items[k] as usize);
            match (users[u], items[i]) {
                (Some(mu), Some(mi)) => {
                    let y = &mut out.interactions;
                    y.users.push(mu);
                    y.items.push(mi);
                    y.ratings.push(x.ratings[k]);
                }
                (mu, mi) => {
                    out.unknown_pairs += 1;
                    if mu.is_none() && !std::mem::replace(&mut seen_u[u], true) {
                        out.unknown_users
                            .push(self.ids.users.raw_id(u as u32).to_string());
                    }
                    if mi.is_none() && !std::mem::replace(&mut seen_i[i], true) {
                        out.unknown_items
                            .push(self.ids.items.raw_id(i as u32).to_string());
                    }
                }
            }
        }
        out
    }
}
