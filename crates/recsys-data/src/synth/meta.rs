//! Titles and genres of the synthetic items.

use rand::Rng;

use super::SynthConfig;
use super::random::{Alias, TAG_META, stream};

/// The genres of the MovieLens 20M release, with rough relative frequencies.
const GENRES: [(&str, f64); 19] = [
    ("Drama", 13.3),
    ("Comedy", 8.4),
    ("Thriller", 4.2),
    ("Romance", 4.1),
    ("Action", 3.5),
    ("Crime", 2.9),
    ("Horror", 2.6),
    ("Documentary", 2.5),
    ("Adventure", 2.3),
    ("Sci-Fi", 1.7),
    ("Mystery", 1.5),
    ("Fantasy", 1.4),
    ("War", 1.2),
    ("Children", 1.1),
    ("Musical", 1.0),
    ("Animation", 1.0),
    ("Western", 0.7),
    ("Film-Noir", 0.3),
    ("IMAX", 0.2),
];

/// Titles and genres of the items, from a stream of their own so that [`write_movies_csv`]
/// needs nothing else.
///
/// [`write_movies_csv`]: super::write_movies_csv
pub(super) struct ItemMeta {
    years: Vec<u16>,
    genres: Vec<u32>,
}

impl ItemMeta {
    pub(super) fn title(&self, i: usize) -> String {
        let id = i + 1;
        if id.is_multiple_of(10) {
            format!("Synthetic movie {id}, The ({})", self.years[i])
        } else {
            format!("Synthetic movie {id} ({})", self.years[i])
        }
    }

    /// Genre names in alphabetical order, as MovieLens lists them.
    pub(super) fn genres(&self, i: usize) -> Vec<&'static str> {
        let mask = self.genres[i];
        let mut names: Vec<&str> = GENRES
            .iter()
            .enumerate()
            .filter(|(g, _)| mask & (1 << g) != 0)
            .map(|(_, (name, _))| *name)
            .collect();
        names.sort_unstable();
        names
    }
}

pub(super) fn item_meta(cfg: &SynthConfig) -> ItemMeta {
    let mut rng = stream(cfg.seed, TAG_META, 0);
    let genre_pick = Alias::new(&GENRES.iter().map(|g| g.1).collect::<Vec<_>>());
    let mut years = Vec::with_capacity(cfg.n_items);
    let mut genres = Vec::with_capacity(cfg.n_items);
    for _ in 0..cfg.n_items {
        // Mostly recent films: 2014 minus an exponential age of mean 18 years, from 1915 on.
        let age = -(1.0 - rng.random::<f64>()).ln() * 18.0;
        years.push((2014.0 - age).max(1915.0) as u16);
        let n_genres = 1 + rng.random_range(0..3);
        let mut mask = 0u32;
        for _ in 0..n_genres {
            mask |= 1 << genre_pick.sample(&mut rng);
        }
        genres.push(mask);
    }
    ItemMeta { years, genres }
}
