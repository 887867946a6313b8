//! The lifecycle install against an engine that has it, which the testbed
//! cannot run: its Elasticsearch has no X-Pack (ILM) and no registry here
//! serves OpenSearch's index-management plugin (ISM). The fake below answers
//! as the two APIs are documented, and keeps state, so the tests see what a
//! second shipper start (or a concurrent one) does to an existing policy:
//! - ILM: `GET _ilm/status` gives `operation_mode`; `PUT _ilm/policy/<name>`
//!   creates or replaces, answering `{"acknowledged":true}`.
//! - ISM: `GET _plugins/_ism/policies/<id>` gives the policy with `_seq_no`
//!   and `_primary_term`, or a structured 404; `PUT` creates (201) and
//!   refuses an existing policy without `if_seq_no`/`if_primary_term` (409
//!   `version_conflict_engine_exception`), as it refuses stale ones.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::*;
use kelp_shipper::backend::BackendKind;
use kelp_shipper::config::ElasticsearchConfig;
use kelp_shipper::template::Codec;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flavor {
    Elasticsearch8,
    OpenSearch2,
    /// Elasticsearch without X-Pack: no `_ilm` handler.
    Elasticsearch8NoXPack,
    /// OpenSearch without the index-management plugin: no `_plugins/_ism`.
    OpenSearch2NoIsm,
}

#[derive(Debug, Default)]
struct EngineState {
    /// Every request: method, path with query.
    calls: Vec<(String, String)>,
    ilm_policy: Option<Value>,
    /// The ISM policy, its `_seq_no` and `_primary_term`.
    ism_policy: Option<(Value, i64, i64)>,
    template: Option<Value>,
    /// Make the next ISM `PUT` lose a race to another writer.
    ism_race_once: bool,
}

fn reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn root(flavor: Flavor) -> Value {
    match flavor {
        Flavor::Elasticsearch8 | Flavor::Elasticsearch8NoXPack => json!({
            "name": "es-0", "cluster_name": "fake",
            "version": {"number": "8.19.21", "build_flavor": "default", "lucene_version": "9.12.2"},
            "tagline": "You Know, for Search"
        }),
        Flavor::OpenSearch2 | Flavor::OpenSearch2NoIsm => json!({
            "name": "os-0", "cluster_name": "fake",
            "version": {"distribution": "opensearch", "number": "2.19.6", "lucene_version": "9.12.2"},
            "tagline": "The OpenSearch Project: https://opensearch.org/"
        }),
    }
}

fn handle(
    flavor: Flavor,
    state: &Mutex<EngineState>,
    method: &Method,
    uri: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let mut st = state.lock().unwrap();
    st.calls.push((method.to_string(), uri.to_owned()));
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let body: Option<Value> = serde_json::from_slice(body).ok();
    let not_found = || {
        reply(
            404,
            &json!({"error": {"type": "resource_not_found_exception", "reason": "not found"}, "status": 404}),
        )
    };
    match (flavor, method.as_str(), path) {
        (_, "GET", "/") => reply(200, &root(flavor)),
        (Flavor::Elasticsearch8, "GET", "/_ilm/status") => {
            reply(200, &json!({"operation_mode": "RUNNING"}))
        }
        (Flavor::Elasticsearch8, "PUT", "/_ilm/policy/kelp-logs") => {
            let Some(policy) = body.filter(|b| b["policy"]["phases"].is_object()) else {
                return reply(
                    400,
                    &json!({"error": {"type": "x_content_parse_exception"}, "status": 400}),
                );
            };
            st.ilm_policy = Some(policy);
            reply(200, &json!({"acknowledged": true}))
        }
        (Flavor::OpenSearch2, "GET", "/_plugins/_ism/policies/kelp-logs") => match &st.ism_policy {
            Some((policy, seq, term)) => reply(
                200,
                &json!({
                    "_id": "kelp-logs", "_version": seq + 1, "_seq_no": seq, "_primary_term": term,
                    "policy": policy["policy"]
                }),
            ),
            None => not_found(),
        },
        (Flavor::OpenSearch2, "PUT", "/_plugins/_ism/policies/kelp-logs") => {
            let Some(policy) = body.filter(|b| b["policy"]["states"].is_array()) else {
                return reply(
                    400,
                    &json!({"error": {"type": "illegal_argument_exception"}, "status": 400}),
                );
            };
            let conflict = || {
                reply(
                    409,
                    &json!({"error": {"type": "version_conflict_engine_exception"}, "status": 409}),
                )
            };
            if std::mem::take(&mut st.ism_race_once) {
                // Another writer updated the policy in between.
                if let Some((_, seq, _)) = &mut st.ism_policy {
                    *seq += 1;
                }
                return conflict();
            }
            let asked = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| *k == "if_seq_no" || *k == "if_primary_term")
                .map(|(_, v)| v.parse::<i64>().unwrap_or(-1))
                .collect::<Vec<_>>();
            match (&st.ism_policy, asked.as_slice()) {
                (None, []) => {
                    st.ism_policy = Some((policy, 0, 1));
                    reply(
                        201,
                        &json!({"_id": "kelp-logs", "_seq_no": 0, "_primary_term": 1}),
                    )
                }
                (Some((_, seq, term)), [s, t]) if s == seq && t == term => {
                    let next = seq + 1;
                    let term = *term;
                    st.ism_policy = Some((policy, next, term));
                    reply(
                        200,
                        &json!({"_id": "kelp-logs", "_seq_no": next, "_primary_term": term}),
                    )
                }
                _ => conflict(),
            }
        }
        (_, "PUT", "/_index_template/kelp-logs") => {
            st.template = body;
            reply(200, &json!({"acknowledged": true}))
        }
        _ => reply(
            400,
            &json!({"error": format!("no handler found for uri [{path}] and method [{method}]")}),
        ),
    }
}

async fn start(flavor: Flavor) -> (String, Arc<Mutex<EngineState>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(EngineState::default()));
    let shared = Arc::clone(&state);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = Arc::clone(&shared);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let state = Arc::clone(&state);
                    async move {
                        let method = request.method().clone();
                        let uri = request.uri().to_string();
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(handle(flavor, &state, &method, &uri, &body))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, state)
}

fn client(url: &str) -> SearchClient {
    let config: ElasticsearchConfig = serde_json::from_value(json!({"urls": [url]})).unwrap();
    SearchClient::new(&config, false).unwrap()
}

fn settings(retention_days: u32) -> TemplateSettings {
    TemplateSettings {
        name: "kelp-logs".to_owned(),
        index_patterns: vec!["kelp-logs-*".to_owned()],
        shards: 1,
        replicas: Some(1),
        refresh_interval: "1s".to_owned(),
        codec: Codec::Default,
        retention_days: Some(retention_days),
    }
}

async fn run_setup(url: &str, settings: &TemplateSettings) -> Option<Backend> {
    let backoff =
        kelp_shipper::backoff::Backoff::new(Duration::from_millis(1), Duration::from_millis(5))
            .unwrap();
    let mut rng = kelp_shipper::backoff::SplitMix64::new(7);
    let cancel = tokio_util::sync::CancellationToken::new();
    setup(&client(url), Some(settings), backoff, &mut rng, &cancel)
        .await
        .unwrap()
}

#[tokio::test]
async fn ilm_policy_then_template_that_names_it() {
    let (url, state) = start(Flavor::Elasticsearch8).await;
    let backend = run_setup(&url, &settings(7)).await.unwrap();
    assert_eq!(backend.kind, BackendKind::Elasticsearch);
    {
        let st = state.lock().unwrap();
        let policy = st.ilm_policy.as_ref().expect("ILM policy installed");
        assert_eq!(
            policy["policy"]["phases"]["delete"]["min_age"], "7d",
            "{policy}"
        );
        assert!(
            policy["policy"]["phases"]["delete"]["actions"]["delete"].is_object(),
            "{policy}"
        );
        let template = st.template.as_ref().expect("template installed");
        assert_eq!(
            template["template"]["settings"]["index"]["lifecycle"]["name"], "kelp-logs",
            "{template}"
        );
        let order: Vec<&str> = st
            .calls
            .iter()
            .filter(|(m, _)| m == "PUT")
            .map(|(_, p)| p.as_str())
            .collect();
        assert_eq!(
            order,
            ["/_ilm/policy/kelp-logs", "/_index_template/kelp-logs"],
            "the template names the policy, so the policy goes first"
        );
    }
    // A restart with another retention replaces the policy in place.
    run_setup(&url, &settings(3)).await.unwrap();
    let st = state.lock().unwrap();
    assert_eq!(
        st.ilm_policy.as_ref().unwrap()["policy"]["phases"]["delete"]["min_age"],
        "3d"
    );
}

#[tokio::test]
async fn ism_policy_is_created_then_updated_with_its_sequence_number() {
    let (url, state) = start(Flavor::OpenSearch2).await;
    let backend = run_setup(&url, &settings(7)).await.unwrap();
    assert_eq!(backend.kind, BackendKind::OpenSearch);
    {
        let st = state.lock().unwrap();
        let (policy, seq, _) = st.ism_policy.as_ref().expect("ISM policy installed");
        assert_eq!(*seq, 0);
        let ism_template = &policy["policy"]["ism_template"][0];
        assert_eq!(
            ism_template["index_patterns"],
            json!(["kelp-logs-*"]),
            "{policy}"
        );
        let template = st.template.as_ref().expect("template installed");
        assert!(
            template["template"]["settings"]["index"]
                .get("lifecycle")
                .is_none(),
            "ISM attaches through ism_template, not an index setting: {template}"
        );
    }
    // Second start: a plain PUT would be refused (409); the shipper reads
    // `_seq_no`/`_primary_term` and updates.
    run_setup(&url, &settings(5)).await.unwrap();
    {
        let st = state.lock().unwrap();
        let (policy, seq, term) = st.ism_policy.as_ref().unwrap();
        assert_eq!((*seq, *term), (1, 1));
        assert!(policy.to_string().contains("5d"), "{policy}");
        assert!(
            st.calls
                .iter()
                .any(|(m, p)| m == "PUT" && p.ends_with("?if_seq_no=0&if_primary_term=1")),
            "{:?}",
            st.calls
        );
    }
    // A concurrent writer wins once: the shipper reads again and retries.
    state.lock().unwrap().ism_race_once = true;
    run_setup(&url, &settings(4)).await.unwrap();
    let st = state.lock().unwrap();
    let (policy, seq, _) = st.ism_policy.as_ref().unwrap();
    assert_eq!(*seq, 3, "updated after the other writer's seq_no 2");
    assert!(policy.to_string().contains("4d"), "{policy}");
}

#[tokio::test]
async fn without_the_lifecycle_api_the_template_goes_in_without_a_policy() {
    for flavor in [Flavor::Elasticsearch8NoXPack, Flavor::OpenSearch2NoIsm] {
        let (url, state) = start(flavor).await;
        run_setup(&url, &settings(7))
            .await
            .expect("setup carries on");
        let st = state.lock().unwrap();
        assert!(
            st.ilm_policy.is_none() && st.ism_policy.is_none(),
            "{flavor:?}"
        );
        let template = st.template.as_ref().expect("template installed");
        assert!(
            template["template"]["settings"]["index"]
                .get("lifecycle")
                .is_none(),
            "{flavor:?}: a template naming a missing ILM policy would fail every index creation: {template}"
        );
    }
}
