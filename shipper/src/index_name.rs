//! Index-name templates: which index an event is written to.
//!
//! # Syntax
//!
//! A template is literal text with placeholders in braces:
//!
//! - `{field.path}` is a string field of the record, e.g. `{kubernetes.namespace}`,
//!   `{kubernetes.labels.app}`. `{field.path|fallback}` sets the text used when
//!   the field is missing or empty; without it the fallback is [`MISSING_FIELD`].
//! - `{@timestamp:FORMAT}` is the event's own `@timestamp` in UTC, formatted with
//!   `%Y` (4-digit year), `%m` (month), `%d` (day of month) and `%H` (hour), all
//!   zero-padded. `{@timestamp}` means `{@timestamp:%Y.%m.%d}`.
//!
//! The default is [`DEFAULT_TEMPLATE`], one index per namespace and UTC day.
//!
//! Placeholders are checked against the record's string fields when the
//! template is parsed, so `{kubernetes.nmespace}` fails at startup instead of
//! routing every event to the fallback.
//!
//! # Rendering from what
//!
//! Templates render from any [`FieldSource`]: the full [`Event`], or the
//! borrowed partial decode [`crate::bulk::RecordView`] the hot path uses (it
//! decodes only the routing fields, and label maps only when a template asks
//! for a label). Rendering from a `serde_json::Value` would allocate the whole
//! record as a tree, the cost the partial decode exists to avoid.
//!
//! # Determinism
//!
//! The name depends only on the event, never on the wall clock, and the same
//! event always renders the same name. That is what makes a replay overwrite
//! (same index, same `_id`) instead of duplicating.
//!
//! # Validity
//!
//! Elasticsearch index names are lowercase, at most 255 bytes, contain none of
//! `\ / * ? " < > | , # :` or spaces, and do not start with `-`, `_` or `+`.
//! The template's literal text is checked once by [`IndexTemplate::parse`];
//! field values are sanitized at render time: ASCII letters are lowercased,
//! `a-z 0-9 - _ . +` are kept and every other character (including any
//! non-ASCII one) becomes `_`. Then leading `-_+.` are removed, the name is cut
//! at 255 bytes, and an empty result becomes [`UNROUTABLE_INDEX`].

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use kelp_record::Event;

use crate::time::{UtcHour, parse_rfc3339_unix_millis, utc_hour_of_unix_millis};

/// One index per namespace and UTC day.
pub const DEFAULT_TEMPLATE: &str = "kelp-logs-{kubernetes.namespace}-{@timestamp:%Y.%m.%d}";

/// What a `{field}` renders as when the record lacks the field or it is empty,
/// unless the placeholder sets its own fallback with `{field|fallback}`.
pub const MISSING_FIELD: &str = "_unknown";

/// The name used when sanitizing leaves nothing, e.g. a template that is only
/// `{kubernetes.namespace}` and a namespace of `---`.
pub const UNROUTABLE_INDEX: &str = "kelp-unroutable";

/// Elasticsearch's limit on an index name, in bytes.
pub const MAX_INDEX_NAME_BYTES: usize = 255;

const DEFAULT_TIMESTAMP_FORMAT: &str = "%Y.%m.%d";

/// A string field of the record that a template can use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// `kubernetes.namespace`.
    Namespace,
    /// `kubernetes.pod.name`.
    PodName,
    /// `kubernetes.pod.uid`.
    PodUid,
    /// `kubernetes.container.name`.
    ContainerName,
    /// `kubernetes.container.image`.
    ContainerImage,
    /// `kubernetes.node.name`.
    NodeName,
    /// `kubernetes.owner.kind`.
    OwnerKind,
    /// `kubernetes.owner.name`.
    OwnerName,
    /// `kubernetes.labels.<key>`; the key is everything after the prefix, dots included.
    Label(String),
    /// `kubernetes.annotations.<key>`; the key is everything after the prefix.
    Annotation(String),
    /// `container.id`.
    ContainerId,
    /// `container.runtime`.
    ContainerRuntime,
    /// `host.name`.
    HostName,
    /// `stream`.
    Stream,
    /// `log.level`.
    LogLevel,
}

const LABELS_PREFIX: &str = "kubernetes.labels.";
const ANNOTATIONS_PREFIX: &str = "kubernetes.annotations.";

impl Field {
    /// The field at a dotted path, or `None` if the record has no such string field.
    pub fn from_path(path: &str) -> Option<Field> {
        if let Some(key) = path.strip_prefix(LABELS_PREFIX) {
            return (!key.is_empty()).then(|| Field::Label(key.to_owned()));
        }
        if let Some(key) = path.strip_prefix(ANNOTATIONS_PREFIX) {
            return (!key.is_empty()).then(|| Field::Annotation(key.to_owned()));
        }
        Some(match path {
            "kubernetes.namespace" => Field::Namespace,
            "kubernetes.pod.name" => Field::PodName,
            "kubernetes.pod.uid" => Field::PodUid,
            "kubernetes.container.name" => Field::ContainerName,
            "kubernetes.container.image" => Field::ContainerImage,
            "kubernetes.node.name" => Field::NodeName,
            "kubernetes.owner.kind" => Field::OwnerKind,
            "kubernetes.owner.name" => Field::OwnerName,
            "container.id" => Field::ContainerId,
            "container.runtime" => Field::ContainerRuntime,
            "host.name" => Field::HostName,
            "stream" => Field::Stream,
            "log.level" => Field::LogLevel,
            _ => return None,
        })
    }

    /// The dotted path of the field.
    pub fn path(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Field::Namespace => "kubernetes.namespace",
            Field::PodName => "kubernetes.pod.name",
            Field::PodUid => "kubernetes.pod.uid",
            Field::ContainerName => "kubernetes.container.name",
            Field::ContainerImage => "kubernetes.container.image",
            Field::NodeName => "kubernetes.node.name",
            Field::OwnerKind => "kubernetes.owner.kind",
            Field::OwnerName => "kubernetes.owner.name",
            Field::Label(key) => return Cow::Owned(format!("{LABELS_PREFIX}{key}")),
            Field::Annotation(key) => return Cow::Owned(format!("{ANNOTATIONS_PREFIX}{key}")),
            Field::ContainerId => "container.id",
            Field::ContainerRuntime => "container.runtime",
            Field::HostName => "host.name",
            Field::Stream => "stream",
            Field::LogLevel => "log.level",
        })
    }
}

/// Something an index name can be rendered from: the record, or a partial
/// view of it.
pub trait FieldSource {
    /// The event's `@timestamp`, RFC 3339.
    fn timestamp(&self) -> &str;
    /// The `@timestamp` in milliseconds since the Unix epoch; a source that
    /// has it already (the shipper's view of a record) saves a second parse.
    fn timestamp_unix_millis(&self) -> Option<i64> {
        parse_rfc3339_unix_millis(self.timestamp())
    }
    /// The value of a string field, `None` when absent.
    fn field(&self, field: &Field) -> Option<Cow<'_, str>>;
}

impl FieldSource for Event {
    fn timestamp(&self) -> &str {
        &self.timestamp
    }

    fn field(&self, field: &Field) -> Option<Cow<'_, str>> {
        let k = &self.kubernetes;
        let value = match field {
            Field::Namespace => Some(k.namespace.as_str()),
            Field::PodName => Some(k.pod.name.as_str()),
            Field::PodUid => Some(k.pod.uid.as_str()),
            Field::ContainerName => Some(k.container.name.as_str()),
            Field::ContainerImage => k.container.image.as_deref(),
            Field::NodeName => k.node.as_ref().map(|n| n.name.as_str()),
            Field::OwnerKind => k.owner.as_ref().map(|o| o.kind.as_str()),
            Field::OwnerName => k.owner.as_ref().map(|o| o.name.as_str()),
            Field::Label(key) => k.labels.get(key).map(String::as_str),
            Field::Annotation(key) => k.annotations.get(key).map(String::as_str),
            Field::ContainerId => self.container.id.as_deref(),
            Field::ContainerRuntime => Some(self.container.runtime.as_str()),
            Field::HostName => Some(self.host.name.as_str()),
            Field::Stream => Some(self.stream.as_str()),
            Field::LogLevel => self.log.level.as_deref(),
        };
        value.map(Cow::Borrowed)
    }
}

/// One piece of a `{@timestamp:FORMAT}` format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimePart {
    Literal(String),
    Year,
    Month,
    Day,
    Hour,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field { field: Field, fallback: String },
    Timestamp(Vec<TimePart>),
}

/// Why a template string is not a valid template. Positions are byte offsets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is empty.
    #[error("parsing index template failed: the template is empty")]
    Empty,
    /// A `{` has no matching `}`.
    #[error("parsing index template failed: `{{` at byte {at} is never closed")]
    UnclosedBrace {
        /// Byte offset of the `{`.
        at: usize,
    },
    /// A `}` without an opening `{`.
    #[error("parsing index template failed: `}}` at byte {at} has no opening `{{`")]
    UnopenedBrace {
        /// Byte offset of the `}`.
        at: usize,
    },
    /// `{}` or `{|x}`.
    #[error("parsing index template failed: empty placeholder at byte {at}")]
    EmptyPlaceholder {
        /// Byte offset of the `{`.
        at: usize,
    },
    /// The placeholder names no string field of the record.
    #[error(
        "parsing index template failed: `{path}` is not a string field of the record (e.g. kubernetes.namespace, kubernetes.labels.<key>, host.name)"
    )]
    UnknownField {
        /// The path as written.
        path: String,
    },
    /// A `%` directive other than `%Y %m %d %H`.
    #[error(
        "parsing index template failed: `{directive}` in `{format}` is not supported (use %Y %m %d %H)"
    )]
    UnsupportedDirective {
        /// The timestamp format as written.
        format: String,
        /// The offending directive, e.g. `%M`.
        directive: String,
    },
    /// A character that may not appear in an index name.
    #[error(
        "parsing index template failed: {ch:?} at byte {at} is not allowed in index names (use a-z 0-9 - _ . +)"
    )]
    InvalidCharacter {
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
    /// A literal start with `-`, `_`, `+` or `.`.
    #[error("parsing index template failed: index names must not start with {ch:?}")]
    InvalidStart {
        /// The first character.
        ch: char,
    },
    /// The literal text alone is longer than an index name may be.
    #[error(
        "parsing index template failed: the literal text is {len} bytes, more than the {MAX_INDEX_NAME_BYTES} an index name may have"
    )]
    TooLong {
        /// Bytes of literal text.
        len: usize,
    },
}

/// Why an event's index name could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template uses `@timestamp` and the event's is not RFC 3339.
    #[error("rendering index name failed: @timestamp {0:?} is not an RFC 3339 time")]
    BadTimestamp(String),
}

impl RenderError {
    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RenderError::BadTimestamp(_) => "bad_timestamp",
        }
    }
}

/// The last name [`IndexTemplate::render_cached`] rendered, with what it
/// was rendered from.
#[derive(Debug, Clone, Default)]
pub struct NameCache {
    /// The UTC hour (Unix milliseconds / 3,600,000), when the template has
    /// a time part.
    hour: Option<i64>,
    /// Each field part's value in template order; `None` for missing or empty.
    values: Vec<Option<String>>,
    name: String,
    valid: bool,
}

/// A parsed index-name template. Parse once at startup, render per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTemplate {
    source: String,
    parts: Vec<Part>,
}

/// Characters kept as they are, in literals and in field values.
fn is_kept(ch: char) -> bool {
    matches!(ch, 'a'..='z' | '0'..='9' | '-' | '_' | '.' | '+')
}

fn is_bad_start(ch: char) -> bool {
    matches!(ch, '-' | '_' | '+' | '.')
}

/// Appends `value` sanitized: see the module documentation.
fn push_sanitized(out: &mut String, value: &str) {
    for ch in value.chars() {
        out.push(if is_kept(ch) {
            ch
        } else if ch.is_ascii_uppercase() {
            ch.to_ascii_lowercase()
        } else {
            '_'
        });
    }
}

/// Checks literal text at byte offset `base` of the template.
fn check_literal(text: &str, base: usize) -> Result<(), TemplateError> {
    match text.char_indices().find(|&(_, ch)| !is_kept(ch)) {
        Some((i, ch)) => Err(TemplateError::InvalidCharacter { ch, at: base + i }),
        None => Ok(()),
    }
}

fn parse_time_format(format: &str, base: usize) -> Result<Vec<TimePart>, TemplateError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = format.char_indices();
    while let Some((i, ch)) = chars.next() {
        if ch != '%' {
            check_literal(&format[i..i + ch.len_utf8()], base + i)?;
            literal.push(ch);
            continue;
        }
        let directive = chars.next().map(|(_, d)| d);
        let part = match directive {
            Some('Y') => TimePart::Year,
            Some('m') => TimePart::Month,
            Some('d') => TimePart::Day,
            Some('H') => TimePart::Hour,
            other => {
                return Err(TemplateError::UnsupportedDirective {
                    format: format.to_owned(),
                    directive: other.map_or_else(|| "%".to_owned(), |d| format!("%{d}")),
                });
            }
        };
        if !literal.is_empty() {
            parts.push(TimePart::Literal(std::mem::take(&mut literal)));
        }
        parts.push(part);
    }
    if !literal.is_empty() {
        parts.push(TimePart::Literal(literal));
    }
    Ok(parts)
}

fn parse_placeholder(inner: &str, at: usize) -> Result<Part, TemplateError> {
    // Content starts one byte after the `{`.
    let base = at + 1;
    if inner.is_empty() {
        return Err(TemplateError::EmptyPlaceholder { at });
    }
    if let Some(rest) = inner.strip_prefix("@timestamp") {
        let format = match rest.strip_prefix(':') {
            Some(format) if !format.is_empty() => format,
            Some(_) => return Err(TemplateError::EmptyPlaceholder { at }),
            None if rest.is_empty() => DEFAULT_TIMESTAMP_FORMAT,
            None => {
                return Err(TemplateError::UnknownField {
                    path: inner.to_owned(),
                });
            }
        };
        let offset = base + "@timestamp:".len();
        return Ok(Part::Timestamp(parse_time_format(format, offset)?));
    }
    let (path, fallback) = match inner.split_once('|') {
        Some((path, fallback)) => (path, Some(fallback)),
        None => (inner, None),
    };
    if path.is_empty() {
        return Err(TemplateError::EmptyPlaceholder { at });
    }
    let field = Field::from_path(path).ok_or_else(|| TemplateError::UnknownField {
        path: path.to_owned(),
    })?;
    let fallback = match fallback {
        Some(text) => {
            if text.is_empty() {
                return Err(TemplateError::EmptyPlaceholder { at });
            }
            check_literal(text, base + path.len() + 1)?;
            text.to_owned()
        }
        None => MISSING_FIELD.to_owned(),
    };
    Ok(Part::Field { field, fallback })
}

impl IndexTemplate {
    /// Parses a template; see the module documentation for the syntax.
    pub fn parse(template: &str) -> Result<IndexTemplate, TemplateError> {
        if template.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut rest = template;
        let mut pos = 0;
        while !rest.is_empty() {
            let next = rest.find(['{', '}']);
            let literal_end = next.unwrap_or(rest.len());
            let literal = &rest[..literal_end];
            if !literal.is_empty() {
                check_literal(literal, pos)?;
                parts.push(Part::Literal(literal.to_owned()));
            }
            rest = &rest[literal_end..];
            pos += literal_end;
            match rest.as_bytes().first() {
                None => break,
                Some(b'}') => return Err(TemplateError::UnopenedBrace { at: pos }),
                Some(_) => {}
            }
            let close = rest
                .find('}')
                .ok_or(TemplateError::UnclosedBrace { at: pos })?;
            let inner = &rest[1..close];
            if let Some(i) = inner.find('{') {
                return Err(TemplateError::UnclosedBrace { at: pos + 1 + i });
            }
            parts.push(parse_placeholder(inner, pos)?);
            rest = &rest[close + 1..];
            pos += close + 1;
        }
        if let Some(Part::Literal(first)) = parts.first()
            && let Some(ch) = first.chars().next().filter(|&c| is_bad_start(c))
        {
            return Err(TemplateError::InvalidStart { ch });
        }
        let literal_len: usize = parts
            .iter()
            .map(|p| match p {
                Part::Literal(text) => text.len(),
                _ => 0,
            })
            .sum();
        if literal_len > MAX_INDEX_NAME_BYTES {
            return Err(TemplateError::TooLong { len: literal_len });
        }
        Ok(IndexTemplate {
            source: template.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The literal text before the first placeholder, e.g. `kelp-logs-`.
    pub fn literal_prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Literal(text)) => text,
            _ => "",
        }
    }

    /// The index pattern that matches every name this template renders
    /// (`kelp-logs-*`), for the index template and lifecycle policy.
    /// `None` when the template starts with a placeholder: a pattern of `*`
    /// would capture every index in the cluster.
    pub fn index_pattern(&self) -> Option<String> {
        match self.parts.as_slice() {
            [Part::Literal(text)] => Some(text.clone()),
            [Part::Literal(text), ..] => Some(format!("{text}*")),
            _ => None,
        }
    }

    /// Whether the template uses `@timestamp`.
    pub fn uses_timestamp(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Timestamp(_)))
    }

    /// Renders the index name for one event.
    pub fn render(&self, source: &(impl FieldSource + ?Sized)) -> Result<String, RenderError> {
        let mut out = String::with_capacity(64);
        self.render_into(source, &mut out)?;
        Ok(out)
    }

    /// Renders through `cache`: the cached name when the record's field
    /// values and UTC hour are those it was rendered from (records in a row
    /// mostly share them), else a fresh render that replaces the cache.
    pub fn render_cached<'c>(
        &self,
        source: &(impl FieldSource + ?Sized),
        cache: &'c mut NameCache,
    ) -> Result<&'c str, RenderError> {
        let has_time = self.parts.iter().any(|p| matches!(p, Part::Timestamp(_)));
        // Without a time, the hour does not matter; without a parsable
        // timestamp, render_into reports the error.
        let hour = source
            .timestamp_unix_millis()
            .filter(|_| has_time)
            .map(|millis| millis.div_euclid(3_600_000));
        if cache.valid
            && hour.is_some() == has_time
            && cache.hour == hour
            && self.same_field_values(source, &cache.values)
        {
            return Ok(&cache.name);
        }
        cache.valid = false;
        self.render_into(source, &mut cache.name)?;
        cache.values.clear();
        for part in &self.parts {
            if let Part::Field { field, .. } = part {
                cache.values.push(
                    source
                        .field(field)
                        .filter(|v| !v.is_empty())
                        .map(Cow::into_owned),
                );
            }
        }
        cache.hour = hour;
        cache.valid = true;
        Ok(&cache.name)
    }

    fn same_field_values(
        &self,
        source: &(impl FieldSource + ?Sized),
        values: &[Option<String>],
    ) -> bool {
        let mut values = values.iter();
        self.parts.iter().all(|part| match part {
            Part::Field { field, .. } => {
                let value = source.field(field).filter(|v| !v.is_empty());
                values
                    .next()
                    .is_some_and(|cached| cached.as_deref() == value.as_deref())
            }
            _ => true,
        })
    }

    /// Renders into `out` (cleared first), reusing its allocation.
    pub fn render_into(
        &self,
        source: &(impl FieldSource + ?Sized),
        out: &mut String,
    ) -> Result<(), RenderError> {
        out.clear();
        let mut time: Option<UtcHour> = None;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field { field, fallback } => match source.field(field) {
                    Some(value) if !value.is_empty() => push_sanitized(out, &value),
                    _ => out.push_str(fallback),
                },
                Part::Timestamp(format) => {
                    let t = match time {
                        Some(t) => t,
                        None => {
                            let parsed = source
                                .timestamp_unix_millis()
                                .and_then(utc_hour_of_unix_millis)
                                .ok_or_else(|| {
                                    RenderError::BadTimestamp(
                                        source.timestamp().chars().take(64).collect(),
                                    )
                                })?;
                            time = Some(parsed);
                            parsed
                        }
                    };
                    push_time(out, format, t);
                }
            }
        }
        finish_name(out);
        Ok(())
    }
}

fn push_time(out: &mut String, format: &[TimePart], t: UtcHour) {
    for part in format {
        match part {
            TimePart::Literal(text) => out.push_str(text),
            TimePart::Year => push_padded(out, t.year, 4),
            TimePart::Month => push_padded(out, t.month, 2),
            TimePart::Day => push_padded(out, t.day, 2),
            TimePart::Hour => push_padded(out, t.hour, 2),
        }
    }
}

/// `value` zero-padded to `width` digits, like `{:0width$}`, without the
/// formatting machinery (this runs for every event).
fn push_padded(out: &mut String, value: i64, width: u32) {
    if !(0..10_000).contains(&value) {
        use std::fmt::Write as _;
        // Writing to a String cannot fail.
        let _ = write!(out, "{value:0width$}", width = width as usize);
        return;
    }
    let digits = if value >= 1000 {
        4
    } else if value >= 100 {
        3
    } else if value >= 10 {
        2
    } else {
        1
    };
    for _ in digits..width {
        out.push('0');
    }
    for i in (0..digits).rev() {
        let digit = (value / 10_i64.pow(i)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Applies the whole-name rules: no bad first character, the length limit, and
/// never empty.
fn finish_name(out: &mut String) {
    let start = out.find(|c: char| !is_bad_start(c)).unwrap_or(out.len());
    out.drain(..start);
    // Sanitized names are ASCII, so any byte index is a char boundary; floor
    // to one anyway in case a future change lets other characters through.
    if out.len() > MAX_INDEX_NAME_BYTES {
        let mut cut = MAX_INDEX_NAME_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    if out.is_empty() {
        out.push_str(UNROUTABLE_INDEX);
    }
}

impl Default for IndexTemplate {
    fn default() -> IndexTemplate {
        IndexTemplate {
            source: DEFAULT_TEMPLATE.to_owned(),
            parts: vec![
                Part::Literal("kelp-logs-".to_owned()),
                Part::Field {
                    field: Field::Namespace,
                    fallback: MISSING_FIELD.to_owned(),
                },
                Part::Literal("-".to_owned()),
                Part::Timestamp(vec![
                    TimePart::Year,
                    TimePart::Literal(".".to_owned()),
                    TimePart::Month,
                    TimePart::Literal(".".to_owned()),
                    TimePart::Day,
                ]),
            ],
        }
    }
}

impl FromStr for IndexTemplate {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<IndexTemplate, TemplateError> {
        IndexTemplate::parse(s)
    }
}

impl fmt::Display for IndexTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests;
