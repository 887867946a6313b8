//! A fake Kibana for the importer's tests: an HTTP server on 127.0.0.1 that
//! checks each request as Kibana's APIs document it (method, path, query,
//! `kbn-xsrf`, credentials, the multipart shape and file name, the JSON
//! body) and answers with scripted replies.
//!
//! A request Kibana would refuse gets a 400 and is recorded as a violation,
//! so a test both fails on the importer's side and can say why.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
        }
    }

    pub(crate) fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
        }
    }
}

/// What the fake expects and answers.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    /// The Kibana major: decides which default-data-view API exists.
    pub(crate) major: u32,
    /// Path prefix the importer must use (Kibana's `server.basePath`).
    pub(crate) base_path: String,
    /// Space the importer must address, `None` for the default space.
    pub(crate) space: Option<String>,
    /// The exact `Authorization` header, `None` when there must be none.
    pub(crate) authorization: Option<String>,
    /// The data view id the default must be set to.
    pub(crate) default_id: String,
    /// Replies to `GET /api/status`, in order; the last one repeats.
    pub(crate) status: Vec<Reply>,
    /// Replies to the import, in order; the last one repeats.
    pub(crate) import: Vec<Reply>,
    /// Replies to setting the default data view; the last one repeats.
    pub(crate) default_view: Vec<Reply>,
}

impl Script {
    /// A Kibana of `version` that is available at once and imports everything.
    pub(crate) fn available(version: &str) -> Script {
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(8);
        let status = if major >= 8 {
            status_v8(200, "available", version)
        } else {
            status_v7(200, "green", version)
        };
        Script {
            major,
            base_path: String::new(),
            space: None,
            authorization: None,
            default_id: kelp_dashboards::DATA_VIEW_ID.to_owned(),
            status: vec![status],
            import: vec![Reply::json(200, &import_success(&[]))],
            default_view: vec![Reply::json(200, &json!({"acknowledged": true}))],
        }
    }
}

/// A request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) method: String,
    /// Path without the base path.
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) body: Vec<u8>,
}

#[derive(Debug)]
struct State {
    script: Script,
    status: VecDeque<Reply>,
    import: VecDeque<Reply>,
    default_view: VecDeque<Reply>,
    seen: Vec<Seen>,
    violations: Vec<String>,
}

/// The running fake.
#[derive(Debug)]
pub(crate) struct FakeKibana {
    /// Base URL to give the importer, with the base path.
    pub(crate) url: Url,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FakeKibana {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKibana {
    pub(crate) async fn start(script: Script) -> FakeKibana {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let url = Url::parse(&format!("http://{address}{}/", script.base_path)).unwrap();
        let state = Arc::new(Mutex::new(State {
            status: script.status.clone().into(),
            import: script.import.clone().into(),
            default_view: script.default_view.clone().into(),
            script,
            seen: Vec::new(),
            violations: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(Arc::clone(&state), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeKibana { url, state, task }
    }

    /// Every request, in order.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// `METHOD path` of every request, in order.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    /// Every way a request differed from what Kibana documents.
    pub(crate) fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

/// `GET /api/status` in Kibana 8's format.
pub(crate) fn status_v8(http: u16, level: &str, version: &str) -> Reply {
    Reply::json(
        http,
        &json!({
            "name": "kibana",
            "uuid": "5b2de169-2785-441b-ae8c-186a1936b17d",
            "version": {"number": version, "build_hash": "0", "build_number": 1, "build_snapshot": false},
            "status": {
                "overall": {"level": level, "summary": format!("Kibana is {level}")},
                "core": {},
                "plugins": {}
            },
            "metrics": {}
        }),
    )
}

/// `GET /api/status` in Kibana 7's default (legacy) format.
pub(crate) fn status_v7(http: u16, state: &str, version: &str) -> Reply {
    Reply::json(
        http,
        &json!({
            "name": "kibana",
            "uuid": "5b2de169-2785-441b-ae8c-186a1936b17d",
            "version": {"number": version, "build_hash": "0", "build_number": 1, "build_snapshot": false},
            "status": {
                "overall": {
                    "since": "2026-11-27T20:17:29.000Z",
                    "state": state,
                    "title": state,
                    "nickname": "Looking good",
                    "icon": "success",
                    "uiColor": "secondary"
                },
                "statuses": []
            },
            "metrics": {}
        }),
    )
}

/// The answer to a complete import: every object of the file, with
/// `destinationId` for the `(type, id, destination)` given.
pub(crate) fn import_success(destinations: &[(&str, &str, &str)]) -> Value {
    let results: Vec<Value> = kelp_dashboards::objects()
        .unwrap()
        .iter()
        .map(|o| {
            let kind = o["type"].as_str().unwrap();
            let id = o["id"].as_str().unwrap();
            let title = o["attributes"]["title"].clone();
            let mut result = json!({
                "id": id,
                "type": kind,
                "meta": {"title": title, "icon": icon(kind)}
            });
            if let Some((_, _, to)) = destinations.iter().find(|(k, i, _)| *k == kind && *i == id) {
                result["destinationId"] = json!(to);
            }
            result
        })
        .collect();
    json!({
        "success": true,
        "successCount": results.len(),
        "successResults": results,
    })
}

fn icon(kind: &str) -> &'static str {
    match kind {
        "index-pattern" => "indexPatternApp",
        "search" => "discoverApp",
        "visualization" => "visualizeApp",
        "lens" => "lensApp",
        _ => "dashboardApp",
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let script = state.lock().unwrap().script.clone();
    let mut problems = Vec::new();

    let full_path = parts.uri.path().to_owned();
    let path = match full_path.strip_prefix(&script.base_path) {
        Some(rest) => rest.to_owned(),
        None => {
            problems.push(format!("{full_path} is not below {}", script.base_path));
            full_path.clone()
        }
    };
    let query = parts.uri.query().map(str::to_owned);
    let method = parts.method.as_str().to_owned();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if header("authorization") != script.authorization {
        problems.push(format!(
            "{method} {path}: authorization {:?}, want {:?}",
            header("authorization"),
            script.authorization
        ));
    }
    let space = match &script.space {
        Some(space) => format!("/s/{space}"),
        None => String::new(),
    };
    let default_path = if script.major >= 8 {
        format!("{space}/api/data_views/default")
    } else {
        format!("{space}/api/index_patterns/default")
    };

    enum Route {
        Status,
        Import,
        DefaultView,
        Unknown,
    }
    let route = if path == "/api/status" {
        Route::Status
    } else if path == format!("{space}/api/saved_objects/_import") {
        Route::Import
    } else if path == default_path {
        Route::DefaultView
    } else {
        Route::Unknown
    };

    match route {
        Route::Status => {
            if method != "GET" {
                problems.push(format!("status: method {method}"));
            }
            if query.is_some() {
                problems.push(format!("status: query {query:?}"));
            }
        }
        Route::Import => {
            if method != "POST" {
                problems.push(format!("import: method {method}"));
            }
            if query.as_deref() != Some("overwrite=true") {
                problems.push(format!("import: query {query:?}, want overwrite=true"));
            }
            if header("kbn-xsrf").is_none() {
                problems.push("import: no kbn-xsrf header".to_owned());
            }
            let content_type = header("content-type").unwrap_or_default();
            problems.extend(check_upload(&content_type, body.clone()).await);
        }
        Route::DefaultView => {
            if method != "POST" {
                problems.push(format!("default data view: method {method}"));
            }
            if header("kbn-xsrf").is_none() {
                problems.push("default data view: no kbn-xsrf header".to_owned());
            }
            if header("content-type").as_deref() != Some("application/json") {
                problems.push(format!(
                    "default data view: content-type {:?}",
                    header("content-type")
                ));
            }
            let key = if script.major >= 8 {
                "data_view_id"
            } else {
                "index_pattern_id"
            };
            let want = json!({ key: script.default_id, "force": true });
            match serde_json::from_slice::<Value>(&body) {
                Ok(got) if got == want => {}
                Ok(got) => problems.push(format!("default data view: body {got}, want {want}")),
                Err(e) => problems.push(format!("default data view: body is not json: {e}")),
            }
        }
        Route::Unknown => problems.push(format!("unexpected request {method} {full_path}")),
    }

    let mut state = state.lock().unwrap();
    state.seen.push(Seen {
        method: method.clone(),
        path: path.clone(),
        query,
        body: body.to_vec(),
    });
    let reply = if problems.is_empty() {
        let queue = match route {
            Route::Status => &mut state.status,
            Route::Import => &mut state.import,
            Route::DefaultView => &mut state.default_view,
            Route::Unknown => unreachable!("unknown routes are problems"),
        };
        next(queue)
    } else {
        let reply = Reply::json(
            400,
            &json!({"statusCode": 400, "error": "Bad Request", "message": problems.join("; ")}),
        );
        state.violations.extend(problems);
        reply
    };
    let content_type = if serde_json::from_str::<Value>(&reply.body).is_ok() {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let response = Response::builder()
        .status(reply.status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap();
    Ok(response)
}

/// The next reply; the last one repeats.
fn next(queue: &mut VecDeque<Reply>) -> Reply {
    if queue.len() > 1 {
        queue.pop_front().unwrap()
    } else {
        queue.front().cloned().unwrap()
    }
}

/// Parses the import's multipart body for real: one field `file`, a file
/// name ending in `.ndjson`, holding exactly the saved objects.
pub(crate) async fn check_upload(content_type: &str, body: Bytes) -> Vec<String> {
    let mut problems = Vec::new();
    if !content_type.starts_with("multipart/form-data") {
        problems.push(format!("import: content-type {content_type:?}"));
        return problems;
    }
    let boundary = match multer::parse_boundary(content_type) {
        Ok(boundary) => boundary,
        Err(e) => {
            problems.push(format!("import: no multipart boundary: {e}"));
            return problems;
        }
    };
    let mut multipart =
        multer::Multipart::with_reader(std::io::Cursor::new(body.to_vec()), boundary);
    let mut fields = 0;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                problems.push(format!("import: bad multipart body: {e}"));
                break;
            }
        };
        fields += 1;
        let name = field.name().map(str::to_owned);
        let file_name = field.file_name().map(str::to_owned);
        if name.as_deref() != Some("file") {
            problems.push(format!("import: field {name:?}, want \"file\""));
        }
        match file_name.as_deref() {
            Some(f) if f.ends_with(".ndjson") => {}
            other => problems.push(format!(
                "import: file name {other:?} does not end in .ndjson"
            )),
        }
        match field.bytes().await {
            Ok(content) if content.as_ref() == kelp_dashboards::NDJSON.as_bytes() => {}
            Ok(content) => problems.push(format!(
                "import: the file is not the saved objects ({} bytes)",
                content.len()
            )),
            Err(e) => problems.push(format!("import: reading the file failed: {e}")),
        }
    }
    if fields != 1 {
        problems.push(format!("import: {fields} multipart fields, want 1"));
    }
    problems
}
