//! A borrowed, partial decode of a record: only the fields the shipper reads.
//!
//! One pass over the record both checks that it is one valid JSON object
//! (RFC 8259: strings, escapes, numbers, literals, nesting) and picks
//! `@timestamp`, `event.id`, `event.ingested`, `kelp.schema` and the string
//! fields an index template may use, borrowing from the input where no
//! escapes force a copy. It allocates nothing for a record without escapes.
//! The document is then the input bytes with `event.ingested` spliced into
//! the `event` object; nothing is re-serialized.
//!
//! The check must be complete: the document goes into the NDJSON body as
//! is, so anything but one JSON object (a second value, an array, a raw
//! control character) must be dead-lettered here rather than reach the
//! search engine. What it accepts and rejects is the same as decoding the
//! picked fields with `serde_json` (a property test compares the two), with
//! one deliberate difference: the record and its known objects must be JSON
//! objects, where serde also builds a struct from an array. Like serde's
//! skipping, skipped values have no depth limit; they are checked without
//! recursion.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::str::FromStr;

use kelp_record::{EventId, SCHEMA_VERSION};

use super::EncodeError;
use crate::index_name::{Field, FieldSource};

/// Why a record is not one JSON object with the fields the shipper needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct SyntaxError {
    /// What was wrong, e.g. `expected a string`.
    pub what: &'static str,
    /// Byte offset in the record (after leading whitespace).
    pub at: usize,
}

/// The fields the shipper reads.
#[derive(Debug, Default)]
struct Fields<'a> {
    timestamp: Cow<'a, str>,
    stream: Option<Cow<'a, str>>,
    log_level: Option<Cow<'a, str>>,
    namespace: Option<Cow<'a, str>>,
    pod_name: Option<Cow<'a, str>>,
    pod_uid: Option<Cow<'a, str>>,
    container_name: Option<Cow<'a, str>>,
    container_image: Option<Cow<'a, str>>,
    node_name: Option<Cow<'a, str>>,
    owner_kind: Option<Cow<'a, str>>,
    owner_name: Option<Cow<'a, str>>,
    // The JSON text, decoded only when a template asks for a key.
    labels: Option<&'a str>,
    annotations: Option<&'a str>,
    container_id: Option<Cow<'a, str>>,
    container_runtime: Option<Cow<'a, str>>,
    host_name: Option<Cow<'a, str>>,
    schema: u32,
}

/// A record decoded just enough to route and encode it.
#[derive(Debug)]
pub struct RecordView<'a> {
    /// The record text without surrounding whitespace.
    text: &'a str,
    fields: Fields<'a>,
    id: EventId,
    /// `event.id` as it is in the record, when that is the canonical text.
    canonical_id_text: Option<&'a str>,
    /// The `event` object's bytes in `text`.
    event: Range<usize>,
    /// The `event.ingested` value's bytes in `text`, when present.
    ingested: Option<Range<usize>>,
    /// `@timestamp` in milliseconds since the Unix epoch, parsed once for
    /// the index name and the delay metric.
    timestamp_unix_millis: Option<i64>,
}

impl<'a> RecordView<'a> {
    /// Decodes a Kafka record.
    pub fn parse(bytes: &'a [u8]) -> Result<RecordView<'a>, EncodeError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| EncodeError::InvalidUtf8)?
            .trim_ascii();
        let picked = Scanner::new(text).record()?;
        if picked.fields.schema > SCHEMA_VERSION {
            return Err(EncodeError::UnsupportedSchema {
                found: picked.fields.schema,
                supported: SCHEMA_VERSION,
            });
        }
        // The collector's ids are canonical: parsed in one pass and later
        // copied rather than formatted again.
        let (id, canonical_id_text) = match &picked.id {
            Cow::Borrowed(text) => match super::parse_canonical_event_id(text) {
                Some(id) => (id, Some(*text)),
                None => (EventId::from_str(text).map_err(EncodeError::EventId)?, None),
            },
            Cow::Owned(text) => (EventId::from_str(text).map_err(EncodeError::EventId)?, None),
        };
        let timestamp_unix_millis =
            crate::time::parse_rfc3339_unix_millis(&picked.fields.timestamp);
        Ok(RecordView {
            text,
            timestamp_unix_millis,
            fields: picked.fields,
            id,
            canonical_id_text,
            event: picked.event,
            ingested: picked.ingested,
        })
    }

    /// The record's event id: the document `_id`.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// `event.id` as written in the record when it is the id's canonical
    /// text (what `EventId`'s `Display` writes).
    pub fn canonical_id_text(&self) -> Option<&'a str> {
        self.canonical_id_text
    }

    /// The record's `@timestamp` as milliseconds since the Unix epoch, when
    /// it is RFC 3339.
    pub fn timestamp_unix_millis(&self) -> Option<i64> {
        self.timestamp_unix_millis
    }

    /// The record's schema version.
    pub fn schema(&self) -> u32 {
        self.fields.schema
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
fn lookup<'a>(map: Option<&'a str>, key: &str) -> Option<Cow<'a, str>> {
    // Values that are not strings make the map unusable for routing: treat
    // the key as missing rather than failing the event.
    let map: BTreeMap<Cow<'a, str>, Cow<'a, str>> = serde_json::from_str(map?).ok()?;
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

    fn timestamp_unix_millis(&self) -> Option<i64> {
        self.timestamp_unix_millis
    }

    fn field(&self, field: &Field) -> Option<Cow<'_, str>> {
        let f = &self.fields;
        match field {
            Field::Namespace => borrowed(f.namespace.as_ref()),
            Field::PodName => borrowed(f.pod_name.as_ref()),
            Field::PodUid => borrowed(f.pod_uid.as_ref()),
            Field::ContainerName => borrowed(f.container_name.as_ref()),
            Field::ContainerImage => borrowed(f.container_image.as_ref()),
            Field::NodeName => borrowed(f.node_name.as_ref()),
            Field::OwnerKind => borrowed(f.owner_kind.as_ref()),
            Field::OwnerName => borrowed(f.owner_name.as_ref()),
            Field::Label(key) => lookup(f.labels, key),
            Field::Annotation(key) => lookup(f.annotations, key),
            Field::ContainerId => borrowed(f.container_id.as_ref()),
            Field::ContainerRuntime => borrowed(f.container_runtime.as_ref()),
            Field::HostName => borrowed(f.host_name.as_ref()),
            Field::Stream => borrowed(f.stream.as_ref()),
            Field::LogLevel => borrowed(f.log_level.as_ref()),
        }
    }
}

/// What one pass over a record found.
#[derive(Debug)]
struct Picked<'a> {
    fields: Fields<'a>,
    id: Cow<'a, str>,
    event: Range<usize>,
    ingested: Option<Range<usize>>,
}

/// A string token: its content's bytes, without the quotes.
#[derive(Debug, Clone)]
struct Token {
    range: Range<usize>,
    /// Whether it holds a backslash escape, i.e. needs decoding.
    escaped: bool,
}

const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is zero; exact (no borrow from
/// a lower byte), because every bit found is acted on.
#[inline(always)]
fn zero_bytes(word: u64) -> u64 {
    !(((word & LOWS).wrapping_add(LOWS)) | word | LOWS)
}

/// The high bit of each byte of `word` that ends a run of plain string
/// bytes: `"`, `\` or a control character (below 0x20).
#[inline(always)]
fn stop_bytes(word: u64) -> u64 {
    // Flipping bit 1 maps `"` (0x22) to 0x20 and keeps 0x00-0x1f among
    // themselves, so one "below 0x21" test finds quotes and control
    // characters: b < 0x21 exactly when its low seven bits plus 0x5f stay
    // below 0x80 and its high bit is clear.
    let flipped = word ^ 0x0202_0202_0202_0202;
    let quote_or_control =
        !(((flipped & LOWS).wrapping_add(0x5f5f_5f5f_5f5f_5f5f)) | flipped | LOWS);
    let backslash = zero_bytes(word ^ (u64::from(b'\\') * 0x0101_0101_0101_0101));
    (quote_or_control | backslash) & HIGHS
}

/// The stop bits of 64 bytes as one mask, bit `i` for byte `i`. Eight
/// independent words and no branches: the string scan then finds the end
/// of most strings with one `trailing_zeros`.
fn stop_mask(block: &[u8; 64]) -> u64 {
    let mut mask = 0;
    for (i, chunk) in block.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // The high bits, one per byte, gathered into the top byte by a
        // multiplication whose partial products never overlap.
        let bits =
            (stop_bytes(u64::from_le_bytes(word)) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        mask |= bits << (i * 8);
    }
    mask
}

/// Open containers of a skipped value: a bit per level (1 = object), the
/// first 64 levels without allocating.
#[derive(Debug, Default)]
struct Nesting {
    bits: u64,
    depth: usize,
    deeper: Vec<bool>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            self.bits = (self.bits << 1) | u64::from(object);
        } else {
            self.deeper.push(object);
        }
        self.depth += 1;
    }

    /// The innermost container: `Some(true)` for an object.
    fn top(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d if d > 64 => self.deeper.last().copied(),
            _ => Some(self.bits & 1 == 1),
        }
    }

    fn pop(&mut self) {
        if self.depth > 64 {
            self.deeper.pop();
        } else if self.depth > 0 {
            self.bits >>= 1;
        }
        self.depth = self.depth.saturating_sub(1);
    }
}

/// Seen known keys of one object, to refuse duplicates as serde does.
#[derive(Debug, Default)]
struct Seen(u32);

impl Seen {
    fn first(&mut self, bit: u32, at: usize) -> Result<(), SyntaxError> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return Err(SyntaxError {
                what: "duplicate field",
                at,
            });
        }
        self.0 |= mask;
        Ok(())
    }
}

/// A single-pass JSON checker over one record.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// The 64-byte block whose [`stop_mask`] is in `mask`; blocks are
    /// computed lazily, each once, as the scan moves forward.
    block: usize,
    mask: u64,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            block: usize::MAX,
            mask: 0,
        }
    }

    fn error(&self, what: &'static str) -> SyntaxError {
        SyntaxError { what, at: self.pos }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `byte` after optional whitespace.
    #[inline]
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), SyntaxError> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// The whole record: one object, nothing after it.
    fn record(mut self) -> Result<Picked<'a>, SyntaxError> {
        let mut fields = Fields::default();
        let mut timestamp = None;
        let mut event = None;
        let mut schema = None;
        let mut seen = Seen::default();
        self.object(|s, key, at| {
            match key {
                b"@timestamp" => {
                    seen.first(0, at)?;
                    timestamp = Some(s.required_string()?);
                }
                b"stream" => {
                    seen.first(1, at)?;
                    fields.stream = s.optional_string()?;
                }
                b"log" => {
                    seen.first(2, at)?;
                    let mut seen = Seen::default();
                    s.optional_object(|s, key, at| match key {
                        b"level" => {
                            seen.first(0, at)?;
                            fields.log_level = s.optional_string()?;
                            Ok(())
                        }
                        _ => s.skip_value(),
                    })?;
                }
                b"kubernetes" => {
                    seen.first(3, at)?;
                    s.kubernetes(&mut fields)?;
                }
                b"container" => {
                    seen.first(4, at)?;
                    let mut seen = Seen::default();
                    s.optional_object(|s, key, at| {
                        match key {
                            b"id" => {
                                seen.first(0, at)?;
                                fields.container_id = s.optional_string()?;
                            }
                            b"runtime" => {
                                seen.first(1, at)?;
                                fields.container_runtime = s.optional_string()?;
                            }
                            _ => s.skip_value()?,
                        }
                        Ok(())
                    })?;
                }
                b"host" => {
                    seen.first(5, at)?;
                    fields.host_name = s.named()?;
                }
                b"event" => {
                    seen.first(6, at)?;
                    event = Some(s.event()?);
                }
                b"kelp" => {
                    seen.first(7, at)?;
                    schema = Some(s.kelp()?);
                }
                _ => s.skip_value()?,
            }
            Ok(())
        })?;
        self.skip_whitespace();
        if self.pos != self.bytes.len() {
            return Err(self.error("trailing characters"));
        }
        let missing = |what| SyntaxError {
            what,
            at: self.bytes.len(),
        };
        fields.timestamp = timestamp.ok_or_else(|| missing("missing field `@timestamp`"))?;
        fields.schema = schema.ok_or_else(|| missing("missing field `kelp`"))?;
        let (id, event, ingested) = event.ok_or_else(|| missing("missing field `event`"))?;
        Ok(Picked {
            fields,
            id,
            event,
            ingested,
        })
    }

    /// `kubernetes`: namespace, pod, container, node, owner, labels, annotations.
    fn kubernetes(&mut self, fields: &mut Fields<'a>) -> Result<(), SyntaxError> {
        let mut seen = Seen::default();
        self.optional_object(|s, key, at| {
            match key {
                b"namespace" => {
                    seen.first(0, at)?;
                    fields.namespace = s.optional_string()?;
                }
                b"pod" => {
                    seen.first(1, at)?;
                    let mut seen = Seen::default();
                    s.optional_object(|s, key, at| {
                        match key {
                            b"name" => {
                                seen.first(0, at)?;
                                fields.pod_name = s.optional_string()?;
                            }
                            b"uid" => {
                                seen.first(1, at)?;
                                fields.pod_uid = s.optional_string()?;
                            }
                            _ => s.skip_value()?,
                        }
                        Ok(())
                    })?;
                }
                b"container" => {
                    seen.first(2, at)?;
                    let mut seen = Seen::default();
                    s.optional_object(|s, key, at| {
                        match key {
                            b"name" => {
                                seen.first(0, at)?;
                                fields.container_name = s.optional_string()?;
                            }
                            b"image" => {
                                seen.first(1, at)?;
                                fields.container_image = s.optional_string()?;
                            }
                            _ => s.skip_value()?,
                        }
                        Ok(())
                    })?;
                }
                b"node" => {
                    seen.first(3, at)?;
                    fields.node_name = s.named()?;
                }
                b"owner" => {
                    seen.first(4, at)?;
                    let mut seen = Seen::default();
                    s.optional_object(|s, key, at| {
                        match key {
                            b"kind" => {
                                seen.first(0, at)?;
                                fields.owner_kind = s.optional_string()?;
                            }
                            b"name" => {
                                seen.first(1, at)?;
                                fields.owner_name = s.optional_string()?;
                            }
                            _ => s.skip_value()?,
                        }
                        Ok(())
                    })?;
                }
                b"labels" => {
                    seen.first(5, at)?;
                    fields.labels = s.optional_raw()?;
                }
                b"annotations" => {
                    seen.first(6, at)?;
                    fields.annotations = s.optional_raw()?;
                }
                _ => s.skip_value()?,
            }
            Ok(())
        })
    }

    /// An optional object whose only known field is `name`.
    fn named(&mut self) -> Result<Option<Cow<'a, str>>, SyntaxError> {
        let mut name = None;
        let mut seen = Seen::default();
        self.optional_object(|s, key, at| match key {
            b"name" => {
                seen.first(0, at)?;
                name = s.optional_string()?;
                Ok(())
            }
            _ => s.skip_value(),
        })?;
        Ok(name)
    }

    /// `event`: the object's span, its `id` and the span of `ingested`.
    #[allow(clippy::type_complexity)]
    fn event(&mut self) -> Result<(Cow<'a, str>, Range<usize>, Option<Range<usize>>), SyntaxError> {
        self.skip_whitespace();
        let start = self.pos;
        let mut id = None;
        let mut ingested = None;
        let mut seen = Seen::default();
        self.object(|s, key, at| {
            match key {
                b"id" => {
                    seen.first(0, at)?;
                    id = Some(s.required_string()?);
                }
                b"ingested" => {
                    seen.first(1, at)?;
                    // Present but null too: replaced, never duplicated.
                    s.skip_whitespace();
                    let from = s.pos;
                    s.skip_value()?;
                    ingested = Some(from..s.pos);
                }
                _ => s.skip_value()?,
            }
            Ok(())
        })?;
        let id = id.ok_or_else(|| self.error("missing field `id`"))?;
        Ok((id, start..self.pos, ingested))
    }

    /// `kelp`: the schema version.
    fn kelp(&mut self) -> Result<u32, SyntaxError> {
        let mut schema = None;
        let mut seen = Seen::default();
        self.object(|s, key, at| match key {
            b"schema" => {
                seen.first(0, at)?;
                schema = Some(s.u32()?);
                Ok(())
            }
            _ => s.skip_value(),
        })?;
        schema.ok_or_else(|| self.error("missing field `schema`"))
    }

    /// An object, handing each key (decoded) to `field`, which consumes
    /// the value.
    fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &[u8], usize) -> Result<(), SyntaxError>,
    ) -> Result<(), SyntaxError> {
        self.expect(b'{', "expected an object")?;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            let at = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            let key = self.string()?;
            self.expect(b':', "expected `:`")?;
            if key.escaped {
                let decoded = self.decode(&key)?;
                field(self, decoded.as_bytes(), at)?;
            } else {
                let bytes = self.bytes;
                field(self, &bytes[key.range], at)?;
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    /// `null` or an object.
    fn optional_object(
        &mut self,
        field: impl FnMut(&mut Self, &[u8], usize) -> Result<(), SyntaxError>,
    ) -> Result<(), SyntaxError> {
        self.skip_whitespace();
        if self.peek() == Some(b'n') {
            return self.literal(b"null");
        }
        self.object(field)
    }

    #[inline]
    fn required_string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        let token = self.string()?;
        self.decode(&token)
    }

    #[inline]
    fn optional_string(&mut self) -> Result<Option<Cow<'a, str>>, SyntaxError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'n') => self.literal(b"null").map(|()| None),
            _ => self.required_string().map(Some),
        }
    }

    /// `null`, or any value as its JSON text.
    fn optional_raw(&mut self) -> Result<Option<&'a str>, SyntaxError> {
        self.skip_whitespace();
        if self.peek() == Some(b'n') {
            return self.literal(b"null").map(|()| None);
        }
        let start = self.pos;
        self.skip_value()?;
        Ok(self.text.get(start..self.pos))
    }

    /// A non-negative integer that fits `u32`, like serde's `u32`.
    fn u32(&mut self) -> Result<u32, SyntaxError> {
        self.skip_whitespace();
        let start = self.pos;
        self.number()?;
        let digits = &self.bytes[start..self.pos];
        let mut value: u32 = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return Err(SyntaxError {
                    what: "expected an unsigned integer",
                    at: start,
                });
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u32::from(d - b'0')))
                .ok_or(SyntaxError {
                    what: "integer out of range",
                    at: start,
                })?;
        }
        Ok(value)
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), SyntaxError> {
        if self
            .bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("expected a value"))
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<(), SyntaxError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    /// A string starting at the opening quote; checks escapes and control
    /// characters (UTF-8 is already checked).
    #[inline]
    fn string(&mut self) -> Result<Token, SyntaxError> {
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            i = self.next_stop(i);
            match self.bytes.get(i) {
                None => {
                    self.pos = i;
                    return Err(self.error("unterminated string"));
                }
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Token {
                        range: start..i,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    i += match self.bytes.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        Some(b'u')
                            if self
                                .bytes
                                .get(i + 2..i + 6)
                                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            6
                        }
                        _ => {
                            self.pos = i;
                            return Err(self.error("invalid escape"));
                        }
                    };
                }
                Some(_) => {
                    self.pos = i;
                    return Err(self.error("control character in string"));
                }
            }
        }
    }

    /// The first `"`, `\` or control character at or after `from`, or the
    /// length of the record when there is none.
    #[inline]
    fn next_stop(&mut self, mut from: usize) -> usize {
        loop {
            let block = from / 64;
            if block != self.block {
                let start = block * 64;
                let Some(rest) = self.bytes.get(start..) else {
                    return self.bytes.len();
                };
                if rest.is_empty() {
                    return self.bytes.len();
                }
                self.mask = match rest.first_chunk::<64>() {
                    Some(full) => stop_mask(full),
                    None => {
                        // The padding is not a stop: a string running into
                        // it runs off the end of the record.
                        let mut padded = [b' '; 64];
                        padded[..rest.len()].copy_from_slice(rest);
                        stop_mask(&padded)
                    }
                };
                self.block = block;
            }
            let ahead = self.mask >> (from % 64);
            if ahead != 0 {
                return from + ahead.trailing_zeros() as usize;
            }
            from = (block + 1) * 64;
        }
    }

    /// A string token's text, unescaped. Lone surrogates are refused, as
    /// serde refuses them in strings it decodes.
    #[inline]
    fn decode(&self, token: &Token) -> Result<Cow<'a, str>, SyntaxError> {
        let raw = self.text.get(token.range.clone()).unwrap_or_default();
        if !token.escaped {
            return Ok(Cow::Borrowed(raw));
        }
        Self::unescape(raw, token.range.start).map(Cow::Owned)
    }

    /// The text of a string with escapes, `at` its offset for errors.
    #[cold]
    fn unescape(raw: &str, at: usize) -> Result<String, SyntaxError> {
        let bad = |what| SyntaxError { what, at };
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(i) = rest.find('\\') {
            out.push_str(&rest[..i]);
            let esc = &rest.as_bytes()[i + 1..];
            let (ch, used) = match esc.first() {
                Some(b'"') => ('"', 2),
                Some(b'\\') => ('\\', 2),
                Some(b'/') => ('/', 2),
                Some(b'b') => ('\u{8}', 2),
                Some(b'f') => ('\u{c}', 2),
                Some(b'n') => ('\n', 2),
                Some(b'r') => ('\r', 2),
                Some(b't') => ('\t', 2),
                Some(b'u') => {
                    let unit = hex4(&esc[1..]).ok_or_else(|| bad("invalid escape"))?;
                    match unit {
                        0xD800..=0xDBFF => {
                            let low = match esc.get(5..7) {
                                Some(b"\\u") => hex4(&esc[7..]),
                                _ => None,
                            }
                            .filter(|low| (0xDC00..=0xDFFF).contains(low))
                            .ok_or_else(|| bad("lone surrogate in escape"))?;
                            let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            let ch = char::from_u32(code).ok_or_else(|| bad("invalid escape"))?;
                            (ch, 12)
                        }
                        0xDC00..=0xDFFF => return Err(bad("lone surrogate in escape")),
                        _ => (
                            char::from_u32(unit).ok_or_else(|| bad("invalid escape"))?,
                            6,
                        ),
                    }
                }
                _ => return Err(bad("invalid escape")),
            };
            out.push(ch);
            rest = rest.get(i + used..).ok_or_else(|| bad("invalid escape"))?;
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Checks and skips any value, iteratively: a deep value cannot
    /// overflow the stack.
    fn skip_value(&mut self) -> Result<(), SyntaxError> {
        let mut open = Nesting::default();
        loop {
            // A value.
            self.skip_whitespace();
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        open.push(true);
                        self.key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        open.push(false);
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.error("expected a value")),
            }
            // After a value: close containers until one takes another value.
            loop {
                let Some(object) = open.top() else {
                    return Ok(());
                };
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        self.pos += 1;
                        open.pop();
                    }
                    Some(b']') if !object => {
                        self.pos += 1;
                        open.pop();
                    }
                    _ => return Err(self.error("expected `,` or the end of a container")),
                }
            }
        }
    }

    /// A key of a skipped object and its colon.
    fn key(&mut self) -> Result<(), SyntaxError> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a key"));
        }
        self.string()?;
        self.expect(b':', "expected `:`")
    }
}

/// Four hex digits as a number.
fn hex4(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.get(..4)?;
    let mut value = 0;
    for &d in digits {
        value = value * 16 + char::from(d).to_digit(16)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests;
