use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::backend::{BackendKind, Flavor};
use crate::testutil;

fn settings() -> TemplateSettings {
    TemplateSettings {
        name: "kelp-logs".to_owned(),
        index_patterns: vec!["kelp-logs-*".to_owned()],
        shards: 1,
        replicas: None,
        refresh_interval: "1s".to_owned(),
        codec: Codec::BestCompression,
        retention_days: Some(7),
    }
}

fn backend(kind: BackendKind, major: u32, minor: u32, flavor: Flavor) -> Backend {
    Backend {
        kind,
        major,
        minor,
        flavor,
        version_inferred: false,
    }
}

fn plan_json(calls: &[ApiCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|c| json!({"method": c.method, "path": c.path, "body": c.body}))
            .collect(),
    )
}

/// Compares with `snapshots/<name>.json`; `KELP_UPDATE_SNAPSHOTS=1` rewrites it.
fn assert_snapshot(name: &str, got: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/template/snapshots")
        .join(format!("{name}.json"));
    let pretty = serde_json::to_string_pretty(got).unwrap() + "\n";
    if std::env::var_os("KELP_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with KELP_UPDATE_SNAPSHOTS=1)", path.display()));
    // Compare values, not text: key order depends on serde_json features
    // that other workspace members may switch on.
    let want: Value = serde_json::from_str(&want).unwrap();
    assert_eq!(*got, want, "snapshot {name} differs");
}

#[test]
fn install_plan_snapshots() {
    use BackendKind::*;
    let table = [
        ("es7_17", backend(Elasticsearch, 7, 17, Flavor::Default)),
        ("es8", backend(Elasticsearch, 8, 19, Flavor::Default)),
        ("es9", backend(Elasticsearch, 9, 1, Flavor::Default)),
        (
            "es7_2_legacy",
            backend(Elasticsearch, 7, 2, Flavor::Default),
        ),
        ("es7_10_oss", backend(Elasticsearch, 7, 10, Flavor::Oss)),
        ("opensearch2_19", backend(OpenSearch, 2, 19, Flavor::Other)),
        ("opensearch3", backend(OpenSearch, 3, 2, Flavor::Other)),
        ("opensearch2_11", backend(OpenSearch, 2, 11, Flavor::Other)),
    ];
    for (name, b) in table {
        assert_snapshot(name, &plan_json(&install_plan(&b, &settings())));
    }
}

#[test]
fn plan_shapes() {
    use BackendKind::*;
    let paths = |b: Backend, s: &TemplateSettings| -> Vec<String> {
        install_plan(&b, s).into_iter().map(|c| c.path).collect()
    };
    let es = backend(Elasticsearch, 8, 19, Flavor::Default);
    let os = backend(OpenSearch, 2, 19, Flavor::Other);
    assert_eq!(
        paths(es, &settings()),
        vec!["/_ilm/policy/kelp-logs", "/_index_template/kelp-logs"]
    );
    assert_eq!(
        paths(os, &settings()),
        vec![
            "/_plugins/_ism/policies/kelp-logs",
            "/_index_template/kelp-logs"
        ]
    );
    assert_eq!(
        paths(backend(Elasticsearch, 7, 2, Flavor::Default), &settings()),
        vec!["/_ilm/policy/kelp-logs", "/_template/kelp-logs"]
    );
    assert_eq!(
        paths(
            backend(Elasticsearch, 8, 11, Flavor::Serverless),
            &settings()
        ),
        vec!["/_index_template/kelp-logs"]
    );
    let keep_forever = TemplateSettings {
        retention_days: None,
        ..settings()
    };
    assert_eq!(paths(es, &keep_forever), vec!["/_index_template/kelp-logs"]);
    assert_eq!(paths(os, &keep_forever), vec!["/_index_template/kelp-logs"]);
    let body = composable_template(&es, &keep_forever);
    assert_eq!(body["template"]["settings"]["index"].get("lifecycle"), None);
    assert!(
        install_plan(&es, &settings())
            .iter()
            .all(|c| c.method == "PUT")
    );
}

#[test]
fn settings_table() {
    let es = backend(BackendKind::Elasticsearch, 9, 1, Flavor::Default);
    let os = backend(BackendKind::OpenSearch, 3, 2, Flavor::Other);
    let custom = TemplateSettings {
        shards: 3,
        replicas: Some(0),
        refresh_interval: "30s".to_owned(),
        codec: Codec::Default,
        ..settings()
    };
    assert_eq!(
        index_settings(&es, &custom),
        json!({"index": {
            "number_of_shards": 3,
            "number_of_replicas": 0,
            "refresh_interval": "30s",
            "codec": "default",
            "lifecycle": {"name": "kelp-logs"},
        }})
    );
    assert_eq!(
        index_settings(&os, &custom),
        json!({"index": {
            "number_of_shards": 3,
            "number_of_replicas": 0,
            "refresh_interval": "30s",
            "codec": "default",
        }})
    );
}

#[test]
fn policies() {
    assert_eq!(
        ilm_policy(30),
        json!({"policy": {"phases": {"delete": {"min_age": "30d", "actions": {"delete": {}}}}}})
    );
    let ism = ism_policy(&settings(), 14);
    assert_eq!(
        ism["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"],
        json!("14d")
    );
    assert_eq!(
        ism["policy"]["ism_template"],
        json!([{"index_patterns": ["kelp-logs-*"], "priority": 100}])
    );
}

/// Every leaf of a full record is mapped, so `dynamic: false` drops nothing
/// the collector writes today.
#[test]
fn mapping_covers_the_record() {
    let mut event = testutil::event();
    event.event.ingested = Some("2026-11-27T20:17:30.000Z".to_owned());
    event
        .kubernetes
        .annotations
        .insert("a".to_owned(), "b".to_owned());
    let doc = serde_json::to_value(&event).unwrap();
    for labels in [
        LabelsMapping::Flattened,
        LabelsMapping::FlatObject,
        LabelsMapping::Disabled,
    ] {
        let m = mappings(labels);
        let mut unmapped = Vec::new();
        check(&doc, &m, "", &mut unmapped);
        assert!(unmapped.is_empty(), "unmapped: {unmapped:?}");
    }
}

fn check(doc: &Value, mapping: &Value, path: &str, unmapped: &mut Vec<String>) {
    let Some(fields) = doc.as_object() else {
        return;
    };
    for (key, value) in fields {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let Some(field) = mapping["properties"].get(key) else {
            unmapped.push(full);
            continue;
        };
        if field.get("type").is_some() {
            // A leaf type, or a map type (flattened / flat_object / disabled).
            continue;
        }
        check(value, field, &full, unmapped);
    }
}

#[test]
fn codec_names() {
    assert_eq!(Codec::Default.as_str(), "default");
    assert_eq!(Codec::BestCompression.as_str(), "best_compression");
}

#[test]
fn probed_capabilities_drop_the_policy_and_the_labels_type() {
    let es = backend(BackendKind::Elasticsearch, 7, 17, Flavor::Default);
    let mut caps = es.capabilities();
    caps.lifecycle = Lifecycle::None;
    caps.labels = LabelsMapping::Disabled;
    let plan = install_plan_for(&caps, &settings());
    assert_eq!(plan.len(), 1, "no policy without a lifecycle API");
    assert_eq!(plan[0].path, "/_index_template/kelp-logs");
    let body = &plan[0].body;
    assert!(
        body["template"]["settings"]["index"]
            .get("lifecycle")
            .is_none()
    );
    assert_eq!(
        body["template"]["mappings"]["properties"]["kubernetes"]["properties"]["labels"],
        json!({"type": "object", "enabled": false})
    );
    // The backend-taking functions are the same as the probed ones with the
    // backend's own capabilities.
    assert_eq!(
        install_plan(&es, &settings()),
        install_plan_for(&es.capabilities(), &settings())
    );
}

#[test]
fn ism_updates_carry_the_policy_version() {
    let path = "/_plugins/_ism/policies/kelp-logs";
    assert!(is_ism_policy(path));
    assert!(!is_ism_policy("/_ilm/policy/kelp-logs"));
    assert_eq!(
        ism_update_path(path, &json!({"_seq_no": 7, "_primary_term": 2})).as_deref(),
        Some("/_plugins/_ism/policies/kelp-logs?if_seq_no=7&if_primary_term=2")
    );
    assert_eq!(ism_update_path(path, &json!({"_seq_no": 7})), None);
    assert!(lacks_labels_type(
        "status 400: mapper_parsing_exception: No handler for type [flat_object] declared on field [labels]"
    ));
    assert!(!lacks_labels_type("status 400: illegal_argument_exception"));
}
