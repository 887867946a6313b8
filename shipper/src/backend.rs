//! Which search engine answers, from the body of `GET /`.
//!
//! Supported: Elasticsearch 7, 8 and 9, OpenSearch 2 and 3.
//!
//! Detection order:
//! 1. `version.distribution == "opensearch"`: OpenSearch, version from
//!    `version.number`.
//! 2. No `distribution`, but a tagline naming OpenSearch: OpenSearch in
//!    compatibility mode (Amazon OpenSearch Service still offers it), which
//!    reports `version.number` 7.10.2 and drops `distribution` (OpenSearch
//!    PR #898). The real major comes from the Lucene major (8: OpenSearch 1,
//!    9: 2, 10: 3); the minor is unknown, taken as 0 and flagged
//!    [`Backend::version_inferred`], which keeps capability checks
//!    conservative.
//! 3. Otherwise Elasticsearch, from `version.number` and `build_flavor`.
//!
//! `version.number` alone is never trusted to tell the products apart: that
//! is how Vector sent `_type` to OpenSearch 2 (vector#17690).

use serde::Deserialize;

/// The product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Elasticsearch.
    Elasticsearch,
    /// OpenSearch.
    OpenSearch,
}

impl BackendKind {
    /// Lowercase name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Elasticsearch => "elasticsearch",
            BackendKind::OpenSearch => "opensearch",
        }
    }
}

/// Elasticsearch's build flavour: ILM exists only in `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The default distribution (X-Pack features: ILM, `flattened`).
    Default,
    /// The Apache-2.0 OSS build (up to 7.10): no ILM, no `flattened`.
    Oss,
    /// Elastic Cloud Serverless: no ILM (data stream lifecycle instead).
    Serverless,
    /// Not reported (OpenSearch) or unknown.
    Other,
}

/// How indices are deleted after the retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Elasticsearch Index Lifecycle Management, `_ilm/policy`.
    Ilm,
    /// OpenSearch Index State Management, `_plugins/_ism/policies`. It is a
    /// plugin: the caller probes the endpoint and skips the policy when absent.
    Ism,
    /// No lifecycle management available: indices are kept until deleted.
    None,
}

/// How `kubernetes.labels` and `kubernetes.annotations` are mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelsMapping {
    /// `flattened` (Elasticsearch ≥ 7.3, default flavour).
    Flattened,
    /// `flat_object` (OpenSearch ≥ 2.12: earlier releases mis-parse keys
    /// containing dots, OpenSearch PR #11425, and label keys such as
    /// `app.kubernetes.io/name` always contain dots).
    FlatObject,
    /// Kept in `_source` only, not searchable: where neither type exists.
    Disabled,
}

/// What the backend can do, as far as the shipper cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `_index_template` (composable templates): Elasticsearch ≥ 7.8, all OpenSearch.
    pub composable_templates: bool,
    /// Which lifecycle API deletes old indices.
    pub lifecycle: Lifecycle,
    /// Whether bulk actions need `_type`: only before 7, which is unsupported,
    /// so always `false`; kept so the rule is written down and tested.
    pub needs_type: bool,
    /// The mapping type for label and annotation maps.
    pub labels: LabelsMapping,
}

/// A detected backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// The product.
    pub kind: BackendKind,
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Elasticsearch's build flavour.
    pub flavor: Flavor,
    /// The version came from the Lucene version (OpenSearch compatibility
    /// mode), and the minor is a guess (0).
    pub version_inferred: bool,
}

/// Why the backend is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    /// The body is not the JSON of `GET /`.
    #[error("detecting search backend failed: GET / did not return the expected JSON: {0}")]
    InvalidBody(String),
    /// The version number does not parse.
    #[error("detecting search backend failed: version {0:?} is not a version number")]
    BadVersion(String),
    /// A distribution that is neither Elasticsearch nor OpenSearch.
    #[error(
        "detecting search backend failed: distribution {0:?} is not supported (Elasticsearch 7-9 and OpenSearch 2-3 are)"
    )]
    UnknownDistribution(String),
    /// A known product at an unsupported version.
    #[error(
        "detecting search backend failed: {kind} {version} is not supported (Elasticsearch 7-9 and OpenSearch 2-3 are)"
    )]
    Unsupported {
        /// The product name.
        kind: &'static str,
        /// The version as reported.
        version: String,
    },
}

#[derive(Debug, Deserialize)]
struct Root {
    version: VersionInfo,
    #[serde(default)]
    tagline: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VersionInfo {
    number: String,
    #[serde(default)]
    distribution: Option<String>,
    #[serde(default)]
    build_flavor: Option<String>,
    #[serde(default)]
    lucene_version: Option<String>,
}

/// `major.minor` from `8.19.3`, `9.1.0-SNAPSHOT`, `3.0.0-alpha1`.
fn major_minor(number: &str) -> Option<(u32, u32)> {
    let mut parts = number.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// Detects the backend from the `GET /` body.
pub fn detect(body: &[u8]) -> Result<Backend, DetectError> {
    let root: Root =
        serde_json::from_slice(body).map_err(|e| DetectError::InvalidBody(e.to_string()))?;
    let v = &root.version;
    let tagline_says_opensearch = root
        .tagline
        .as_deref()
        .is_some_and(|t| t.contains("OpenSearch"));
    let (kind, major, minor, version_inferred) = match v.distribution.as_deref() {
        Some("opensearch") => {
            let (major, minor) =
                major_minor(&v.number).ok_or_else(|| DetectError::BadVersion(v.number.clone()))?;
            (BackendKind::OpenSearch, major, minor, false)
        }
        Some(other) => return Err(DetectError::UnknownDistribution(other.to_owned())),
        None if tagline_says_opensearch => {
            let lucene = v.lucene_version.as_deref().unwrap_or_default();
            let major = match major_minor(lucene) {
                Some((8, _)) => 1,
                Some((9, _)) => 2,
                Some((10, _)) => 3,
                _ => {
                    return Err(DetectError::Unsupported {
                        kind: "OpenSearch",
                        version: format!("{} (compatibility mode, Lucene {lucene:?})", v.number),
                    });
                }
            };
            (BackendKind::OpenSearch, major, 0, true)
        }
        None => {
            let (major, minor) =
                major_minor(&v.number).ok_or_else(|| DetectError::BadVersion(v.number.clone()))?;
            (BackendKind::Elasticsearch, major, minor, false)
        }
    };
    let supported = match kind {
        BackendKind::Elasticsearch => (7..=9).contains(&major),
        BackendKind::OpenSearch => (2..=3).contains(&major),
    };
    if !supported {
        return Err(DetectError::Unsupported {
            kind: match kind {
                BackendKind::Elasticsearch => "Elasticsearch",
                BackendKind::OpenSearch => "OpenSearch",
            },
            version: v.number.clone(),
        });
    }
    let flavor = match (kind, v.build_flavor.as_deref()) {
        (BackendKind::OpenSearch, _) => Flavor::Other,
        (_, Some("default")) => Flavor::Default,
        (_, Some("oss")) => Flavor::Oss,
        (_, Some("serverless")) => Flavor::Serverless,
        // 7.x always reports a flavour; treat a missing one as default.
        (_, None) => Flavor::Default,
        (_, Some(_)) => Flavor::Other,
    };
    Ok(Backend {
        kind,
        major,
        minor,
        flavor,
        version_inferred,
    })
}

impl Backend {
    /// Whether the version is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// What this backend supports.
    pub fn capabilities(&self) -> Capabilities {
        match self.kind {
            BackendKind::Elasticsearch => Capabilities {
                composable_templates: self.at_least(7, 8),
                lifecycle: match self.flavor {
                    Flavor::Default | Flavor::Other => Lifecycle::Ilm,
                    Flavor::Oss | Flavor::Serverless => Lifecycle::None,
                },
                needs_type: self.major < 7,
                labels: if self.at_least(7, 3) && self.flavor != Flavor::Oss {
                    LabelsMapping::Flattened
                } else {
                    LabelsMapping::Disabled
                },
            },
            BackendKind::OpenSearch => Capabilities {
                composable_templates: true,
                lifecycle: Lifecycle::Ism,
                needs_type: false,
                labels: if self.at_least(2, 12) {
                    LabelsMapping::FlatObject
                } else {
                    LabelsMapping::Disabled
                },
            },
        }
    }
}

impl std::fmt::Display for Backend {
    /// `opensearch 2.19`, for logs and reports.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}.{}", self.kind.as_str(), self.major, self.minor)
    }
}

/// The `GET` that shows whether `lifecycle` really answers on the cluster
/// (X-Pack and OpenSearch's index-management plugin can be missing);
/// `None` when there is nothing to probe.
pub fn lifecycle_probe_path(lifecycle: Lifecycle, policy: &str) -> Option<String> {
    match lifecycle {
        Lifecycle::Ilm => Some("/_ilm/status".to_owned()),
        Lifecycle::Ism => Some(format!("/_plugins/_ism/policies/{policy}")),
        Lifecycle::None => None,
    }
}

/// What the answer to [`lifecycle_probe_path`] means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// The lifecycle API answered: install its policy.
    Available,
    /// It is missing: keep indices until deleted, warn, carry on.
    Missing,
    /// A server error: ask again later.
    ServerError,
}

/// Reads the probe's answer. ILM answers `200` with an `operation_mode`.
/// ISM answers `200` for an existing policy or a structured `404` (an
/// `error` object) for a missing one; without the plugin the REST layer
/// answers `400` with a plain string error.
pub fn read_lifecycle_probe(lifecycle: Lifecycle, status: u16, body: &[u8]) -> ProbeAnswer {
    if status >= 500 {
        return ProbeAnswer::ServerError;
    }
    let json = || serde_json::from_slice::<serde_json::Value>(body).ok();
    let answers = match (lifecycle, status) {
        (Lifecycle::Ilm, 200) => json().is_some_and(|v| v.get("operation_mode").is_some()),
        (Lifecycle::Ism, 200) => true,
        (Lifecycle::Ism, 404) => {
            json().is_some_and(|v| v.get("error").is_some_and(serde_json::Value::is_object))
        }
        _ => false,
    };
    if answers {
        ProbeAnswer::Available
    } else {
        ProbeAnswer::Missing
    }
}

#[cfg(test)]
mod tests;
