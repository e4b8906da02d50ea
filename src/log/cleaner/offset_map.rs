//! The cleaner's offset map (Kafka's `SkeinOffsetMap`): for each key of the dirty part of a
//! log, the offset of its latest record. Keys are kept as 128-bit hashes, so the map's
//! memory is bounded by the number of keys, not their size: `log.cleaner.dedupe.buffer.size`
//! divided among the cleaner threads, at Kafka's 24 bytes per entry, filled at most to
//! `log.cleaner.io.buffer.load.factor` (0.9).
//!
//! Not synchronised: each cleaner thread owns one.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Bytes Kafka budgets per entry: a 16-byte hash and an 8-byte offset.
const BYTES_PER_ENTRY: usize = 24;

pub struct OffsetMap {
    offsets: HashMap<u128, i64, BuildHasherDefault<HashPrefix>>,
    capacity: usize,
}

impl OffsetMap {
    /// A map for `memory` bytes of dedupe buffer, filled at most to `load_factor`
    /// (`log.cleaner.io.buffer.load.factor`, 0.9 by default).
    pub fn with_memory(memory: usize, load_factor: f64) -> OffsetMap {
        let slots = memory / BYTES_PER_ENTRY;
        OffsetMap {
            offsets: HashMap::default(),
            capacity: ((slots as f64 * load_factor) as usize).max(1),
        }
    }

    /// Records `offset` as the latest for `key`. `false` (nothing recorded) when the map
    /// is full and the key is new.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = key_hash(key);
        if self.offsets.len() >= self.capacity && !self.offsets.contains_key(&hash) {
            return false;
        }
        let latest = self.offsets.entry(hash).or_insert(offset);
        *latest = (*latest).max(offset);
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.offsets.get(&key_hash(key)).copied()
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the map for the next log, keeping its allocation only if it is small.
    pub fn clear(&mut self) {
        if self.offsets.capacity() > 1 << 16 {
            self.offsets = HashMap::default();
        } else {
            self.offsets.clear();
        }
    }
}

/// Two independent 64-bit SipHash values of the key: the chance that two of ten million
/// keys collide (and one loses its latest value) is about 10^-25.
fn key_hash(key: &[u8]) -> u128 {
    let half = |seed: u64| {
        let mut h = std::hash::DefaultHasher::new();
        h.write_u64(seed);
        h.write(key);
        h.finish()
    };
    (u128::from(half(0x9e37_79b9_7f4a_7c15)) << 64) | u128::from(half(0xc2b2_ae3d_27d4_eb4f))
}

/// The map's keys are hashes already: it uses their low 64 bits as they are.
#[derive(Default)]
struct HashPrefix(u64);

impl Hasher for HashPrefix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_offset_wins_and_a_full_map_refuses_new_keys() {
        let mut map = OffsetMap::with_memory(24 * 4, 0.9);
        assert_eq!(map.capacity(), 3);
        assert!(map.put(b"a", 5));
        assert!(
            map.put(b"a", 3),
            "an older offset does not replace a newer one"
        );
        assert_eq!(map.get(b"a"), Some(5));
        assert!(map.put(b"b", 6) && map.put(b"c", 7));
        assert!(!map.put(b"d", 8), "full");
        assert!(map.put(b"b", 9), "a known key still updates");
        assert_eq!((map.get(b"b"), map.get(b"d")), (Some(9), None));
        map.clear();
        assert_eq!(map.len(), 0);
    }
}
