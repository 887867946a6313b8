//! Rollout step 4's second half: the shipper's index template (and its
//! retention policy) installed before the shipper starts, so the first
//! index it writes is created with kelp's mappings.
//!
//! The settings come from the shipper's config exactly as `kelp render`
//! writes it into the shipper's ConfigMap, read by the shipper's own parser,
//! and the bodies from the shipper's pure builders
//! (`kelp_shipper::template::install_plan_for`): the deployer installs the
//! same template the shipper installs at its start. What the cluster can do
//! is probed as the shipper probes it (ILM or ISM may be missing; a cluster
//! without the labels' field type gets labels kept in `_source` only).
//!
//! Idempotent: each object is read first and written only when it differs
//! from what kelp would write, so a second install changes nothing.

use kelp_shipper::backend::{self, Backend, Capabilities, LabelsMapping, Lifecycle, ProbeAnswer};
use kelp_shipper::template::{self, ApiCall, TemplateSettings};
use reqwest::{Client, Method, Url};
use serde_json::Value;

use super::search::endpoint;
use super::{BasicAuth, HttpOptions, authorized, error_chain, excerpt, http_client};
use crate::manifests::{self, Object};
use crate::stack::Stack;

/// The ConfigMap key the shipper reads its config from (manifests/shipper.rs).
const SHIPPER_CONFIG_FILE: &str = "shipper.yaml";

/// Why the template could not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The stack's shipper config does not give template settings.
    #[error("reading the shipper's template settings failed: {0}")]
    Settings(String),
    /// The HTTP client could not be built or the URL is unusable.
    #[error("preparing the search engine client failed: {0}")]
    Setup(String),
    /// No answer: refused, reset, timed out.
    #[error("{step} failed: {detail}")]
    Transport {
        /// The step, e.g. `installing index template kelp-logs`.
        step: String,
        /// The cause.
        detail: String,
    },
    /// An answer that retrying the same request would not change.
    #[error("{step} failed: http {status}: {body}")]
    Http {
        /// The step.
        step: String,
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// `GET /` is not a supported search engine.
    #[error("{0}")]
    Backend(String),
}

/// The template settings the shipper of `stack` uses, from its rendered
/// config; `None` when the stack turns the shipper's install off
/// (`shipper.template.install: false`).
pub fn shipper_template_settings(stack: &Stack) -> Result<Option<TemplateSettings>, TemplateError> {
    let objects = manifests::build_component(stack, "shipper");
    let text = objects
        .iter()
        .find_map(|object| match object {
            Object::ConfigMap(map) => map.data.as_ref()?.get(SHIPPER_CONFIG_FILE).cloned(),
            _ => None,
        })
        .ok_or_else(|| {
            TemplateError::Settings(format!(
                "the shipper's config map has no {SHIPPER_CONFIG_FILE}"
            ))
        })?;
    let config = kelp_shipper::config::Config::from_yaml_str(&text)
        .map_err(|e| TemplateError::Settings(e.to_string()))?;
    if !config.template.install {
        return Ok(None);
    }
    config
        .template_settings()
        .map(Some)
        .map_err(|e| TemplateError::Settings(e.to_string()))
}

/// Whether an installed object equals the one kelp would write: the
/// cluster returns settings as strings and adds empty fields
/// (`composed_of: []`, `aliases: {}`); anything else extra is a difference.
pub fn same(desired: &Value, installed: &Value) -> bool {
    match (desired, installed) {
        (Value::Object(want), Value::Object(have)) => {
            want.iter()
                .all(|(k, v)| have.get(k).is_some_and(|h| same(v, h)))
                && have
                    .iter()
                    .all(|(k, v)| want.contains_key(k) || is_empty(v))
        }
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| same(w, h))
        }
        _ => same_scalar(desired, installed),
    }
}

/// Whether `installed` has everything of `desired` (it may add fields):
/// lifecycle policies come back with server-side fields and defaults
/// (`policy_id`, `last_updated_time`, `delete_searchable_snapshot`).
pub fn contains(desired: &Value, installed: &Value) -> bool {
    match (desired, installed) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(k, v)| have.get(k).is_some_and(|h| contains(v, h))),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| contains(w, h))
        }
        _ => same_scalar(desired, installed),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    a == b || matches!((text(a), text(b)), (Some(x), Some(y)) if x == y)
}

/// What kind of object an install call writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ComposableTemplate,
    LegacyTemplate,
    IlmPolicy,
    IsmPolicy,
}

impl Kind {
    fn of(path: &str) -> Kind {
        if path.starts_with("/_index_template/") {
            Kind::ComposableTemplate
        } else if path.starts_with("/_template/") {
            Kind::LegacyTemplate
        } else if path.starts_with("/_ilm/policy/") {
            Kind::IlmPolicy
        } else {
            Kind::IsmPolicy
        }
    }

    fn describe(self, name: &str) -> String {
        match self {
            Kind::ComposableTemplate => format!("index template {name}"),
            Kind::LegacyTemplate => format!("legacy index template {name}"),
            Kind::IlmPolicy => format!("ilm policy {name}"),
            Kind::IsmPolicy => format!("ism policy {name}"),
        }
    }
}

/// Whether the answer to `GET <path>` shows the object as kelp would write it.
pub fn installed_matches(path: &str, name: &str, desired: &Value, answer: &Value) -> bool {
    match Kind::of(path) {
        Kind::ComposableTemplate => answer["index_templates"]
            .as_array()
            .and_then(|list| list.iter().find(|t| t["name"] == name))
            .is_some_and(|t| same(desired, &t["index_template"])),
        Kind::LegacyTemplate => same(desired, &answer[name]),
        Kind::IlmPolicy => contains(&desired["policy"], &answer[name]["policy"]),
        Kind::IsmPolicy => contains(&desired["policy"], &answer["policy"]),
    }
}

/// An answer: HTTP status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

struct Engine<'a> {
    client: Client,
    base: &'a str,
    auth: Option<&'a BasicAuth>,
}

impl Engine<'_> {
    async fn send(
        &self,
        step: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, TemplateError> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut url: Url = endpoint(self.base, path).map_err(TemplateError::Setup)?;
        if !query.is_empty() {
            url.set_query(Some(query));
        }
        let mut request = authorized(self.client.request(method, url.clone()), self.auth);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let transport = |e: reqwest::Error| TemplateError::Transport {
            step: step.to_owned(),
            detail: error_chain(&e),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Answer { status, body })
    }

    async fn get(&self, step: &str, path: &str) -> Result<Answer, TemplateError> {
        self.send(step, Method::GET, path, None).await
    }

    async fn detect(&self) -> Result<Backend, TemplateError> {
        let step = "detecting the search engine (GET /)";
        let answer = self.get(step, "/").await?;
        if answer.status != 200 {
            return Err(http_error(step, &answer));
        }
        backend::detect(&answer.body).map_err(|e| TemplateError::Backend(e.to_string()))
    }

    /// The shipper's probe: ILM or ISM may be missing from the cluster.
    async fn probe(
        &self,
        backend: &Backend,
        settings: &TemplateSettings,
    ) -> Result<Capabilities, TemplateError> {
        let mut caps = backend.capabilities();
        if settings.retention_days.is_none() {
            return Ok(caps);
        }
        let Some(path) = backend::lifecycle_probe_path(caps.lifecycle, &settings.name) else {
            return Ok(caps);
        };
        let step = "probing the lifecycle api";
        let answer = self.get(step, &path).await?;
        match backend::read_lifecycle_probe(caps.lifecycle, answer.status, &answer.body) {
            ProbeAnswer::Available => {}
            ProbeAnswer::Missing => caps.lifecycle = Lifecycle::None,
            ProbeAnswer::ServerError => return Err(http_error(step, &answer)),
        }
        Ok(caps)
    }

    /// Writes one object unless it is already as desired; true when written.
    async fn apply(&self, call: &ApiCall, name: &str) -> Result<bool, TemplateError> {
        let kind = Kind::of(&call.path);
        let what = kind.describe(name);
        let step = format!("reading {what}");
        let current = self.get(&step, &call.path).await?;
        let mut path = call.path.clone();
        match current.status {
            200 => {
                if installed_matches(&call.path, name, &call.body, &current.json()) {
                    return Ok(false);
                }
                if kind == Kind::IsmPolicy {
                    path = template::ism_update_path(&path, &current.json()).ok_or_else(|| {
                        TemplateError::Http {
                            step: step.clone(),
                            status: 200,
                            body: format!(
                                "no _seq_no or _primary_term in {}",
                                excerpt(&current.body)
                            ),
                        }
                    })?;
                }
            }
            404 => {}
            _ => return Err(http_error(&step, &current)),
        }
        let step = format!("installing {what}");
        let answer = self
            .send(&step, Method::PUT, &path, Some(&call.body))
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(http_error(&step, &answer));
        }
        tracing::info!(path = %call.path, "installed {what}");
        Ok(true)
    }
}

fn http_error(step: &str, answer: &Answer) -> TemplateError {
    TemplateError::Http {
        step: step.to_owned(),
        status: answer.status,
        body: excerpt(&answer.body),
    }
}

/// Installs the shipper's index template (and retention policy) of `stack`
/// on the cluster at `url`, idempotently, and says what it did, e.g.
/// `index template kelp-logs installed on opensearch 2.19` or `... up to
/// date ...` when nothing had to change.
pub async fn install_index_template(
    url: &str,
    auth: Option<&BasicAuth>,
    stack: &Stack,
) -> Result<String, TemplateError> {
    install_index_template_with(url, auth, &HttpOptions::default(), stack).await
}

/// [`install_index_template`] with the cluster's CA or a port-forward
/// ([`HttpOptions`]).
pub async fn install_index_template_with(
    url: &str,
    auth: Option<&BasicAuth>,
    http: &HttpOptions,
    stack: &Stack,
) -> Result<String, TemplateError> {
    let Some(settings) = shipper_template_settings(stack)? else {
        return Ok("shipper.template.install is false: no index template installed".to_owned());
    };
    let engine = Engine {
        client: http_client(http).map_err(TemplateError::Setup)?,
        base: url,
        auth,
    };
    let backend = engine.detect().await?;
    let mut caps = engine.probe(&backend, &settings).await?;
    let mut outcomes = Vec::new();
    loop {
        outcomes.clear();
        let mut retry_without_labels = false;
        for call in template::install_plan_for(&caps, &settings) {
            let what = Kind::of(&call.path).describe(&settings.name);
            match engine.apply(&call, &settings.name).await {
                Ok(true) => outcomes.push(format!("{what} installed")),
                Ok(false) => outcomes.push(format!("{what} up to date")),
                // As the shipper does: a cluster without the labels' type
                // gets labels kept in `_source` only.
                Err(TemplateError::Http { body, .. })
                    if caps.labels != LabelsMapping::Disabled
                        && template::lacks_labels_type(&body) =>
                {
                    tracing::warn!(labels = ?caps.labels, "the cluster does not know the labels mapping type: labels and annotations are kept in _source only");
                    caps.labels = LabelsMapping::Disabled;
                    retry_without_labels = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if !retry_without_labels {
            break;
        }
    }
    let mut text = format!("{} on {}", outcomes.join(", "), backend);
    if settings.retention_days.is_some() && caps.lifecycle == Lifecycle::None {
        text.push_str(" (no lifecycle management on this cluster: indices are kept until deleted)");
    }
    Ok(text)
}

#[cfg(test)]
mod engine_tests;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_come_from_the_rendered_shipper_config() {
        let stack = Stack::default();
        let settings = shipper_template_settings(&stack).unwrap().unwrap();
        assert_eq!(settings.name, "kelp-logs");
        assert_eq!(settings.index_patterns, vec!["kelp-logs-*".to_owned()]);
        assert_eq!(settings.replicas, None, "three nodes keep the default");
        assert_eq!(settings.retention_days, Some(7));

        // A single node gets no replicas, as the rendered config says.
        let single = Stack::from_yaml_str(
            "elasticsearch: {replicas: 1}\n\
             shipper: {index_template: \"app-{kubernetes.namespace}\", template: {name: app, shards: 2, retention_days: 0}}\n",
        )
        .unwrap();
        let settings = shipper_template_settings(&single).unwrap().unwrap();
        assert_eq!(settings.name, "app");
        assert_eq!(settings.index_patterns, vec!["app-*".to_owned()]);
        assert_eq!(settings.shards, 2);
        assert_eq!(settings.replicas, Some(0));
        assert_eq!(settings.retention_days, None);

        let off = Stack::from_yaml_str("shipper: {template: {install: false}}\n").unwrap();
        assert_eq!(shipper_template_settings(&off).unwrap(), None);
    }

    #[test]
    fn installed_templates_compare_as_the_cluster_returns_them() {
        let desired = json!({
            "index_patterns": ["kelp-logs-*"],
            "priority": 200,
            "version": 1,
            "_meta": {"managed_by": "kelp-shipper", "schema": 1},
            "template": {
                "settings": {"index": {"number_of_shards": 1, "refresh_interval": "1s", "codec": "default"}},
                "mappings": {"dynamic": false, "properties": {"stream": {"type": "keyword", "ignore_above": 1024}}},
            },
        });
        // As Elasticsearch 8 and OpenSearch 2 answer GET _index_template/kelp-logs.
        let answer = |shards: &str, extra: Value| {
            let mut template = json!({
                "index_patterns": ["kelp-logs-*"],
                "template": {
                    "settings": {"index": {"number_of_shards": shards, "codec": "default", "refresh_interval": "1s"}},
                    "mappings": {"dynamic": false, "properties": {"stream": {"ignore_above": 1024, "type": "keyword"}}},
                },
                "composed_of": [],
                "priority": 200,
                "version": 1,
                "_meta": {"schema": 1, "managed_by": "kelp-shipper"},
            });
            if let (Some(t), Value::Object(extra)) = (template.as_object_mut(), extra) {
                t.extend(extra);
            }
            json!({"index_templates": [{"name": "kelp-logs", "index_template": template}]})
        };
        let path = "/_index_template/kelp-logs";
        let table: Vec<(Value, bool)> = vec![
            (answer("1", json!({})), true),
            (answer("2", json!({})), false),
            (answer("1", json!({"allow_auto_create": true})), false),
            (answer("1", json!({"composed_of": ["other"]})), false),
            (json!({"index_templates": []}), false),
        ];
        for (installed, want) in table {
            assert_eq!(
                installed_matches(path, "kelp-logs", &desired, &installed),
                want,
                "{installed}"
            );
        }
        // A removed setting is a difference too.
        let mut fewer = desired.clone();
        fewer["template"]["settings"]["index"]
            .as_object_mut()
            .unwrap()
            .remove("codec");
        assert!(!installed_matches(
            path,
            "kelp-logs",
            &fewer,
            &answer("1", json!({}))
        ));
    }

    #[test]
    fn installed_policies_may_carry_server_fields() {
        let ilm = template::ilm_policy(7);
        let ilm_answer = |age: &str| {
            json!({"kelp-logs": {"version": 3, "modified_date": "2026-11-27T23:00:00.000Z",
                "policy": {"phases": {"delete": {"min_age": age, "actions": {"delete": {"delete_searchable_snapshot": true}}}}},
                "in_use_by": {"indices": [], "data_streams": [], "composable_templates": []}}})
        };
        assert!(installed_matches(
            "/_ilm/policy/kelp-logs",
            "kelp-logs",
            &ilm,
            &ilm_answer("7d")
        ));
        assert!(!installed_matches(
            "/_ilm/policy/kelp-logs",
            "kelp-logs",
            &ilm,
            &ilm_answer("8d")
        ));

        let settings = TemplateSettings {
            name: "kelp-logs".to_owned(),
            index_patterns: vec!["kelp-logs-*".to_owned()],
            shards: 1,
            replicas: None,
            refresh_interval: "1s".to_owned(),
            codec: template::Codec::Default,
            retention_days: Some(7),
        };
        let ism = template::ism_policy(&settings, 7);
        let mut stored = ism["policy"].clone();
        stored["policy_id"] = json!("kelp-logs");
        stored["last_updated_time"] = json!(1_764_284_400_000_u64);
        stored["schema_version"] = json!(21);
        stored["error_notification"] = Value::Null;
        stored["ism_template"][0]["last_updated_time"] = json!(1_764_284_400_000_u64);
        stored["states"][1]["actions"][0]["retry"] =
            json!({"count": 3, "backoff": "exponential", "delay": "1m"});
        let ism_answer =
            json!({"_id": "kelp-logs", "_seq_no": 4, "_primary_term": 1, "policy": stored});
        let path = "/_plugins/_ism/policies/kelp-logs";
        assert!(installed_matches(path, "kelp-logs", &ism, &ism_answer));
        let other = template::ism_policy(&settings, 30);
        assert!(!installed_matches(path, "kelp-logs", &other, &ism_answer));
    }

    #[test]
    fn scalars_compare_by_their_text() {
        let table = [
            (json!(1), json!("1"), true),
            (json!(true), json!("true"), true),
            (json!("1s"), json!("1s"), true),
            (json!(1), json!(2), false),
            (json!(null), json!("null"), false),
        ];
        for (a, b, want) in table {
            assert_eq!(same(&a, &b), want, "{a} {b}");
        }
    }
}
