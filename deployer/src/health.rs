//! Application-level health gates: `kelp apply` moves to the next step of
//! the rollout only when the application itself says it is healthy, not
//! when its pods are merely Ready (a ZooKeeper pod can be Ready without a
//! quorum, a Kafka pod without having joined the cluster).
//!
//! A [`Gate`] checks once and says whether the application is healthy yet;
//! the caller (the rollout) polls it under a deadline. Gates take plain
//! network addresses, so the same code runs against the testbed's real
//! ZooKeeper, Kafka and search engines and, through a port-forward, against
//! the pods of a real cluster.

use std::future::Future;
use std::pin::Pin;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateStatus {
    /// Healthy; the text says what was seen, e.g. `leader on zookeeper-1`.
    Healthy(String),
    /// Not healthy yet; the text says why, for progress lines and for the
    /// report when the deadline passes.
    NotYet(String),
}

impl GateStatus {
    /// Whether the gate is open.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy(_))
    }
}

/// The future a [`Gate`] check returns; boxed so gates can be trait objects.
pub type GateFuture<'a> = Pin<Box<dyn Future<Output = GateStatus> + Send + 'a>>;

/// One application-level health check, polled by the rollout.
///
/// A check never fails with an error: an unreachable service is simply not
/// healthy yet, and the reason is in [`GateStatus::NotYet`]. Each check is
/// bounded in time by the implementation.
pub trait Gate: Send + Sync {
    /// Short name for progress lines, e.g. `zookeeper quorum`.
    fn name(&self) -> &str;
    /// Checks once.
    fn check(&self) -> GateFuture<'_>;
}

pub mod forward;
pub mod kafka;
pub mod kibana;
pub mod search;
pub mod template;
pub mod zookeeper;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, Instant};

/// The bound of one network step of a check (connect, one request, one
/// read): a check never hangs, and a gate's poll stays responsive.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A safety net around one whole check in [`wait`]: the gates bound their
/// own network steps, this only guards against a gate that does not.
const CHECK_BOUND: Duration = Duration::from_secs(30);

/// A password that never reaches a log line: `{:?}` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }

    /// The password itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// HTTP basic credentials for Elasticsearch, OpenSearch or Kibana.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// User name, e.g. `elastic`.
    pub username: String,
    /// The user's password.
    pub password: Password,
}

impl BasicAuth {
    /// Credentials of `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> BasicAuth {
        BasicAuth {
            username: username.into(),
            password: Password::new(password),
        }
    }
}

/// The least cluster health a search gate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClusterColor {
    /// Every primary shard is assigned; replicas may be missing.
    Yellow,
    /// Every shard, primaries and replicas, is assigned.
    Green,
}

impl ClusterColor {
    /// The word the health API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterColor::Yellow => "yellow",
            ClusterColor::Green => "green",
        }
    }
}

/// A gate that did not open before its deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "waiting for {gate} timed out after {} s: {last_reason}",
    deadline.as_secs()
)]
pub struct GateTimeout {
    /// The gate's name, e.g. `zookeeper quorum`.
    pub gate: String,
    /// The deadline that passed.
    pub deadline: Duration,
    /// Why the last check said not yet.
    pub last_reason: String,
}

/// Polls `gate` until it is healthy and returns its healthy text, or fails
/// with the last reason once `deadline` has passed. `on_progress` sees every
/// check's result (for a progress line). The deadline is looked at between
/// checks: a check in progress finishes, and each is bounded by its gate.
pub async fn wait(
    gate: &dyn Gate,
    deadline: Duration,
    poll: Duration,
    mut on_progress: impl FnMut(&GateStatus),
) -> Result<String, GateTimeout> {
    let started = Instant::now();
    loop {
        let status = match tokio::time::timeout(CHECK_BOUND, gate.check()).await {
            Ok(status) => status,
            Err(_) => GateStatus::NotYet(format!(
                "the check did not finish within {} s",
                CHECK_BOUND.as_secs()
            )),
        };
        on_progress(&status);
        let reason = match status {
            GateStatus::Healthy(text) => {
                tracing::info!(gate = gate.name(), "{text}");
                return Ok(text);
            }
            GateStatus::NotYet(reason) => reason,
        };
        let elapsed = started.elapsed();
        if elapsed >= deadline {
            return Err(GateTimeout {
                gate: gate.name().to_owned(),
                deadline,
                last_reason: reason,
            });
        }
        tracing::debug!(gate = gate.name(), "not yet: {reason}");
        tokio::time::sleep(poll.min(deadline - elapsed)).await;
    }
}

/// `GET <base><path>` for a gate: the status and body, or why not, as the
/// `NotYet` reason.
pub(crate) async fn get_for_gate(
    http: &HttpOptions,
    auth: Option<&BasicAuth>,
    base: &str,
    path: &str,
) -> Result<(u16, Vec<u8>), String> {
    let client = http_client(http)?;
    let url = search::endpoint(base, path)?;
    let response = authorized(client.get(url.clone()), auth)
        .send()
        .await
        .map_err(|e| format!("GET {url} failed: {}", error_chain(&e)))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map(|b| b.to_vec()).map_err(|e| {
        format!(
            "reading the answer of GET {url} failed: {}",
            error_chain(&e)
        )
    })?;
    Ok((status, body))
}

/// An error with its causes: reqwest's and kube's own messages hide the
/// part that helps, e.g. "connection refused".
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// How the search and Kibana gates and the template install reach HTTPS
/// servers of the cluster from outside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpOptions {
    /// PEM CA certificates to trust besides the built-in roots, e.g. the
    /// stack's `elasticsearch-certs` `ca.crt` (Elasticsearch 8 with TLS).
    pub ca_certificates_pem: Option<Vec<u8>>,
    /// Host names to connect to another address, e.g.
    /// `elasticsearch-http.kelp.svc` to a port-forward's `127.0.0.1:40123`:
    /// the URL keeps the name the certificate was issued for. The address's
    /// port is used when the URL gives none; a port in the URL wins.
    pub resolve: Vec<(String, std::net::SocketAddr)>,
}

/// An HTTP client for the search and Kibana gates: bounded connect and
/// request times, and the cluster's CA when it signs the server's
/// certificate.
pub(crate) fn http_client(options: &HttpOptions) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(CHECK_TIMEOUT)
        .timeout(CHECK_TIMEOUT)
        .user_agent(concat!("kelp/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &options.ca_certificates_pem {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("reading the ca certificates failed: {e}"))?;
        if certificates.is_empty() {
            return Err(
                "reading the ca certificates failed: no pem certificate in them".to_owned(),
            );
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    for (host, address) in &options.resolve {
        builder = builder.resolve(host, *address);
    }
    builder
        .build()
        .map_err(|e| format!("building the http client failed: {}", error_chain(&e)))
}

/// Adds basic credentials to a request when there are some.
pub(crate) fn authorized(
    request: reqwest::RequestBuilder,
    auth: Option<&BasicAuth>,
) -> reqwest::RequestBuilder {
    match auth {
        Some(auth) => request.basic_auth(&auth.username, Some(auth.password.expose())),
        None => request,
    }
}

/// The start of a body as text, for reasons and errors.
pub(crate) fn excerpt(body: &[u8]) -> String {
    crate::kibana::status::excerpt(body)
}
