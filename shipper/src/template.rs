//! The index template and lifecycle policy the shipper installs, as JSON.
//!
//! # Mapping choices
//!
//! - `dynamic: false` at the root: every field of the record is mapped
//!   explicitly; a field a newer collector adds stays in `_source` but is not
//!   indexed, so nothing can cause a mapping explosion or a type conflict.
//! - `@timestamp` is `date_nanos` (Elasticsearch ≥ 7.0, every OpenSearch): the
//!   runtime's timestamps have nanoseconds, and ordering lines within one
//!   millisecond matters for logs.
//! - `message` is `text`; the other strings are `keyword` with
//!   `ignore_above: 1024` so one huge value cannot reject a document.
//! - `kubernetes.labels` and `kubernetes.annotations` are maps with arbitrary
//!   keys, many with dots (`app.kubernetes.io/name`). Dynamic object mapping
//!   turns dots into object paths, so a pod with labels `app` and
//!   `app.kubernetes.io/name` would make `app` both a string and an object: a
//!   mapping conflict that rejects the document. Dynamic templates mapping
//!   strings to keyword keep that conflict and add one field per distinct key
//!   (towards the 1000-field limit). So the maps use a single-field type:
//!   `flattened` on Elasticsearch, `flat_object` on OpenSearch ≥ 2.12, and
//!   where neither exists they are kept in `_source` only
//!   (`enabled: false`): never a rejected document. See
//!   [`crate::backend::LabelsMapping`].
//!
//! # Why no rollover
//!
//! Indices are named from the event ([`crate::index_name`]), e.g.
//! `kelp-logs-shop-2026.11.27`, and written with the `index` action and the
//! event's deterministic id. A replay therefore lands on the same index and
//! overwrites the same document. Rollover (and data streams) write to
//! whatever the current backing index is, so a replay after a rollover would
//! duplicate (elasticsearch#44794). Retention is done by deleting whole
//! indices some days after their creation, with ILM on Elasticsearch and ISM
//! on OpenSearch. An index created by a late replay of old events is deleted
//! that many days after the replay, not after the events' day.

use serde_json::{Value, json};

use crate::backend::{Backend, Capabilities, LabelsMapping, Lifecycle};

/// Bumped whenever the template body changes, so an operator can see which
/// shipper installed it (`GET _index_template/kelp-logs` shows `version`).
pub const TEMPLATE_VERSION: u32 = 1;

/// Priority of the composable template. Above Elasticsearch's built-in
/// `logs-*-*` template (100), which our default pattern does not match anyway.
pub const TEMPLATE_PRIORITY: u32 = 200;

/// Priority of the ISM policy's `ism_template`.
pub const ISM_PRIORITY: u32 = 100;

/// The `ignore_above` of keyword fields, in characters.
pub const KEYWORD_IGNORE_ABOVE: u32 = 1024;

/// Index compression codec: both products support these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// LZ4: faster, larger.
    Default,
    /// DEFLATE (zstd on recent Elasticsearch): smaller, a little more CPU.
    BestCompression,
}

impl Codec {
    /// The value of `index.codec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Default => "default",
            Codec::BestCompression => "best_compression",
        }
    }
}

/// Everything the template and policy depend on besides the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSettings {
    /// Name of the template and of the lifecycle policy, e.g. `kelp-logs`.
    pub name: String,
    /// Index patterns, e.g. `["kelp-logs-*"]`.
    pub index_patterns: Vec<String>,
    /// `index.number_of_shards`.
    pub shards: u32,
    /// `index.number_of_replicas`; `None` leaves the cluster default.
    pub replicas: Option<u32>,
    /// `index.refresh_interval`, e.g. `1s`.
    pub refresh_interval: String,
    /// `index.codec`.
    pub codec: Codec,
    /// Days after creation an index is deleted; `None` keeps indices forever
    /// (no policy).
    pub retention_days: Option<u32>,
}

/// One API call to make, in order, to install the template and policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// HTTP method: `PUT` for all of these.
    pub method: &'static str,
    /// Path, e.g. `/_index_template/kelp-logs`.
    pub path: String,
    /// JSON body.
    pub body: Value,
}

fn keyword() -> Value {
    json!({"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE})
}

fn labels_mapping(labels: LabelsMapping) -> Value {
    match labels {
        LabelsMapping::Flattened => {
            json!({"type": "flattened", "ignore_above": KEYWORD_IGNORE_ABOVE})
        }
        LabelsMapping::FlatObject => json!({"type": "flat_object"}),
        LabelsMapping::Disabled => json!({"type": "object", "enabled": false}),
    }
}

/// The mappings for the record.
pub fn mappings(labels: LabelsMapping) -> Value {
    json!({
        "dynamic": false,
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            "message": {"type": "text"},
            "stream": keyword(),
            "log": {"properties": {
                "file": {"properties": {"path": keyword()}},
                "offset": {"type": "long"},
                "flags": keyword(),
                "level": keyword(),
            }},
            "kubernetes": {"properties": {
                "namespace": keyword(),
                "pod": {"properties": {"name": keyword(), "uid": keyword()}},
                "container": {"properties": {"name": keyword(), "image": keyword()}},
                "node": {"properties": {"name": keyword()}},
                "owner": {"properties": {"kind": keyword(), "name": keyword()}},
                "labels": labels_mapping(labels),
                "annotations": labels_mapping(labels),
            }},
            "container": {"properties": {"id": keyword(), "runtime": keyword()}},
            "host": {"properties": {"name": keyword()}},
            "event": {"properties": {
                "id": keyword(),
                "ingested": {"type": "date"},
            }},
            "kelp": {"properties": {"schema": {"type": "integer"}}},
        }
    })
}

/// The index settings.
pub fn index_settings(backend: &Backend, s: &TemplateSettings) -> Value {
    index_settings_for(&backend.capabilities(), s)
}

/// [`index_settings`] for capabilities the caller probed (e.g. ILM turned
/// out to be missing on a build without X-Pack).
pub fn index_settings_for(caps: &Capabilities, s: &TemplateSettings) -> Value {
    let mut index = json!({
        "number_of_shards": s.shards,
        "refresh_interval": s.refresh_interval,
        "codec": s.codec.as_str(),
    });
    if let Some(replicas) = s.replicas {
        index["number_of_replicas"] = json!(replicas);
    }
    // ILM is attached by an index setting; ISM attaches itself through the
    // policy's `ism_template`.
    if s.retention_days.is_some() && caps.lifecycle == Lifecycle::Ilm {
        index["lifecycle"] = json!({"name": s.name});
    }
    json!({"index": index})
}

fn meta() -> Value {
    json!({"managed_by": "kelp-shipper", "schema": kelp_record::SCHEMA_VERSION})
}

/// The composable index template body, for `PUT _index_template/<name>`.
pub fn composable_template(backend: &Backend, s: &TemplateSettings) -> Value {
    composable_template_for(&backend.capabilities(), s)
}

/// [`composable_template`] for probed capabilities.
pub fn composable_template_for(caps: &Capabilities, s: &TemplateSettings) -> Value {
    json!({
        "index_patterns": s.index_patterns,
        "priority": TEMPLATE_PRIORITY,
        "version": TEMPLATE_VERSION,
        "_meta": meta(),
        "template": {
            "settings": index_settings_for(caps, s),
            "mappings": mappings(caps.labels),
        },
    })
}

/// The legacy template body, for `PUT _template/<name>` on Elasticsearch
/// before 7.8. Legacy templates have no `_meta` and use `order`.
pub fn legacy_template(backend: &Backend, s: &TemplateSettings) -> Value {
    legacy_template_for(&backend.capabilities(), s)
}

/// [`legacy_template`] for probed capabilities.
pub fn legacy_template_for(caps: &Capabilities, s: &TemplateSettings) -> Value {
    json!({
        "index_patterns": s.index_patterns,
        "order": TEMPLATE_PRIORITY,
        "version": TEMPLATE_VERSION,
        "settings": index_settings_for(caps, s),
        "mappings": mappings(caps.labels),
    })
}

/// The ILM policy body, for `PUT _ilm/policy/<name>`: delete indices
/// `retention_days` after creation. No `_meta` (it needs Elasticsearch 7.14).
pub fn ilm_policy(retention_days: u32) -> Value {
    json!({
        "policy": {
            "phases": {
                "delete": {
                    "min_age": format!("{retention_days}d"),
                    "actions": {"delete": {}},
                },
            },
        },
    })
}

/// The ISM policy body, for `PUT _plugins/_ism/policies/<name>`: delete
/// indices `retention_days` after creation. The `ism_template` attaches it
/// to new indices matching the patterns.
pub fn ism_policy(s: &TemplateSettings, retention_days: u32) -> Value {
    json!({
        "policy": {
            "description": format!(
                "kelp-shipper: delete {} indices {retention_days} days after creation",
                s.index_patterns.join(", ")
            ),
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [],
                    "transitions": [{
                        "state_name": "delete",
                        "conditions": {"min_index_age": format!("{retention_days}d")},
                    }],
                },
                {
                    "name": "delete",
                    "actions": [{"delete": {}}],
                    "transitions": [],
                },
            ],
            "ism_template": [{
                "index_patterns": s.index_patterns,
                "priority": ISM_PRIORITY,
            }],
        },
    })
}

/// The calls that install the policy, then the template (the template names
/// the ILM policy, so the policy goes first).
///
/// On OpenSearch the ISM call is included; the caller first probes that the
/// ISM plugin answers and drops the call when it doesn't. Updating an
/// existing ISM policy needs `?if_seq_no=..&if_primary_term=..` from a `GET`
/// of it; a plain `PUT` on an existing policy answers 409.
pub fn install_plan(backend: &Backend, s: &TemplateSettings) -> Vec<ApiCall> {
    install_plan_for(&backend.capabilities(), s)
}

/// [`install_plan`] for capabilities the caller probed: the rim checks that
/// the lifecycle API answers (X-Pack and the ISM plugin can be missing) and
/// that the labels type exists, and passes what it found.
pub fn install_plan_for(caps: &Capabilities, s: &TemplateSettings) -> Vec<ApiCall> {
    let mut calls = Vec::with_capacity(2);
    if let Some(days) = s.retention_days {
        match caps.lifecycle {
            Lifecycle::Ilm => calls.push(ApiCall {
                method: "PUT",
                path: format!("/_ilm/policy/{}", s.name),
                body: ilm_policy(days),
            }),
            Lifecycle::Ism => calls.push(ApiCall {
                method: "PUT",
                path: format!("/_plugins/_ism/policies/{}", s.name),
                body: ism_policy(s, days),
            }),
            Lifecycle::None => {}
        }
    }
    if caps.composable_templates {
        calls.push(ApiCall {
            method: "PUT",
            path: format!("/_index_template/{}", s.name),
            body: composable_template_for(caps, s),
        });
    } else {
        calls.push(ApiCall {
            method: "PUT",
            path: format!("/_template/{}", s.name),
            body: legacy_template_for(caps, s),
        });
    }
    calls
}

/// Whether `path` writes an ISM policy, which needs [`ism_update_path`]
/// when the policy exists.
pub fn is_ism_policy(path: &str) -> bool {
    path.starts_with("/_plugins/_ism/policies/")
}

/// The `PUT` path that updates an existing ISM policy, from the `_seq_no`
/// and `_primary_term` of a `GET` of it: ISM refuses a plain `PUT` over an
/// existing policy (409). `None` when the answer lacks them.
pub fn ism_update_path(path: &str, current: &Value) -> Option<String> {
    let seq = current["_seq_no"].as_i64()?;
    let term = current["_primary_term"].as_i64()?;
    Some(format!("{path}?if_seq_no={seq}&if_primary_term={term}"))
}

/// Whether an error body says the cluster lacks the labels' field type
/// (`flattened` or `flat_object`): then the template goes again with
/// labels kept in `_source` only.
pub fn lacks_labels_type(body: &str) -> bool {
    body.contains("No handler for type")
}

#[cfg(test)]
mod tests;
