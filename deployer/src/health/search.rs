//! The search cluster gate: `GET /_cluster/health` of Elasticsearch 7, 8 or
//! OpenSearch (the API is the same in all three).
//!
//! The nodes' readiness probes deliberately ignore cluster health (a red
//! index must not take every node out of its Service); the rollout gate is
//! where cluster health counts: Kibana and the shipper start only once the
//! cluster is at least yellow (or green, when asked).

use reqwest::Url;
use serde::Deserialize;

use super::excerpt;
use super::{BasicAuth, ClusterColor, Gate, GateFuture, GateStatus, HttpOptions, get_for_gate};

/// The fields of a health answer the gate reads.
#[derive(Debug, Deserialize)]
struct Health {
    cluster_name: Option<String>,
    status: String,
    number_of_nodes: Option<u64>,
    unassigned_shards: Option<u64>,
    initializing_shards: Option<u64>,
}

fn rank(status: &str) -> Option<u8> {
    match status {
        "red" => Some(0),
        "yellow" => Some(1),
        "green" => Some(2),
        _ => None,
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Decides from one answer to `GET /_cluster/health`.
pub fn evaluate(http_status: u16, body: &[u8], want: ClusterColor) -> GateStatus {
    if http_status == 401 || http_status == 403 {
        return GateStatus::NotYet(format!(
            "http {http_status}: the credentials were refused: {}",
            excerpt(body)
        ));
    }
    // 408 is a health request's own `timeout`; its body is still the health.
    let health = match serde_json::from_slice::<Health>(body) {
        Ok(health) if http_status == 200 || http_status == 408 => health,
        _ => return GateStatus::NotYet(format!("http {http_status}: {}", excerpt(body))),
    };
    let Some(have) = rank(&health.status) else {
        return GateStatus::NotYet(format!("unknown cluster status {:?}", health.status));
    };
    let want_rank = match want {
        ClusterColor::Yellow => 1,
        ClusterColor::Green => 2,
    };
    let mut details = Vec::new();
    if let Some(nodes) = health.number_of_nodes {
        details.push(plural(nodes, "node"));
    }
    if let Some(unassigned) = health.unassigned_shards {
        details.push(format!("{unassigned} unassigned shards"));
    }
    if let Some(initializing) = health.initializing_shards.filter(|n| *n > 0) {
        details.push(format!("{initializing} initializing shards"));
    }
    let cluster = health
        .cluster_name
        .map(|name| format!("cluster {name}"))
        .unwrap_or_else(|| "the cluster".to_owned());
    let details = details.join(", ");
    if have >= want_rank {
        GateStatus::Healthy(format!("{cluster} is {}: {details}", health.status))
    } else {
        GateStatus::NotYet(format!(
            "{cluster} is {}, want {}: {details}",
            health.status,
            want.as_str()
        ))
    }
}

/// The gate: the cluster's health is at least the wanted color.
#[derive(Debug, Clone)]
pub struct SearchHealth {
    url: String,
    auth: Option<BasicAuth>,
    want: ClusterColor,
    http: HttpOptions,
}

impl SearchHealth {
    /// The cluster at `url` (e.g. `https://127.0.0.1:9200`), healthy once
    /// its status is `want` or better.
    pub fn new(url: String, auth: Option<BasicAuth>, want: ClusterColor) -> SearchHealth {
        SearchHealth {
            url,
            auth,
            want,
            http: HttpOptions::default(),
        }
    }

    /// How to reach the server: the cluster's CA, a port-forward.
    pub fn with_http(mut self, http: HttpOptions) -> SearchHealth {
        self.http = http;
        self
    }

    async fn check_once(&self) -> GateStatus {
        match get_for_gate(
            &self.http,
            self.auth.as_ref(),
            &self.url,
            "/_cluster/health",
        )
        .await
        {
            Ok((status, body)) => evaluate(status, &body, self.want),
            Err(why) => GateStatus::NotYet(why),
        }
    }
}

/// `base` with `path` appended to its own path (a proxy prefix is kept).
pub(crate) fn endpoint(base: &str, path: &str) -> Result<Url, String> {
    let mut url =
        Url::parse(base).map_err(|e| format!("the url {base:?} is not a valid url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("the url {base} is not an http(s) url with a host"));
    }
    let joined = format!("{}{path}", url.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

impl Gate for SearchHealth {
    fn name(&self) -> &str {
        match self.want {
            ClusterColor::Yellow => "search cluster yellow",
            ClusterColor::Green => "search cluster green",
        }
    }

    fn check(&self) -> GateFuture<'_> {
        Box::pin(self.check_once())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(status: &str, nodes: u64, unassigned: u64) -> Vec<u8> {
        serde_json::json!({
            "cluster_name": "kelp",
            "status": status,
            "timed_out": false,
            "number_of_nodes": nodes,
            "number_of_data_nodes": nodes,
            "active_primary_shards": 3,
            "active_shards": 3,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": unassigned,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn health_answers_decide_by_color() {
        use ClusterColor::{Green, Yellow};
        // (http, body, want, healthy, text)
        type Case = (u16, Vec<u8>, ClusterColor, bool, &'static str);
        let cases: Vec<Case> = vec![
            (
                200,
                body("green", 3, 0),
                Green,
                true,
                "cluster kelp is green: 3 nodes, 0 unassigned shards",
            ),
            (200, body("green", 1, 0), Yellow, true, "is green: 1 node,"),
            (
                200,
                body("yellow", 1, 5),
                Yellow,
                true,
                "is yellow: 1 node, 5 unassigned shards",
            ),
            (
                200,
                body("yellow", 1, 5),
                Green,
                false,
                "cluster kelp is yellow, want green: 1 node, 5 unassigned shards",
            ),
            (
                200,
                body("red", 2, 7),
                Yellow,
                false,
                "is red, want yellow: 2 nodes, 7 unassigned shards",
            ),
            (408, body("red", 2, 7), Yellow, false, "is red, want yellow"),
            (
                503,
                br#"{"error":{"type":"master_not_discovered_exception"},"status":503}"#.to_vec(),
                Yellow,
                false,
                "http 503: {\"error\":{\"type\":\"master_not_discovered_exception\"}",
            ),
            (
                401,
                br#"{"error":"unauthorized"}"#.to_vec(),
                Yellow,
                false,
                "http 401: the credentials were refused",
            ),
            (
                200,
                b"not json".to_vec(),
                Yellow,
                false,
                "http 200: not json",
            ),
            (
                200,
                br#"{"status":"purple"}"#.to_vec(),
                Yellow,
                false,
                "unknown cluster status \"purple\"",
            ),
        ];
        for (http, body, want, healthy, text) in cases {
            let status = evaluate(http, &body, want);
            assert_eq!(status.is_healthy(), healthy, "{status:?}");
            let (GateStatus::Healthy(got) | GateStatus::NotYet(got)) = &status;
            assert!(got.contains(text), "{got:?} lacks {text:?}");
        }
    }

    #[test]
    fn endpoints_keep_a_path_prefix() {
        let table = [
            ("http://es:9200", "http://es:9200/_cluster/health"),
            ("http://es:9200/", "http://es:9200/_cluster/health"),
            ("https://proxy/es/?x=1", "https://proxy/es/_cluster/health"),
        ];
        for (base, want) in table {
            assert_eq!(endpoint(base, "/_cluster/health").unwrap().as_str(), want);
        }
        assert!(endpoint("es:9200", "/").is_err());
        assert!(endpoint("not a url", "/").is_err());
    }

    /// A port-forward's address stands in for the cluster's service name.
    #[tokio::test]
    async fn a_resolved_name_reaches_the_forwarded_address() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = vec![0u8; 4096];
                let n = stream.read(&mut request).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&request[..n]).to_string();
                let body = if request.starts_with("GET /_cluster/health ")
                    && request
                        .to_ascii_lowercase()
                        .contains("host: elasticsearch-http.kelp.svc")
                {
                    String::from_utf8(body("green", 3, 0)).unwrap()
                } else {
                    format!("{{\"unexpected\": {request:?}}}")
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        let gate = SearchHealth::new(
            "http://elasticsearch-http.kelp.svc".to_owned(),
            None,
            ClusterColor::Green,
        )
        .with_http(HttpOptions {
            resolve: vec![("elasticsearch-http.kelp.svc".to_owned(), address)],
            ..HttpOptions::default()
        });
        let status = gate.check().await;
        assert!(status.is_healthy(), "{status:?}");

        // A CA bundle without certificates is refused, naming the step.
        let gate = SearchHealth::new(format!("http://{address}"), None, ClusterColor::Green)
            .with_http(HttpOptions {
                ca_certificates_pem: Some(b"not a certificate".to_vec()),
                ..HttpOptions::default()
            });
        let status = gate.check().await;
        let (GateStatus::Healthy(why) | GateStatus::NotYet(why)) = &status;
        assert!(
            why.starts_with("reading the ca certificates failed"),
            "{status:?}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_cluster_is_not_yet() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let gate = SearchHealth::new(format!("http://{closed}"), None, ClusterColor::Yellow);
        match gate.check().await {
            GateStatus::NotYet(why) => {
                assert!(
                    why.starts_with(&format!("GET http://{closed}/_cluster/health failed")),
                    "{why}"
                )
            }
            healthy => panic!("{healthy:?}"),
        }
    }
}
