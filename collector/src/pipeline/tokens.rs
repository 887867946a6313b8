//! The map of events in flight, keyed by delivery token.
//!
//! Tokens are sequential `u64`s the pipeline hands out itself, so there is
//! nothing for an attacker to choose and the default SipHash only costs time:
//! it was 7% of the collector's CPU into Kafka. A multiplicative (Fibonacci)
//! hash spreads sequential keys over every bucket and mixes the high bits
//! that hashbrown's control bytes use.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap` from delivery token to `V` with [`TokenHasher`].
pub(crate) type TokenMap<V> = HashMap<u64, V, BuildHasherDefault<TokenHasher>>;

/// Hashes one `u64` by multiplying it with 2^64 / φ.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys use this hasher; fold anything else in anyway.
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher as _;

    use super::*;

    #[test]
    fn sequential_tokens_spread_over_buckets_and_control_bytes() {
        let build = BuildHasherDefault::<TokenHasher>::default();
        // Low bits pick the bucket, the top 7 the control byte.
        let buckets: HashSet<u64> = (0..4096u64).map(|t| build.hash_one(t) & 4095).collect();
        let controls: HashSet<u64> = (0..4096u64).map(|t| build.hash_one(t) >> 57).collect();
        assert_eq!(buckets.len(), 4096, "every bucket used once");
        assert_eq!(controls.len(), 128, "every control byte value used");
    }

    #[test]
    fn the_map_works_as_a_map() {
        let mut map = TokenMap::default();
        for t in 0..10_000u64 {
            map.insert(t, t * 2);
        }
        for t in (0..10_000u64).step_by(2) {
            assert_eq!(map.remove(&t), Some(t * 2));
        }
        assert_eq!(map.len(), 5_000);
        assert_eq!(map.get(&9_999), Some(&19_998));
    }
}
