use super::*;

const ES_7_17: &str = r#"{
  "name" : "es01",
  "cluster_name" : "docker-cluster",
  "cluster_uuid" : "x6YJLmWqTdKq7Ir7Tf0aKg",
  "version" : {
    "number" : "7.17.25",
    "build_flavor" : "default",
    "build_type" : "docker",
    "build_hash" : "f9b6b57d1d0f76e2d14291c04fb50abeb642cfbf",
    "build_date" : "2024-10-16T22:06:36.904732810Z",
    "build_snapshot" : false,
    "lucene_version" : "8.11.3",
    "minimum_wire_compatibility_version" : "6.8.0",
    "minimum_index_compatibility_version" : "6.0.0-beta1"
  },
  "tagline" : "You Know, for Search"
}"#;

const ES_8: &str = r#"{
  "name" : "es01",
  "cluster_name" : "docker-cluster",
  "cluster_uuid" : "0Rk0tVnPQJ2wA1dGxX0Q2w",
  "version" : {
    "number" : "8.19.3",
    "build_flavor" : "default",
    "build_type" : "docker",
    "build_hash" : "0c781091a2f57de895a73a1391ff8426c0153c8d",
    "build_date" : "2025-08-26T02:36:09.047845812Z",
    "build_snapshot" : false,
    "lucene_version" : "9.12.2",
    "minimum_wire_compatibility_version" : "7.17.0",
    "minimum_index_compatibility_version" : "7.0.0"
  },
  "tagline" : "You Know, for Search"
}"#;

const ES_9: &str = r#"{
  "name" : "es01",
  "cluster_name" : "docker-cluster",
  "cluster_uuid" : "mXhWcZ3kQ7yFh6yB3n1JZg",
  "version" : {
    "number" : "9.1.3",
    "build_flavor" : "default",
    "build_type" : "docker",
    "build_hash" : "0c781091a2f57de895a73a1391ff8426c0153c8d",
    "build_date" : "2025-08-24T22:05:04.526302670Z",
    "build_snapshot" : false,
    "lucene_version" : "10.2.2",
    "minimum_wire_compatibility_version" : "8.19.0",
    "minimum_index_compatibility_version" : "8.0.0"
  },
  "tagline" : "You Know, for Search"
}"#;

const OS_2_19: &str = r#"{
  "name" : "opensearch-node1",
  "cluster_name" : "opensearch-cluster",
  "cluster_uuid" : "Ia5m8tGSSwW2xqkIf6wGhw",
  "version" : {
    "distribution" : "opensearch",
    "number" : "2.19.1",
    "build_type" : "tar",
    "build_hash" : "2e4741fb45d1b150aaeeadf66d41445b23ff5982",
    "build_date" : "2025-02-27T01:16:47.726162386Z",
    "build_snapshot" : false,
    "lucene_version" : "9.12.1",
    "minimum_wire_compatibility_version" : "7.10.0",
    "minimum_index_compatibility_version" : "7.0.0"
  },
  "tagline" : "The OpenSearch Project: https://opensearch.org/"
}"#;

const OS_3: &str = r#"{
  "name" : "opensearch-node1",
  "cluster_name" : "opensearch-cluster",
  "cluster_uuid" : "p9YVOr0qTjOQhO5Nn0jXzw",
  "version" : {
    "distribution" : "opensearch",
    "number" : "3.2.0",
    "build_type" : "tar",
    "build_hash" : "6adc0bf476e1624190564d7fbe4aba00ccf49ad8",
    "build_date" : "2025-08-12T03:55:01.226522683Z",
    "build_snapshot" : false,
    "lucene_version" : "10.2.2",
    "minimum_wire_compatibility_version" : "2.19.0",
    "minimum_index_compatibility_version" : "2.0.0"
  },
  "tagline" : "The OpenSearch Project: https://opensearch.org/"
}"#;

/// Amazon OpenSearch Service 2.7 with compatibility mode on (from
/// opensearch-java#573): no `distribution`, `number` 7.10.2.
const OS_COMPAT: &str = r#"{
  "name" : "50101469e0d4fa000000caca4915",
  "cluster_name" : "111111111111:logs-prod",
  "cluster_uuid" : "abcdefghijklmnop-OZnA",
  "version" : {
    "number" : "7.10.2",
    "build_type" : "tar",
    "build_hash" : "unknown",
    "build_date" : "2023-07-04T04:44:03.664641392Z",
    "build_snapshot" : false,
    "lucene_version" : "9.5.0",
    "minimum_wire_compatibility_version" : "7.10.0",
    "minimum_index_compatibility_version" : "7.0.0"
  },
  "tagline" : "The OpenSearch Project: https://opensearch.org/"
}"#;

const ES_7_10_OSS: &str = r#"{"name":"n","cluster_name":"c","cluster_uuid":"u","version":{"number":"7.10.2","build_flavor":"oss","build_type":"docker","build_hash":"747e1cc71def077253878a59143c1f785afa92b9","build_date":"2021-01-13T00:42:12.435326Z","build_snapshot":false,"lucene_version":"8.7.0","minimum_wire_compatibility_version":"6.8.0","minimum_index_compatibility_version":"6.0.0-beta1"},"tagline":"You Know, for Search"}"#;

const ES_7_2: &str = r#"{"name":"n","cluster_name":"c","cluster_uuid":"u","version":{"number":"7.2.1","build_flavor":"default","build_type":"docker","build_hash":"fe6cb20","build_date":"2019-07-24T17:58:29.979462Z","build_snapshot":false,"lucene_version":"8.0.0","minimum_wire_compatibility_version":"6.8.0","minimum_index_compatibility_version":"6.0.0-beta1"},"tagline":"You Know, for Search"}"#;

const ES_SERVERLESS: &str = r#"{"name":"serverless","cluster_name":"abc","cluster_uuid":"u","version":{"number":"8.11.0","build_flavor":"serverless","build_type":"docker","build_hash":"00000000","build_date":"2023-10-31","build_snapshot":false,"lucene_version":"9.7.0","minimum_wire_compatibility_version":"8.11.0","minimum_index_compatibility_version":"8.11.0"},"tagline":"You Know, for Search"}"#;

const ES_6_8: &str = r#"{"name":"n","cluster_name":"c","cluster_uuid":"u","version":{"number":"6.8.23","build_flavor":"default","build_type":"docker","build_hash":"4f67856","build_date":"2022-01-06T21:30:50.087716Z","build_snapshot":false,"lucene_version":"7.7.3","minimum_wire_compatibility_version":"5.6.0","minimum_index_compatibility_version":"5.0.0"},"tagline":"You Know, for Search"}"#;

const OS_1_3: &str = r#"{"name":"n","cluster_name":"c","cluster_uuid":"u","version":{"distribution":"opensearch","number":"1.3.20","build_type":"tar","build_hash":"x","build_date":"2024-11-26T17:45:03Z","build_snapshot":false,"lucene_version":"8.10.1","minimum_wire_compatibility_version":"6.8.0","minimum_index_compatibility_version":"6.0.0-beta1"},"tagline":"The OpenSearch Project: https://opensearch.org/"}"#;

fn backend(kind: BackendKind, major: u32, minor: u32, flavor: Flavor) -> Backend {
    Backend {
        kind,
        major,
        minor,
        flavor,
        version_inferred: false,
    }
}

#[test]
fn detects_supported_backends() {
    use BackendKind::*;
    use LabelsMapping::*;
    let table: &[(&str, &str, Backend, Capabilities)] = &[
        (
            "es 7.17",
            ES_7_17,
            backend(Elasticsearch, 7, 17, Flavor::Default),
            Capabilities {
                composable_templates: true,
                lifecycle: Lifecycle::Ilm,
                needs_type: false,
                labels: Flattened,
            },
        ),
        (
            "es 8.19",
            ES_8,
            backend(Elasticsearch, 8, 19, Flavor::Default),
            Capabilities {
                composable_templates: true,
                lifecycle: Lifecycle::Ilm,
                needs_type: false,
                labels: Flattened,
            },
        ),
        (
            "es 9.1",
            ES_9,
            backend(Elasticsearch, 9, 1, Flavor::Default),
            Capabilities {
                composable_templates: true,
                lifecycle: Lifecycle::Ilm,
                needs_type: false,
                labels: Flattened,
            },
        ),
        (
            "opensearch 2.19",
            OS_2_19,
            backend(OpenSearch, 2, 19, Flavor::Other),
            Capabilities {
                composable_templates: true,
                lifecycle: Lifecycle::Ism,
                needs_type: false,
                labels: FlatObject,
            },
        ),
        (
            "opensearch 3.2",
            OS_3,
            backend(OpenSearch, 3, 2, Flavor::Other),
            Capabilities {
                composable_templates: true,
                lifecycle: Lifecycle::Ism,
                needs_type: false,
                labels: FlatObject,
            },
        ),
        (
            "opensearch compatibility mode",
            OS_COMPAT,
            Backend {
                version_inferred: true,
                ..backend(OpenSearch, 2, 0, Flavor::Other)
            },
            // Minor unknown: flat_object (2.12+) is not assumed.
            Capabilities {
                composable_templates: true,
                lifecycle: Lifecycle::Ism,
                needs_type: false,
                labels: Disabled,
            },
        ),
        (
            "es 7.10 oss",
            ES_7_10_OSS,
            backend(Elasticsearch, 7, 10, Flavor::Oss),
            Capabilities {
                composable_templates: true,
                lifecycle: Lifecycle::None,
                needs_type: false,
                labels: Disabled,
            },
        ),
        (
            "es 7.2",
            ES_7_2,
            backend(Elasticsearch, 7, 2, Flavor::Default),
            Capabilities {
                composable_templates: false,
                lifecycle: Lifecycle::Ilm,
                needs_type: false,
                labels: Disabled,
            },
        ),
        (
            "es serverless",
            ES_SERVERLESS,
            backend(Elasticsearch, 8, 11, Flavor::Serverless),
            Capabilities {
                composable_templates: true,
                lifecycle: Lifecycle::None,
                needs_type: false,
                labels: Flattened,
            },
        ),
    ];
    for (name, body, want, caps) in table {
        let got = detect(body.as_bytes()).unwrap();
        assert_eq!(got, *want, "{name}");
        assert_eq!(got.capabilities(), *caps, "{name}");
    }
}

#[test]
fn opensearch_before_2_12_has_no_flat_object() {
    let body = OS_2_19.replace("2.19.1", "2.11.0");
    let got = detect(body.as_bytes()).unwrap();
    assert_eq!(got.capabilities().labels, LabelsMapping::Disabled);
    let body = OS_2_19.replace("2.19.1", "2.12.0");
    assert_eq!(
        detect(body.as_bytes()).unwrap().capabilities().labels,
        LabelsMapping::FlatObject
    );
}

#[test]
fn versions_with_suffixes() {
    for (number, major, minor) in [
        ("9.1.0-SNAPSHOT", 9, 1),
        ("3.0.0-alpha1", 3, 0),
        ("8", 8, 0),
    ] {
        let body = ES_9.replace("9.1.3", number).replace(
            r#""build_flavor" : "default","#,
            if number.starts_with('3') {
                r#""distribution" : "opensearch","#
            } else {
                r#""build_flavor" : "default","#
            },
        );
        let got = detect(body.as_bytes()).unwrap();
        assert_eq!((got.major, got.minor), (major, minor), "{number}");
    }
}

#[test]
fn rejects_unsupported() {
    let table: &[(&str, &str)] = &[
        (
            ES_6_8,
            "detecting search backend failed: Elasticsearch 6.8.23 is not supported (Elasticsearch 7-9 and OpenSearch 2-3 are)",
        ),
        (
            OS_1_3,
            "detecting search backend failed: OpenSearch 1.3.20 is not supported (Elasticsearch 7-9 and OpenSearch 2-3 are)",
        ),
        (
            &ES_9.replace("9.1.3", "10.0.0"),
            "detecting search backend failed: Elasticsearch 10.0.0 is not supported (Elasticsearch 7-9 and OpenSearch 2-3 are)",
        ),
        (
            &ES_9.replace("9.1.3", "nine"),
            "detecting search backend failed: version \"nine\" is not a version number",
        ),
        (
            &OS_2_19.replace(r#""opensearch""#, r#""somefork""#),
            "detecting search backend failed: distribution \"somefork\" is not supported (Elasticsearch 7-9 and OpenSearch 2-3 are)",
        ),
        (
            &OS_COMPAT.replace("9.5.0", "11.0.0"),
            "detecting search backend failed: OpenSearch 7.10.2 (compatibility mode, Lucene \"11.0.0\") is not supported (Elasticsearch 7-9 and OpenSearch 2-3 are)",
        ),
    ];
    for (body, want) in table {
        assert_eq!(detect(body.as_bytes()).unwrap_err().to_string(), *want);
    }
    for body in [
        "",
        "<html>",
        "{}",
        r#"{"version":{}}"#,
        r#"{"error":"unauthorized"}"#,
    ] {
        assert!(
            matches!(detect(body.as_bytes()), Err(DetectError::InvalidBody(_))),
            "{body}"
        );
    }
}

#[test]
fn helpers() {
    let b = detect(ES_8.as_bytes()).unwrap();
    assert!(b.at_least(8, 19));
    assert!(b.at_least(7, 99));
    assert!(!b.at_least(8, 20));
    assert_eq!(b.kind.as_str(), "elasticsearch");
    assert_eq!(BackendKind::OpenSearch.as_str(), "opensearch");
}

#[test]
fn lifecycle_probe_answers() {
    use ProbeAnswer::{Available, Missing, ServerError};
    let table: &[(Lifecycle, u16, &str, ProbeAnswer)] = &[
        (
            Lifecycle::Ilm,
            200,
            r#"{"operation_mode":"RUNNING"}"#,
            Available,
        ),
        // Without X-Pack the path is an index name: no operation_mode.
        (Lifecycle::Ilm, 200, r#"{"_ilm":{}}"#, Missing),
        (Lifecycle::Ilm, 400, r#"{"error":"no handler"}"#, Missing),
        (Lifecycle::Ilm, 503, "", ServerError),
        (
            Lifecycle::Ism,
            200,
            r#"{"_id":"kelp-logs","_seq_no":3,"_primary_term":1}"#,
            Available,
        ),
        (
            Lifecycle::Ism,
            404,
            r#"{"error":{"root_cause":[{"type":"status_exception","reason":"Policy not found"}]},"status":404}"#,
            Available,
        ),
        (
            Lifecycle::Ism,
            400,
            r#"{"error":"no handler found for uri [/_plugins/_ism/policies/x] and method [GET]"}"#,
            Missing,
        ),
        (Lifecycle::Ism, 404, r#"{"error":"not found"}"#, Missing),
        (Lifecycle::Ism, 405, "", Missing),
        (Lifecycle::Ism, 500, "", ServerError),
    ];
    for (lifecycle, status, body, want) in table {
        assert_eq!(
            read_lifecycle_probe(*lifecycle, *status, body.as_bytes()),
            *want,
            "{lifecycle:?} {status} {body}"
        );
    }
    assert_eq!(
        lifecycle_probe_path(Lifecycle::Ilm, "k").as_deref(),
        Some("/_ilm/status")
    );
    assert_eq!(
        lifecycle_probe_path(Lifecycle::Ism, "k").as_deref(),
        Some("/_plugins/_ism/policies/k")
    );
    assert_eq!(lifecycle_probe_path(Lifecycle::None, "k"), None);
}
