//! A borrowed, partial decode of a record: only the fields the shipper reads.
//!
//! The full record is still checked to be one valid UTF-8 JSON value, but
//! only `@timestamp`, `event`, `kelp.schema` and the string fields an index
//! template may use are decoded, borrowing from the input where no escapes
//! force a copy. The document is then the input bytes with `event.ingested`
//! spliced into the `event` object; nothing is re-serialized.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::str::FromStr;

use kelp_record::{EventId, SCHEMA_VERSION};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::EncodeError;
use crate::index_name::{Field, FieldSource};

#[derive(Debug, Default, Deserialize)]
struct Named<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct PodView<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    uid: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct ContainerNameView<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    image: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct OwnerView<'a> {
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct KubernetesView<'a> {
    #[serde(default, borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pod: Option<PodView<'a>>,
    #[serde(default, borrow)]
    container: Option<ContainerNameView<'a>>,
    #[serde(default, borrow)]
    node: Option<Named<'a>>,
    #[serde(default, borrow)]
    owner: Option<OwnerView<'a>>,
    // Decoded only when a template asks for a key.
    #[serde(default, borrow)]
    labels: Option<&'a RawValue>,
    #[serde(default, borrow)]
    annotations: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
struct ContainerView<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    runtime: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct LogView<'a> {
    #[serde(default, borrow)]
    level: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct KelpView {
    schema: u32,
}

#[derive(Debug, Deserialize)]
struct Fields<'a> {
    #[serde(rename = "@timestamp", borrow)]
    timestamp: Cow<'a, str>,
    #[serde(default, borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    log: Option<LogView<'a>>,
    #[serde(default, borrow)]
    kubernetes: Option<KubernetesView<'a>>,
    #[serde(default, borrow)]
    container: Option<ContainerView<'a>>,
    #[serde(default, borrow)]
    host: Option<Named<'a>>,
    #[serde(borrow)]
    event: &'a RawValue,
    kelp: KelpView,
}

#[derive(Debug, Deserialize)]
struct EventView<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    // Present-but-null must be seen too, to be replaced rather than duplicated.
    #[serde(default, borrow, deserialize_with = "present")]
    ingested: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Where `inner`, a sub-slice handed out by the parser, lies in `outer`.
fn span_in(outer: &str, inner: &str) -> Option<Range<usize>> {
    let start = inner.as_ptr().addr().checked_sub(outer.as_ptr().addr())?;
    let range = start..start.checked_add(inner.len())?;
    // Same address and length: `inner` really is that part of `outer`.
    outer
        .get(range.clone())
        .is_some_and(|s| std::ptr::eq(s, inner))
        .then_some(range)
}

/// A record decoded just enough to route and encode it.
#[derive(Debug)]
pub struct RecordView<'a> {
    /// The record text without surrounding whitespace.
    text: &'a str,
    fields: Fields<'a>,
    id: EventId,
    /// The `event` object's bytes in `text`.
    event: Range<usize>,
    /// The `event.ingested` value's bytes in `text`, when present.
    ingested: Option<Range<usize>>,
}

impl<'a> RecordView<'a> {
    /// Decodes a Kafka record.
    pub fn parse(bytes: &'a [u8]) -> Result<RecordView<'a>, EncodeError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| EncodeError::InvalidUtf8)?
            .trim_ascii();
        let fields: Fields<'a> = serde_json::from_str(text).map_err(EncodeError::Json)?;
        if fields.kelp.schema > SCHEMA_VERSION {
            return Err(EncodeError::UnsupportedSchema {
                found: fields.kelp.schema,
                supported: SCHEMA_VERSION,
            });
        }
        let event_text = fields.event.get();
        let event_view: EventView<'a> =
            serde_json::from_str(event_text).map_err(EncodeError::Json)?;
        let id = EventId::from_str(&event_view.id).map_err(EncodeError::EventId)?;
        let event = span_in(text, event_text).ok_or(EncodeError::Splice)?;
        let ingested = match event_view.ingested {
            Some(raw) => Some(span_in(text, raw.get()).ok_or(EncodeError::Splice)?),
            None => None,
        };
        // `event` parsed as an object with an `id`, so it is `{...}`.
        if !event_text.ends_with('}') {
            return Err(EncodeError::Splice);
        }
        Ok(RecordView {
            text,
            fields,
            id,
            event,
            ingested,
        })
    }

    /// The record's event id: the document `_id`.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The record's `@timestamp` as milliseconds since the Unix epoch, when
    /// it is RFC 3339.
    pub fn timestamp_unix_millis(&self) -> Option<i64> {
        crate::time::parse_rfc3339_unix_millis(&self.fields.timestamp)
    }

    /// The record's schema version.
    pub fn schema(&self) -> u32 {
        self.fields.kelp.schema
    }

    /// Appends the document: the record with `event.ingested` set to
    /// `ingested` (a JSON string literal, quotes included), on one line.
    pub(super) fn write_document(&self, ingested_json: &str, out: &mut Vec<u8>) {
        let text = self.text.as_bytes();
        let start = out.len();
        match &self.ingested {
            Some(value) => {
                out.extend_from_slice(&text[..value.start]);
                out.extend_from_slice(ingested_json.as_bytes());
                out.extend_from_slice(&text[value.end..]);
            }
            None => {
                // Before the `}` that closes `event`.
                let close = self.event.end - 1;
                out.extend_from_slice(&text[..close]);
                out.extend_from_slice(b",\"ingested\":");
                out.extend_from_slice(ingested_json.as_bytes());
                out.extend_from_slice(&text[close..]);
            }
        }
        // Raw newlines can only be insignificant whitespace in valid JSON
        // (strings escape them), so turning them into spaces keeps the
        // document equal and makes it one NDJSON line.
        if self.text.contains('\n') {
            for b in &mut out[start..] {
                if *b == b'\n' {
                    *b = b' ';
                }
            }
        }
    }
}

/// The string value of `key` in a JSON object of strings.
fn lookup<'a>(map: Option<&'a RawValue>, key: &str) -> Option<Cow<'a, str>> {
    // Values that are not strings make the map unusable for routing: treat
    // the key as missing rather than failing the event.
    let map: BTreeMap<Cow<'a, str>, Cow<'a, str>> = serde_json::from_str(map?.get()).ok()?;
    map.into_iter()
        .find(|(k, _)| k.as_ref() == key)
        .map(|(_, v)| v)
}

fn borrowed<'s>(value: Option<&'s Cow<'_, str>>) -> Option<Cow<'s, str>> {
    value.map(|v| Cow::Borrowed(v.as_ref()))
}

impl FieldSource for RecordView<'_> {
    fn timestamp(&self) -> &str {
        &self.fields.timestamp
    }

    fn field(&self, field: &Field) -> Option<Cow<'_, str>> {
        let f = &self.fields;
        let k = f.kubernetes.as_ref();
        match field {
            Field::Namespace => borrowed(k?.namespace.as_ref()),
            Field::PodName => borrowed(k?.pod.as_ref()?.name.as_ref()),
            Field::PodUid => borrowed(k?.pod.as_ref()?.uid.as_ref()),
            Field::ContainerName => borrowed(k?.container.as_ref()?.name.as_ref()),
            Field::ContainerImage => borrowed(k?.container.as_ref()?.image.as_ref()),
            Field::NodeName => borrowed(k?.node.as_ref()?.name.as_ref()),
            Field::OwnerKind => borrowed(k?.owner.as_ref()?.kind.as_ref()),
            Field::OwnerName => borrowed(k?.owner.as_ref()?.name.as_ref()),
            Field::Label(key) => lookup(k?.labels, key),
            Field::Annotation(key) => lookup(k?.annotations, key),
            Field::ContainerId => borrowed(f.container.as_ref()?.id.as_ref()),
            Field::ContainerRuntime => borrowed(f.container.as_ref()?.runtime.as_ref()),
            Field::HostName => borrowed(f.host.as_ref()?.name.as_ref()),
            Field::Stream => borrowed(f.stream.as_ref()),
            Field::LogLevel => borrowed(f.log.as_ref()?.level.as_ref()),
        }
    }
}
