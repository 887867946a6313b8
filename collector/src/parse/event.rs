//! Builds the shipped record, [`kelp_record::Event`], from an assembled
//! event and what is known about its file.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use kelp_record::{
    Container, ContainerName, Event, EventId, EventMeta, Flag, Host, KelpMeta, Kubernetes, Log,
    LogFile, Node, Owner, Pod, Stream,
};
use memchr::memmem;

use super::Format;
use super::path::PathMeta;
use super::reassemble::Assembled;

/// What is known about one log file: the same for all of its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The path the file was read from, for `log.file.path`.
    pub path: String,
    /// Metadata from the path, when it is in a kubelet layout.
    pub meta: Option<PathMeta>,
    /// The file's stable identity (see [`crate::fingerprint`]), for event ids.
    pub file_identity: u64,
    /// The node's host name.
    pub host: String,
    /// The file's format, for `container.runtime`.
    pub format: Format,
}

/// What the Kubernetes API says about a file's pod and container, beyond
/// the path: the same for all of the file's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrichment {
    /// The pod's uid, for paths that do not carry it (`/var/log/containers`).
    pub pod_uid: Option<String>,
    /// `kubernetes.labels`.
    pub labels: BTreeMap<String, String>,
    /// `kubernetes.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `kubernetes.owner`.
    pub owner: Option<Owner>,
    /// `kubernetes.node.name`.
    pub node: Option<String>,
    /// `kubernetes.container.image`.
    pub image: Option<String>,
}

/// Builds events of one file, reusing one record's allocations.
///
/// The per-file fields are filled once; each [`EventBuilder::build`] only
/// sets the per-event ones, so the hot path allocates nothing beyond the
/// content it is handed.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    file_identity: u64,
    event: Event,
}

impl EventBuilder {
    /// A builder for the events of `source`.
    pub fn new(source: &Source) -> EventBuilder {
        let meta = source.meta.as_ref();
        let kubernetes = match meta {
            Some(meta) => Kubernetes {
                namespace: meta.namespace.clone(),
                pod: Pod {
                    name: meta.pod.clone(),
                    uid: meta.pod_uid.clone().unwrap_or_default(),
                },
                container: ContainerName {
                    name: meta.container.clone(),
                    image: None,
                },
                ..Kubernetes::default()
            },
            None => Kubernetes::default(),
        };
        let event = Event {
            timestamp: String::new(),
            message: String::new(),
            stream: Stream::Stdout,
            log: Log {
                file: LogFile {
                    path: source.path.clone(),
                },
                offset: 0,
                flags: Vec::new(),
                level: None,
            },
            kubernetes,
            container: Container {
                id: meta.and_then(|meta| meta.container_id.clone()),
                runtime: source.format.as_str().to_owned(),
            },
            host: Host {
                name: source.host.clone(),
            },
            event: EventMeta {
                id: EventId::new(source.file_identity, 0),
                ingested: None,
            },
            kelp: KelpMeta::default(),
        };
        EventBuilder {
            file_identity: source.file_identity,
            event,
        }
    }

    /// Adds the API's metadata to every following event, or with `None`
    /// removes it again (path metadata stays).
    pub fn set_enrichment(&mut self, enrichment: Option<&Enrichment>) {
        let kubernetes = &mut self.event.kubernetes;
        let Some(enrichment) = enrichment else {
            kubernetes.labels.clear();
            kubernetes.annotations.clear();
            kubernetes.owner = None;
            kubernetes.node = None;
            kubernetes.container.image = None;
            return;
        };
        if kubernetes.pod.uid.is_empty()
            && let Some(uid) = &enrichment.pod_uid
        {
            kubernetes.pod.uid.clone_from(uid);
        }
        kubernetes.labels.clone_from(&enrichment.labels);
        kubernetes.annotations.clone_from(&enrichment.annotations);
        kubernetes.owner.clone_from(&enrichment.owner);
        kubernetes.node = enrichment
            .node
            .as_ref()
            .map(|name| Node { name: name.clone() });
        kubernetes.container.image.clone_from(&enrichment.image);
    }

    /// The record for `assembled`, valid until the next call.
    ///
    /// Content that is not UTF-8 has each invalid sequence replaced by
    /// U+FFFD and the event flagged [`Flag::InvalidUtf8`]. Flags come out
    /// sorted and without duplicates.
    pub fn build(&mut self, assembled: Assembled) -> &Event {
        let Assembled {
            offset,
            timestamp,
            stream,
            content,
            mut flags,
        } = assembled;
        let message = match String::from_utf8(content) {
            Ok(text) => text,
            Err(error) => {
                flags.push(Flag::InvalidUtf8);
                String::from_utf8_lossy(error.as_bytes()).into_owned()
            }
        };
        flags.sort_unstable();
        flags.dedup();
        let event = &mut self.event;
        event.timestamp.clear();
        event.timestamp.push_str(timestamp.as_str());
        match (detect_level(&message), &mut event.log.level) {
            (Some(level), Some(slot)) => {
                slot.clear();
                slot.push_str(level);
            }
            (level, slot) => *slot = level.map(str::to_owned),
        }
        event.message = message;
        event.stream = stream;
        event.log.offset = offset;
        event.log.flags = flags;
        event.event.id = EventId::new(self.file_identity, offset);
        &self.event
    }

    /// The last record built, owned.
    pub fn into_event(self) -> Event {
        self.event
    }
}

/// Builds one record; [`EventBuilder`] is cheaper for many events of a file.
pub fn build_event(source: &Source, assembled: Assembled) -> Event {
    let mut builder = EventBuilder::new(source);
    builder.build(assembled);
    builder.into_event()
}

/// A cheap guess at the log level, as `trace`, `debug`, `info`, `warn`,
/// `error` or `fatal`.
///
/// It looks only near the start: at a JSON object's `level`, `severity` or
/// `lvl` string field, or at the first words of the first line, which may be
/// an upper-case level (`ERROR`, `[WARN]`), Python's `ERROR:logger:`, logfmt's
/// `level=error` or klog's `E1127`. Anything else gives `None`.
pub fn detect_level(message: &str) -> Option<&'static str> {
    let bytes = message.as_bytes();
    if bytes.first() == Some(&b'{') {
        json_level(&bytes[..bytes.len().min(JSON_WINDOW)])
    } else {
        let window = &bytes[..bytes.len().min(TEXT_WINDOW)];
        let line = match memchr::memchr(b'\n', window) {
            Some(end) => &window[..end],
            None => window,
        };
        text_level(line)
    }
}

/// How far into a JSON message the level field is looked for.
const JSON_WINDOW: usize = 4096;
/// How far into a text line the level word is looked for.
const TEXT_WINDOW: usize = 128;
/// How many words of a text line may come before the level.
const TEXT_WORDS: usize = 6;

/// The level an exact upper-case word names.
fn level_word(word: &[u8]) -> Option<&'static str> {
    Some(match word {
        b"TRACE" => "trace",
        b"DEBUG" => "debug",
        b"INFO" => "info",
        b"WARN" | b"WARNING" => "warn",
        b"ERROR" | b"ERR" | b"SEVERE" => "error",
        b"FATAL" | b"CRITICAL" | b"PANIC" => "fatal",
        _ => return None,
    })
}

/// The level a word names in any case, as JSON and logfmt values have it.
fn level_word_any_case(word: &[u8]) -> Option<&'static str> {
    let mut upper = [0u8; 8];
    let upper = upper.get_mut(..word.len())?;
    upper.copy_from_slice(word);
    upper.make_ascii_uppercase();
    level_word(upper)
}

/// JSON keys that hold a level, each with its searcher built once.
static JSON_LEVEL_KEYS: LazyLock<[memmem::Finder<'static>; 3]> = LazyLock::new(|| {
    [
        memmem::Finder::new(b"\"level\""),
        memmem::Finder::new(b"\"severity\""),
        memmem::Finder::new(b"\"lvl\""),
    ]
});

fn json_level(bytes: &[u8]) -> Option<&'static str> {
    JSON_LEVEL_KEYS.iter().find_map(|key| {
        let at = key.find(bytes)? + key.needle().len();
        let value = bytes[at..].trim_ascii_start().strip_prefix(b":")?;
        let value = value.trim_ascii_start().strip_prefix(b"\"")?;
        let end = memchr::memchr(b'"', value)?;
        level_word_any_case(&value[..end])
    })
}

fn text_level(line: &[u8]) -> Option<&'static str> {
    let mut rest = line;
    for index in 0..TEXT_WORDS {
        let start = rest.iter().position(|b| !matches!(b, b' ' | b'\t'))?;
        rest = &rest[start..];
        let end = memchr::memchr2(b' ', b'\t', rest).unwrap_or(rest.len());
        let word = &rest[..end];
        if index == 0
            && let Some(level) = klog_level(word)
        {
            return Some(level);
        }
        if let Some(level) = word_level(word) {
            return Some(level);
        }
        rest = &rest[end..];
    }
    None
}

fn word_level(word: &[u8]) -> Option<&'static str> {
    if let Some(value) = word.strip_prefix(b"level=") {
        let value = value.strip_prefix(b"\"").unwrap_or(value);
        let value = value.strip_suffix(b"\"").unwrap_or(value);
        return level_word_any_case(value);
    }
    let word = trim_punctuation(word);
    // Level words are upper case: most words are rejected at the first byte.
    if !word.first().is_some_and(u8::is_ascii_uppercase) {
        return None;
    }
    // Python's default format: `ERROR:logger:message`.
    let head = match memchr::memchr(b':', word) {
        Some(end) => &word[..end],
        None => word,
    };
    level_word(head)
}

fn trim_punctuation(word: &[u8]) -> &[u8] {
    let is_punct = |b: &u8| {
        matches!(
            b,
            b'[' | b']' | b'(' | b')' | b'<' | b'>' | b':' | b',' | b'|'
        )
    };
    let start = word.iter().position(|b| !is_punct(b)).unwrap_or(word.len());
    let end = word
        .iter()
        .rposition(|b| !is_punct(b))
        .map_or(start, |at| at + 1);
    &word[start..end.max(start)]
}

/// klog's header starts with the level letter and the month and day: `E1127`.
fn klog_level(word: &[u8]) -> Option<&'static str> {
    let [letter, digits @ ..] = word else {
        return None;
    };
    if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match letter {
        b'I' => Some("info"),
        b'W' => Some("warn"),
        b'E' => Some("error"),
        b'F' => Some("fatal"),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
