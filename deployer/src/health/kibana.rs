//! The Kibana gate: `GET /api/status` says available (8.x and later) or
//! green (7.x), read by the dashboards importer's own parser
//! (`crate::kibana::status`), so the gate and the import agree on "ready".
//!
//! A Kibana pod is Ready while it still migrates its saved objects ("Kibana
//! server is not ready yet"); importing dashboards then would fail.

use super::{BasicAuth, Gate, GateFuture, GateStatus, HttpOptions, get_for_gate};
use crate::kibana::status;

/// Decides from one answer to `GET /api/status`.
pub fn evaluate(http_status: u16, body: &[u8]) -> GateStatus {
    let status = status::parse(http_status, body);
    if status.ready {
        let version = status
            .version_number
            .map(|v| format!("kibana {v}"))
            .unwrap_or_else(|| "kibana".to_owned());
        GateStatus::Healthy(format!("{version}: {}", status.summary))
    } else {
        GateStatus::NotYet(status.summary)
    }
}

/// The gate: Kibana at `url` reports itself available.
#[derive(Debug, Clone)]
pub struct KibanaAvailable {
    url: String,
    auth: Option<BasicAuth>,
    http: HttpOptions,
}

impl KibanaAvailable {
    /// Kibana at `url` (a path is Kibana's `server.basePath`).
    pub fn new(url: String, auth: Option<BasicAuth>) -> KibanaAvailable {
        KibanaAvailable {
            url,
            auth,
            http: HttpOptions::default(),
        }
    }

    /// How to reach the server: the cluster's CA, a port-forward.
    pub fn with_http(mut self, http: HttpOptions) -> KibanaAvailable {
        self.http = http;
        self
    }

    async fn check_once(&self) -> GateStatus {
        match get_for_gate(&self.http, self.auth.as_ref(), &self.url, "/api/status").await {
            Ok((code, body)) => evaluate(code, &body),
            Err(why) => GateStatus::NotYet(why),
        }
    }
}

impl Gate for KibanaAvailable {
    fn name(&self) -> &str {
        "kibana available"
    }

    fn check(&self) -> GateFuture<'_> {
        Box::pin(self.check_once())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kibana::fake::{FakeKibana, Reply, Script, status_v7, status_v8};

    fn text(status: &GateStatus) -> &str {
        let (GateStatus::Healthy(text) | GateStatus::NotYet(text)) = status;
        text
    }

    /// The gate against the fake Kibana, which also checks the request.
    async fn check(script: Script, auth: Option<BasicAuth>) -> (GateStatus, Vec<String>) {
        let fake = FakeKibana::start(script).await;
        let gate = KibanaAvailable::new(fake.url.to_string(), auth);
        let status = gate.check().await;
        (status, fake.violations())
    }

    #[tokio::test]
    async fn available_and_green_open_the_gate() {
        let cases: Vec<(Reply, bool, &str)> = vec![
            (
                status_v8(200, "available", "8.19.3"),
                true,
                "kibana 8.19.3: http 200, overall available",
            ),
            (
                status_v8(200, "degraded", "8.19.3"),
                false,
                "overall degraded",
            ),
            (
                status_v8(503, "unavailable", "9.1.0"),
                false,
                "http 503, overall unavailable",
            ),
            (
                status_v7(200, "green", "7.17.29"),
                true,
                "kibana 7.17.29: http 200, overall green",
            ),
            (status_v7(200, "yellow", "7.17.29"), false, "overall yellow"),
            (
                Reply::text(503, "Kibana server is not ready yet"),
                false,
                "http 503: Kibana server is not ready yet",
            ),
        ];
        for (reply, healthy, want) in cases {
            let mut script = Script::available("8.19.3");
            script.status = vec![reply];
            let (status, violations) = check(script, None).await;
            assert!(violations.is_empty(), "{violations:?}");
            assert_eq!(status.is_healthy(), healthy, "{status:?}");
            assert!(text(&status).contains(want), "{status:?} lacks {want:?}");
        }
    }

    #[tokio::test]
    async fn credentials_and_base_path_reach_kibana() {
        let mut script = Script::available("8.19.3");
        script.base_path = "/kibana".to_owned();
        // base64 of elastic:s3cret
        script.authorization = Some("Basic ZWxhc3RpYzpzM2NyZXQ=".to_owned());
        let (status, violations) =
            check(script.clone(), Some(BasicAuth::new("elastic", "s3cret"))).await;
        assert!(violations.is_empty(), "{violations:?}");
        assert!(status.is_healthy(), "{status:?}");

        // Without the credentials the fake refuses (400) and the gate waits.
        let (status, violations) = check(script, None).await;
        assert!(!violations.is_empty());
        assert!(!status.is_healthy(), "{status:?}");
    }

    #[tokio::test]
    async fn an_unreachable_kibana_is_not_yet() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let status = KibanaAvailable::new(format!("http://{closed}"), None)
            .check()
            .await;
        assert!(
            text(&status).starts_with(&format!("GET http://{closed}/api/status failed")),
            "{status:?}"
        );
        assert!(!status.is_healthy());
    }
}
