//! Where a record came from in Kafka: compact, copyable positions.
//!
//! Topic names are interned once into a [`TopicId`] so that every in-flight
//! event carries 16 bytes of position instead of a string.

use std::collections::HashMap;
use std::fmt;

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
}

impl TopicTable {
    /// An empty table.
    pub fn new() -> TopicTable {
        TopicTable::default()
    }

    /// The id of `name`, adding it on first sight.
    pub fn intern(&mut self, name: &str) -> TopicId {
        if let Some(id) = self.ids.get(name) {
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
    fn positions_display() {
        let pos = SourcePos::new(TopicPartition::new(TopicId(0), 3), 42);
        assert_eq!(pos.to_string(), "topic#0[3]@42");
    }
}
