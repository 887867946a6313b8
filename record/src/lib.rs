//! The log event record: the one contract between `kelp-collector` (writer)
//! and `kelp-shipper` (reader).
//!
//! The record is JSON with ECS-style field names, so the document the shipper
//! indexes is the record itself, and Kibana users find the fields they know.
//!
//! Architecture Invariant: this crate does no IO, spawns nothing and knows
//! nothing about Kafka, files or HTTP. It is data, its encoding, and the
//! deterministic event id.

mod encode;
mod id;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::id::{EventId, ParseEventIdError};

/// Version of the record's schema. Bump it on any incompatible change; the
/// shipper refuses records of a newer major schema instead of guessing.
pub const SCHEMA_VERSION: u32 = 1;

/// One log event, as shipped through Kafka and indexed as one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The container runtime's time for the line, RFC 3339 with nanoseconds
    /// (always UTC, `Z`), e.g. `2026-11-27T20:17:29.123456789Z`.
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    /// The log line, joined across partial lines and multiline rules.
    pub message: String,
    /// Which output stream of the container wrote the line.
    pub stream: Stream,
    /// Where the event came from on the node.
    pub log: Log,
    /// Kubernetes metadata: from the path always, from the API server when known.
    pub kubernetes: Kubernetes,
    /// The container that wrote the line.
    pub container: Container,
    /// The node's host name.
    pub host: Host,
    /// The event's identity and, once indexed, ingest time.
    pub event: EventMeta,
    /// kelp's own bookkeeping.
    pub kelp: KelpMeta,
}

/// The container's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The name as it appears in CRI and docker logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// ECS `log.*`: the source position of the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// ECS `log.file.path`.
    pub file: LogFile,
    /// Byte offset of the event's first line in its file.
    pub offset: u64,
    /// Markers for events that were changed on the way, e.g. `truncated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// ECS `log.level`, when a parser recognised one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// ECS `log.file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFile {
    /// Path of the file the event was read from.
    pub path: String,
}

/// A marker on an event that kelp changed or assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The content was longer than the maximum event size and was cut.
    Truncated,
    /// The event was joined from runtime partial lines (CRI `P`, docker 16 KiB chunks).
    Partial,
    /// The event was joined from several lines by a multiline rule.
    Multiline,
    /// The line was not valid UTF-8; invalid bytes became U+FFFD.
    InvalidUtf8,
}

/// ECS-style `kubernetes.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kubernetes {
    /// `kubernetes.namespace`.
    pub namespace: String,
    /// `kubernetes.pod.*`.
    pub pod: Pod,
    /// `kubernetes.container.name`.
    pub container: ContainerName,
    /// `kubernetes.node.name`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
    /// Pod labels from the API server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Pod annotations from the API server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The workload that owns the pod, e.g. a Deployment's ReplicaSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// `kubernetes.pod.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    /// Pod name.
    pub name: String,
    /// Pod UID.
    pub uid: String,
}

/// `kubernetes.container.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerName {
    /// Container name in the pod spec.
    pub name: String,
    /// Container image, when known from the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// `kubernetes.node.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Node name.
    pub name: String,
}

/// `kubernetes.owner.*`: the controller that owns the pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Kind, e.g. `ReplicaSet`, `StatefulSet`, `DaemonSet`, `Job`.
    pub kind: String,
    /// Name of the owner object.
    pub name: String,
}

/// ECS `container.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Container id as the runtime reports it, when the path carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Log format family: `cri` (containerd, CRI-O) or `docker`.
    pub runtime: String,
}

/// ECS `host.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Host name of the node that read the file.
    pub name: String,
}

/// ECS `event.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// Deterministic id from the source position; the shipper's document `_id`.
    pub id: EventId,
    /// When the search engine received the event (set by the shipper), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingested: Option<String>,
}

/// kelp's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KelpMeta {
    /// The record's schema version, [`SCHEMA_VERSION`] when written.
    pub schema: u32,
}

impl Default for KelpMeta {
    fn default() -> Self {
        KelpMeta {
            schema: SCHEMA_VERSION,
        }
    }
}

/// Why bytes could not be read as a record.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a JSON record of this schema.
    #[error("decoding event record failed: {0}")]
    Json(#[from] serde_json::Error),
    /// The record was written by a newer, incompatible collector.
    #[error("decoding event record failed: schema {found} is newer than supported {supported}")]
    UnsupportedSchema {
        /// Schema version found in the record.
        found: u32,
        /// Newest schema version this build reads.
        supported: u32,
    },
}

impl Event {
    /// Encodes the record as the JSON bytes that travel through Kafka.
    pub fn to_json(&self) -> Vec<u8> {
        // Sized once: growing from serde_json's 128 bytes by doubling cost
        // several reallocations per record and left up to half of each
        // buffer unused while the record waited for Kafka.
        let mut buf = Vec::with_capacity(self.json_len_hint());
        encode::write_event(self, &mut buf);
        buf
    }

    /// An upper estimate of the encoded length: the field names and fixed
    /// parts, plus every variable string with room for some escaping.
    fn json_len_hint(&self) -> usize {
        let maps: usize = self
            .kubernetes
            .labels
            .iter()
            .chain(&self.kubernetes.annotations)
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum();
        let optional = [
            self.log.level.as_deref(),
            self.kubernetes.container.image.as_deref(),
            self.kubernetes.node.as_ref().map(|n| n.name.as_str()),
            self.kubernetes.owner.as_ref().map(|o| o.name.as_str()),
            self.container.id.as_deref(),
            self.event.ingested.as_deref(),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.len() + 40)
        .sum::<usize>();
        let strings = self.message.len()
            + self.log.file.path.len()
            + self.kubernetes.namespace.len()
            + self.kubernetes.pod.name.len()
            + self.kubernetes.pod.uid.len()
            + self.kubernetes.container.name.len()
            + self.host.name.len()
            + self.timestamp.len();
        // 320: field names, punctuation, stream, flags, offset, id, schema.
        320 + strings + strings / 8 + maps + optional
    }

    /// Appends the encoding to `buf`, which may hold other records before it.
    pub fn append_json(&self, buf: &mut Vec<u8>) {
        buf.reserve(self.json_len_hint());
        encode::write_event(self, buf);
    }

    /// Encodes into `buf`, reusing its allocation.
    pub fn write_json(&self, buf: &mut Vec<u8>) {
        buf.clear();
        encode::write_event(self, buf);
    }

    /// Decodes a record, refusing schemas newer than this build understands.
    pub fn from_json(bytes: &[u8]) -> Result<Event, DecodeError> {
        let event: Event = serde_json::from_slice(bytes)?;
        if event.kelp.schema > SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedSchema {
                found: event.kelp.schema,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(event)
    }
}
