//! The search engine over HTTP: one reqwest client, round-robin over the
//! configured URLs, and the startup steps (detect the backend, install the
//! lifecycle policy and the index template).
//!
//! reqwest is used directly, not the `elasticsearch` crate: the bulk body is
//! built by the pure core and sent as is (gzip-compressed off the async
//! workers when configured), and the response is classified by the pure core
//! from the raw status and bytes.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use kelp_shipper::backend::{self, Backend, Capabilities, LabelsMapping, Lifecycle, ProbeAnswer};
use kelp_shipper::config::{Auth, ElasticsearchConfig, Secret, SecretSource};
use kelp_shipper::template::{self, ApiCall, TemplateSettings};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;

/// The bulk response fields the pure core reads; the rest is not sent back.
const BULK_PATH: &str = "/_bulk?filter_path=errors,items.*.status,items.*.error";

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("loading search engine credentials failed: {0}")]
    Secret(#[from] kelp_shipper::config::SecretError),
    #[error("reading {path} failed: {source}")]
    ReadFile {
        path: String,
        source: std::io::Error,
    },
    #[error("building the http client failed: {0}")]
    Build(#[from] reqwest::Error),
    #[error("building the authorization header failed: the credentials are not valid header text")]
    Header,
    #[error("reading the config failed: {0}")]
    Config(#[from] kelp_shipper::config::ConfigError),
}

/// No response: connection refused or reset, timeout, TLS failure.
#[derive(Debug, thiserror::Error)]
#[error("sending {method} {url} failed: {source}")]
pub(crate) struct TransportError {
    method: Method,
    url: String,
    #[source]
    source: reqwest::Error,
}

/// What the search engine said.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// The search engine's HTTP endpoints.
#[derive(Debug)]
pub(crate) struct SearchClient {
    http: reqwest::Client,
    urls: Vec<String>,
    next: AtomicUsize,
    gzip: bool,
}

impl SearchClient {
    /// Builds the client; reads the credentials and TLS files once.
    pub(crate) fn new(
        config: &ElasticsearchConfig,
        gzip: bool,
    ) -> Result<SearchClient, ClientError> {
        let mut headers = HeaderMap::new();
        let secret = config
            .auth
            .source()?
            .map(|source| load_secret(&source))
            .transpose()?;
        match (&config.auth, secret) {
            (Auth::Basic(basic), Some(password)) => {
                let raw = format!("{}:{}", basic.username, password.expose());
                let value = format!("Basic {}", base64(raw.as_bytes()));
                headers.insert(AUTHORIZATION, sensitive(&value)?);
            }
            (Auth::ApiKey(_), Some(key)) => {
                headers.insert(
                    AUTHORIZATION,
                    sensitive(&format!("ApiKey {}", key.expose()))?,
                );
            }
            _ => {}
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .default_headers(headers)
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .connect_timeout(Duration::from_millis(config.request_timeout_ms.min(10_000)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("kelp-shipper/", env!("CARGO_PKG_VERSION")));
        let tls = &config.tls;
        if let Some(ca) = &tls.ca_file {
            let pem = read(ca)?;
            builder = builder.tls_built_in_root_certs(false);
            for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend_from_slice(&read(key)?);
            builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
        }
        if tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        Ok(SearchClient {
            http: builder.build()?,
            urls: config
                .urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            next: AtomicUsize::new(0),
            gzip,
        })
    }

    /// The next base URL: requests rotate over all of them, so a retry after
    /// a connection error goes to another node.
    fn base(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len().max(1);
        self.urls.get(i).map_or("", String::as_str)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &'static str, bool)>,
    ) -> Result<Response, TransportError> {
        let url = format!("{}{path}", self.base());
        let mut request = self.http.request(method.clone(), &url);
        if let Some((bytes, content_type, gzipped)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
            if gzipped {
                request = request.header(CONTENT_ENCODING, "gzip");
            }
        }
        let fail = |source| TransportError {
            method: method.clone(),
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(fail)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(fail)?;
        Ok(Response { status, body })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Response, TransportError> {
        self.send(Method::GET, path, None).await
    }

    pub(crate) async fn put_json(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<Response, TransportError> {
        let bytes = Bytes::from(body.to_string());
        self.send(Method::PUT, path, Some((bytes, "application/json", false)))
            .await
    }

    /// Sends a bulk body. gzip (level 1: most of the saving for a fraction
    /// of the CPU of the default level 6) runs in `block_in_place`, so a
    /// large body does not stall the other tasks of this worker.
    pub(crate) async fn bulk(&self, body: Bytes) -> Result<Response, TransportError> {
        let (bytes, gzipped) = if self.gzip {
            (
                Bytes::from(tokio::task::block_in_place(|| gzip(&body))),
                true,
            )
        } else {
            (body, false)
        };
        self.send(
            Method::POST,
            BULK_PATH,
            Some((bytes, "application/x-ndjson", gzipped)),
        )
        .await
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

fn load_secret(source: &SecretSource) -> Result<Secret, ClientError> {
    Ok(source.load(|p| std::fs::read_to_string(p), |k| std::env::var(k).ok())?)
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::ReadFile {
        path: path.display().to_string(),
        source,
    })
}

fn sensitive(value: &str) -> Result<HeaderValue, ClientError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| ClientError::Header)?;
    header.set_sensitive(true);
    Ok(header)
}

/// Standard base64 with padding, for the basic-auth header.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Why setup cannot go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    /// Worth retrying: no answer, or a 5xx/429.
    #[error("{step} failed: {detail}")]
    Transient { step: &'static str, detail: String },
    /// Retrying cannot help: credentials, an unsupported backend, a template
    /// the cluster refuses.
    #[error("{step} failed: {detail}")]
    Fatal { step: &'static str, detail: String },
}

impl SetupError {
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(self, SetupError::Fatal { .. })
    }
}

fn transient(step: &'static str, detail: impl ToString) -> SetupError {
    SetupError::Transient {
        step,
        detail: detail.to_string(),
    }
}

fn fatal(step: &'static str, detail: impl ToString) -> SetupError {
    SetupError::Fatal {
        step,
        detail: detail.to_string(),
    }
}

/// Classifies a non-2xx answer during setup.
fn status_error(step: &'static str, response: &Response) -> SetupError {
    let text = String::from_utf8_lossy(&response.body);
    let detail = format!(
        "status {}: {}",
        response.status,
        text.chars().take(512).collect::<String>()
    );
    match response.status {
        408 | 429 | 500..=599 => transient(step, detail),
        _ => fatal(step, detail),
    }
}

/// Detects the backend from `GET /`.
pub(crate) async fn detect(client: &SearchClient) -> Result<Backend, SetupError> {
    const STEP: &str = "detecting the search engine (GET /)";
    let response = client.get("/").await.map_err(|e| transient(STEP, e))?;
    if response.status != 200 {
        return Err(status_error(STEP, &response));
    }
    backend::detect(&response.body).map_err(|e| fatal(STEP, e))
}

/// What the cluster can do, probed: the lifecycle API and the labels type
/// may be missing (Elasticsearch without X-Pack, OpenSearch without the ISM
/// plugin), and then the shipper warns and carries on without them.
pub(crate) async fn probe(
    client: &SearchClient,
    backend: &Backend,
    settings: &TemplateSettings,
) -> Result<Capabilities, SetupError> {
    let mut caps = backend.capabilities();
    if settings.retention_days.is_none() {
        return Ok(caps);
    }
    let Some(path) = backend::lifecycle_probe_path(caps.lifecycle, &settings.name) else {
        tracing::warn!(
            backend = backend.kind.as_str(),
            "this search engine has no lifecycle management: indices are kept until deleted by hand"
        );
        return Ok(caps);
    };
    const STEP: &str = "probing the lifecycle API";
    let response = client.get(&path).await.map_err(|e| transient(STEP, e))?;
    match backend::read_lifecycle_probe(caps.lifecycle, response.status, &response.body) {
        ProbeAnswer::Available => {}
        ProbeAnswer::ServerError => return Err(status_error(STEP, &response)),
        ProbeAnswer::Missing => {
            tracing::warn!(
                status = response.status,
                lifecycle = ?caps.lifecycle,
                "lifecycle management is not available (Elasticsearch without X-Pack, or OpenSearch without the index-management plugin): indices are kept until deleted by hand"
            );
            caps.lifecycle = Lifecycle::None;
        }
    }
    Ok(caps)
}

/// Installs the policy and the template, idempotently; a template the
/// cluster refuses because the labels type is missing is installed again
/// with labels kept in `_source` only.
pub(crate) async fn install(
    client: &SearchClient,
    mut caps: Capabilities,
    settings: &TemplateSettings,
) -> Result<(), SetupError> {
    loop {
        let plan = template::install_plan_for(&caps, settings);
        match run_plan(client, &plan).await {
            Err(SetupError::Fatal { detail, .. })
                if caps.labels != LabelsMapping::Disabled
                    && template::lacks_labels_type(&detail) =>
            {
                tracing::warn!(
                    labels = ?caps.labels,
                    "the cluster does not know the labels mapping type: labels and annotations are kept in _source only"
                );
                caps.labels = LabelsMapping::Disabled;
            }
            other => return other,
        }
    }
}

async fn run_plan(client: &SearchClient, plan: &[ApiCall]) -> Result<(), SetupError> {
    for call in plan {
        if template::is_ism_policy(&call.path) {
            install_ism(client, call).await?;
            continue;
        }
        const STEP: &str = "installing the index template and policy";
        let response = client
            .put_json(&call.path, &call.body)
            .await
            .map_err(|e| transient(STEP, e))?;
        if !(200..300).contains(&response.status) {
            return Err(status_error(STEP, &response));
        }
        tracing::info!(path = %call.path, "installed");
    }
    Ok(())
}

/// ISM refuses a plain `PUT` on an existing policy (409): an update needs
/// the policy's `_seq_no` and `_primary_term`. Read them, then write; a
/// concurrent writer (another shipper) makes the write 409 and the loop
/// reads again.
async fn install_ism(client: &SearchClient, call: &ApiCall) -> Result<(), SetupError> {
    const STEP: &str = "installing the ISM policy";
    for _ in 0..5 {
        let current = client
            .get(&call.path)
            .await
            .map_err(|e| transient(STEP, e))?;
        let path = match current.status {
            200 => {
                let v: Value = serde_json::from_slice(&current.body).map_err(|e| fatal(STEP, e))?;
                template::ism_update_path(&call.path, &v)
                    .ok_or_else(|| fatal(STEP, "GET answered without _seq_no/_primary_term"))?
            }
            404 => call.path.clone(),
            _ => return Err(status_error(STEP, &current)),
        };
        let response = client
            .put_json(&path, &call.body)
            .await
            .map_err(|e| transient(STEP, e))?;
        match response.status {
            200..=299 => {
                tracing::info!(path = %call.path, "installed");
                return Ok(());
            }
            409 => continue,
            _ => return Err(status_error(STEP, &response)),
        }
    }
    Err(transient(STEP, "the policy kept changing under us (409)"))
}

/// The whole startup sequence, retried with backoff until it succeeds, a
/// fatal error, or `cancel`.
pub(crate) async fn setup(
    client: &SearchClient,
    settings: Option<&TemplateSettings>,
    backoff: kelp_shipper::backoff::Backoff,
    rng: &mut kelp_shipper::backoff::SplitMix64,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Option<Backend>, SetupError> {
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let result = async {
            let backend = detect(client).await?;
            tracing::info!(backend = %backend.to_string(), "search engine detected");
            if let Some(settings) = settings {
                let caps = probe(client, &backend, settings).await?;
                install(client, caps, settings).await?;
            }
            Ok::<Backend, SetupError>(backend)
        }
        .await;
        match result {
            Ok(backend) => return Ok(Some(backend)),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                let delay = backoff.delay(attempt, rng.next_u64());
                tracing::warn!(
                    error = %e,
                    attempt,
                    took_ms = started.elapsed().as_millis() as u64,
                    delay_ms = delay.as_millis() as u64,
                    "search engine setup failed, retrying"
                );
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cancel.cancelled() => return Ok(None),
                }
            }
        }
    }
}

#[cfg(test)]
mod lifecycle_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        let table = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("kelp:hunter2", "a2VscDpodW50ZXIy"),
        ];
        for (input, want) in table {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn setup_statuses_split_transient_from_fatal() {
        let table: &[(u16, bool)] = &[
            (500, false),
            (503, false),
            (429, false),
            (408, false),
            (400, true),
            (401, true),
            (403, true),
            (404, true),
        ];
        for (status, want_fatal) in table {
            let response = Response {
                status: *status,
                body: Bytes::from_static(b"{}"),
            };
            assert_eq!(
                status_error("step", &response).is_fatal(),
                *want_fatal,
                "{status}"
            );
        }
    }

    fn es_config(yaml_tail: &str) -> ElasticsearchConfig {
        let yaml = format!(
            "kafka:\n  bootstrap_servers: [k:9092]\n  topics: [t]\nelasticsearch:\n  urls: [https://a:9200/, https://b:9200]\n{yaml_tail}"
        );
        kelp_shipper::config::Config::from_yaml_str(&yaml)
            .unwrap()
            .elasticsearch
    }

    #[test]
    fn builds_with_ca_client_certificate_and_basic_auth() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "hunter2\n").unwrap();
        let tls = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tls");
        let config = es_config(&format!(
            "  auth:\n    basic:\n      username: kelp\n      password_file: {}\n  tls:\n    ca_file: {tls}/cert.pem\n    cert_file: {tls}/cert.pem\n    key_file: {tls}/key.pem\n",
            password.display()
        ));
        let client = SearchClient::new(&config, true).unwrap();
        // Round-robin, trailing slashes trimmed.
        assert_eq!(client.base(), "https://a:9200");
        assert_eq!(client.base(), "https://b:9200");
        assert_eq!(client.base(), "https://a:9200");
    }

    #[test]
    fn unusable_tls_files_and_secrets_name_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let config = es_config(&format!(
            "  tls:\n    cert_file: {0}\n    key_file: {0}\n",
            garbage.display()
        ));
        let error = SearchClient::new(&config, false).unwrap_err();
        assert!(matches!(error, ClientError::Build(_)), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("building the http client failed")
        );

        let config = es_config("  tls:\n    ca_file: /nonexistent/ca.pem\n");
        let error = SearchClient::new(&config, false).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("reading /nonexistent/ca.pem failed"),
            "{error}"
        );

        let config = es_config("  auth:\n    api_key:\n      key_file: /nonexistent/key\n");
        let error = SearchClient::new(&config, false).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("loading search engine credentials failed: loading secret failed"),
            "{error}"
        );
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read as _;
        let body = b"{\"index\":{}}\n{\"message\":\"x\"}\n".repeat(100);
        let compressed = gzip(&body);
        assert!(compressed.len() < body.len());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }
}
