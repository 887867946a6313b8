//! The deterministic event id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The identity of an event: which file (by content identity, not path) and
/// where in it the event starts.
///
/// The same line read again after any restart, crash or rotation gets the same
/// id, which the shipper uses as the document `_id`, so a replay overwrites.
/// The text form is `<file:016x>-<offset:x>`, e.g. `00c0ffee00c0ffee-1f4`:
/// short, sortable per file, and readable in Kibana.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    /// Stable identity of the source file (a fingerprint, never the path).
    pub file: u64,
    /// Byte offset of the event's first line in that file.
    pub offset: u64,
}

impl EventId {
    /// The id of the event starting at `offset` in the file identified by `file`.
    pub fn new(file: u64, offset: u64) -> EventId {
        EventId { file, offset }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{:x}", self.file, self.offset)
    }
}

/// Why a string is not an event id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parsing event id {0:?} failed: expected <16 hex digits>-<hex offset>")]
pub struct ParseEventIdError(pub String);

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(s: &str) -> Result<EventId, ParseEventIdError> {
        let bad = || ParseEventIdError(s.to_owned());
        let (file, offset) = s.split_once('-').ok_or_else(bad)?;
        if file.len() != 16 || offset.is_empty() || offset.len() > 16 {
            return Err(bad());
        }
        let file = u64::from_str_radix(file, 16).map_err(|_| bad())?;
        let offset = u64::from_str_radix(offset, 16).map_err(|_| bad())?;
        Ok(EventId { file, offset })
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EventId, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
