//! Where a record came from in Kafka: compact, copyable positions.
//!
//! Topic names are interned once into a [`TopicId`] so that every in-flight
//! event carries 16 bytes of position instead of a string.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// An interned topic name; see [`TopicTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicId(pub u32);

/// One partition of one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The interned topic.
    pub topic: TopicId,
    /// The partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// The partition `partition` of `topic`.
    pub fn new(topic: TopicId, partition: i32) -> TopicPartition {
        TopicPartition { topic, partition }
    }
}

/// The position of one record: its partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourcePos {
    /// The record's partition.
    pub tp: TopicPartition,
    /// The record's offset in that partition.
    pub offset: i64,
}

impl SourcePos {
    /// The record at `offset` in `tp`.
    pub fn new(tp: TopicPartition, offset: i64) -> SourcePos {
        SourcePos { tp, offset }
    }
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "topic#{}[{}]@{}",
            self.tp.topic.0, self.tp.partition, self.offset
        )
    }
}

/// Interns topic names. Subscriptions have a handful of topics (a regex
/// subscription may add some at runtime), so the table only grows.
#[derive(Debug, Clone, Default)]
pub struct TopicTable {
    names: Vec<String>,
    ids: HashMap<String, TopicId>,
    /// The last name interned: its index in `names` and its id.
    last: Option<(usize, TopicId)>,
}

impl TopicTable {
    /// An empty table.
    pub fn new() -> TopicTable {
        TopicTable::default()
    }

    /// The id of `name`, adding it on first sight.
    pub fn intern(&mut self, name: &str) -> TopicId {
        // Records come in runs of one topic: compare with the last name
        // before hashing.
        if let Some(&(index, id)) = self.last.as_ref()
            && self.names.get(index).is_some_and(|n| n == name)
        {
            return id;
        }
        if let Some(id) = self.ids.get(name) {
            self.last = usize::try_from(id.0).ok().map(|index| (index, *id));
            return *id;
        }
        // u32 topics are far beyond what one consumer subscribes to; saturate
        // rather than wrap so a pathological table cannot alias two names.
        let id = TopicId(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    /// The id of `name`, if it was interned.
    pub fn get(&self, name: &str) -> Option<TopicId> {
        self.ids.get(name).copied()
    }

    /// The name behind `id`.
    pub fn name(&self, id: TopicId) -> Option<&str> {
        let index = usize::try_from(id.0).ok()?;
        self.names.get(index).map(String::as_str)
    }
}

/// A hasher for [`TopicPartition`] keys, looked up for every record:
/// SipHash guards against chosen keys, which partition numbers are not, and
/// showed in profiles.
#[derive(Debug, Default, Clone, Copy)]
pub struct TpHasher(u64);

impl Hasher for TpHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u64(u64::from(n as u32));
    }

    fn write_u64(&mut self, n: u64) {
        // Multiply-rotate mixing: every input bit reaches the high bits,
        // which hashbrown uses for its control bytes.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// A map keyed by partition, hashed with [`TpHasher`].
pub type PartitionMap<V> = HashMap<TopicPartition, V, BuildHasherDefault<TpHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable() {
        let mut table = TopicTable::new();
        let a = table.intern("kelp-events");
        let b = table.intern("other");
        assert_ne!(a, b);
        assert_eq!(table.intern("kelp-events"), a);
        assert_eq!(table.get("other"), Some(b));
        assert_eq!(table.get("missing"), None);
        assert_eq!(table.name(a), Some("kelp-events"));
        assert_eq!(table.name(TopicId(99)), None);
    }

    #[test]
    fn the_last_topic_shortcut_keeps_ids_stable() {
        let mut table = TopicTable::new();
        let a = table.intern("a");
        let b = table.intern("b");
        for _ in 0..3 {
            assert_eq!(table.intern("b"), b);
            assert_eq!(table.intern("a"), a);
        }
        assert_eq!(table.intern("c"), TopicId(2));
        assert_eq!(table.intern("a"), a);
    }

    #[test]
    fn partition_hashes_differ_for_neighbours() {
        use std::hash::BuildHasher as _;
        let build = BuildHasherDefault::<TpHasher>::default();
        let mut seen = std::collections::HashSet::new();
        for topic in 0..4 {
            for partition in 0..64 {
                seen.insert(build.hash_one(TopicPartition::new(TopicId(topic), partition)));
            }
        }
        assert_eq!(seen.len(), 4 * 64);
        let mut map: PartitionMap<i32> = PartitionMap::default();
        map.insert(TopicPartition::new(TopicId(1), 2), 12);
        assert_eq!(map.get(&TopicPartition::new(TopicId(1), 2)), Some(&12));
        assert_eq!(map.get(&TopicPartition::new(TopicId(2), 1)), None);
    }

    #[test]
    fn positions_display() {
        let pos = SourcePos::new(TopicPartition::new(TopicId(0), 3), 42);
        assert_eq!(pos.to_string(), "topic#0[3]@42");
    }
}
