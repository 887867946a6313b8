//! Reading Kibana's `GET /api/status`: is it ready, and which version is it.
//!
//! Two body formats exist. Kibana 7.x answers by default in the legacy
//! format, `status.overall.state` (`green`, `yellow`, `red`); Kibana 8 and 9
//! answer in the format that 7.x gives only with `?v8format=true`,
//! `status.overall.level` (`available`, `degraded`, `unavailable`,
//! `critical`). Kibana answers 503 while its core services are unavailable,
//! and a plain "Kibana server is not ready yet" while it migrates its saved
//! objects. Kibana 8 and 9 redact the body of an unauthenticated request to
//! `{"status":{"overall":{"level":"available"}}}`: no version then.

use serde_json::Value;

/// A Kibana release, from `version.number`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    /// Major version, e.g. 8.
    pub(crate) major: u32,
    /// Minor version, e.g. 19.
    pub(crate) minor: u32,
}

impl Version {
    /// Parses `8.19.3`, `7.17.0-SNAPSHOT` or `9.1`; `None` for anything else.
    pub(crate) fn parse(number: &str) -> Option<Version> {
        let mut parts = number.split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Version { major, minor })
    }
}

/// Which status format the body had: it tells the major version when the
/// version itself is redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `status.overall.level`: Kibana 8 and later.
    Level,
    /// `status.overall.state`: Kibana 7.
    State,
    /// Neither: not a status body (e.g. the plain-text 503 during migrations).
    Unknown,
}

/// What one status answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    /// Kibana is ready for the import.
    pub(crate) ready: bool,
    /// Why not, or the overall status in words, for progress messages.
    pub(crate) summary: String,
    /// The body's format.
    pub(crate) format: Format,
    /// `version.number`, when the body has it.
    pub(crate) version_number: Option<String>,
}

/// Reads a status answer: `http_status` and the raw body.
///
/// Ready means HTTP 200 and `level == "available"` (8.x) or
/// `state == "green"` (7.x). `degraded` and `yellow` are not ready: a plugin
/// is struggling, and the caller waits (boundedly) for it to recover.
pub(crate) fn parse(http_status: u16, body: &[u8]) -> Status {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return Status {
            ready: false,
            summary: format!("http {http_status}: {}", excerpt(body)),
            format: Format::Unknown,
            version_number: None,
        };
    };
    let overall = &json["status"]["overall"];
    let version_number = json["version"]["number"].as_str().map(str::to_owned);
    let (format, healthy, word, detail) = if let Some(level) = overall["level"].as_str() {
        let detail = overall["summary"].as_str();
        (Format::Level, level == "available", level, detail)
    } else if let Some(state) = overall["state"].as_str() {
        let detail = overall["title"].as_str();
        (Format::State, state == "green", state, detail)
    } else {
        let message = json["message"]
            .as_str()
            .unwrap_or("no overall status in the answer");
        return Status {
            ready: false,
            summary: format!("http {http_status}: {message}"),
            format: Format::Unknown,
            version_number,
        };
    };
    let summary = match detail {
        Some(detail) if !detail.is_empty() && detail != word => {
            format!("http {http_status}, overall {word}: {detail}")
        }
        _ => format!("http {http_status}, overall {word}"),
    };
    Status {
        ready: http_status == 200 && healthy,
        summary,
        format,
        version_number,
    }
}

/// The start of a body as text, for messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX_CHARS: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut out: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().count() > MAX_CHARS {
        out.push('…');
    }
    out
}
