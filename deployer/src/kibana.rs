//! Imports kelp's Kibana saved objects (crate `kelp-dashboards`) into a Kibana.
//!
//! [`import_dashboards`] does three steps, all within one bounded wait:
//!
//! 1. Wait until `GET /api/status` says Kibana is available: HTTP 200 with
//!    `status.overall.level == "available"` (8.x, 9.x) or
//!    `status.overall.state == "green"` (7.x). Refused connections, 502, 503
//!    and 504 are waited out, with a progress line per poll.
//! 2. `POST /api/saved_objects/_import?overwrite=true` with the NDJSON as the
//!    multipart field `file` (file name `*.ndjson`) and the `kbn-xsrf` header.
//!    HTTP 200 is not success: the body's `success` and every `errors[]`
//!    entry are checked. A 503 (Kibana migrating) is retried.
//! 3. Make the kelp data view the space's default, with the API of the
//!    version `/api/status` reported: `POST /api/index_patterns/default`
//!    (`index_pattern_id`) on 7.x, `POST /api/data_views/default`
//!    (`data_view_id`) on 8.x and later, both with `force: true`.
//!
//! The import overwrites by id and the default is forced, so running it
//! again converges on the same state. A space is addressed as
//! `/s/<space>/api/...`; `/api/status` is global.

mod response;
pub(crate) mod status;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde_json::json;

use self::response::ImportResponse;
pub use self::response::ObjectFailure;
use self::status::{Format, Status, Version, excerpt};
use crate::health::error_chain;

/// The oldest Kibana the saved objects can be imported into: they are
/// authored at 7.17, and Kibana imports no object from a newer version.
pub const MIN_VERSION: (u32, u32) = (7, 17);

/// The `kbn-xsrf` header's value: Kibana checks only that the header exists.
const XSRF_VALUE: &str = "kelp";

/// Where Kibana is and how to authenticate to it.
#[derive(Clone)]
pub struct KibanaTarget {
    /// Base URL, e.g. `https://kibana.logging.svc:5601`. A path is kept as
    /// Kibana's `server.basePath`, e.g. `https://example.org/kibana`.
    pub url: Url,
    /// The space to import into; `None` or `default` is the default space.
    pub space: Option<String>,
    /// Credentials.
    pub auth: KibanaAuth,
    /// PEM CA certificates to trust besides the built-in roots, e.g. the
    /// cluster's CA for Kibana's self-signed certificate.
    pub ca_certificates_pem: Option<Vec<u8>>,
}

impl fmt::Debug for KibanaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KibanaTarget")
            .field("url", &self.url.as_str())
            .field("space", &self.space)
            .field("auth", &self.auth)
            .field(
                "ca_certificates_pem",
                &self.ca_certificates_pem.as_ref().map(|pem| pem.len()),
            )
            .finish()
    }
}

/// How requests to Kibana authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum KibanaAuth {
    /// No credentials (Kibana without security).
    None,
    /// HTTP basic authentication as a Kibana user.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An Elasticsearch API key, sent as `Authorization: ApiKey <encoded>`.
    ApiKey {
        /// The key's `encoded` value: base64 of `id:api_key`.
        encoded: String,
    },
}

impl KibanaAuth {
    /// Adds the credentials to a request (Kibana's and the search engine's
    /// HTTP APIs take the same two kinds).
    pub(crate) fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            KibanaAuth::None => request,
            KibanaAuth::Basic { username, password } => {
                request.basic_auth(username, Some(password))
            }
            KibanaAuth::ApiKey { encoded } => {
                request.header(AUTHORIZATION, format!("ApiKey {encoded}"))
            }
        }
    }
}

// Secrets never reach a log line through `{:?}`.
impl fmt::Debug for KibanaAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KibanaAuth::None => f.write_str("None"),
            KibanaAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            KibanaAuth::ApiKey { .. } => f
                .debug_struct("ApiKey")
                .field("encoded", &"<redacted>")
                .finish(),
        }
    }
}

/// How long to wait and what to do besides the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The whole run's bound: waiting for Kibana, the import and the default
    /// data view. A fresh Kibana migrates its saved objects first, which
    /// takes minutes on a slow cluster.
    pub timeout: Duration,
    /// Pause between two attempts while Kibana is not ready.
    pub poll_interval: Duration,
    /// Bound of one HTTP request.
    pub request_timeout: Duration,
    /// Make the kelp data view the space's default data view.
    pub set_default_data_view: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            set_default_data_view: true,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Kibana's `version.number`, when `/api/status` reported it.
    pub kibana_version: Option<String>,
    /// How many times `/api/status` was asked before Kibana was available.
    pub status_polls: u32,
    /// The objects Kibana imported, as its `successResults` lists them.
    pub imported: Vec<ImportedObject>,
    /// The id of the data view made the default, when that was asked for.
    pub default_data_view: Option<String>,
}

impl ImportReport {
    /// The id Kibana stored an object of the file under: the file's id
    /// unless Kibana gave it a new one.
    pub fn stored_id(&self, kind: &str, id: &str) -> String {
        self.imported
            .iter()
            .find(|o| o.kind == kind && o.id == id)
            .and_then(|o| o.destination_id.clone())
            .unwrap_or_else(|| id.to_owned())
    }
}

/// One imported saved object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedObject {
    /// Saved-object type, e.g. `dashboard`.
    pub kind: String,
    /// Id in the file.
    pub id: String,
    /// The id Kibana stored it under, when different (e.g. when an object
    /// with this id lives in another space).
    pub destination_id: Option<String>,
    /// Title, when Kibana reported it.
    pub title: Option<String>,
}

/// The step that failed, as error messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `GET /api/status`.
    Status,
    /// `POST /api/saved_objects/_import`.
    Import,
    /// Setting the default data view.
    DefaultDataView,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Status => "waiting for kibana",
            Step::Import => "importing saved objects",
            Step::DefaultDataView => "setting the default data view",
        })
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum KibanaError {
    /// The target or options are unusable: nothing was sent.
    #[error("preparing the kibana client failed: {0}")]
    Setup(String),
    /// Kibana was not ready, or kept answering 502/503/504, until the timeout.
    #[error("{step} failed: kibana was not ready within {waited_secs}s; last answer: {last}")]
    TimedOut {
        /// The step that was waiting.
        step: Step,
        /// Seconds since the run started.
        waited_secs: u64,
        /// The last answer or connection error.
        last: String,
    },
    /// Kibana refused the credentials (401) or their privileges (403).
    #[error("{step} failed: kibana answered http {status}: the credentials were refused: {body}")]
    Auth {
        /// The step.
        step: Step,
        /// 401 or 403.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// Kibana answered with an HTTP status that retrying does not fix.
    #[error("{step} failed: kibana answered http {status}: {body}")]
    Http {
        /// The step.
        step: Step,
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// Kibana answered 200 with a body that is not what its API documents.
    #[error("{step} failed: unexpected answer: {message}")]
    Response {
        /// The step.
        step: Step,
        /// What was wrong with it.
        message: String,
    },
    /// The Kibana is older than the objects.
    #[error(
        "waiting for kibana failed: kibana {version} is too old: the saved objects need {}.{} or newer",
        MIN_VERSION.0,
        MIN_VERSION.1
    )]
    UnsupportedVersion {
        /// The version Kibana reported.
        version: String,
    },
    /// Kibana answered `success: false`: some objects were not imported.
    #[error("importing saved objects failed: {}", describe_failures(*success_count, failures))]
    Import {
        /// How many objects Kibana did import.
        success_count: u64,
        /// Every object Kibana refused, with the reason.
        failures: Vec<ObjectFailure>,
    },
}

fn describe_failures(success_count: u64, failures: &[ObjectFailure]) -> String {
    if failures.is_empty() {
        return format!(
            "kibana answered success: false without errors ({success_count} objects imported)"
        );
    }
    let list: Vec<String> = failures.iter().map(ToString::to_string).collect();
    format!(
        "kibana refused {} object(s), imported {success_count}: {}",
        failures.len(),
        list.join("; ")
    )
}

/// Waits for Kibana, imports the saved objects of `kelp-dashboards` into
/// the target's space and makes the kelp data view the default. See the
/// module documentation for the steps.
pub async fn import_dashboards(
    target: &KibanaTarget,
    options: &ImportOptions,
) -> Result<ImportReport, KibanaError> {
    let kibana = Kibana::new(target, options)?;
    let (status, status_polls) = kibana.wait_until_available().await?;
    let api = default_view_api(&status)?;
    let imported = kibana.import().await?;
    let mut report = ImportReport {
        kibana_version: status.version_number,
        status_polls,
        imported,
        default_data_view: None,
    };
    if options.set_default_data_view {
        // Kibana may have stored the data view under a new id (it exists
        // in another space); the default must name the id in this space.
        let id = report.stored_id("index-pattern", kelp_dashboards::DATA_VIEW_ID);
        kibana.set_default_data_view(api, &id).await?;
        report.default_data_view = Some(id);
    }
    Ok(report)
}

/// The API that sets the default data view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefaultViewApi {
    /// `POST /api/index_patterns/default`, Kibana 7.x.
    IndexPatterns,
    /// `POST /api/data_views/default`, Kibana 8.0 and later.
    DataViews,
}

/// Picks the API by the version `/api/status` reported, and refuses a
/// Kibana older than the objects. Without a version (the body is redacted
/// for an unauthenticated request), the body's format tells the major.
fn default_view_api(status: &Status) -> Result<DefaultViewApi, KibanaError> {
    let version = match &status.version_number {
        Some(number) => match Version::parse(number) {
            Some(version) => Some(version),
            None => {
                tracing::warn!(version = %number, "kibana reported a version kelp cannot read");
                None
            }
        },
        None => None,
    };
    let min = Version {
        major: MIN_VERSION.0,
        minor: MIN_VERSION.1,
    };
    Ok(match version {
        Some(v) if v < min => {
            return Err(KibanaError::UnsupportedVersion {
                version: status.version_number.clone().unwrap_or_default(),
            });
        }
        Some(v) if v.major >= 8 => DefaultViewApi::DataViews,
        Some(_) => DefaultViewApi::IndexPatterns,
        None if status.format == Format::State => DefaultViewApi::IndexPatterns,
        None => DefaultViewApi::DataViews,
    })
}

/// The outcome of sending one request.
enum Attempt {
    /// Kibana answered: status and body.
    Answer(StatusCode, Vec<u8>),
    /// No answer: refused connection, timeout, reset.
    NoAnswer(String),
}

/// A Kibana as the import talks to it.
struct Kibana<'a> {
    client: Client,
    target: &'a KibanaTarget,
    /// The base URL's path without its trailing slash.
    base_path: String,
    /// `/s/<space>` or empty for the default space.
    space_prefix: String,
    poll_interval: Duration,
    started: Instant,
    deadline: Instant,
}

impl<'a> Kibana<'a> {
    fn new(target: &'a KibanaTarget, options: &ImportOptions) -> Result<Kibana<'a>, KibanaError> {
        let url = &target.url;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(KibanaError::Setup(format!(
                "the kibana url {url} is not an http(s) url with a host"
            )));
        }
        let space_prefix = space_prefix(target.space.as_deref())?;
        if options.poll_interval.is_zero() || options.request_timeout.is_zero() {
            return Err(KibanaError::Setup(
                "the poll interval and the request timeout must be above zero".to_owned(),
            ));
        }
        let mut builder = Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("kelp/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &target.ca_certificates_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                KibanaError::Setup(format!("reading the ca certificates failed: {e}"))
            })?;
            if certificates.is_empty() {
                return Err(KibanaError::Setup(
                    "reading the ca certificates failed: no pem certificate in them".to_owned(),
                ));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .build()
            .map_err(|e| KibanaError::Setup(format!("building the http client failed: {e}")))?;
        let started = Instant::now();
        Ok(Kibana {
            client,
            target,
            base_path: url.path().trim_end_matches('/').to_owned(),
            space_prefix,
            poll_interval: options.poll_interval,
            started,
            deadline: started + options.timeout,
        })
    }

    /// A URL below the base path; `in_space` adds `/s/<space>`.
    fn url(&self, path: &str, in_space: bool, query: Option<&str>) -> Url {
        let mut url = self.target.url.clone();
        let space = if in_space {
            self.space_prefix.as_str()
        } else {
            ""
        };
        url.set_path(&format!("{}{space}{path}", self.base_path));
        url.set_query(query);
        url.set_fragment(None);
        url
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        self.target.auth.apply(request)
    }

    fn post(&self, url: Url) -> RequestBuilder {
        self.authorized(self.client.post(url))
            .header("kbn-xsrf", XSRF_VALUE)
    }

    async fn send(&self, request: RequestBuilder) -> Attempt {
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Attempt::NoAnswer(error_chain(&e)),
        };
        let status = response.status();
        match response.bytes().await {
            Ok(body) => Attempt::Answer(status, body.to_vec()),
            Err(e) => Attempt::NoAnswer(format!("reading the answer: {}", error_chain(&e))),
        }
    }

    /// Sleeps before the next attempt, or fails when the run's time is up.
    async fn pause(&self, step: Step, last: &str) -> Result<(), KibanaError> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(KibanaError::TimedOut {
                step,
                waited_secs: now.duration_since(self.started).as_secs(),
                last: last.to_owned(),
            });
        }
        let remaining = self.deadline.duration_since(now);
        let pause = self.poll_interval.min(remaining);
        tracing::info!(
            step = %step,
            "kibana is not ready: {last}; retrying in {:.1}s ({:.0}s left)",
            pause.as_secs_f64(),
            remaining.as_secs_f64()
        );
        tokio::time::sleep(pause).await;
        Ok(())
    }

    async fn wait_until_available(&self) -> Result<(Status, u32), KibanaError> {
        let url = self.url("/api/status", false, None);
        let mut polls = 0;
        loop {
            polls += 1;
            let request = self.authorized(self.client.get(url.clone()));
            let last = match self.send(request).await {
                Attempt::Answer(code, body) => {
                    if is_fatal(code) {
                        return Err(refusal(Step::Status, code, &body));
                    }
                    let status = status::parse(code.as_u16(), &body);
                    if status.ready {
                        tracing::info!(
                            version = status.version_number.as_deref().unwrap_or("unknown"),
                            polls,
                            "kibana is available"
                        );
                        return Ok((status, polls));
                    }
                    status.summary
                }
                Attempt::NoAnswer(message) => message,
            };
            self.pause(Step::Status, &last).await?;
        }
    }

    /// Sends the request `make` builds until Kibana answers something other
    /// than 502, 503 or 504, within the run's time. Resending after a lost
    /// answer is safe: the import overwrites by id and the default is forced.
    async fn post_until_answered(
        &self,
        step: Step,
        make: impl Fn() -> Result<RequestBuilder, KibanaError>,
    ) -> Result<(StatusCode, Vec<u8>), KibanaError> {
        loop {
            let last = match self.send(make()?).await {
                Attempt::Answer(code, body) if is_transient(code) => {
                    format!("http {}: {}", code.as_u16(), excerpt(&body))
                }
                Attempt::Answer(code, body) => return Ok((code, body)),
                Attempt::NoAnswer(message) => message,
            };
            self.pause(step, &last).await?;
        }
    }

    async fn import(&self) -> Result<Vec<ImportedObject>, KibanaError> {
        let step = Step::Import;
        let url = self.url("/api/saved_objects/_import", true, Some("overwrite=true"));
        let (code, body) = self
            .post_until_answered(step, || {
                let part = Part::text(kelp_dashboards::NDJSON)
                    .file_name(kelp_dashboards::FILE_NAME)
                    .mime_str("application/ndjson")
                    .map_err(|e| KibanaError::Setup(format!("building the upload failed: {e}")))?;
                Ok(self
                    .post(url.clone())
                    .multipart(Form::new().part("file", part)))
            })
            .await?;
        if code != StatusCode::OK {
            return Err(refusal(step, code, &body));
        }
        let answer: ImportResponse =
            serde_json::from_slice(&body).map_err(|e| KibanaError::Response {
                step,
                message: format!("{e}: {}", excerpt(&body)),
            })?;
        if !answer.success || !answer.errors.is_empty() {
            return Err(KibanaError::Import {
                success_count: answer.success_count,
                failures: answer.errors.iter().map(|e| e.failure()).collect(),
            });
        }
        let expected = kelp_dashboards::object_count() as u64;
        if answer.success_count != expected {
            return Err(KibanaError::Response {
                step,
                message: format!(
                    "success, but {} of {expected} objects imported",
                    answer.success_count
                ),
            });
        }
        tracing::info!(objects = answer.success_count, "imported the saved objects");
        Ok(answer
            .success_results
            .into_iter()
            .map(|r| ImportedObject {
                kind: r.kind,
                id: r.id,
                destination_id: r.destination_id,
                title: r.meta.and_then(|m| m.title),
            })
            .collect())
    }

    async fn set_default_data_view(
        &self,
        api: DefaultViewApi,
        id: &str,
    ) -> Result<(), KibanaError> {
        let step = Step::DefaultDataView;
        let (path, body) = match api {
            DefaultViewApi::IndexPatterns => (
                "/api/index_patterns/default",
                json!({"index_pattern_id": id, "force": true}),
            ),
            DefaultViewApi::DataViews => (
                "/api/data_views/default",
                json!({"data_view_id": id, "force": true}),
            ),
        };
        let url = self.url(path, true, None);
        let body = body.to_string();
        let (code, answer) = self
            .post_until_answered(step, || {
                Ok(self
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone()))
            })
            .await?;
        if code != StatusCode::OK {
            return Err(refusal(step, code, &answer));
        }
        let parsed: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| KibanaError::Response {
                step,
                message: format!("{e}: {}", excerpt(&answer)),
            })?;
        if parsed["acknowledged"] != true {
            return Err(KibanaError::Response {
                step,
                message: format!("not acknowledged: {}", excerpt(&answer)),
            });
        }
        tracing::info!(data_view = id, "set the default data view");
        Ok(())
    }
}

/// `/s/<space>`, or empty for the default space. Kibana space ids are
/// lower-case letters, digits, `_` and `-`, which also keeps the path intact.
fn space_prefix(space: Option<&str>) -> Result<String, KibanaError> {
    match space {
        None | Some("default") => Ok(String::new()),
        Some(space)
            if !space.is_empty()
                && space.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                }) =>
        {
            Ok(format!("/s/{space}"))
        }
        Some(space) => Err(KibanaError::Setup(format!(
            "the space id {space:?} is not a kibana space id (lower-case letters, digits, _ and -)"
        ))),
    }
}

/// Answers that a later attempt may not get: Kibana restarting, or a proxy
/// in front of it that cannot reach it yet.
fn is_transient(code: StatusCode) -> bool {
    matches!(code.as_u16(), 502..=504)
}

/// Answers to `/api/status` that waiting does not fix: bad credentials, or
/// a URL that is not Kibana's (a wrong base path).
fn is_fatal(code: StatusCode) -> bool {
    matches!(code.as_u16(), 401 | 403 | 404)
}

fn refusal(step: Step, code: StatusCode, body: &[u8]) -> KibanaError {
    let status = code.as_u16();
    let body = excerpt(body);
    match status {
        401 | 403 => KibanaError::Auth { step, status, body },
        _ => KibanaError::Http { step, status, body },
    }
}
