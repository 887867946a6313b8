//! The shipper over TLS with a private CA, a client certificate, and basic
//! auth or an API key, into the testbed's real OpenSearch.
//!
//! No security plugin for OpenSearch or Elasticsearch is on Maven Central,
//! so the testbed's engines speak plain HTTP. In front of OpenSearch this
//! file puts a TLS front (rustls): it accepts only clients with a
//! certificate from the test CA and the expected `Authorization` header,
//! and forwards everything else untouched. What is real: the shipper's TLS
//! handshake (CA file, client certificate and key from files), its
//! credentials from files, and the whole ingestion through to OpenSearch.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use crate::shipper_support::{
    Engine, Shipper, ShipperSetup, create_topic, ids, produce, records, wait_for, wait_for_count,
};

const EVENTS: usize = 500;
const PASSWORD: &str = "s3cr3t-Pa55w0rd-never-logged";
/// `Basic` and base64 of `kelp-shipper:` and [`PASSWORD`].
const BASIC: &str = "Basic a2VscC1zaGlwcGVyOnMzY3IzdC1QYTU1dzByZC1uZXZlci1sb2dnZWQ=";
const API_KEY: &str = "a2VscDpzM2NyM3QtYXBpLWtleS1uZXZlci1sb2dnZWQ=";

/// A CA and what it signed: the front's server certificate and a client one.
struct Pki {
    ca_pem: String,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    client_pem: (String, String),
    ca_der: CertificateDer<'static>,
}

fn pki() -> anyhow::Result<Pki> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["localhost".to_owned()])?;
    server
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer)?;

    Ok(Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server: (
            server_cert.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        ),
        client_pem: (client_cert.pem(), client_key.serialize_pem()),
    })
}

/// The TLS front: counts what it forwarded and what it refused.
struct Front {
    url: String,
    forwarded: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_front(pki: &Pki, upstream: &str, authorization: String) -> anyhow::Result<Front> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der.clone())?;
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build()?;
    let config = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
    let forwarded = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Forward {
        upstream: upstream.trim_end_matches('/').to_owned(),
        authorization,
        client: reqwest::Client::new(),
        forwarded: Arc::clone(&forwarded),
        refused: Arc::clone(&refused),
    });
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                // A client without a certificate from the CA fails here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    let shared = Arc::clone(&shared);
                    async move { shared.handle(request).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(Front {
        url,
        forwarded,
        refused,
        task,
    })
}

struct Forward {
    upstream: String,
    authorization: String,
    client: reqwest::Client,
    forwarded: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl Forward {
    async fn handle(&self, request: Request<Incoming>) -> anyhow::Result<Response<Full<Bytes>>> {
        let given = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if given != self.authorization {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Ok(Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"error":"unauthorized","status":401}"#,
                )))?);
        }
        let method = request.method().clone();
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let mut upstream = self
            .client
            .request(method, format!("{}{path}", self.upstream));
        for name in [hyper::header::CONTENT_TYPE, hyper::header::CONTENT_ENCODING] {
            if let Some(value) = request.headers().get(&name) {
                upstream = upstream.header(name, value.clone());
            }
        }
        let body = request.into_body().collect().await?.to_bytes();
        let answer = upstream.body(body).send().await?;
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        let mut response = Response::builder().status(answer.status());
        if let Some(value) = answer.headers().get(hyper::header::CONTENT_TYPE) {
            response = response.header(hyper::header::CONTENT_TYPE, value.clone());
        }
        Ok(response.body(Full::new(answer.bytes().await?))?)
    }
}

/// Writes a file into `dir` and returns its path as YAML-ready text.
fn file(dir: &Path, name: &str, content: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, content)?;
    path.to_str()
        .map(str::to_owned)
        .context("non-UTF-8 temp path")
}

/// The `tls:` lines: the test CA, and the client certificate unless `anonymous`.
fn tls_yaml(dir: &Path, pki: &Pki, anonymous: bool) -> anyhow::Result<String> {
    let mut yaml = format!(
        "  tls:\n    ca_file: {}\n",
        file(dir, "ca.crt", &pki.ca_pem)?
    );
    if !anonymous {
        yaml.push_str(&format!(
            "    cert_file: {}\n    key_file: {}\n",
            file(dir, "tls.crt", &pki.client_pem.0)?,
            file(dir, "tls.key", &pki.client_pem.1)?
        ));
    }
    Ok(yaml)
}

/// Produces [`EVENTS`] records for a fresh setup whose `elasticsearch:`
/// section ends with `extra`.
async fn setup(name: &str, engine_url: &str, extra: String) -> anyhow::Result<ShipperSetup> {
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let mut setup = ShipperSetup::new(name, &bootstrap, engine_url);
    setup.elasticsearch_extra = extra;
    create_topic(&bootstrap, &setup.topic).await?;
    produce(&bootstrap, &setup.topic, &records(0..EVENTS)).await?;
    Ok(setup)
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch"]
async fn shipper_tls_client_certificate_and_credentials() -> anyhow::Result<()> {
    let opensearch = kelp_tests::service("KELP_OPENSEARCH_URL", "opensearch")?;
    let engine = Engine::new(&opensearch);
    let pki = pki()?;
    let dir = tempfile::tempdir()?;

    // Basic auth, password from a file, mutual TLS: every event arrives.
    let front = start_front(&pki, &opensearch, BASIC.to_owned()).await?;
    let extra = format!(
        "  auth:\n    basic:\n      username: kelp-shipper\n      password_file: {}\n{}",
        file(dir.path(), "password", &format!("{PASSWORD}\n"))?,
        tls_yaml(dir.path(), &pki, false)?
    );
    let tls_basic = setup("tls-basic", &front.url, extra).await?;
    let mut shipper = Shipper::start(&tls_basic)?;
    wait_for_count(
        &engine,
        &tls_basic.pattern(),
        EVENTS as u64,
        Duration::from_secs(120),
        &mut [&mut shipper],
    )
    .await?;
    ensure!(
        engine.ids(&tls_basic.pattern()).await? == ids(0..EVENTS),
        "the indexed ids differ from the events' ids"
    );
    ensure!(
        front.refused.load(Ordering::Relaxed) == 0,
        "the front refused the shipper"
    );
    ensure!(
        front.forwarded.load(Ordering::Relaxed) > 0,
        "nothing forwarded"
    );
    shipper.terminate(Duration::from_secs(30)).await?;
    ensure!(
        !shipper.log_text().contains(PASSWORD),
        "the password is in the shipper's log"
    );
    drop(front);

    // An API key from a file instead: the same.
    let front = start_front(&pki, &opensearch, format!("ApiKey {API_KEY}")).await?;
    let extra = format!(
        "  auth:\n    api_key:\n      key_file: {}\n{}",
        file(dir.path(), "api-key", API_KEY)?,
        tls_yaml(dir.path(), &pki, false)?
    );
    let tls_key = setup("tls-key", &front.url, extra).await?;
    let mut shipper = Shipper::start(&tls_key)?;
    wait_for_count(
        &engine,
        &tls_key.pattern(),
        EVENTS as u64,
        Duration::from_secs(120),
        &mut [&mut shipper],
    )
    .await?;
    shipper.terminate(Duration::from_secs(30)).await?;
    ensure!(
        !shipper.log_text().contains(API_KEY),
        "the API key is in the shipper's log"
    );

    // Without a client certificate the handshake fails: nothing is
    // indexed, the shipper is not ready, and its log says why.
    let extra = format!(
        "  auth:\n    api_key:\n      key_file: {}\n{}",
        file(dir.path(), "api-key", API_KEY)?,
        tls_yaml(dir.path(), &pki, true)?
    );
    let anonymous = setup("tls-anon", &front.url, extra).await?;
    let mut shipper = Shipper::start(&anonymous)?;
    wait_for(
        "the front refusing the shipper's handshake",
        Duration::from_secs(60),
        || async { Ok((front.refused.load(Ordering::Relaxed) > 0).then_some(())) },
    )
    .await?;
    ensure!(shipper.is_running(), "{}", shipper.log_tail());
    let (status, _) = shipper.get("/readyz").await?;
    ensure!(
        status == 503,
        "/readyz {status} without a working connection"
    );
    ensure!(
        engine.count(&anonymous.pattern()).await? == 0,
        "documents indexed without a client certificate"
    );
    shipper.kill()?;

    // A wrong password: the engine says 401, and the shipper stops with an
    // error naming the step, not a retry loop.
    let front = start_front(&pki, &opensearch, "Basic bm9ib2R5Om5vdGhpbmc=".to_owned()).await?;
    let extra = format!(
        "  auth:\n    basic:\n      username: kelp-shipper\n      password_file: {}\n{}",
        file(dir.path(), "password", PASSWORD)?,
        tls_yaml(dir.path(), &pki, false)?
    );
    let refused = setup("tls-refused", &front.url, extra).await?;
    let mut shipper = Shipper::start(&refused)?;
    wait_for("a 401 in the log", Duration::from_secs(60), || async {
        Ok(shipper.log_text().contains("401").then_some(()))
    })
    .await?;
    wait_for("the shipper to stop", Duration::from_secs(30), || {
        let running = shipper.is_running();
        async move { Ok((!running).then_some(())) }
    })
    .await?;
    ensure!(
        shipper
            .log_text()
            .contains("detecting the search engine (GET /) failed: status 401"),
        "{}",
        shipper.log_tail()
    );
    ensure!(
        !shipper.log_text().contains(PASSWORD),
        "the password is in the shipper's log"
    );
    Ok(())
}
