//! The Secrets the rendered pods read but no manifest creates: with
//! Elasticsearch security on, its CA and node certificate, the `elastic`
//! user's bootstrap password, and the passwords of the `kibana_system` and
//! `kelp-shipper` users.
//!
//! [`build`] is the pure core: it generates every Secret the stack needs
//! from a random generator and a clock reading. [`ensure`] creates the ones
//! that do not exist yet and never touches an existing one, so a Secret the
//! user made wins and a second `kelp apply` changes nothing.
//!
//! Once Elasticsearch is healthy, [`configure_elasticsearch_users`] sets
//! `kibana_system`'s password and creates the shipper's role and user, from
//! the request bodies [`user_requests`] builds.
//!
//! Secret values never reach a log or a report: [`Password`] prints as
//! `<redacted>` and reports carry only names.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use rand::{CryptoRng, SeedableRng};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use serde_json::{Value, json};

use crate::manifests::{
    self, ELASTICSEARCH_CERTS_SECRET, ELASTICSEARCH_ELASTIC_PASSWORD_SECRET,
    KIBANA_ELASTICSEARCH_PASSWORD_SECRET, SHIPPER_ELASTICSEARCH_PASSWORD_SECRET,
};
use crate::stack::Stack;

/// The field manager kelp writes with (server-side apply and creates).
pub const FIELD_MANAGER: &str = "kelp";
/// Characters of a generated password: 32 of 64 symbols, 192 bits.
pub const PASSWORD_CHARS: usize = 32;
/// The URL-safe alphabet passwords are drawn from (base64url's).
const PASSWORD_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// How long the generated CA is valid: ten years, since nothing rotates it.
pub const CA_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 3600);
/// How long the node certificate is valid: five years; renew by deleting
/// the Secret and applying again (docs/DEPLOYER.md).
pub const NODE_CERT_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
/// Certificates are valid from a little before they are made, so a node
/// whose clock is behind still accepts them.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);
/// The user the shipper authenticates as (its rendered config names it).
pub const SHIPPER_USER: &str = "kelp-shipper";
/// The role kelp gives [`SHIPPER_USER`].
pub const SHIPPER_ROLE: &str = "kelp_shipper";
/// Kibana's built-in user.
pub const KIBANA_SYSTEM_USER: &str = "kibana_system";
/// Label marking Secrets kelp generated (kept ones keep their labels).
pub const GENERATED_LABEL: &str = "kelp.io/generated";
/// Elasticsearch's headless service (its pods are `<pod>.elasticsearch...`);
/// a test checks the rendered Services have these names.
const ES_HEADLESS_SERVICE: &str = "elasticsearch";
/// Elasticsearch's client service.
const ES_HTTP_SERVICE: &str = "elasticsearch-http";

/// A password. Debug and Display print `<redacted>`; [`Password::expose`]
/// is the one way to the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password read from somewhere else (a Secret).
    pub fn new(text: impl Into<String>) -> Password {
        Password(text.into())
    }

    /// The password itself, for a request body or a Secret.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A random password of [`PASSWORD_CHARS`] URL-safe characters.
pub fn password(rng: &mut impl CryptoRng) -> Password {
    let mut bytes = [0u8; PASSWORD_CHARS];
    rng.fill_bytes(&mut bytes);
    // 64 symbols: the low 6 bits of a uniform byte are uniform.
    let text = bytes
        .iter()
        .map(|b| char::from(PASSWORD_ALPHABET[usize::from(b & 63)]))
        .collect();
    Password(text)
}

/// Why Secrets could not be generated, created or used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The certificate library refused (not expected with these inputs).
    #[error("generating the elasticsearch certificates failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The operating system gave no randomness.
    #[error("seeding the password generator from the operating system failed: {0}")]
    Random(String),
    /// A rendered pod reads a Secret kelp does not know how to make.
    #[error(
        "generating secret {0} failed: kelp does not know what it holds; create it by hand (docs/DEPLOYER.md)"
    )]
    Unknown(String),
    /// The API server refused a read or a create.
    #[error("{step} failed: {source}")]
    Api {
        /// What was being done, e.g. `creating secret kelp/x`.
        step: String,
        /// The cause.
        source: kube::Error,
    },
    /// An existing Secret lacks a key the pods read.
    #[error(
        "secret {namespace}/{name} exists but has no key {key}, which the pods read: add the key, or delete the secret so kelp generates it"
    )]
    MissingKey {
        /// Namespace of the Secret.
        namespace: String,
        /// The Secret.
        name: String,
        /// The missing key.
        key: String,
    },
    /// A Secret's value is not what it must be (e.g. not UTF-8).
    #[error("reading secret {name} key {key} failed: {reason}")]
    BadValue {
        /// The Secret.
        name: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Elasticsearch could not be reached or answered with an error.
    #[error("{step} failed: {detail}")]
    Elasticsearch {
        /// What was being done, e.g. `creating role kelp_shipper`.
        step: String,
        /// The status and body, or the transport error.
        detail: String,
    },
}

/// What [`ensure`] did, by Secret name. Never holds a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretsReport {
    /// Namespace of the Secrets.
    pub namespace: String,
    /// Secrets kelp created now.
    pub created: Vec<String>,
    /// Secrets that existed and were left as they are.
    pub kept: Vec<String>,
}

impl SecretsReport {
    /// Whether nothing was created (a re-apply).
    pub fn is_noop(&self) -> bool {
        self.created.is_empty()
    }
}

impl fmt::Display for SecretsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.created.is_empty() && self.kept.is_empty() {
            return writeln!(f, "secrets: none needed (elasticsearch security is off)");
        }
        for name in &self.created {
            writeln!(f, "secret {}/{name}: created", self.namespace)?;
        }
        for name in &self.kept {
            writeln!(f, "secret {}/{name}: kept (exists)", self.namespace)?;
        }
        Ok(())
    }
}

/// The Secrets the stack's pods read, with the keys they read. Derived from
/// the rendered objects, so a builder that starts reading a new Secret
/// shows up here (and in [`build`]'s tests).
pub fn needed(stack: &Stack) -> BTreeMap<String, Vec<String>> {
    manifests::referenced_secrets(&manifests::build(stack))
}

/// DNS names and addresses Elasticsearch's node certificate is valid for:
/// every pod below the headless service, the services in their short and
/// long forms, and the loopback the readiness probe uses.
pub fn elasticsearch_sans(stack: &Stack) -> Vec<String> {
    let ns = &stack.namespace;
    let domain = &stack.common.cluster_domain;
    let mut names = Vec::new();
    for service in [ES_HEADLESS_SERVICE, ES_HTTP_SERVICE] {
        names.extend([
            service.to_owned(),
            format!("{service}.{ns}"),
            format!("{service}.{ns}.svc"),
            format!("{service}.{ns}.svc.{domain}"),
        ]);
    }
    names.extend([
        format!("*.{ES_HEADLESS_SERVICE}.{ns}.svc"),
        format!("*.{ES_HEADLESS_SERVICE}.{ns}.svc.{domain}"),
        "localhost".to_owned(),
    ]);
    names
}

/// The loopback addresses in the node certificate.
const LOOPBACK: [std::net::IpAddr; 2] = [
    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
];

/// PEM text of Elasticsearch's CA certificate, node certificate and node key.
#[derive(Clone)]
pub struct ElasticsearchCerts {
    /// `ca.crt`.
    pub ca_crt: String,
    /// `tls.crt`: the node certificate, signed by the CA.
    pub tls_crt: String,
    /// `tls.key`: the node's PKCS#8 private key.
    pub tls_key: Password,
}

impl fmt::Debug for ElasticsearchCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElasticsearchCerts")
            .field("tls_key", &self.tls_key)
            .finish_non_exhaustive()
    }
}

fn serial(rng: &mut impl CryptoRng) -> SerialNumber {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    // Positive and without a leading zero byte, as DER integers must be.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "kelp");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A CA and a node certificate for Elasticsearch, ECDSA P-256. The CA's key
/// is dropped: nothing signs with it later, and a key that is not stored
/// cannot leak. The keys come from ring's system generator; `rng` gives the
/// serial numbers.
///
/// # Errors
/// When the certificate library refuses (not expected).
pub fn elasticsearch_certs(
    stack: &Stack,
    rng: &mut impl CryptoRng,
    now: SystemTime,
) -> Result<ElasticsearchCerts, SecretsError> {
    let not_before = time::OffsetDateTime::from(now - CLOCK_SKEW);

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name(&format!("kelp elasticsearch CA ({})", stack.namespace));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = time::OffsetDateTime::from(now + CA_VALIDITY);
    ca.serial_number = Some(serial(rng));
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let node_key = KeyPair::generate()?;
    let mut node = CertificateParams::new(elasticsearch_sans(stack))?;
    node.subject_alt_names
        .extend(LOOPBACK.into_iter().map(SanType::IpAddress));
    node.distinguished_name = name(&format!("{ES_HEADLESS_SERVICE}.{}", stack.namespace));
    node.is_ca = IsCa::ExplicitNoCa;
    node.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    // Transport TLS: each node is client and server to the others.
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    node.use_authority_key_identifier_extension = true;
    node.not_before = not_before;
    node.not_after = time::OffsetDateTime::from(now + NODE_CERT_VALIDITY);
    node.serial_number = Some(serial(rng));
    let node_cert = node.signed_by(&node_key, &issuer)?;

    Ok(ElasticsearchCerts {
        ca_crt: ca_cert.pem(),
        tls_crt: node_cert.pem(),
        tls_key: Password(node_key.serialize_pem()),
    })
}

fn secret(stack: &Stack, name: &str, type_: &str, data: BTreeMap<String, Vec<u8>>) -> Secret {
    let labels = BTreeMap::from([
        (
            "app.kubernetes.io/instance".to_owned(),
            stack.namespace.clone(),
        ),
        ("app.kubernetes.io/part-of".to_owned(), "kelp".to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "kelp".to_owned()),
        (GENERATED_LABEL.to_owned(), "true".to_owned()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(stack.namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        type_: Some(type_.to_owned()),
        data: Some(
            data.into_iter()
                .map(|(key, value)| (key, ByteString(value)))
                .collect(),
        ),
        ..Secret::default()
    }
}

fn password_secret(stack: &Stack, name: &str, rng: &mut impl CryptoRng) -> Secret {
    let password = password(rng);
    secret(
        stack,
        name,
        "Opaque",
        BTreeMap::from([("password".to_owned(), password.expose().as_bytes().to_vec())]),
    )
}

/// Every Secret the stack's pods read, freshly generated: none when
/// Elasticsearch security is off. Pure but for the key pairs, which come
/// from ring's system generator.
///
/// # Errors
/// When a pod reads a Secret kelp does not know, or certificate
/// generation fails.
pub fn build(
    stack: &Stack,
    rng: &mut impl CryptoRng,
    now: SystemTime,
) -> Result<Vec<Secret>, SecretsError> {
    let mut secrets = Vec::new();
    for name in needed(stack).into_keys() {
        let secret = match name.as_str() {
            ELASTICSEARCH_CERTS_SECRET => {
                let certs = elasticsearch_certs(stack, rng, now)?;
                secret(
                    stack,
                    &name,
                    // The type makes the API server check tls.crt and tls.key exist.
                    "kubernetes.io/tls",
                    BTreeMap::from([
                        ("ca.crt".to_owned(), certs.ca_crt.into_bytes()),
                        ("tls.crt".to_owned(), certs.tls_crt.into_bytes()),
                        ("tls.key".to_owned(), certs.tls_key.0.into_bytes()),
                    ]),
                )
            }
            ELASTICSEARCH_ELASTIC_PASSWORD_SECRET
            | KIBANA_ELASTICSEARCH_PASSWORD_SECRET
            | SHIPPER_ELASTICSEARCH_PASSWORD_SECRET => password_secret(stack, &name, rng),
            _ => return Err(SecretsError::Unknown(name)),
        };
        secrets.push(secret);
    }
    Ok(secrets)
}

fn api_error(step: String) -> impl FnOnce(kube::Error) -> SecretsError {
    move |source| SecretsError::Api { step, source }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// Creates the Secrets the stack needs that do not exist yet, and checks
/// that existing ones have the keys the pods read. An existing Secret is
/// never changed, so one the user made wins and a re-apply is a no-op. The
/// namespace must exist.
///
/// # Errors
/// When the API server refuses, an existing Secret lacks a key, or
/// generation fails.
pub async fn ensure(client: &kube::Client, stack: &Stack) -> Result<SecretsReport, SecretsError> {
    let namespace = &stack.namespace;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut report = SecretsReport {
        namespace: namespace.clone(),
        ..SecretsReport::default()
    };
    let needed = needed(stack);
    let mut missing = Vec::new();
    for (name, keys) in &needed {
        let existing = api
            .get_opt(name)
            .await
            .map_err(api_error(format!("reading secret {namespace}/{name}")))?;
        match existing {
            Some(secret) => {
                check_keys(namespace, name, keys, &secret)?;
                report.kept.push(name.clone());
            }
            None => missing.push(name.clone()),
        }
    }
    if missing.is_empty() {
        return Ok(report);
    }
    let mut rng = rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng)
        .map_err(|error| SecretsError::Random(error.to_string()))?;
    let generated = build(stack, &mut rng, SystemTime::now())?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    for secret in generated {
        let name = secret.metadata.name.clone().unwrap_or_default();
        if !missing.contains(&name) {
            continue;
        }
        match api.create(&params, &secret).await {
            Ok(_) => {
                tracing::info!(namespace = %namespace, secret = %name, "secret created");
                report.created.push(name);
            }
            // Someone created it since we looked: theirs wins.
            Err(error) if is_status(&error, 409) => report.kept.push(name),
            Err(error) => {
                return Err(api_error(format!("creating secret {namespace}/{name}"))(
                    error,
                ));
            }
        }
    }
    report.kept.sort();
    Ok(report)
}

fn check_keys(
    namespace: &str,
    name: &str,
    keys: &[String],
    secret: &Secret,
) -> Result<(), SecretsError> {
    let has = |key: &str| {
        secret.data.as_ref().is_some_and(|d| d.contains_key(key))
            || secret
                .string_data
                .as_ref()
                .is_some_and(|d| d.contains_key(key))
    };
    match keys.iter().find(|key| !has(key)) {
        Some(key) => Err(SecretsError::MissingKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.clone(),
        }),
        None => Ok(()),
    }
}

/// What [`configure_elasticsearch_users`] needs: the passwords kelp's
/// Secrets hold and the CA that signed Elasticsearch's certificate.
#[derive(Debug, Clone)]
pub struct ElasticsearchCredentials {
    /// `ca.crt` of [`ELASTICSEARCH_CERTS_SECRET`], PEM.
    pub ca_pem: Vec<u8>,
    /// The `elastic` superuser's password.
    pub elastic: Password,
    /// `kibana_system`'s password, as Kibana reads it.
    pub kibana_system: Password,
    /// The shipper's password, as the shipper reads it.
    pub shipper: Password,
}

fn value(secret: &Secret, name: &str, key: &str) -> Result<Vec<u8>, SecretsError> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| SecretsError::BadValue {
            name: name.to_owned(),
            key: key.to_owned(),
            reason: "the key is missing".to_owned(),
        })
}

fn password_value(secret: &Secret, name: &str) -> Result<Password, SecretsError> {
    let bytes = value(secret, name, "password")?;
    let text = String::from_utf8(bytes).map_err(|_| SecretsError::BadValue {
        name: name.to_owned(),
        key: "password".to_owned(),
        reason: "not UTF-8".to_owned(),
    })?;
    Ok(Password(text))
}

/// Reads the credentials [`configure_elasticsearch_users`] needs from the
/// stack's Secrets.
///
/// # Errors
/// When a Secret or key is missing or unreadable.
pub async fn read_credentials(
    client: &kube::Client,
    stack: &Stack,
) -> Result<ElasticsearchCredentials, SecretsError> {
    let namespace = &stack.namespace;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secrets = BTreeMap::new();
    for name in [
        ELASTICSEARCH_CERTS_SECRET,
        ELASTICSEARCH_ELASTIC_PASSWORD_SECRET,
        KIBANA_ELASTICSEARCH_PASSWORD_SECRET,
        SHIPPER_ELASTICSEARCH_PASSWORD_SECRET,
    ] {
        let secret = api
            .get(name)
            .await
            .map_err(api_error(format!("reading secret {namespace}/{name}")))?;
        secrets.insert(name, secret);
    }
    let get = |name: &str| -> Result<&Secret, SecretsError> {
        secrets.get(name).ok_or_else(|| SecretsError::BadValue {
            name: name.to_owned(),
            key: String::new(),
            reason: "not read".to_owned(),
        })
    };
    Ok(ElasticsearchCredentials {
        ca_pem: value(
            get(ELASTICSEARCH_CERTS_SECRET)?,
            ELASTICSEARCH_CERTS_SECRET,
            "ca.crt",
        )?,
        elastic: password_value(
            get(ELASTICSEARCH_ELASTIC_PASSWORD_SECRET)?,
            ELASTICSEARCH_ELASTIC_PASSWORD_SECRET,
        )?,
        kibana_system: password_value(
            get(KIBANA_ELASTICSEARCH_PASSWORD_SECRET)?,
            KIBANA_ELASTICSEARCH_PASSWORD_SECRET,
        )?,
        shipper: password_value(
            get(SHIPPER_ELASTICSEARCH_PASSWORD_SECRET)?,
            SHIPPER_ELASTICSEARCH_PASSWORD_SECRET,
        )?,
    })
}

/// One call to Elasticsearch's security API. Debug omits the body, which
/// holds a password.
#[derive(Clone, PartialEq)]
pub struct SecurityRequest {
    /// What the call does, for errors and progress, e.g. `creating role kelp_shipper`.
    pub step: String,
    /// `POST` or `PUT`.
    pub method: &'static str,
    /// The path, e.g. `/_security/role/kelp_shipper`.
    pub path: String,
    /// The JSON body.
    pub body: Value,
}

impl fmt::Debug for SecurityRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body", &"<redacted>")
            .finish()
    }
}

/// The index pattern of the shipper's indices: the index template's text
/// up to its first placeholder, then `*` (`kelp-logs-{...}` gives
/// `kelp-logs-*`).
pub fn shipper_index_pattern(stack: &Stack) -> String {
    let template = &stack.shipper.index_template;
    let prefix = template.split('{').next().unwrap_or_default();
    format!("{prefix}*")
}

/// The shipper's role: what it does and nothing more. `monitor` for `GET /`
/// and `GET /_ilm/status`; the index template and the lifecycle policy it
/// installs; on its indices only creating them and writing documents by id
/// (`index` overwrites on a replay; `auto_configure` lets a bulk create an
/// index from the template).
pub fn shipper_role(stack: &Stack) -> Value {
    json!({
        "cluster": ["monitor", "manage_index_templates", "manage_ilm"],
        "indices": [{
            "names": [shipper_index_pattern(stack)],
            "privileges": ["create_index", "auto_configure", "create_doc", "index"],
            "allow_restricted_indices": false
        }],
        "metadata": {"managed_by": "kelp"}
    })
}

/// The calls that set up the users, in order; each is idempotent (`PUT`
/// creates or replaces, setting a password again is harmless).
pub fn user_requests(
    stack: &Stack,
    credentials: &ElasticsearchCredentials,
) -> Vec<SecurityRequest> {
    vec![
        SecurityRequest {
            step: format!("setting the {KIBANA_SYSTEM_USER} password"),
            method: "POST",
            path: format!("/_security/user/{KIBANA_SYSTEM_USER}/_password"),
            body: json!({"password": credentials.kibana_system.expose()}),
        },
        SecurityRequest {
            step: format!("creating role {SHIPPER_ROLE}"),
            method: "PUT",
            path: format!("/_security/role/{SHIPPER_ROLE}"),
            body: shipper_role(stack),
        },
        SecurityRequest {
            step: format!("creating user {SHIPPER_USER}"),
            method: "PUT",
            path: format!("/_security/user/{SHIPPER_USER}"),
            body: json!({
                "password": credentials.shipper.expose(),
                "roles": [SHIPPER_ROLE],
                "full_name": "kelp-shipper",
                "metadata": {"managed_by": "kelp"}
            }),
        },
    ]
}

/// Sets `kibana_system`'s password and creates the shipper's role and user
/// in Elasticsearch at `url` (e.g. a port-forward to `elasticsearch-http`),
/// as `elastic`, trusting only `credentials.ca_pem`. Run it once the
/// cluster is healthy; running it again changes nothing. Returns the steps
/// done.
///
/// # Errors
/// When Elasticsearch cannot be reached or refuses a call.
pub async fn configure_elasticsearch_users(
    url: &str,
    credentials: &ElasticsearchCredentials,
    stack: &Stack,
) -> Result<Vec<String>, SecretsError> {
    let es_error = |step: &str, detail: String| SecretsError::Elasticsearch {
        step: step.to_owned(),
        detail,
    };
    let ca = reqwest::Certificate::from_pem(&credentials.ca_pem)
        .map_err(|e| es_error("reading the elasticsearch ca certificate", e.to_string()))?;
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| es_error("building the elasticsearch client", e.to_string()))?;
    let base = url.trim_end_matches('/');
    let mut done = Vec::new();
    for request in user_requests(stack, credentials) {
        let method = match request.method {
            "POST" => reqwest::Method::POST,
            _ => reqwest::Method::PUT,
        };
        let response = http
            .request(method, format!("{base}{}", request.path))
            .basic_auth("elastic", Some(credentials.elastic.expose()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.to_string())
            .send()
            .await
            .map_err(|e| es_error(&request.step, e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(es_error(
                &request.step,
                format!("http {status}: {}", truncate(&body, 500)),
            ));
        }
        tracing::info!(step = %request.step, "elasticsearch security configured");
        done.push(request.step);
    }
    Ok(done)
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

#[cfg(test)]
mod tests;
