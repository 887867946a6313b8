//! Asking Elasticsearch or OpenSearch for the token: the query and the
//! reading of its answer are pure; [`SearchClient`] does the HTTP.

use std::fmt;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use super::ProbeError;

/// How requests to the search engine authenticate: the same kinds as
/// Kibana's (basic, or an Elasticsearch API key), with the same redacted
/// `Debug`.
pub type SearchAuth = crate::kibana::KibanaAuth;

/// Where and how to search.
#[derive(Clone)]
pub struct SearchTarget {
    /// The search engine's URL, e.g. `https://elasticsearch.kelp.svc:9200`.
    pub url: Url,
    /// The index pattern to search, e.g. `kelp-logs-*`.
    pub index_pattern: String,
    /// Credentials.
    pub auth: SearchAuth,
    /// PEM CA certificates to trust besides the system's.
    pub ca_certificates_pem: Option<Vec<u8>>,
}

impl fmt::Debug for SearchTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchTarget")
            .field("url", &self.url.as_str())
            .field("index_pattern", &self.index_pattern)
            .field("auth", &self.auth)
            .field(
                "ca_certificates_pem",
                &self.ca_certificates_pem.as_ref().map(Vec::len),
            )
            .finish()
    }
}

/// The document that holds the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// `_index`.
    pub index: String,
    /// `_id`: the event id.
    pub id: String,
    /// `kubernetes.pod.name`.
    pub pod_name: Option<String>,
    /// `@timestamp`: when the container runtime recorded the line.
    pub timestamp: Option<String>,
    /// `event.ingested`: when the shipper sent it to the search engine.
    pub ingested: Option<String>,
}

/// The index pattern that covers every index the shipper's template
/// renders, e.g. `kelp-logs-*`; `None` when the template starts with a
/// placeholder and only an explicit pattern can say.
pub fn index_pattern(index_template: &str) -> Option<String> {
    kelp_shipper::index_name::IndexTemplate::parse(index_template)
        .ok()?
        .index_pattern()
}

/// The `_search` body: one document whose message has the token as a
/// phrase (the analyzer splits `kelp-probe-<hex>` into words).
pub fn query(token: &str) -> Value {
    json!({
        "size": 1,
        "query": {"match_phrase": {"message": token}},
        "_source": ["kubernetes.pod.name", "@timestamp", "event.ingested"],
    })
}

/// The first hit of a `_search` answer, if any.
///
/// # Errors
/// When the answer is not a search response.
pub fn first_hit(answer: &Value) -> Result<Option<Hit>, String> {
    let hits = answer
        .pointer("/hits/hits")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("the answer has no hits.hits: {}", cut(&answer.to_string())))?;
    let Some(hit) = hits.first() else {
        return Ok(None);
    };
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let source = &hit["_source"];
    // `_source` filtering keeps the document's shape: nested objects, or
    // dotted keys if the document was sent that way.
    let field = |path: &str| {
        text(source.pointer(&format!("/{}", path.replace('.', "/")))).or(text(source.get(path)))
    };
    Ok(Some(Hit {
        index: text(hit.get("_index")).unwrap_or_default(),
        id: text(hit.get("_id")).unwrap_or_default(),
        pod_name: field("kubernetes.pod.name"),
        timestamp: field("@timestamp"),
        ingested: field("event.ingested"),
    }))
}

/// At most 300 characters of an answer, for error messages.
fn cut(text: &str) -> String {
    text.chars().take(300).collect()
}

/// An HTTP client for one [`SearchTarget`].
#[derive(Debug, Clone)]
pub struct SearchClient {
    http: reqwest::Client,
    target: SearchTarget,
}

/// What one query found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The token's document.
    Found(Hit),
    /// Not (yet) searchable.
    NotFound,
    /// The query failed in a way that may pass (connection, 5xx).
    Failed(String),
}

impl SearchClient {
    /// A client with the target's TLS settings.
    ///
    /// # Errors
    /// When the CA file is not PEM or the HTTP client cannot be built.
    pub fn new(target: SearchTarget, request_timeout: Duration) -> Result<Self, ProbeError> {
        let mut builder = reqwest::Client::builder().timeout(request_timeout);
        if let Some(pem) = &target.ca_certificates_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ProbeError::Search(format!("reading the ca certificates: {e}")))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ProbeError::Search(format!("building the http client: {e}")))?;
        Ok(SearchClient { http, target })
    }

    /// The target.
    pub fn target(&self) -> &SearchTarget {
        &self.target
    }

    /// Asks once for the token.
    ///
    /// # Errors
    /// Only when asking again cannot help: the credentials are refused.
    pub async fn search(&self, token: &str) -> Result<Answer, ProbeError> {
        let base = self.target.url.as_str().trim_end_matches('/');
        let url = format!("{base}/{}/_search", self.target.index_pattern);
        let mut request = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(query(token).to_string());
        request = self.target.auth.apply(request);
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Ok(Answer::Failed(format!("POST {url}: {error}"))),
        };
        let status = response.status();
        let body = match response.text().await {
            Ok(body) => body,
            Err(error) => return Ok(Answer::Failed(format!("reading the answer: {error}"))),
        };
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ProbeError::Search(format!(
                "searching {} was refused ({status}): {}",
                self.target.index_pattern,
                cut(&body)
            )));
        }
        if !status.is_success() {
            return Ok(Answer::Failed(format!("{status}: {}", cut(&body))));
        }
        let answer: Value = match serde_json::from_str(&body) {
            Ok(answer) => answer,
            Err(error) => return Ok(Answer::Failed(format!("the answer is not json: {error}"))),
        };
        Ok(match first_hit(&answer) {
            Ok(Some(hit)) => Answer::Found(hit),
            Ok(None) => Answer::NotFound,
            Err(error) => Answer::Failed(error),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_come_from_the_index_template() {
        let cases = [
            (
                "kelp-logs-{kubernetes.namespace}-{@timestamp:%Y.%m.%d}",
                Some("kelp-logs-*"),
            ),
            ("audit-{@timestamp}", Some("audit-*")),
            ("one-index", Some("one-index")),
            ("{kubernetes.namespace}-logs", None),
            ("{unclosed", None),
        ];
        for (template, want) in cases {
            assert_eq!(index_pattern(template).as_deref(), want, "{template}");
        }
    }

    #[test]
    fn the_query_is_a_phrase_on_the_message() {
        let query = query("kelp-probe-00ff");
        assert_eq!(query["query"]["match_phrase"]["message"], "kelp-probe-00ff");
        assert_eq!(query["size"], 1);
    }

    #[test]
    fn answers_become_hits() {
        let nested = json!({"hits": {"total": {"value": 1}, "hits": [{
            "_index": "kelp-logs-kelp-2026.11.27",
            "_id": "00000000000000ab-0000000000000000",
            "_source": {
                "@timestamp": "2026-11-27T10:00:03.123456789Z",
                "kubernetes": {"pod": {"name": "kelp-probe-00ff"}},
                "event": {"ingested": "2026-11-27T10:00:04.5Z"},
            },
        }]}});
        assert_eq!(
            first_hit(&nested).unwrap(),
            Some(Hit {
                index: "kelp-logs-kelp-2026.11.27".to_owned(),
                id: "00000000000000ab-0000000000000000".to_owned(),
                pod_name: Some("kelp-probe-00ff".to_owned()),
                timestamp: Some("2026-11-27T10:00:03.123456789Z".to_owned()),
                ingested: Some("2026-11-27T10:00:04.5Z".to_owned()),
            })
        );
        let dotted = json!({"hits": {"hits": [{
            "_index": "i", "_id": "d",
            "_source": {"kubernetes.pod.name": "p", "event.ingested": "t"},
        }]}});
        let hit = first_hit(&dotted).unwrap().unwrap();
        assert_eq!(hit.pod_name.as_deref(), Some("p"));
        assert_eq!(hit.ingested.as_deref(), Some("t"));
        assert_eq!(hit.timestamp, None);

        assert_eq!(first_hit(&json!({"hits": {"hits": []}})).unwrap(), None);
        let error = first_hit(&json!({"error": "boom"})).unwrap_err();
        assert!(error.contains("no hits.hits"), "{error}");
    }

    #[test]
    fn credentials_are_redacted_in_debug_output() {
        let target = SearchTarget {
            url: Url::parse("https://es:9200").unwrap(),
            index_pattern: "kelp-logs-*".to_owned(),
            auth: SearchAuth::Basic {
                username: "probe".to_owned(),
                password: "s3cret".to_owned(),
            },
            ca_certificates_pem: Some(b"pem".to_vec()),
        };
        let text = format!("{target:?}");
        assert!(text.contains("probe") && !text.contains("s3cret"), "{text}");
        let key = format!(
            "{:?}",
            SearchAuth::ApiKey {
                encoded: "a2V5".to_owned()
            }
        );
        assert!(!key.contains("a2V5"), "{key}");
    }
}
