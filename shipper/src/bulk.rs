//! Bulk request bodies: NDJSON for `POST /_bulk`.
//!
//! Each event becomes two lines: the action
//! `{"index":{"_index":"<name>","_id":"<event.id>"}}` and the document, which is
//! the record plus `event.ingested`. The `index` action (not `create`) makes a
//! replay overwrite the document with the same `_id` in the same index.
//!
//! A [`BulkBatch`] remembers, for each event in request order, where it came
//! from in Kafka and where its lines are in the body, so that the bulk
//! response's items (also in request order) map back to offsets, and so that
//! the batch can be cut in two on HTTP 413 or narrowed to the items to retry.
//!
//! # Decoding
//!
//! The first version decoded the full [`kelp_record::Event`] and re-serialized
//! it: 2.8 µs of CPU per event on `benches/encode.rs` (5.3 µs wall on a
//! loaded 2-core box), at the 3 µs budget, most of it allocating every string
//! of the record and serializing it again. Then [`RecordView`] decoded only
//! `@timestamp`, `event`, `kelp.schema` and the string fields index templates
//! use with serde_json, borrowing from the input, and the document became the
//! input bytes with `event.ingested` spliced into the `event` object. Now the
//! view is one hand-written pass that checks the whole record is one valid
//! JSON object and picks those fields on the way, allocating nothing for a
//! record without escapes; it accepts exactly what the serde decode accepted
//! (a property test compares them; see `bulk/view.rs` for the one deliberate
//! difference). Fields the shipper does not read pass through untouched: a
//! field a newer collector adds is kept in `_source`, and type errors in them
//! are the mapping's to report (item 400, dead-lettered). A property test
//! checks that the documents and index names equal the full decode's.

use std::ops::Range;

use bytes::Bytes;
use kelp_record::{EventId, ParseEventIdError};

use crate::index_name::{IndexTemplate, NameCache, RenderError};
use crate::source::SourcePos;
use crate::time::format_rfc3339_millis;

mod view;

/// Largest body capacity reserved up front.
const MAX_PRESIZED_BYTES: usize = 16 << 20;

/// Most items reserved up front.
const MAX_PRESIZED_ITEMS: usize = 10_000;

/// Appends the id's text form, `<file:016x>-<offset:x>` (its `Display`),
/// without the formatting machinery: this runs for every event.
fn push_event_id(out: &mut Vec<u8>, id: EventId) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        out.push(HEX[((id.file >> (shift * 4)) & 0xf) as usize]);
    }
    out.push(b'-');
    // At least one digit, no leading zeros.
    let digits = (64 - id.offset.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        out.push(HEX[((id.offset >> (shift * 4)) & 0xf) as usize]);
    }
}

/// The id of its canonical text form, the one [`push_event_id`] writes and
/// the collector sends: 16 lowercase hex digits, `-`, and the offset in
/// lowercase hex without leading zeros. Such a text is copied into the
/// action line as is. `None` for anything else, which `EventId::from_str`
/// then reads (it also takes uppercase digits, a `+` and leading zeros).
fn parse_canonical_event_id(text: &str) -> Option<EventId> {
    fn lower_hex(digits: &[u8]) -> Option<u64> {
        digits.iter().try_fold(0u64, |value, &d| {
            let digit = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                _ => return None,
            };
            Some(value << 4 | u64::from(digit))
        })
    }
    let bytes = text.as_bytes();
    if !(18..=33).contains(&bytes.len()) || bytes[16] != b'-' {
        return None;
    }
    let (file, offset) = (&bytes[..16], &bytes[17..]);
    if offset.len() > 1 && offset[0] == b'0' {
        return None;
    }
    Some(EventId::new(lower_hex(file)?, lower_hex(offset)?))
}

pub use self::view::{RecordView, SyntaxError};

/// The shipper's time for `event.ingested`: when the event entered a bulk
/// request body, formatted once per millisecond by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    text: String,
    /// `text` as a JSON string literal, quotes included.
    json: String,
}

impl Ingested {
    /// From milliseconds since the Unix epoch (the caller reads the clock).
    pub fn from_unix_millis(unix_millis: i64) -> Ingested {
        let text = format_rfc3339_millis(unix_millis);
        // RFC 3339 text has nothing to escape.
        let json = format!("\"{text}\"");
        Ingested { text, json }
    }

    /// The RFC 3339 text, e.g. `2026-11-27T20:17:30.123Z`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// When a batch is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Body size limit in bytes. A single event larger than this still makes
    /// a batch of one: it is never silently dropped here.
    pub max_bytes: usize,
    /// Event count limit.
    pub max_events: usize,
}

/// Why a record cannot be encoded. Such a record is dead-lettered as is.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The bytes are not UTF-8.
    #[error("decoding record failed: not valid utf-8")]
    InvalidUtf8,
    /// The bytes are not one JSON object, or lack `@timestamp`, `event.id`
    /// or `kelp.schema`, or a field the shipper reads has the wrong type.
    #[error("decoding record failed: {0}")]
    Syntax(#[from] SyntaxError),
    /// `event.id` is not an event id.
    #[error("decoding record failed: {0}")]
    EventId(ParseEventIdError),
    /// The record was written by a newer, incompatible collector.
    #[error("decoding record failed: schema {found} is newer than supported {supported}")]
    UnsupportedSchema {
        /// Schema version found in the record.
        found: u32,
        /// Newest schema version this build reads.
        supported: u32,
    },
    /// The record has no usable index name.
    #[error("encoding bulk item failed: {0}")]
    Render(#[from] RenderError),
}

impl EncodeError {
    /// A short, bounded label for metrics and the dead-letter record.
    pub fn reason(&self) -> &'static str {
        match self {
            EncodeError::InvalidUtf8 => "invalid_utf8",
            EncodeError::Syntax(_) => "invalid_json",
            EncodeError::EventId(_) => "invalid_event_id",
            EncodeError::UnsupportedSchema { .. } => "unsupported_schema",
            EncodeError::Render(e) => e.reason(),
        }
    }
}

/// The outcome of adding a record that was not added.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The batch is at a limit: send it, then push the record to a new one.
    #[error("adding bulk item failed: the batch is full")]
    Full,
    /// The record itself is bad; see [`EncodeError::reason`].
    #[error(transparent)]
    Rejected(#[from] EncodeError),
}

/// One event in a batch, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    /// Where the record came from.
    pub source: SourcePos,
    /// The document `_id`.
    pub id: EventId,
    /// Byte range of the action line in the body, newline included.
    action: Range<usize>,
    /// Byte range of the document line in the body, newline included.
    document: Range<usize>,
    /// Byte range of the index name inside the action line.
    index: Range<usize>,
    /// The event's `@timestamp` in milliseconds since the Unix epoch, for the
    /// delay metric once the search engine has the document.
    pub timestamp_unix_millis: Option<i64>,
}

impl BatchItem {
    fn len(&self) -> usize {
        self.document.end - self.action.start
    }

    fn shifted(&self, from: usize, to: usize) -> BatchItem {
        let shift = |r: &Range<usize>| (r.start - from + to)..(r.end - from + to);
        BatchItem {
            source: self.source,
            id: self.id,
            action: shift(&self.action),
            document: shift(&self.document),
            index: shift(&self.index),
            timestamp_unix_millis: self.timestamp_unix_millis,
        }
    }
}

/// The allocations of a finished batch, reused by the next one.
#[derive(Debug, Default)]
pub struct BatchBuffers {
    body: Vec<u8>,
    items: Vec<BatchItem>,
}

impl BatchBuffers {
    /// Bytes reserved for bodies.
    pub fn capacity_bytes(&self) -> usize {
        self.body.capacity()
    }
}

/// A bulk request body under construction, with its items' origins.
#[derive(Debug, Clone)]
pub struct BulkBatch {
    limits: BatchLimits,
    body: Vec<u8>,
    /// The body once sent: shared by every send of the batch instead of
    /// copied (bodies are megabytes).
    sealed: Option<Bytes>,
    items: Vec<BatchItem>,
    /// The last index name rendered: the next record mostly has the same.
    names: Box<NameCache>,
}

impl BulkBatch {
    /// An empty batch.
    pub fn new(limits: BatchLimits) -> BulkBatch {
        BulkBatch::with_buffers(limits, BatchBuffers::default())
    }

    /// An empty batch that writes into the buffers of an earlier one.
    pub fn with_buffers(limits: BatchLimits, buffers: BatchBuffers) -> BulkBatch {
        let BatchBuffers {
            mut body,
            mut items,
        } = buffers;
        body.clear();
        items.clear();
        // Sized up front: growing by doubling copied each body about twice,
        // and the items too. Untouched capacity costs no memory until written.
        body.reserve(limits.max_bytes.min(MAX_PRESIZED_BYTES));
        items.reserve(limits.max_events.min(MAX_PRESIZED_ITEMS));
        BulkBatch {
            limits,
            body,
            sealed: None,
            items,
            names: Box::default(),
        }
    }

    /// The batch's buffers, emptied, for the next batch: a fresh body of
    /// megabytes is page-faulted in again and zeroed by the kernel every
    /// time. `None` while a sent body is still shared.
    pub fn into_buffers(self) -> Option<BatchBuffers> {
        let body = match self.sealed {
            Some(bytes) => {
                let mut body = bytes.try_into_mut().ok()?;
                // Cleared first: converting copies what is left in it.
                body.clear();
                Vec::from(body)
            }
            None => self.body,
        };
        Some(BatchBuffers {
            body,
            items: self.items,
        })
    }

    /// The batch's limits.
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Decodes a Kafka record and appends it. On any error the batch is unchanged.
    pub fn push_record(
        &mut self,
        source: SourcePos,
        record: &[u8],
        template: &IndexTemplate,
        ingested: &Ingested,
    ) -> Result<(), PushError> {
        if self.items.len() >= self.limits.max_events {
            return Err(PushError::Full);
        }
        let view = RecordView::parse(record)?;
        self.push_view(source, &view, template, ingested)
    }

    /// Appends an already decoded record. On any error the batch is unchanged.
    pub fn push_view(
        &mut self,
        source: SourcePos,
        view: &RecordView<'_>,
        template: &IndexTemplate,
        ingested: &Ingested,
    ) -> Result<(), PushError> {
        if self.items.len() >= self.limits.max_events || self.sealed.is_some() {
            return Err(PushError::Full);
        }
        let name = template
            .render_cached(view, &mut self.names)
            .map_err(EncodeError::from)?;

        let start = self.body.len();
        self.body.extend_from_slice(br#"{"index":{"_index":""#);
        let index_start = self.body.len();
        // Rendered names are sanitized to `a-z 0-9 - _ . +`: nothing to escape.
        self.body.extend_from_slice(name.as_bytes());
        let index = index_start..self.body.len();
        self.body.extend_from_slice(br#"","_id":""#);
        match view.canonical_id_text() {
            Some(text) => self.body.extend_from_slice(text.as_bytes()),
            None => push_event_id(&mut self.body, view.id()),
        }
        self.body.extend_from_slice(b"\"}}\n");
        let doc_start = self.body.len();
        view.write_document(&ingested.json, &mut self.body);
        self.body.push(b'\n');

        if !self.items.is_empty() && self.body.len() > self.limits.max_bytes {
            self.body.truncate(start);
            return Err(PushError::Full);
        }
        self.items.push(BatchItem {
            source,
            id: view.id(),
            action: start..doc_start,
            document: doc_start..self.body.len(),
            index,
            timestamp_unix_millis: view.timestamp_unix_millis(),
        });
        Ok(())
    }

    /// The body as shared bytes, for sending; the batch takes no more events
    /// after this. Every later call returns the same bytes without a copy.
    pub fn seal(&mut self) -> Bytes {
        match &self.sealed {
            Some(bytes) => bytes.clone(),
            None => {
                let bytes = Bytes::from(std::mem::take(&mut self.body));
                self.sealed = Some(bytes.clone());
                bytes
            }
        }
    }

    /// Whether another event would certainly not fit (or the batch is sealed).
    pub fn is_full(&self) -> bool {
        self.sealed.is_some()
            || self.items.len() >= self.limits.max_events
            || self.body().len() >= self.limits.max_bytes
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch has no events.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The request body: NDJSON, every line newline-terminated.
    pub fn body(&self) -> &[u8] {
        self.sealed.as_deref().unwrap_or(&self.body)
    }

    /// The items in request order.
    pub fn items(&self) -> &[BatchItem] {
        &self.items
    }

    /// The document line of item `i`, without its newline: what goes to the
    /// dead-letter topic.
    pub fn document(&self, i: usize) -> Option<&[u8]> {
        let item = self.items.get(i)?;
        self.body().get(item.document.start..item.document.end - 1)
    }

    /// The index name item `i` is written to.
    pub fn index_name(&self, i: usize) -> Option<&str> {
        let item = self.items.get(i)?;
        std::str::from_utf8(self.body().get(item.index.clone())?).ok()
    }

    /// Cuts the batch into two halves in request order, for HTTP 413. A batch
    /// of fewer than two events cannot be cut and comes back as `Err`.
    pub fn split(self) -> Result<(BulkBatch, BulkBatch), BulkBatch> {
        if self.items.len() < 2 {
            return Err(self);
        }
        let mid = self.items.len() / 2;
        let first = self.rebuilt(&self.items[..mid]);
        let second = self.rebuilt(&self.items[mid..]);
        Ok((first, second))
    }

    /// A new batch with the items `keep` accepts, in order: e.g. the items a
    /// response said to retry.
    pub fn select(&self, mut keep: impl FnMut(usize, &BatchItem) -> bool) -> BulkBatch {
        let kept: Vec<BatchItem> = self
            .items
            .iter()
            .enumerate()
            .filter(|(i, item)| keep(*i, item))
            .map(|(_, item)| item.clone())
            .collect();
        self.rebuilt(&kept)
    }

    fn rebuilt(&self, items: &[BatchItem]) -> BulkBatch {
        let mut out = BulkBatch {
            limits: self.limits,
            body: Vec::with_capacity(items.iter().map(BatchItem::len).sum()),
            sealed: None,
            items: Vec::with_capacity(items.len()),
            names: Box::default(),
        };
        for item in items {
            let to = out.body.len();
            out.body
                .extend_from_slice(&self.body()[item.action.start..item.document.end]);
            out.items.push(item.shifted(item.action.start, to));
        }
        out
    }
}

#[cfg(test)]
mod tests;
