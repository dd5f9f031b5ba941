//! How many rows of scores go into one block, so that a block holds about a budget of scores and
//! the memory of scoring stays at one block. Each caller keeps its own budget.

use burn::tensor::Device;

/// Scores per block of the sampled ranking protocol (rows: held-out pairs with their negatives).
pub const SAMPLED_RANKING: usize = 1 << 20;
/// Scores per block of the full and factorized ranking protocols (rows: users over all items).
pub const FULL_RANKING: usize = 1 << 22;
/// Scores per user block of [`recommend`](crate::topk::recommend) on a CPU: about 4M floats
/// (16 MB).
pub const RECOMMEND_CPU: usize = 1 << 22;
/// Scores per user block of [`recommend`](crate::topk::recommend) on a GPU: 16M floats (64 MB),
/// which large batches keep busy (138,493 users over 26,744 items take about 230).
pub const RECOMMEND_GPU: usize = 1 << 24;
/// Scores per user block of [`LoadedRun::score_all`](crate::run::LoadedRun::score_all), which
/// copies every score to the host.
pub const SCORE_ALL: usize = 16_000_000;

/// Rows of `row_len` scores in a block of about `budget` scores; at least one.
pub fn rows_per_block(row_len: usize, budget: usize) -> usize {
    (budget / row_len.max(1)).max(1)
}

/// The budget of [`recommend`](crate::topk::recommend) on `device`: [`RECOMMEND_GPU`] on a GPU,
/// [`RECOMMEND_CPU`] elsewhere.
pub fn recommend_budget(device: &Device) -> usize {
    if crate::device::is_gpu(device) {
        RECOMMEND_GPU
    } else {
        RECOMMEND_CPU
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_block_divides_and_keeps_one_row() {
        assert_eq!(rows_per_block(1000, 1 << 22), 4194);
        assert_eq!(rows_per_block(0, 10), 10);
        assert_eq!(rows_per_block(1 << 30, 1 << 20), 1);
        assert_eq!(rows_per_block(26_744, SCORE_ALL), 598);
    }
}
