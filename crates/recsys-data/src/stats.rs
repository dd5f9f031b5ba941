//! The exploratory statistics the notebooks start with.

use serde::Serialize;

use crate::interactions::Dataset;

/// Summary statistics of a data set.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub source: String,
    pub users: usize,
    pub items: usize,
    pub ratings: usize,
    /// 1 - ratings / (users * items).
    pub sparsity: f64,
    pub mean_rating: f64,
    pub std_rating: f64,
    pub min_rating: f32,
    pub max_rating: f32,
    /// (rating value, count), ascending by value.
    pub histogram: Vec<(f32, usize)>,
    pub ratings_per_user: Spread,
    pub ratings_per_item: Spread,
    pub first_timestamp: Option<i64>,
    pub last_timestamp: Option<i64>,
    /// Most-rated items, most first.
    pub top_items: Vec<ItemStat>,
    /// Most active users, most first.
    pub top_users: Vec<UserStat>,
    /// Ratings of the top users (rows) for the top items (columns); `None` where unrated.
    pub pivot: Pivot,
}

#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub min: u32,
    pub median: u32,
    pub mean: f64,
    pub max: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemStat {
    pub item_id: String,
    pub title: Option<String>,
    pub count: u32,
    pub mean_rating: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserStat {
    pub user_id: String,
    pub count: u32,
    pub mean_rating: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pivot {
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    pub ratings: Vec<Vec<Option<f32>>>,
}

fn spread(counts: &[u32]) -> Spread {
    let mut present: Vec<u32> = counts.iter().copied().filter(|&c| c > 0).collect();
    if present.is_empty() {
        return Spread {
            min: 0,
            median: 0,
            mean: 0.0,
            max: 0,
        };
    }
    present.sort_unstable();
    Spread {
        min: present[0],
        median: present[present.len() / 2],
        mean: present.iter().map(|&c| c as f64).sum::<f64>() / present.len() as f64,
        max: *present.last().unwrap(),
    }
}

/// Indices of the `n` largest counts, ties by lower index.
fn top(counts: &[u32], n: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..counts.len() as u32)
        .filter(|&k| counts[k as usize] > 0)
        .collect();
    order.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    order.truncate(n);
    order
}

/// Computes the statistics, listing `top_n` items and users and a `pivot_n` x `pivot_n` pivot.
pub fn stats(ds: &Dataset, top_n: usize, pivot_n: usize) -> Stats {
    let x = &ds.interactions;
    let n = x.len();
    let mean = x.mean_rating();
    let var = if n == 0 {
        0.0
    } else {
        x.ratings
            .iter()
            .map(|&r| (r as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64
    };
    let (lo, hi) = x.rating_range();
    // Ratings are on a grid of halves in every MovieLens release; bucket by half steps.
    let mut hist: std::collections::BTreeMap<i64, usize> = Default::default();
    for &r in &x.ratings {
        *hist.entry((r as f64 * 2.0).round() as i64).or_default() += 1;
    }
    let user_counts = x.user_counts();
    let item_counts = x.item_counts();
    let mut user_sum = vec![0f64; x.n_users];
    let mut item_sum = vec![0f64; x.n_items];
    for k in 0..n {
        user_sum[x.users[k] as usize] += x.ratings[k] as f64;
        item_sum[x.items[k] as usize] += x.ratings[k] as f64;
    }
    let avg = |s: f64, c: u32| if c == 0 { 0.0 } else { s / c as f64 };
    let top_items: Vec<ItemStat> = top(&item_counts, top_n)
        .into_iter()
        .map(|i| ItemStat {
            item_id: ds.ids.items.raw_id(i).to_string(),
            title: ds.title(i).map(str::to_string),
            count: item_counts[i as usize],
            mean_rating: avg(item_sum[i as usize], item_counts[i as usize]),
        })
        .collect();
    let top_users: Vec<UserStat> = top(&user_counts, top_n)
        .into_iter()
        .map(|u| UserStat {
            user_id: ds.ids.users.raw_id(u).to_string(),
            count: user_counts[u as usize],
            mean_rating: avg(user_sum[u as usize], user_counts[u as usize]),
        })
        .collect();

    let pu = top(&user_counts, pivot_n);
    let pi = top(&item_counts, pivot_n);
    let mut row_of = vec![usize::MAX; x.n_users];
    pu.iter()
        .enumerate()
        .for_each(|(k, &u)| row_of[u as usize] = k);
    let mut col_of = vec![usize::MAX; x.n_items];
    pi.iter()
        .enumerate()
        .for_each(|(k, &i)| col_of[i as usize] = k);
    let mut cells = vec![vec![None; pi.len()]; pu.len()];
    for k in 0..n {
        let (r, c) = (row_of[x.users[k] as usize], col_of[x.items[k] as usize]);
        if r != usize::MAX && c != usize::MAX {
            cells[r][c] = Some(x.ratings[k]);
        }
    }
    let ts = x.timestamps.as_ref().filter(|t| !t.is_empty());
    Stats {
        source: ds.source.clone(),
        users: x.n_users,
        items: x.n_items,
        ratings: n,
        sparsity: if x.n_users * x.n_items == 0 {
            0.0
        } else {
            1.0 - n as f64 / (x.n_users as f64 * x.n_items as f64)
        },
        mean_rating: mean,
        std_rating: var.sqrt(),
        min_rating: lo,
        max_rating: hi,
        histogram: hist.into_iter().map(|(k, c)| (k as f32 / 2.0, c)).collect(),
        ratings_per_user: spread(&user_counts),
        ratings_per_item: spread(&item_counts),
        first_timestamp: ts.and_then(|t| t.iter().min().copied()),
        last_timestamp: ts.and_then(|t| t.iter().max().copied()),
        top_items,
        top_users,
        pivot: Pivot {
            user_ids: pu
                .iter()
                .map(|&u| ds.ids.users.raw_id(u).to_string())
                .collect(),
            item_ids: pi
                .iter()
                .map(|&i| ds.ids.items.raw_id(i).to_string())
                .collect(),
            ratings: cells,
        },
    }
}
