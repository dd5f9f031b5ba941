//! From raw ids to dense indices: duplicate policy, vocabularies, mapping through an id map.

use super::Duplicates;
use crate::error::{DataError, Result};
use crate::interactions::{IdMap, Interactions, Vocab};
use crate::parse::RawColumns;

pub(super) fn map_through(raw: &RawColumns, ids: &IdMap) -> Result<Interactions> {
    let lookup = |vocab: &Vocab,
                  names: &Option<Vec<String>>,
                  col: &[u32],
                  kind: &'static str|
     -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(col.len());
        let mut cache = std::collections::HashMap::new();
        for (row, &code) in col.iter().enumerate() {
            let idx = match cache.get(&code) {
                Some(&i) => i,
                None => {
                    let raw_id = match names {
                        Some(n) => n[code as usize].clone(),
                        None => code.to_string(),
                    };
                    let i = vocab
                        .index_of(&raw_id)
                        .ok_or_else(|| DataError::UnknownId {
                            kind,
                            id: raw_id,
                            context: format!(
                                " in {}:{} (the id is absent from the data set)",
                                raw.path.display(),
                                raw.line_of(row)
                            ),
                        })?;
                    cache.insert(code, i);
                    i
                }
            };
            out.push(idx);
        }
        Ok(out)
    };
    let users = lookup(&ids.users, &raw.user_names, &raw.users, "user")?;
    let items = lookup(&ids.items, &raw.item_names, &raw.items, "item")?;
    Interactions::new(
        users,
        items,
        raw.ratings.clone(),
        raw.timestamps.clone(),
        ids.n_users(),
        ids.n_items(),
    )
}

/// Applies the duplicate policy to raw columns.
pub(super) fn apply_duplicates(raw: RawColumns, policy: Duplicates) -> Result<RawColumns> {
    if policy == Duplicates::KeepAll {
        return Ok(raw);
    }
    let Some((first, second)) = find_duplicate(&raw.users, &raw.items) else {
        return Ok(raw);
    };
    if policy == Duplicates::Error {
        let name = |names: &Option<Vec<String>>, code: u32| match names {
            Some(n) => n[code as usize].clone(),
            None => code.to_string(),
        };
        return Err(DataError::parse(
            &raw.path,
            raw.line_of(second),
            format!(
                "user {} rated item {} again (first at line {}); choose a duplicate policy \
                 (--duplicates first|last|all) to load such data",
                name(&raw.user_names, raw.users[second]),
                name(&raw.item_names, raw.items[second]),
                raw.line_of(first)
            ),
        ));
    }
    // Keep one row per pair.
    let mut seen: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for row in 0..raw.len() {
        let key = Interactions::pair_key(raw.users[row], raw.items[row]);
        match policy {
            Duplicates::KeepFirst => {
                seen.entry(key).or_insert(row);
            }
            _ => {
                seen.insert(key, row);
            }
        }
    }
    let mut keep: Vec<usize> = seen.into_values().collect();
    keep.sort_unstable();
    let pick = |v: &[u32]| keep.iter().map(|&r| v[r]).collect::<Vec<_>>();
    Ok(RawColumns {
        users: pick(&raw.users),
        items: pick(&raw.items),
        ratings: keep.iter().map(|&r| raw.ratings[r]).collect(),
        timestamps: raw
            .timestamps
            .as_ref()
            .map(|t| keep.iter().map(|&r| t[r]).collect()),
        user_names: raw.user_names,
        item_names: raw.item_names,
        path: raw.path,
        first_line: raw.first_line,
    })
}

/// The rows of the first (user, item) pair that occurs twice, if any.
///
/// Files grouped by user (every MovieLens CSV) are checked in one pass with a per-item stamp;
/// others go through a sort.
fn find_duplicate(users: &[u32], items: &[u32]) -> Option<(usize, usize)> {
    let grouped = users.windows(2).all(|w| w[0] <= w[1]);
    if grouped {
        let max_item = items.iter().copied().max().unwrap_or(0) as usize;
        if max_item <= 64 << 20 {
            // stamp[item] = (user + 1, row) of the item's last sighting.
            let mut stamp = vec![(0u32, 0u32); max_item + 1];
            for row in 0..users.len() {
                let s = &mut stamp[items[row] as usize];
                if s.0 == users[row] + 1 {
                    return Some((s.1 as usize, row));
                }
                *s = (users[row] + 1, row as u32);
            }
            return None;
        }
    }
    let mut keys: Vec<(u64, u32)> = users
        .iter()
        .zip(items)
        .enumerate()
        .map(|(row, (&u, &i))| (Interactions::pair_key(u, i), row as u32))
        .collect();
    keys.sort_unstable();
    let mut best: Option<(usize, usize)> = None;
    for w in keys.windows(2) {
        if w[0].0 == w[1].0 && best.is_none_or(|b| (w[1].1 as usize) < b.1) {
            best = Some((w[0].1 as usize, w[1].1 as usize));
        }
    }
    best
}

/// Turns raw ids into dense indices in raw-id order and builds the vocabularies.
pub(super) fn build_vocab(mut raw: RawColumns) -> (Interactions, IdMap) {
    let users = densify(&mut raw.users, raw.user_names.take());
    let items = densify(&mut raw.items, raw.item_names.take());
    let (n_users, n_items) = (users.len(), items.len());
    let interactions = Interactions {
        users: raw.users,
        items: raw.items,
        ratings: raw.ratings,
        timestamps: raw.timestamps,
        n_users,
        n_items,
    };
    (
        interactions,
        IdMap {
            users: Vocab::from_raw(users).expect("raw ids are distinct"),
            items: Vocab::from_raw(items).expect("raw ids are distinct"),
        },
    )
}

/// Rewrites a column of raw ids (or string codes) in place as dense indices; returns the raw ids
/// in index order.
fn densify(col: &mut [u32], names: Option<Vec<String>>) -> Vec<String> {
    match names {
        Some(names) => {
            // Codes are in first-appearance order: re-rank them by the names' order.
            let mut order: Vec<u32> = (0..names.len() as u32).collect();
            order.sort_by(|&a, &b| natural_cmp(&names[a as usize], &names[b as usize]));
            let mut rank = vec![0u32; names.len()];
            for (r, &code) in order.iter().enumerate() {
                rank[code as usize] = r as u32;
            }
            remap(col, &rank);
            order
                .into_iter()
                .map(|c| names[c as usize].clone())
                .collect()
        }
        None => {
            let max = col.iter().copied().max().unwrap_or(0) as usize;
            if max < (col.len() * 4).max(1 << 20) {
                let mut rank = vec![u32::MAX; max + 1];
                for &v in col.iter() {
                    rank[v as usize] = 0;
                }
                let mut raw = Vec::new();
                for (id, r) in rank.iter_mut().enumerate() {
                    if *r == 0 {
                        *r = raw.len() as u32;
                        raw.push(id.to_string());
                    }
                }
                remap(col, &rank);
                raw
            } else {
                let mut ids: Vec<u32> = col.to_vec();
                ids.sort_unstable();
                ids.dedup();
                let index: std::collections::HashMap<u32, u32> = ids
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| (v, k as u32))
                    .collect();
                for v in col.iter_mut() {
                    *v = index[v];
                }
                ids.into_iter().map(|v| v.to_string()).collect()
            }
        }
    }
}

fn remap(col: &mut [u32], rank: &[u32]) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = col.len().div_ceil(threads).max(1 << 16);
    std::thread::scope(|s| {
        for part in col.chunks_mut(chunk) {
            s.spawn(move || {
                for v in part {
                    *v = rank[*v as usize];
                }
            });
        }
    });
}

/// Orders ids: numbers by value first, then every other id as text.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Greater, Less};
    // A total order (sorting panics on one that is not): numbers by value, the text breaking
    // ties such as "01" and "1"; then every other id by its text.
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => Less,
        (Err(_), Ok(_)) => Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}
