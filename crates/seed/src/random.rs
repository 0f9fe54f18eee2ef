//! The generator's randomness: a small, seedable, splittable generator (SplitMix64) and the
//! distributions the region needs.
//!
//! Written here rather than taken from a crate because the output must be byte-identical for
//! the same seed forever: a library may change its algorithms between versions, this file
//! changes only with a commit that says so. Every resident and every institution gets its own
//! stream, derived from the seed and its index, so any resident can be generated alone (in any
//! order, on any thread) and a region of N residents is a prefix of a region of 2N.
//!
//! Only IEEE-754 basic operations (add, multiply, divide, sqrt) are used on floats: they round
//! identically on every platform, while `ln`, `exp` or `cos` come from the platform's libm and
//! may differ in the last bit.

/// SplitMix64 (Steele, Lea and Flood, 2014): one 64-bit word of state, passes BigCrush, and its
/// output function is a good hash for deriving independent streams.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective 64-bit mixer.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a stream is for, so that streams of different kinds never coincide.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    Resident = 1,
    Institution = 2,
    Practitioner = 3,
    PlaceNames = 4,
    IdentifierSlots = 5,
}

impl Rng {
    /// The stream of `kind` number `index` (and `sub`, for a second coordinate) under `seed`.
    pub fn stream(seed: u64, kind: Stream, index: u64, sub: u64) -> Rng {
        let key = mix(seed ^ mix((kind as u64).wrapping_mul(GOLDEN_GAMMA)));
        let key = mix(key ^ mix(index.wrapping_add(GOLDEN_GAMMA)));
        Rng {
            state: mix(key ^ mix(sub.wrapping_mul(GOLDEN_GAMMA).wrapping_add(1))),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias worth speaking of: Lemire's
    /// multiply-shift, whose bias is below n / 2^64.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        debug_assert!(low <= high);
        low + self.below((high - low + 1) as u64) as i64
    }

    /// Uniform in [0, 1), with 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// A standard normal deviate, approximated by the sum of six uniforms (Irwin–Hall): it
    /// needs no transcendental function, and its tails stop at ±4.2 SD, which keeps
    /// physiological values inside what a body can show.
    pub fn standard_normal(&mut self) -> f64 {
        let sum: f64 = (0..6).map(|_| self.unit()).sum();
        (sum - 3.0) * std::f64::consts::SQRT_2
    }

    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        mean + sd * self.standard_normal()
    }

    /// A normal deviate clamped to `[low, high]`.
    pub fn normal_within(&mut self, mean: f64, sd: f64, low: f64, high: f64) -> f64 {
        self.normal(mean, sd).clamp(low, high)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A table to draw from by integer weights, in O(log n).
pub struct Weighted {
    cumulative: Vec<u64>,
}

impl Weighted {
    pub fn new(weights: impl IntoIterator<Item = u64>) -> Weighted {
        let mut total = 0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect::<Vec<_>>();
        assert!(total > 0, "a weighted table needs a positive total");
        Weighted { cumulative }
    }

    /// The index drawn.
    pub fn draw(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("non-empty");
        let target = rng.below(total);
        self.cumulative.partition_point(|&c| c <= target)
    }
}

/// A bijection on `0..modulus` (an affine map with a multiplier coprime to the modulus): it
/// spreads consecutive indexes across the range so that slots handed out in order look random,
/// while two indexes never share a slot.
#[derive(Debug, Clone, Copy)]
pub struct Permutation {
    modulus: u64,
    multiplier: u64,
    offset: u64,
}

impl Permutation {
    pub fn new(modulus: u64, rng: &mut Rng) -> Permutation {
        assert!(modulus > 1);
        // Draw multipliers until one is coprime to the modulus; about 4 in 10 are for the
        // moduli used here.
        let multiplier = loop {
            let candidate = modulus / 3 + rng.below(modulus / 3);
            if gcd(candidate, modulus) == 1 {
                break candidate;
            }
        };
        Permutation {
            modulus,
            multiplier,
            offset: rng.below(modulus),
        }
    }

    pub fn apply(&self, index: u64) -> u64 {
        debug_assert!(index < self.modulus);
        ((u128::from(index) * u128::from(self.multiplier) + u128::from(self.offset))
            % u128::from(self.modulus)) as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permutation_is_a_bijection_on_the_slots_of_an_address_code() {
        for (modulus, seed) in [
            (crate::population::SLOTS_PER_ADDRESS_CODE, 1),
            (400, 2),
            (400, 3),
        ] {
            let mut rng = Rng::stream(seed, Stream::IdentifierSlots, 0, 0);
            let permutation = Permutation::new(modulus, &mut rng);
            let mut hit = vec![false; modulus as usize];
            for index in 0..modulus {
                let slot = permutation.apply(index) as usize;
                assert!(!hit[slot], "slot {slot} taken twice");
                hit[slot] = true;
            }
        }
    }

    #[test]
    fn weighted_draws_follow_their_weights() {
        let table = Weighted::new([1, 0, 3]);
        let mut rng = Rng::stream(1, Stream::Resident, 0, 0);
        let mut counts = [0; 3];
        for _ in 0..40_000 {
            counts[table.draw(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let ratio = f64::from(counts[2]) / f64::from(counts[0]);
        assert!((2.8..3.2).contains(&ratio), "{counts:?}");
    }

    #[test]
    fn the_normal_deviate_has_unit_spread_and_bounded_tails() {
        let mut rng = Rng::stream(1, Stream::Resident, 1, 0);
        let draws: Vec<f64> = (0..50_000).map(|_| rng.standard_normal()).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let variance =
            draws.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.02, "{mean}");
        assert!((0.97..1.03).contains(&variance), "{variance}");
        assert!(
            draws
                .iter()
                .all(|d| d.abs() <= 3.0 * std::f64::consts::SQRT_2)
        );
    }
}
