//! Classifying bulk responses: what happens to each event of a sent batch.
//!
//! # Whole-request statuses
//!
//! | status | outcome | why |
//! |---|---|---|
//! | 2xx | [`BulkOutcome::Items`], one per event | the per-item statuses decide |
//! | 413 | [`BulkOutcome::Split`]; one event: [`BulkOutcome::DeadLetterAll`] | the body is over `http.max_content_length` |
//! | 400 with `{"error":{"type":..}}` | [`BulkOutcome::Split`]; one event: [`BulkOutcome::DeadLetterAll`] | our encoder only writes well-formed NDJSON, so a structured 400 for the request is caused by some event's content; halving isolates it without sending good events to the dead-letter topic |
//! | 400 otherwise | [`BulkOutcome::Fatal`] | a string error (`no handler found for uri`), HTML or text comes from routing or a proxy, not from the data |
//! | 408, 429, 5xx | [`BulkOutcome::RetryAll`] | transient; the deterministic `_id` makes resending idempotent |
//! | 401, 403 | [`BulkOutcome::Fatal`] | credentials or privileges: a configuration error; retrying or dead-lettering cannot help, and offsets must not move |
//! | other 4xx (404, 405, ...) | [`BulkOutcome::Fatal`] | the URL, a proxy or the server is wrong, not the data; dead-lettering would empty the topic into the dead-letter topic |
//! | other (1xx, 3xx) | [`BulkOutcome::RetryAll`] | unexpected; never lose data on a status we don't understand |
//!
//! Connection errors and timeouts are [`BulkOutcome::RetryAll`] via
//! [`transport_error`].
//!
//! # Per-item statuses
//!
//! | item status | outcome |
//! |---|---|
//! | 2xx | [`ItemOutcome::Indexed`] |
//! | 409 | [`ItemOutcome::Conflict409`] (the document is there: success) |
//! | 408, 429, 5xx | [`ItemOutcome::Retry`] (`es_rejected_execution_exception`, `circuit_breaking_exception`, unavailable shards, ...) |
//! | 401, 403, 404 | [`ItemOutcome::Retry`]: index-level privileges, a `cluster_block_exception` (disk flood stage) or `index_not_found_exception` with auto-create off are cluster state or configuration, not bad documents; retrying blocks the offset until an operator fixes it, and loses nothing |
//! | other 4xx | [`ItemOutcome::DeadLetter`] (`mapper_parsing_exception`, `document_parsing_exception`, `illegal_argument_exception`, `strict_dynamic_mapping_exception`, ...) |
//! | other | [`ItemOutcome::Retry`] |
//!
//! The `errors` flag is not trusted: every item's status is read. A response
//! with a different number of items than events sent is an error
//! ([`ResponseError::ItemCount`]), never accepted; the caller retries the
//! batch, which is safe because `_id`s are deterministic.
//!
//! Parsing reads only `items[].<action>.status` and `.error`, so a request
//! with `filter_path=errors,items.*.status,items.*.error` parses the same.

use std::fmt::Write as _;

use serde::Deserialize;

/// Longest reason text kept from a non-JSON error body.
const MAX_BODY_REASON: usize = 512;

/// What happens to one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Stored: the offset may move past it.
    Indexed,
    /// A version conflict: the document already exists. Counts as success.
    Conflict409,
    /// Transient: send the event again after a backoff.
    Retry {
        /// The item's status.
        status: u16,
        /// `<error type>: <reason>` of the item's error (types contain no
        /// `:`), or `status <n>` when the item has no error object.
        reason: String,
    },
    /// The document itself is bad: write it to the dead-letter topic; the
    /// offset may move once that write is durable.
    DeadLetter {
        /// The item's status.
        status: u16,
        /// The error's `type`, e.g. `mapper_parsing_exception`.
        error_type: String,
        /// The error's `reason`, with its `caused_by` chain.
        reason: String,
    },
}

impl ItemOutcome {
    /// Whether the event is in the index (indexed or already there).
    pub fn is_success(&self) -> bool {
        matches!(self, ItemOutcome::Indexed | ItemOutcome::Conflict409)
    }

    /// A short, bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ItemOutcome::Indexed => "indexed",
            ItemOutcome::Conflict409 => "conflict",
            ItemOutcome::Retry { .. } => "retry",
            ItemOutcome::DeadLetter { .. } => "dead_letter",
        }
    }
}

/// A bounded classification of error `type`s, for metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// `mapper_parsing_exception` (ES 7, OpenSearch).
    MapperParsing,
    /// `document_parsing_exception` (ES 8.8 and later).
    DocumentParsing,
    /// `illegal_argument_exception`.
    IllegalArgument,
    /// `strict_dynamic_mapping_exception`.
    StrictDynamicMapping,
    /// `version_conflict_engine_exception`.
    VersionConflict,
    /// `es_rejected_execution_exception` (ES) or `rejected_execution_exception` (OpenSearch).
    Rejected,
    /// `circuit_breaking_exception`.
    CircuitBreaking,
    /// `unavailable_shards_exception`.
    UnavailableShards,
    /// `index_not_found_exception`.
    IndexNotFound,
    /// `cluster_block_exception`, e.g. the disk flood-stage read-only block.
    ClusterBlock,
    /// `security_exception`.
    Security,
    /// Anything else.
    Other,
}

impl ErrorClass {
    /// Classifies an error `type` string.
    pub fn from_type(error_type: &str) -> ErrorClass {
        match error_type {
            "mapper_parsing_exception" => ErrorClass::MapperParsing,
            "document_parsing_exception" => ErrorClass::DocumentParsing,
            "illegal_argument_exception" => ErrorClass::IllegalArgument,
            "strict_dynamic_mapping_exception" => ErrorClass::StrictDynamicMapping,
            "version_conflict_engine_exception" => ErrorClass::VersionConflict,
            "es_rejected_execution_exception" | "rejected_execution_exception" => {
                ErrorClass::Rejected
            }
            "circuit_breaking_exception" => ErrorClass::CircuitBreaking,
            "unavailable_shards_exception" => ErrorClass::UnavailableShards,
            "index_not_found_exception" => ErrorClass::IndexNotFound,
            "cluster_block_exception" => ErrorClass::ClusterBlock,
            "security_exception" => ErrorClass::Security,
            _ => ErrorClass::Other,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::MapperParsing => "mapper_parsing",
            ErrorClass::DocumentParsing => "document_parsing",
            ErrorClass::IllegalArgument => "illegal_argument",
            ErrorClass::StrictDynamicMapping => "strict_dynamic_mapping",
            ErrorClass::VersionConflict => "version_conflict",
            ErrorClass::Rejected => "rejected",
            ErrorClass::CircuitBreaking => "circuit_breaking",
            ErrorClass::UnavailableShards => "unavailable_shards",
            ErrorClass::IndexNotFound => "index_not_found",
            ErrorClass::ClusterBlock => "cluster_block",
            ErrorClass::Security => "security",
            ErrorClass::Other => "other",
        }
    }
}

/// Why the whole batch cannot go through as sent, and what to do instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatalKind {
    /// 401 or 403: credentials or privileges.
    Auth,
    /// Another 4xx for the whole request: the endpoint, a proxy or a bug.
    Rejected,
}

/// What happens to a sent batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkOutcome {
    /// The request went through; one outcome per event, in request order.
    Items(Vec<ItemOutcome>),
    /// Cut the batch in two ([`crate::bulk::BulkBatch::split`]) and send both.
    Split {
        /// 413 or 400.
        status: u16,
    },
    /// Send the whole batch again after a backoff.
    RetryAll {
        /// The HTTP status, `None` for a connection error or timeout.
        status: Option<u16>,
        /// What went wrong, for logs.
        reason: String,
    },
    /// The single event of this batch is rejected as a whole: dead-letter it.
    DeadLetterAll {
        /// 413 or 400.
        status: u16,
        /// The error type, or `request_entity_too_large` for a 413.
        error_type: String,
        /// The error reason.
        reason: String,
    },
    /// Stop shipping: a human must fix the configuration. Offsets do not move.
    Fatal {
        /// Which kind of problem.
        kind: FatalKind,
        /// The HTTP status.
        status: u16,
        /// The error from the body, for the operator.
        reason: String,
    },
}

impl BulkOutcome {
    /// A short, bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            BulkOutcome::Items(_) => "items",
            BulkOutcome::Split { .. } => "split",
            BulkOutcome::RetryAll { .. } => "retry",
            BulkOutcome::DeadLetterAll { .. } => "dead_letter",
            BulkOutcome::Fatal { .. } => "fatal",
        }
    }
}

/// A 2xx response that cannot be trusted. Retry the batch.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The body is not a bulk response.
    #[error("reading bulk response failed: {0}")]
    Json(#[from] serde_json::Error),
    /// The response has more or fewer items than events sent.
    #[error("reading bulk response failed: {received} items for {sent} events sent")]
    ItemCount {
        /// Events in the request.
        sent: usize,
        /// Items in the response.
        received: usize,
    },
    /// An item has no `index`, `create`, `update` or `delete` result.
    #[error("reading bulk response failed: item {index} has no action result")]
    MissingAction {
        /// Position of the item.
        index: usize,
    },
}

impl ResponseError {
    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ResponseError::Json(_) => "invalid_json",
            ResponseError::ItemCount { .. } => "item_count_mismatch",
            ResponseError::MissingAction { .. } => "missing_action",
        }
    }
}

/// An error object of either a bulk item or a whole request.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    caused_by: Option<Box<ErrorBody>>,
}

impl ErrorBody {
    fn error_type(&self) -> &str {
        self.kind.as_deref().unwrap_or("unknown")
    }

    /// `reason (caused by type: reason (caused by ...))`, depth-limited.
    fn full_reason(&self) -> String {
        let mut out = self.reason.clone().unwrap_or_default();
        let mut cause = self.caused_by.as_deref();
        let mut depth = 0;
        while let Some(c) = cause {
            if depth == 4 {
                break;
            }
            let _ = write!(
                out,
                " (caused by {}: {})",
                c.error_type(),
                c.reason.as_deref().unwrap_or("")
            );
            cause = c.caused_by.as_deref();
            depth += 1;
        }
        out
    }
}

#[derive(Debug, Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<ErrorBody>,
}

/// `{"index": {...}}`, or the same keyed by another action.
#[derive(Debug, Deserialize)]
struct Item {
    #[serde(default)]
    index: Option<ItemResult>,
    #[serde(default)]
    create: Option<ItemResult>,
    #[serde(default)]
    update: Option<ItemResult>,
    #[serde(default)]
    delete: Option<ItemResult>,
}

#[derive(Debug, Deserialize)]
struct BulkBody {
    #[serde(default)]
    items: Option<Vec<Item>>,
}

/// `{"error": {...}, "status": N}`, or ES 5-style `{"error": "text"}`.
#[derive(Debug, Deserialize)]
struct RequestErrorBody {
    error: RequestError,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RequestError {
    Object(ErrorBody),
    Text(String),
}

/// Classifies one item from its status and error.
fn classify_item(result: ItemResult) -> ItemOutcome {
    let status = result.status;
    let describe = |e: &Option<ErrorBody>| match e {
        Some(e) => format!("{}: {}", e.error_type(), e.full_reason()),
        None => format!("status {status}"),
    };
    match status {
        200..=299 => ItemOutcome::Indexed,
        409 => ItemOutcome::Conflict409,
        401 | 403 | 404 | 408 | 429 => ItemOutcome::Retry {
            status,
            reason: describe(&result.error),
        },
        400..=499 => {
            let (error_type, reason) = match &result.error {
                Some(e) => (e.error_type().to_owned(), e.full_reason()),
                None => ("unknown".to_owned(), format!("status {status}")),
            };
            ItemOutcome::DeadLetter {
                status,
                error_type,
                reason,
            }
        }
        _ => ItemOutcome::Retry {
            status,
            reason: describe(&result.error),
        },
    }
}

/// The error type and reason of a whole-request error body; plain-text bodies
/// (OpenSearch security answers `Unauthorized`) are kept, shortened.
fn request_error(body: &[u8]) -> (String, String) {
    if let Ok(parsed) = serde_json::from_slice::<RequestErrorBody>(body) {
        return match parsed.error {
            RequestError::Object(e) => (e.error_type().to_owned(), e.full_reason()),
            RequestError::Text(text) => ("unknown".to_owned(), text),
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let short: String = text.chars().take(MAX_BODY_REASON).collect();
    ("unknown".to_owned(), short)
}

/// Whether the body is `{"error": {"type": ...}}`: content errors have this
/// shape. The REST layer's routing errors (`{"error": "no handler found for
/// uri ..."}`) are plain strings, and proxies answer HTML or text.
fn is_structured_error(body: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<RequestErrorBody>(body),
        Ok(RequestErrorBody {
            error: RequestError::Object(_)
        })
    )
}

fn describe_request_error(status: u16, body: &[u8]) -> String {
    let (error_type, reason) = request_error(body);
    if reason.is_empty() {
        format!("status {status} ({error_type})")
    } else {
        format!("status {status} ({error_type}): {reason}")
    }
}

/// Classifies the response to a bulk request of `sent` events.
pub fn classify(status: u16, body: &[u8], sent: usize) -> Result<BulkOutcome, ResponseError> {
    Ok(match status {
        200..=299 => BulkOutcome::Items(parse_items(body, sent)?),
        408 | 429 | 500..=599 => BulkOutcome::RetryAll {
            status: Some(status),
            reason: describe_request_error(status, body),
        },
        401 | 403 => BulkOutcome::Fatal {
            kind: FatalKind::Auth,
            status,
            reason: describe_request_error(status, body),
        },
        400 | 413 => rejected_content(status, body, sent),
        _ if (400..=499).contains(&status) => BulkOutcome::Fatal {
            kind: FatalKind::Rejected,
            status,
            reason: describe_request_error(status, body),
        },
        _ => BulkOutcome::RetryAll {
            status: Some(status),
            reason: describe_request_error(status, body),
        },
    })
}

/// A 400 or 413 for the whole request: split to isolate the event, or
/// dead-letter it when it is alone. A 400 that is not a structured error
/// comes from routing or a proxy and is fatal instead.
fn rejected_content(status: u16, body: &[u8], sent: usize) -> BulkOutcome {
    if status == 400 && !is_structured_error(body) {
        return BulkOutcome::Fatal {
            kind: FatalKind::Rejected,
            status,
            reason: describe_request_error(status, body),
        };
    }
    if sent > 1 {
        return BulkOutcome::Split { status };
    }
    let (error_type, reason) = if status == 413 {
        (
            "request_entity_too_large".to_owned(),
            describe_request_error(status, body),
        )
    } else {
        request_error(body)
    };
    BulkOutcome::DeadLetterAll {
        status,
        error_type,
        reason,
    }
}

/// The outcome when no response arrived: connection refused, reset, timeout.
pub fn transport_error(reason: impl Into<String>) -> BulkOutcome {
    BulkOutcome::RetryAll {
        status: None,
        reason: reason.into(),
    }
}

/// The number of items of a response in which every item is a bare
/// success, `{"errors":false,"items":[{"index":{"status":201}},...]}`, the
/// shape `filter_path` leaves of a clean bulk. Checked byte by byte, so no
/// item is built for the common case; `None` for anything else, which the
/// full parse then reads.
fn count_bare_successes(body: &[u8]) -> Option<usize> {
    let mut rest = body.strip_prefix(br#"{"errors":false,"items":["#)?;
    let mut count = 0;
    loop {
        let (&last_digit, after) = rest
            .strip_prefix(br#"{"index":{"status":20"#)?
            .split_first()?;
        if !matches!(last_digit, b'0' | b'1') {
            return None;
        }
        count += 1;
        match after.strip_prefix(b"}}")?.split_first()? {
            (b',', next) => rest = next,
            (b']', end) => return (end.trim_ascii() == b"}").then_some(count),
            _ => return None,
        }
    }
}

/// Reads the item outcomes of a 2xx bulk response body.
pub fn parse_items(body: &[u8], sent: usize) -> Result<Vec<ItemOutcome>, ResponseError> {
    if count_bare_successes(body) == Some(sent) {
        return Ok(vec![ItemOutcome::Indexed; sent]);
    }
    parse_every_item(body, sent)
}

/// [`parse_items`] without the fast path: every item decoded.
fn parse_every_item(body: &[u8], sent: usize) -> Result<Vec<ItemOutcome>, ResponseError> {
    let parsed: BulkBody = serde_json::from_slice(body)?;
    let items = parsed.items.unwrap_or_default();
    if items.len() != sent {
        return Err(ResponseError::ItemCount {
            sent,
            received: items.len(),
        });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let result = item
                .index
                .or(item.create)
                .or(item.update)
                .or(item.delete)
                .ok_or(ResponseError::MissingAction { index })?;
            Ok(classify_item(result))
        })
        .collect()
}

impl ItemOutcome {
    /// The bounded class of the item's error, for metrics; `None` on success.
    pub fn error_class(&self) -> Option<ErrorClass> {
        match self {
            ItemOutcome::Indexed => None,
            ItemOutcome::Conflict409 => Some(ErrorClass::VersionConflict),
            ItemOutcome::DeadLetter { error_type, .. } => Some(ErrorClass::from_type(error_type)),
            ItemOutcome::Retry { reason, .. } => Some(ErrorClass::from_type(
                reason.split(':').next().unwrap_or_default(),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
