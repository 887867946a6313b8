//! The install against engines with a lifecycle API, which the testbed's
//! engines lack (no X-Pack ILM, no ISM plugin). The fake keeps state and
//! answers as the APIs are documented, including what the real engines add
//! on read: settings as strings and `composed_of: []` on templates, ILM's
//! `version` and the delete action's default, ISM's `_seq_no`,
//! `_primary_term` and server fields, and ISM's 409 for a `PUT` over an
//! existing policy without `if_seq_no`/`if_primary_term`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Product {
    Elasticsearch8,
    OpenSearch2,
}

#[derive(Debug, Default)]
struct State {
    /// `METHOD path?query` of every write.
    writes: Vec<String>,
    ilm: Option<(Value, i64)>,
    ism: Option<(Value, i64, i64)>,
    template: Option<Value>,
}

/// Settings come back as strings.
fn stringified(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), stringified(v)))
                .collect(),
        ),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other.clone(),
    }
}

fn answer(
    product: Product,
    state: &Mutex<State>,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> (u16, Value) {
    let mut state = state.lock().unwrap();
    let not_found = json!({"error": {"type": "resource_not_found_exception", "reason": "not found"}, "status": 404});
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let name = path.rsplit('/').next().unwrap_or_default().to_owned();
    if method != "GET" {
        state.writes.push(format!(
            "{method} {path}{}{query}",
            if query.is_empty() { "" } else { "?" }
        ));
    }
    match (product, method, path) {
        (Product::Elasticsearch8, "GET", "/") => (
            200,
            json!({
                "name": "es-0", "cluster_name": "fake",
                "version": {"number": "8.19.21", "build_flavor": "default", "lucene_version": "9.12.2"},
                "tagline": "You Know, for Search"
            }),
        ),
        (Product::OpenSearch2, "GET", "/") => (
            200,
            json!({
                "name": "os-0", "cluster_name": "fake",
                "version": {"distribution": "opensearch", "number": "2.19.6", "lucene_version": "9.12.2"},
                "tagline": "The OpenSearch Project: https://opensearch.org/"
            }),
        ),
        (Product::Elasticsearch8, "GET", "/_ilm/status") => {
            (200, json!({"operation_mode": "RUNNING"}))
        }
        (Product::Elasticsearch8, "GET", p) if p.starts_with("/_ilm/policy/") => match &state.ilm {
            Some((policy, version)) => {
                let mut policy = policy["policy"].clone();
                policy["phases"]["delete"]["actions"]["delete"]["delete_searchable_snapshot"] =
                    json!(true);
                (
                    200,
                    json!({name: {"version": version, "modified_date": "2026-11-27T23:00:00.000Z", "policy": policy}}),
                )
            }
            None => (404, not_found),
        },
        (Product::Elasticsearch8, "PUT", p) if p.starts_with("/_ilm/policy/") => {
            let version = state.ilm.as_ref().map_or(1, |(_, v)| v + 1);
            state.ilm = Some((body, version));
            (200, json!({"acknowledged": true}))
        }
        (Product::OpenSearch2, "GET", p) if p.starts_with("/_plugins/_ism/policies/") => {
            match &state.ism {
                Some((policy, seq, term)) => {
                    let mut stored = policy["policy"].clone();
                    stored["policy_id"] = json!(name);
                    stored["last_updated_time"] = json!(1_764_284_400_000_u64);
                    stored["schema_version"] = json!(21);
                    stored["error_notification"] = Value::Null;
                    (
                        200,
                        json!({"_id": name, "_version": seq + 1, "_seq_no": seq, "_primary_term": term, "policy": stored}),
                    )
                }
                None => (404, not_found),
            }
        }
        (Product::OpenSearch2, "PUT", p) if p.starts_with("/_plugins/_ism/policies/") => {
            let current = state.ism.as_ref().map(|(_, seq, term)| (*seq, *term));
            let wanted = format!(
                "if_seq_no={}&if_primary_term={}",
                current.map_or(-1, |c| c.0),
                current.map_or(-1, |c| c.1)
            );
            match current {
                Some(_) if query != wanted => (
                    409,
                    json!({"error": {"type": "version_conflict_engine_exception"}, "status": 409}),
                ),
                Some((seq, term)) => {
                    state.ism = Some((body, seq + 1, term));
                    (
                        200,
                        json!({"_id": name, "_seq_no": seq + 1, "_primary_term": term}),
                    )
                }
                None if !query.is_empty() => (404, not_found),
                None => {
                    state.ism = Some((body, 0, 1));
                    (201, json!({"_id": name, "_seq_no": 0, "_primary_term": 1}))
                }
            }
        }
        (_, "GET", p) if p.starts_with("/_index_template/") => match &state.template {
            Some(template) => {
                let mut stored = template.clone();
                stored["template"]["settings"] = stringified(&template["template"]["settings"]);
                stored["composed_of"] = json!([]);
                (
                    200,
                    json!({"index_templates": [{"name": name, "index_template": stored}]}),
                )
            }
            None => (404, not_found),
        },
        (_, "PUT", p) if p.starts_with("/_index_template/") => {
            state.template = Some(body);
            (200, json!({"acknowledged": true}))
        }
        _ => (
            400,
            json!({"error": format!("no handler found for uri [{path}] and method [{method}]")}),
        ),
    }
}

struct Fake {
    url: String,
    state: Arc<Mutex<State>>,
}

impl Fake {
    async fn start(product: Product) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let method = request.method().as_str().to_owned();
                            let path = request.uri().path().to_owned();
                            let query = request.uri().query().unwrap_or_default().to_owned();
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let (status, json) =
                                answer(product, &state, &method, &path, &query, &body);
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(json.to_string())))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Fake { url, state }
    }

    fn writes(&self) -> Vec<String> {
        self.state.lock().unwrap().writes.clone()
    }
}

#[tokio::test]
async fn elasticsearch_gets_the_ilm_policy_then_the_template_once() {
    let fake = Fake::start(Product::Elasticsearch8).await;
    let stack = Stack::default();
    let first = install_index_template(&fake.url, None, &stack)
        .await
        .unwrap();
    assert_eq!(
        first,
        "ilm policy kelp-logs installed, index template kelp-logs installed on elasticsearch 8.19"
    );
    assert_eq!(
        fake.writes(),
        [
            "PUT /_ilm/policy/kelp-logs",
            "PUT /_index_template/kelp-logs"
        ]
    );
    let template = fake.state.lock().unwrap().template.clone().unwrap();
    assert_eq!(
        template["template"]["settings"]["index"]["lifecycle"]["name"],
        "kelp-logs"
    );

    let second = install_index_template(&fake.url, None, &stack)
        .await
        .unwrap();
    assert_eq!(
        second,
        "ilm policy kelp-logs up to date, index template kelp-logs up to date on elasticsearch 8.19"
    );
    assert_eq!(fake.writes().len(), 2, "{:?}", fake.writes());

    // A changed retention rewrites the policy only.
    let longer = Stack::from_yaml_str("shipper: {template: {retention_days: 30}}\n").unwrap();
    let third = install_index_template(&fake.url, None, &longer)
        .await
        .unwrap();
    assert!(
        third.starts_with("ilm policy kelp-logs installed, index template kelp-logs up to date"),
        "{third}"
    );
    assert_eq!(fake.state.lock().unwrap().ilm.as_ref().unwrap().1, 2);
}

#[tokio::test]
async fn opensearch_updates_an_ism_policy_with_its_sequence_number() {
    let fake = Fake::start(Product::OpenSearch2).await;
    let stack = Stack::default();
    let first = install_index_template(&fake.url, None, &stack)
        .await
        .unwrap();
    assert_eq!(
        first,
        "ism policy kelp-logs installed, index template kelp-logs installed on opensearch 2.19"
    );
    let second = install_index_template(&fake.url, None, &stack)
        .await
        .unwrap();
    assert!(
        second.starts_with("ism policy kelp-logs up to date, index template kelp-logs up to date"),
        "{second}"
    );

    let longer = Stack::from_yaml_str("shipper: {template: {retention_days: 30}}\n").unwrap();
    let third = install_index_template(&fake.url, None, &longer)
        .await
        .unwrap();
    assert!(
        third.starts_with("ism policy kelp-logs installed"),
        "{third}"
    );
    assert_eq!(
        fake.writes(),
        [
            "PUT /_plugins/_ism/policies/kelp-logs",
            "PUT /_index_template/kelp-logs",
            "PUT /_plugins/_ism/policies/kelp-logs?if_seq_no=0&if_primary_term=1",
        ]
    );
}

#[tokio::test]
async fn install_off_in_the_stack_writes_nothing() {
    let fake = Fake::start(Product::Elasticsearch8).await;
    let off = Stack::from_yaml_str("shipper: {template: {install: false}}\n").unwrap();
    let text = install_index_template(&fake.url, None, &off).await.unwrap();
    assert!(text.contains("install is false"), "{text}");
    assert!(fake.writes().is_empty());
}
