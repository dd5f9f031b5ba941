//! The fuzz targets (`cargo xtask fuzz`) in brief, for every `cargo test`: each target's seeds
//! and a few hundred seeded mutations of them (bit flips, byte changes, insertions, deletions,
//! splices, cuts), through the same entry functions the fuzzer calls. A panic fails the test.

/// xorshift64*: a small seeded generator, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes the parsers treat specially: digits, separators, quotes, signs, line breaks, `\0` (the
/// file separator of multi-file targets) and a high byte.
const INTERESTING: &[u8] = b"0123456789,:\t|;\"-.eE\n\r\0\xff ([{}]=";

fn mutate(input: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let k = rng.below(v.len());
                v[k] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let k = rng.below(v.len());
                v[k] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => v.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 if at < v.len() => {
                let n = 1 + rng.below(16).min(v.len() - at - 1);
                v.drain(at..at + n);
            }
            4 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = 1 + rng.below(64).min(other.len() - from - 1);
                v.splice(at..at, other[from..from + n].iter().copied());
            }
            5 => v.truncate(at),
            _ => {
                // A long run of one digit: numbers past every integer type.
                let digit = b'1' + rng.below(9) as u8;
                v.splice(at..at, std::iter::repeat_n(digit, 1 + rng.below(40)));
            }
        }
    }
    v
}

/// Mutations per target: a few hundred keep the whole test at a few seconds.
const MUTATIONS: usize = 300;

#[test]
fn every_fuzz_target_survives_its_seeds_and_mutations() {
    let targets: Vec<_> = recsys::train::fuzz::all().collect();
    assert!(targets.len() >= 11, "fuzz targets: {}", targets.len());
    for target in targets {
        let seeds = (target.seeds)();
        assert!(!seeds.is_empty(), "{} has no seeds", target.name);
        for seed in &seeds {
            (target.run)(seed);
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.name.len() as u64);
        for k in 0..MUTATIONS {
            let input = &seeds[k % seeds.len()];
            let other = &seeds[rng.below(seeds.len())];
            let m = mutate(input, other, &mut rng);
            (target.run)(&m);
        }
        (target.run)(b"");
    }
}
