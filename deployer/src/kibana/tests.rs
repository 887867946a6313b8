use std::time::Duration;

use serde_json::json;

use super::fake::{FakeKibana, Reply, Script, import_success, status_v7, status_v8};
use super::response::{ErrorDetail, ImportErrorEntry, ObjectRef};
use super::status::{self, Format, Version};
use super::*;

/// `Basic` credentials of the tests: base64 of `elastic:s3cret`.
const BASIC: &str = "Basic ZWxhc3RpYzpzM2NyZXQ=";
/// An API key's `encoded` value: base64 of `kelp-id:kelp-key`.
const API_KEY: &str = "a2VscC1pZDprZWxwLWtleQ==";
/// Kibana's answer to every request while it migrates its saved objects.
const NOT_READY: &str = "Kibana server is not ready yet";

fn target(fake: &FakeKibana, auth: KibanaAuth, space: Option<&str>) -> KibanaTarget {
    KibanaTarget {
        url: fake.url.clone(),
        space: space.map(str::to_owned),
        auth,
        ca_certificates_pem: None,
    }
}

fn basic() -> KibanaAuth {
    KibanaAuth::Basic {
        username: "elastic".to_owned(),
        password: "s3cret".to_owned(),
    }
}

/// Short pauses keep the tests quick; the bound is generous so that a slow
/// machine does not time out a run that should succeed.
fn options() -> ImportOptions {
    ImportOptions {
        timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(10),
        request_timeout: Duration::from_secs(5),
        set_default_data_view: true,
    }
}

/// Options for runs that must time out.
fn short_options() -> ImportOptions {
    ImportOptions {
        timeout: Duration::from_millis(300),
        ..options()
    }
}

// Pure cores.

#[test]
fn status_answers_are_read_as_kibana_documents_them() {
    let v8 = |http, level| status_v8(http, level, "8.19.3").body.into_bytes();
    let v7 = |http, state| status_v7(http, state, "7.17.29").body.into_bytes();
    let redacted = br#"{"status":{"overall":{"level":"available"}}}"#.to_vec();
    let not_ready_json =
        br#"{"statusCode":503,"error":"Service Unavailable","message":"Kibana server is not ready yet"}"#
            .to_vec();
    // (http status, body, ready, format, version)
    type Case<'a> = (u16, Vec<u8>, bool, Format, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            200,
            v8(200, "available"),
            true,
            Format::Level,
            Some("8.19.3"),
        ),
        (
            200,
            v8(200, "degraded"),
            false,
            Format::Level,
            Some("8.19.3"),
        ),
        (
            503,
            v8(503, "unavailable"),
            false,
            Format::Level,
            Some("8.19.3"),
        ),
        (
            503,
            v8(503, "available"),
            false,
            Format::Level,
            Some("8.19.3"),
        ),
        (200, v7(200, "green"), true, Format::State, Some("7.17.29")),
        (
            200,
            v7(200, "yellow"),
            false,
            Format::State,
            Some("7.17.29"),
        ),
        (503, v7(503, "red"), false, Format::State, Some("7.17.29")),
        (200, redacted, true, Format::Level, None),
        (
            503,
            NOT_READY.as_bytes().to_vec(),
            false,
            Format::Unknown,
            None,
        ),
        (503, not_ready_json, false, Format::Unknown, None),
        (
            200,
            b"<html>a proxy</html>".to_vec(),
            false,
            Format::Unknown,
            None,
        ),
    ];
    for (http, body, ready, format, version) in cases {
        let got = status::parse(http, &body);
        let context = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(got.ready, ready, "{http} {context}");
        assert_eq!(got.format, format, "{http} {context}");
        assert_eq!(got.version_number.as_deref(), version, "{http} {context}");
        assert!(got.summary.contains(&http.to_string()), "{}", got.summary);
    }
    let plain = status::parse(503, NOT_READY.as_bytes());
    assert!(plain.summary.contains(NOT_READY), "{}", plain.summary);
    let degraded = status::parse(200, &v8(200, "degraded"));
    assert!(
        degraded.summary.contains("degraded"),
        "{}",
        degraded.summary
    );
}

#[test]
fn versions_parse() {
    let cases = [
        ("7.17.29", Some((7, 17))),
        ("8.19.3", Some((8, 19))),
        ("9.1.0-SNAPSHOT", Some((9, 1))),
        ("9.1", Some((9, 1))),
        ("9", None),
        ("", None),
        ("x.y.z", None),
    ];
    for (number, want) in cases {
        let got = Version::parse(number).map(|v| (v.major, v.minor));
        assert_eq!(got, want, "{number}");
    }
}

#[test]
fn the_default_data_view_api_follows_the_version() {
    let status = |version: Option<&str>, format| Status {
        ready: true,
        summary: String::new(),
        format,
        version_number: version.map(str::to_owned),
    };
    let cases = [
        (
            Some("7.17.0"),
            Format::State,
            Some(DefaultViewApi::IndexPatterns),
        ),
        (
            Some("7.17.29"),
            Format::Level,
            Some(DefaultViewApi::IndexPatterns),
        ),
        (
            Some("8.0.0"),
            Format::Level,
            Some(DefaultViewApi::DataViews),
        ),
        (
            Some("9.1.0"),
            Format::Level,
            Some(DefaultViewApi::DataViews),
        ),
        (Some("7.16.3"), Format::State, None),
        (Some("6.8.23"), Format::State, None),
        (None, Format::Level, Some(DefaultViewApi::DataViews)),
        (None, Format::State, Some(DefaultViewApi::IndexPatterns)),
        (
            Some("unreadable"),
            Format::Level,
            Some(DefaultViewApi::DataViews),
        ),
    ];
    for (version, format, want) in cases {
        let got = default_view_api(&status(version, format));
        match want {
            Some(api) => assert_eq!(got.unwrap(), api, "{version:?}"),
            None => assert!(
                matches!(got, Err(KibanaError::UnsupportedVersion { .. })),
                "{version:?}: {got:?}"
            ),
        }
    }
}

#[test]
fn space_ids_become_path_prefixes() {
    assert_eq!(space_prefix(None).unwrap(), "");
    assert_eq!(space_prefix(Some("default")).unwrap(), "");
    assert_eq!(space_prefix(Some("team-a_1")).unwrap(), "/s/team-a_1");
    for bad in ["", "Team", "a/b", "..", "a b", "é"] {
        assert!(
            matches!(space_prefix(Some(bad)), Err(KibanaError::Setup(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn failures_name_the_object_and_what_to_fix() {
    let entry = |kind: &str, id: &str, error: ErrorDetail| ImportErrorEntry {
        id: id.to_owned(),
        kind: kind.to_owned(),
        title: Some(format!("title of {id}")),
        meta: None,
        error,
    };
    let detail = |kind: &str| ErrorDetail {
        kind: kind.to_owned(),
        references: Vec::new(),
        destination_id: None,
        destinations: Vec::new(),
        message: None,
    };
    let missing = entry(
        "lens",
        "kelp-error-rate",
        ErrorDetail {
            references: vec![ObjectRef {
                kind: "index-pattern".to_owned(),
                id: "kelp-logs".to_owned(),
            }],
            ..detail("missing_references")
        },
    );
    assert_eq!(
        missing.failure().to_string(),
        r#"lens/kelp-error-rate ("title of kelp-error-rate"): missing_references (missing index-pattern/kelp-logs)"#
    );
    let conflict = entry(
        "dashboard",
        "d",
        ErrorDetail {
            destination_id: Some("other".to_owned()),
            ..detail("conflict")
        },
    );
    assert_eq!(
        conflict.failure().to_string(),
        r#"dashboard/d ("title of d"): conflict (conflicts with other)"#
    );
    let unknown = entry(
        "search",
        "s",
        ErrorDetail {
            message: Some("boom".to_owned()),
            ..detail("unknown")
        },
    );
    assert_eq!(
        unknown.failure().to_string(),
        r#"search/s ("title of s"): unknown (boom)"#
    );
}

#[test]
fn debug_output_hides_secrets() {
    let target = KibanaTarget {
        url: Url::parse("https://kibana.example:5601").unwrap(),
        space: None,
        auth: basic(),
        ca_certificates_pem: None,
    };
    let text = format!("{target:?}");
    assert!(text.contains("elastic"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let key = KibanaAuth::ApiKey {
        encoded: API_KEY.to_owned(),
    };
    assert!(!format!("{key:?}").contains(API_KEY));
}

// Against the fake Kibana.

#[tokio::test]
async fn imports_into_kibana_8_with_basic_auth_after_waiting_for_it() {
    let fake = FakeKibana::start(Script {
        authorization: Some(BASIC.to_owned()),
        status: vec![
            Reply::text(503, NOT_READY),
            status_v8(503, "unavailable", "8.19.3"),
            status_v8(200, "degraded", "8.19.3"),
            status_v8(200, "available", "8.19.3"),
        ],
        ..Script::available("8.19.3")
    })
    .await;
    let report = import_dashboards(&target(&fake, basic(), None), &options())
        .await
        .unwrap();
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(
        fake.calls(),
        [
            "GET /api/status",
            "GET /api/status",
            "GET /api/status",
            "GET /api/status",
            "POST /api/saved_objects/_import",
            "POST /api/data_views/default",
        ]
    );
    assert_eq!(report.kibana_version.as_deref(), Some("8.19.3"));
    assert_eq!(report.status_polls, 4);
    assert_eq!(report.imported.len(), kelp_dashboards::object_count());
    assert_eq!(
        report.default_data_view.as_deref(),
        Some(kelp_dashboards::DATA_VIEW_ID)
    );
    let dashboard = report
        .imported
        .iter()
        .find(|o| o.id == kelp_dashboards::DASHBOARD_ID)
        .unwrap();
    assert_eq!(
        dashboard.title.as_deref(),
        Some("Kubernetes container logs")
    );
}

#[tokio::test]
async fn imports_into_a_kibana_7_17_space_with_an_api_key_below_a_base_path() {
    let fake = FakeKibana::start(Script {
        base_path: "/kibana".to_owned(),
        space: Some("team-a".to_owned()),
        authorization: Some(format!("ApiKey {API_KEY}")),
        status: vec![
            status_v7(503, "red", "7.17.29"),
            status_v7(200, "yellow", "7.17.29"),
            status_v7(200, "green", "7.17.29"),
        ],
        ..Script::available("7.17.29")
    })
    .await;
    let auth = KibanaAuth::ApiKey {
        encoded: API_KEY.to_owned(),
    };
    let report = import_dashboards(&target(&fake, auth, Some("team-a")), &options())
        .await
        .unwrap();
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(
        fake.calls(),
        [
            "GET /api/status",
            "GET /api/status",
            "GET /api/status",
            "POST /s/team-a/api/saved_objects/_import",
            "POST /s/team-a/api/index_patterns/default",
        ]
    );
    assert_eq!(report.kibana_version.as_deref(), Some("7.17.29"));
}

#[tokio::test]
async fn imports_into_kibana_9_without_credentials() {
    let fake = FakeKibana::start(Script::available("9.1.0")).await;
    let report = import_dashboards(&target(&fake, KibanaAuth::None, None), &options())
        .await
        .unwrap();
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(report.status_polls, 1);
    assert_eq!(fake.calls().last().unwrap(), "POST /api/data_views/default");
}

#[tokio::test]
async fn a_503_while_kibana_migrates_is_retried() {
    let fake = FakeKibana::start(Script {
        import: vec![
            Reply::text(503, NOT_READY),
            Reply::json(
                503,
                &json!({"statusCode": 503, "error": "Service Unavailable", "message": NOT_READY}),
            ),
            Reply::json(200, &import_success(&[])),
        ],
        ..Script::available("8.19.3")
    })
    .await;
    import_dashboards(&target(&fake, KibanaAuth::None, None), &options())
        .await
        .unwrap();
    assert_eq!(fake.violations(), Vec::<String>::new());
    let imports = fake
        .calls()
        .iter()
        .filter(|c| c.ends_with("/_import"))
        .count();
    assert_eq!(imports, 3);
}

#[tokio::test]
async fn success_false_fails_naming_every_refused_object() {
    let answer = json!({
        "success": false,
        "successCount": 8,
        "errors": [
            {
                "id": "kelp-error-rate",
                "type": "lens",
                "title": "Error rate",
                "meta": {"title": "Error rate", "icon": "lensApp"},
                "error": {
                    "type": "missing_references",
                    "references": [{"type": "index-pattern", "id": "kelp-logs"}]
                }
            },
            {
                "id": "kelp-kubernetes-container-logs",
                "type": "dashboard",
                "title": "Kubernetes container logs",
                "meta": {"title": "Kubernetes container logs", "icon": "dashboardApp"},
                "error": {"type": "conflict", "destinationId": "another-dashboard"}
            }
        ],
        "successResults": []
    });
    let fake = FakeKibana::start(Script {
        import: vec![Reply::json(200, &answer)],
        ..Script::available("8.19.3")
    })
    .await;
    let error = import_dashboards(&target(&fake, KibanaAuth::None, None), &options())
        .await
        .unwrap_err();
    assert_eq!(fake.violations(), Vec::<String>::new());
    match &error {
        KibanaError::Import {
            success_count,
            failures,
        } => {
            assert_eq!(*success_count, 8);
            assert_eq!(failures.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.starts_with("importing saved objects failed: "),
        "{message}"
    );
    assert!(
        message.contains("lens/kelp-error-rate (\"Error rate\"): missing_references (missing index-pattern/kelp-logs)"),
        "{message}"
    );
    assert!(
        message.contains("dashboard/kelp-kubernetes-container-logs (\"Kubernetes container logs\"): conflict (conflicts with another-dashboard)"),
        "{message}"
    );
    // No default data view is set after a failed import.
    assert_eq!(
        fake.calls().last().unwrap(),
        "POST /api/saved_objects/_import"
    );
}

#[tokio::test]
async fn a_complete_success_with_a_short_count_is_not_success() {
    let mut answer = import_success(&[]);
    answer["successCount"] = json!(3);
    let fake = FakeKibana::start(Script {
        import: vec![Reply::json(200, &answer)],
        ..Script::available("8.19.3")
    })
    .await;
    let error = import_dashboards(&target(&fake, KibanaAuth::None, None), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            KibanaError::Response {
                step: Step::Import,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_rejected_upload_is_not_retried() {
    let fake = FakeKibana::start(Script {
        import: vec![Reply::json(
            415,
            &json!({"statusCode": 415, "error": "Unsupported Media Type", "message": "Unsupported file extension"}),
        )],
        ..Script::available("8.19.3")
    })
    .await;
    let error = import_dashboards(&target(&fake, KibanaAuth::None, None), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            KibanaError::Http {
                step: Step::Import,
                status: 415,
                ..
            }
        ),
        "{error:?}"
    );
    let imports = fake
        .calls()
        .iter()
        .filter(|c| c.ends_with("/_import"))
        .count();
    assert_eq!(imports, 1);
}

#[tokio::test]
async fn the_data_view_s_id_in_the_space_becomes_the_default() {
    let fake = FakeKibana::start(Script {
        default_id: "3f2a9c0d".to_owned(),
        import: vec![Reply::json(
            200,
            &import_success(&[("index-pattern", "kelp-logs", "3f2a9c0d")]),
        )],
        ..Script::available("8.19.3")
    })
    .await;
    let report = import_dashboards(&target(&fake, KibanaAuth::None, None), &options())
        .await
        .unwrap();
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(report.default_data_view.as_deref(), Some("3f2a9c0d"));
}

#[tokio::test]
async fn running_twice_sends_the_same_requests() {
    let fake = FakeKibana::start(Script::available("8.19.3")).await;
    let target = target(&fake, KibanaAuth::None, None);
    let first = import_dashboards(&target, &options()).await.unwrap();
    let second = import_dashboards(&target, &options()).await.unwrap();
    assert_eq!(first, second);
    let seen = fake.seen();
    assert_eq!(seen.len(), 6);
    let (a, b) = seen.split_at(3);
    assert_eq!(a[0], b[0]);
    assert_eq!(a[2], b[2]);
    // Multipart boundaries differ per request; the rest is the same.
    assert_eq!((&a[1].path, &a[1].query), (&b[1].path, &b[1].query));
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn skipping_the_default_data_view_sends_no_such_request() {
    let fake = FakeKibana::start(Script::available("8.19.3")).await;
    let options = ImportOptions {
        set_default_data_view: false,
        ..options()
    };
    let report = import_dashboards(&target(&fake, KibanaAuth::None, None), &options)
        .await
        .unwrap();
    assert_eq!(report.default_data_view, None);
    assert_eq!(
        fake.calls().last().unwrap(),
        "POST /api/saved_objects/_import"
    );
}

#[tokio::test]
async fn a_kibana_that_stays_degraded_times_out_with_its_last_status() {
    let fake = FakeKibana::start(Script {
        status: vec![status_v8(200, "degraded", "8.19.3")],
        ..Script::available("8.19.3")
    })
    .await;
    let error = import_dashboards(&target(&fake, KibanaAuth::None, None), &short_options())
        .await
        .unwrap_err();
    match &error {
        KibanaError::TimedOut { step, last, .. } => {
            assert_eq!(*step, Step::Status);
            assert!(last.contains("degraded"), "{last}");
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().starts_with("waiting for kibana failed: "));
    assert!(fake.calls().iter().all(|c| c == "GET /api/status"));
}

#[tokio::test]
async fn an_import_that_stays_503_times_out() {
    let fake = FakeKibana::start(Script {
        import: vec![Reply::text(503, NOT_READY)],
        ..Script::available("8.19.3")
    })
    .await;
    let error = import_dashboards(&target(&fake, KibanaAuth::None, None), &short_options())
        .await
        .unwrap_err();
    match &error {
        KibanaError::TimedOut { step, last, .. } => {
            assert_eq!(*step, Step::Import);
            assert!(last.contains(NOT_READY), "{last}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_kibana_that_does_not_answer_times_out() {
    // A port nothing listens on: bind one, then free it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let target = KibanaTarget {
        url: Url::parse(&format!("http://{address}")).unwrap(),
        space: None,
        auth: KibanaAuth::None,
        ca_certificates_pem: None,
    };
    let error = import_dashboards(&target, &short_options())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            KibanaError::TimedOut {
                step: Step::Status,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn refused_credentials_fail_at_once() {
    let fake = FakeKibana::start(Script {
        status: vec![Reply::json(
            401,
            &json!({"statusCode": 401, "error": "Unauthorized", "message": "[security_exception] unable to authenticate user"}),
        )],
        ..Script::available("8.19.3")
    })
    .await;
    let error = import_dashboards(&target(&fake, KibanaAuth::None, None), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            KibanaError::Auth {
                step: Step::Status,
                status: 401,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(fake.calls(), ["GET /api/status"]);
}

#[tokio::test]
async fn a_kibana_older_than_the_objects_is_refused_before_the_import() {
    let fake = FakeKibana::start(Script::available("7.16.3")).await;
    let error = import_dashboards(&target(&fake, KibanaAuth::None, None), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(error, KibanaError::UnsupportedVersion { .. }),
        "{error:?}"
    );
    assert_eq!(fake.calls(), ["GET /api/status"]);
}

#[tokio::test]
async fn the_fake_refuses_what_kibana_refuses() {
    // The checks above are only as good as the fake: a request without
    // kbn-xsrf, with the wrong field name and file name, is refused.
    let fake = FakeKibana::start(Script::available("8.19.3")).await;
    let part = Part::text(kelp_dashboards::NDJSON).file_name("objects.json");
    let url = fake.url.join("api/saved_objects/_import").unwrap();
    let response = Client::new()
        .post(url)
        .multipart(Form::new().part("upload", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let violations = fake.violations().join("\n");
    for expected in [
        "overwrite=true",
        "no kbn-xsrf header",
        "field Some(\"upload\")",
        "does not end in .ndjson",
    ] {
        assert!(violations.contains(expected), "{expected}: {violations}");
    }
}

#[tokio::test]
async fn a_bad_target_fails_before_sending() {
    let cases = [
        ("ftp://kibana:21", None),
        ("http://kibana:5601", Some("Not A Space")),
    ];
    for (url, space) in cases {
        let target = KibanaTarget {
            url: Url::parse(url).unwrap(),
            space: space.map(str::to_owned),
            auth: KibanaAuth::None,
            ca_certificates_pem: None,
        };
        let error = import_dashboards(&target, &options()).await.unwrap_err();
        assert!(matches!(error, KibanaError::Setup(_)), "{url}: {error:?}");
    }
    let target = KibanaTarget {
        url: Url::parse("https://kibana:5601").unwrap(),
        space: None,
        auth: KibanaAuth::None,
        ca_certificates_pem: Some(b"not a certificate".to_vec()),
    };
    let error = import_dashboards(&target, &options()).await.unwrap_err();
    assert!(matches!(error, KibanaError::Setup(_)), "{error:?}");
}
