use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage, anchor_from_trusted_cert};

use super::*;
use crate::manifests::Object;

fn stack(yaml: &str) -> Stack {
    Stack::from_yaml_str(yaml).unwrap()
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A fixed clock reading: 2026-11-27.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_737_600)
}

fn data<'a>(secrets: &'a [Secret], name: &str, key: &str) -> &'a [u8] {
    let secret = secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no secret {name}"));
    &secret.data.as_ref().unwrap()[key].0
}

#[test]
fn passwords_are_long_url_safe_and_random() {
    let mut generator = rng(1);
    let a = password(&mut generator);
    let b = password(&mut generator);
    assert_eq!(a.expose().len(), PASSWORD_CHARS);
    assert!(
        a.expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "not URL-safe"
    );
    assert_ne!(a, b);
    // The same seed gives the same password: the generator is the only input.
    assert_eq!(password(&mut rng(1)), a);
    // Over many draws every symbol of the alphabet shows up.
    let seen: BTreeSet<u8> = (0..100)
        .flat_map(|_| {
            password(&mut generator)
                .expose()
                .bytes()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(seen.len(), 64);
}

#[test]
fn passwords_never_print() {
    let p = password(&mut rng(2));
    assert_eq!(format!("{p}"), "<redacted>");
    assert_eq!(format!("{p:?}"), "<redacted>");
    let credentials = ElasticsearchCredentials {
        ca_pem: b"ca".to_vec(),
        elastic: p.clone(),
        kibana_system: p.clone(),
        shipper: p.clone(),
    };
    assert!(!format!("{credentials:?}").contains(p.expose()));
    let certs = elasticsearch_certs(&stack(""), &mut rng(3), now()).unwrap();
    assert!(!format!("{certs:?}").contains("PRIVATE KEY"));
    for request in user_requests(&stack(""), &credentials) {
        assert!(!format!("{request:?}").contains(p.expose()));
    }
}

#[test]
fn build_makes_exactly_the_secrets_the_pods_read() {
    // (stack, expected secret names)
    let all = [
        ELASTICSEARCH_CERTS_SECRET,
        ELASTICSEARCH_ELASTIC_PASSWORD_SECRET,
        KIBANA_ELASTICSEARCH_PASSWORD_SECRET,
        SHIPPER_ELASTICSEARCH_PASSWORD_SECRET,
    ];
    let cases: [(&str, &[&str]); 4] = [
        ("", &all),
        ("elasticsearch: {version: 7.17.29}", &[]),
        ("elasticsearch: {version: 7.17.29, security: true}", &all),
        ("elasticsearch: {security: false}", &[]),
    ];
    for (yaml, expected) in cases {
        let stack = stack(yaml);
        let secrets = build(&stack, &mut rng(4), now()).unwrap();
        let names: BTreeSet<&str> = secrets
            .iter()
            .map(|s| s.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            expected.iter().copied().collect::<BTreeSet<_>>(),
            "{yaml}"
        );
        // Every key a pod reads is there.
        for (name, keys) in needed(&stack) {
            for key in keys {
                assert!(
                    !data(&secrets, &name, &key).is_empty(),
                    "{yaml}: {name}/{key}"
                );
            }
        }
        for secret in &secrets {
            assert_eq!(secret.metadata.namespace.as_deref(), Some("kelp"));
            let labels = secret.metadata.labels.as_ref().unwrap();
            assert_eq!(labels[GENERATED_LABEL], "true");
            let expected_type =
                if secret.metadata.name.as_deref() == Some(ELASTICSEARCH_CERTS_SECRET) {
                    "kubernetes.io/tls"
                } else {
                    "Opaque"
                };
            assert_eq!(secret.type_.as_deref(), Some(expected_type));
        }
    }
}

#[test]
fn the_four_passwords_differ() {
    let secrets = build(&stack(""), &mut rng(5), now()).unwrap();
    let passwords: BTreeSet<&[u8]> = [
        ELASTICSEARCH_ELASTIC_PASSWORD_SECRET,
        KIBANA_ELASTICSEARCH_PASSWORD_SECRET,
        SHIPPER_ELASTICSEARCH_PASSWORD_SECRET,
    ]
    .iter()
    .map(|name| data(&secrets, name, "password"))
    .collect();
    assert_eq!(passwords.len(), 3);
}

fn der(pem: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem).unwrap()
}

fn unix(time: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(time.duration_since(SystemTime::UNIX_EPOCH).unwrap())
}

/// Verifies `node` against the CA `ca` as a TLS client (and a peer node)
/// would, at `time`.
fn verify(ca: &[u8], node: &[u8], time: SystemTime, usage: KeyUsage) -> Result<(), webpki::Error> {
    let ca = der(ca);
    let anchors = [anchor_from_trusted_cert(&ca)?];
    let node = der(node);
    let cert = EndEntityCert::try_from(&node)?;
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        unix(time),
        usage,
        None,
        None,
    )
    .map(|_| ())
}

fn valid_for(node: &[u8], name: &str) -> bool {
    let node = der(node);
    let cert = EndEntityCert::try_from(&node).unwrap();
    let name = ServerName::try_from(name).unwrap();
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

#[test]
fn the_ca_signs_a_node_certificate_for_every_elasticsearch_name() {
    // (stack, names the certificate must cover, names it must not)
    let cases: [(&str, &[&str], &[&str]); 2] = [
        (
            "",
            &[
                "elasticsearch-0.elasticsearch.kelp.svc.cluster.local",
                "elasticsearch-2.elasticsearch.kelp.svc",
                "elasticsearch.kelp.svc.cluster.local",
                "elasticsearch-http",
                "elasticsearch-http.kelp",
                "elasticsearch-http.kelp.svc",
                "elasticsearch-http.kelp.svc.cluster.local",
                "localhost",
                "127.0.0.1",
                "::1",
            ],
            &[
                "elasticsearch-0.elasticsearch.other.svc.cluster.local",
                "kibana.kelp.svc",
                "example.com",
            ],
        ),
        (
            "namespace: logs\ncommon: {cluster_domain: corp.internal}",
            &[
                "elasticsearch-1.elasticsearch.logs.svc.corp.internal",
                "elasticsearch-http.logs.svc.corp.internal",
                "elasticsearch-http.logs.svc",
            ],
            &[
                "elasticsearch-http.kelp.svc",
                "elasticsearch-1.elasticsearch.logs.svc.cluster.local",
            ],
        ),
    ];
    for (yaml, good, bad) in cases {
        let secrets = build(&stack(yaml), &mut rng(6), now()).unwrap();
        let ca = data(&secrets, ELASTICSEARCH_CERTS_SECRET, "ca.crt");
        let node = data(&secrets, ELASTICSEARCH_CERTS_SECRET, "tls.crt");
        // HTTP clients (Kibana, the shipper) and peer nodes (transport TLS).
        for usage in [KeyUsage::server_auth(), KeyUsage::client_auth()] {
            verify(ca, node, now(), usage).unwrap();
        }
        for name in good {
            assert!(valid_for(node, name), "{yaml}: {name} not covered");
        }
        for name in bad {
            assert!(!valid_for(node, name), "{yaml}: {name} covered");
        }
        let key =
            std::str::from_utf8(data(&secrets, ELASTICSEARCH_CERTS_SECRET, "tls.key")).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
        // The key belongs to the certificate: rcgen reads it back and its
        // public key is the one the certificate carries.
        let pair = KeyPair::from_pem(key).unwrap();
        let node_der = der(node);
        let spki = pair.public_key_raw();
        assert!(
            node_der.windows(spki.len()).any(|w| w == spki),
            "the key does not match the certificate"
        );
    }
}

#[test]
fn another_ca_or_the_wrong_time_is_refused() {
    let a = build(&stack(""), &mut rng(7), now()).unwrap();
    let b = build(&stack(""), &mut rng(8), now()).unwrap();
    let ca_b = data(&b, ELASTICSEARCH_CERTS_SECRET, "ca.crt");
    let node_a = data(&a, ELASTICSEARCH_CERTS_SECRET, "tls.crt");
    let ca_a = data(&a, ELASTICSEARCH_CERTS_SECRET, "ca.crt");
    assert!(verify(ca_b, node_a, now(), KeyUsage::server_auth()).is_err());
    // The node certificate cannot act as a CA for another certificate.
    assert!(verify(node_a, node_a, now(), KeyUsage::server_auth()).is_err());
    // Validity: from an hour before `now` to NODE_CERT_VALIDITY after.
    let day = Duration::from_secs(24 * 3600);
    verify(
        ca_a,
        node_a,
        now() - Duration::from_secs(1800),
        KeyUsage::server_auth(),
    )
    .unwrap();
    verify(
        ca_a,
        node_a,
        now() + NODE_CERT_VALIDITY - day,
        KeyUsage::server_auth(),
    )
    .unwrap();
    assert!(
        verify(
            ca_a,
            node_a,
            now() + NODE_CERT_VALIDITY + day,
            KeyUsage::server_auth()
        )
        .is_err()
    );
    assert!(verify(ca_a, node_a, now() - day, KeyUsage::server_auth()).is_err());
}

#[test]
fn the_san_service_names_are_the_rendered_services() {
    let objects = crate::manifests::build(&stack(""));
    let services: BTreeSet<&str> = objects
        .iter()
        .filter(|o| matches!(o, Object::Service(_)))
        .map(Object::name)
        .collect();
    assert!(services.contains(ES_HEADLESS_SERVICE));
    assert!(services.contains(ES_HTTP_SERVICE));
    // The pods are named after the headless service's StatefulSet.
    assert!(
        objects
            .iter()
            .any(|o| matches!(o, Object::StatefulSet(_)) && o.name() == ES_HEADLESS_SERVICE)
    );
}

#[test]
fn the_shipper_user_is_the_one_its_rendered_config_logs_in_as() {
    let objects = crate::manifests::build(&stack(""));
    let config = objects
        .iter()
        .find_map(|o| match o {
            Object::ConfigMap(cm) if o.name() == "kelp-shipper-config" => cm.data.as_ref(),
            _ => None,
        })
        .unwrap();
    let parsed = kelp_shipper::config::Config::from_yaml_str(&config["shipper.yaml"]).unwrap();
    match parsed.elasticsearch.auth {
        kelp_shipper::config::Auth::Basic(basic) => assert_eq!(basic.username, SHIPPER_USER),
        other => panic!("shipper auth is {other:?}"),
    }
}

#[test]
fn index_patterns_follow_the_index_template() {
    let cases = [
        ("", "kelp-logs-*"),
        (
            "shipper: {index_template: \"logs-{kubernetes.namespace}\"}",
            "logs-*",
        ),
        (
            "shipper: {index_template: \"app-{@timestamp:%Y}\"}",
            "app-*",
        ),
    ];
    for (yaml, pattern) in cases {
        let stack = stack(yaml);
        assert_eq!(shipper_index_pattern(&stack), pattern, "{yaml}");
        assert_eq!(
            shipper_role(&stack)["indices"][0]["names"],
            json!([pattern])
        );
    }
}

#[test]
fn user_requests_set_kibana_system_and_create_the_shipper_user() {
    let stack = stack("");
    let credentials = ElasticsearchCredentials {
        ca_pem: Vec::new(),
        elastic: Password::new("e"),
        kibana_system: Password::new("k-pass"),
        shipper: Password::new("s-pass"),
    };
    let requests = user_requests(&stack, &credentials);
    let calls: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method, r.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/_security/user/kibana_system/_password"),
            ("PUT", "/_security/role/kelp_shipper"),
            ("PUT", "/_security/user/kelp-shipper"),
        ]
    );
    assert_eq!(requests[0].body, json!({"password": "k-pass"}));
    let role = &requests[1].body;
    assert_eq!(
        role["cluster"],
        json!(["monitor", "manage_index_templates", "manage_ilm"])
    );
    let privileges = role["indices"][0]["privileges"].as_array().unwrap();
    // Least privilege: writing and creating, never deleting or managing.
    for forbidden in ["all", "delete", "delete_index", "manage", "write"] {
        assert!(!privileges.contains(&json!(forbidden)), "{forbidden}");
    }
    assert!(privileges.contains(&json!("index")));
    assert_eq!(requests[2].body["password"], "s-pass");
    assert_eq!(requests[2].body["roles"], json!([SHIPPER_ROLE]));
    // The elastic password is only for authenticating, never in a body.
    assert!(
        requests
            .iter()
            .all(|r| !r.body.to_string().contains("\"e\""))
    );
}

#[test]
fn the_report_names_secrets_only() {
    let report = SecretsReport {
        namespace: "kelp".to_owned(),
        created: vec!["a".to_owned()],
        kept: vec!["b".to_owned()],
    };
    assert_eq!(
        report.to_string(),
        "secret kelp/a: created\nsecret kelp/b: kept (exists)\n"
    );
    assert!(!report.is_noop());
    assert!(SecretsReport::default().to_string().contains("none needed"));
}

#[test]
fn existing_secrets_must_have_the_keys_the_pods_read() {
    let secret = |keys: &[&str]| Secret {
        data: Some(
            keys.iter()
                .map(|k| ((*k).to_owned(), ByteString(b"x".to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    let keys = [
        "ca.crt".to_owned(),
        "tls.crt".to_owned(),
        "tls.key".to_owned(),
    ];
    assert!(
        check_keys(
            "ns",
            "certs",
            &keys,
            &secret(&["ca.crt", "tls.crt", "tls.key", "extra"])
        )
        .is_ok()
    );
    let error = check_keys("ns", "certs", &keys, &secret(&["tls.crt", "tls.key"])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "secret ns/certs exists but has no key ca.crt, which the pods read: add the key, or delete the secret so kelp generates it"
    );
}

/// One request the fake Elasticsearch saw: method, path, Authorization, body.
type Seen = (String, String, String, Value);

/// A fake Elasticsearch on 127.0.0.1 that records every request and answers
/// `fail_path` with 400, everything else with 200.
async fn fake_elasticsearch(
    fail_path: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        let method = request.method().to_string();
                        let path = request.uri().path().to_owned();
                        let auth = request
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let status = if path == fail_path { 400 } else { 200 };
                        record.lock().unwrap().push((method, path, auth, body));
                        let reply = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(bytes::Bytes::from_static(
                                br#"{"error":"scripted"}"#,
                            )))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(reply)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

fn test_credentials() -> ElasticsearchCredentials {
    let certs = elasticsearch_certs(&stack(""), &mut rng(10), now()).unwrap();
    ElasticsearchCredentials {
        ca_pem: certs.ca_crt.into_bytes(),
        elastic: Password::new("e-pass"),
        kibana_system: Password::new("k-pass"),
        shipper: Password::new("s-pass"),
    }
}

#[tokio::test]
async fn users_are_configured_as_elastic_with_the_planned_requests() {
    let (url, seen) = fake_elasticsearch("/none").await;
    let stack = stack("");
    let credentials = test_credentials();
    let done = configure_elasticsearch_users(&format!("{url}/"), &credentials, &stack)
        .await
        .unwrap();
    let planned = user_requests(&stack, &credentials);
    assert_eq!(
        done,
        planned.iter().map(|r| r.step.clone()).collect::<Vec<_>>()
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), planned.len());
    // "elastic:e-pass" in base64.
    let basic = "Basic ZWxhc3RpYzplLXBhc3M=";
    for ((method, path, auth, body), request) in seen.iter().zip(&planned) {
        assert_eq!(method, request.method);
        assert_eq!(path, &request.path);
        assert_eq!(auth, basic);
        assert_eq!(body, &request.body);
    }
}

#[tokio::test]
async fn a_refused_call_names_its_step_and_stops() {
    let (url, seen) = fake_elasticsearch("/_security/role/kelp_shipper").await;
    let error = configure_elasticsearch_users(&url, &test_credentials(), &stack(""))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "creating role kelp_shipper failed: http 400 Bad Request: {\"error\":\"scripted\"}"
    );
    // The user is not created after its role failed.
    assert_eq!(seen.lock().unwrap().len(), 2);
}
