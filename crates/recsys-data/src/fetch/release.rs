//! The MovieLens releases GroupLens publishes: names, addresses, folders, sizes and checksums.

use std::fmt;
use std::str::FromStr;

use crate::error::{DataError, Result};

/// Where GroupLens serves the releases.
const BASE_URL: &str = "https://files.grouplens.org/datasets/movielens";

/// A MovieLens release that GroupLens publishes as a zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Release {
    /// MovieLens 100K (1998): 100,000 ratings, 943 users, 1,682 movies.
    #[cfg_attr(feature = "clap", value(name = "ml-100k"))]
    Ml100k,
    /// MovieLens 1M (2003): 1,000,209 ratings, 6,040 users, 3,706 movies.
    #[cfg_attr(feature = "clap", value(name = "ml-1m"))]
    Ml1m,
    /// MovieLens 10M (2009): 10,000,054 ratings, 69,878 users, 10,677 movies.
    #[cfg_attr(feature = "clap", value(name = "ml-10m"))]
    Ml10m,
    /// MovieLens 20M (2015): 20,000,263 ratings, 138,493 users, 26,744 movies.
    #[cfg_attr(feature = "clap", value(name = "ml-20m"))]
    Ml20m,
    /// MovieLens 25M (2019): 25,000,095 ratings, 162,541 users, 59,047 movies.
    #[cfg_attr(feature = "clap", value(name = "ml-25m"))]
    Ml25m,
    /// The small "latest" extract (version of 9/2018): 100,836 ratings, 610 users, 9,724 movies.
    #[cfg_attr(feature = "clap", value(name = "ml-latest-small"))]
    MlLatestSmall,
}

impl Release {
    /// Every release, smallest first.
    pub const ALL: [Release; 6] = [
        Release::Ml100k,
        Release::MlLatestSmall,
        Release::Ml1m,
        Release::Ml10m,
        Release::Ml20m,
        Release::Ml25m,
    ];

    /// The release's name, as GroupLens names the zip: `ml-100k`, `ml-1m`, ...
    pub fn name(self) -> &'static str {
        match self {
            Release::Ml100k => "ml-100k",
            Release::Ml1m => "ml-1m",
            Release::Ml10m => "ml-10m",
            Release::Ml20m => "ml-20m",
            Release::Ml25m => "ml-25m",
            Release::MlLatestSmall => "ml-latest-small",
        }
    }

    /// The official download address, `https://files.grouplens.org/datasets/movielens/<name>.zip`.
    pub fn url(self) -> String {
        format!("{BASE_URL}/{}.zip", self.name())
    }

    /// The folder the zip extracts to (`ml-10M100K` for ml-10m; the release name otherwise).
    pub fn folder(self) -> &'static str {
        match self {
            Release::Ml10m => "ml-10M100K",
            other => other.name(),
        }
    }

    /// The files a zip of the release must hold in its [folder](Release::folder), non-empty:
    /// what the loaders read. Checked on every install; for ml-10m, which has no published
    /// SHA-256, this and the zip's size are what tell a real release from another zip.
    pub fn required_members(self) -> &'static [&'static str] {
        match self {
            Release::Ml100k => &["u.data", "u.item"],
            Release::Ml1m => &["ratings.dat", "movies.dat", "users.dat"],
            Release::Ml10m => &["ratings.dat", "movies.dat", "tags.dat"],
            Release::Ml20m | Release::Ml25m | Release::MlLatestSmall => {
                &["ratings.csv", "movies.csv"]
            }
        }
    }

    /// Size of the official zip in bytes.
    ///
    /// Sources: the tensorflow/datasets checksum file (see [`Release::sha256`]) for all but
    /// ml-10m, whose size (65,566,137) is pinned by public download scripts that check it.
    pub fn size(self) -> u64 {
        match self {
            Release::Ml100k => 4_924_029,
            Release::Ml1m => 5_917_549,
            Release::Ml10m => 65_566_137,
            Release::Ml20m => 198_702_078,
            Release::Ml25m => 261_978_986,
            Release::MlLatestSmall => 978_202,
        }
    }

    /// SHA-256 of the official zip, lowercase hex; `None` where no published value was found
    /// (ml-10m), in which case a download is checked by its [size](Release::size) only.
    ///
    /// Source: tensorflow/datasets, `tensorflow_datasets/url_checksums/movielens.txt`, which
    /// pins URL, byte size and SHA-256 of ml-100k, ml-1m, ml-20m, ml-25m and ml-latest-small.
    /// Each value is also pinned, identically, by other public code: a Julia `DataDeps`
    /// registration of the GroupLens data (ml-20m, ml-latest-small) and several download scripts
    /// that verify the archives (ml-100k, ml-1m, ml-20m, ml-25m).
    ///
    /// For ml-10m only GroupLens' MD5 (`ce571fd55effeba0271552578f2648bd`) is published; no
    /// public SHA-256 could be found, and none is invented here.
    ///
    /// ml-latest-small is re-issued by GroupLens from time to time; the value is that of the
    /// 9/2018 issue, so a later issue is rejected rather than silently loaded.
    pub fn sha256(self) -> Option<&'static str> {
        match self {
            Release::Ml100k => {
                Some("50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229")
            }
            Release::Ml1m => {
                Some("a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20")
            }
            Release::Ml10m => None,
            Release::Ml20m => {
                Some("96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3")
            }
            Release::Ml25m => {
                Some("8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa")
            }
            Release::MlLatestSmall => {
                Some("696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436")
            }
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Release {
    type Err = DataError;

    /// Parses `ml-100k`, `ml-1m`, `ml-10m`, `ml-20m`, `ml-25m` or `ml-latest-small`
    /// (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase();
        Release::ALL
            .into_iter()
            .find(|r| r.name() == key)
            .ok_or_else(|| {
                let names: Vec<&str> = Release::ALL.iter().map(|r| r.name()).collect();
                DataError::Invalid(format!(
                    "unknown MovieLens release {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}
