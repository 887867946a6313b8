use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

/// Dotted paths of the leaves of a JSON value; arrays and empty maps are leaves.
pub(crate) fn leaf_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_paths(child, &path, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

#[test]
fn the_init_template_parses_into_the_defaults() {
    let template = init_template();
    assert!(!template.contains("@VERSION@"));
    assert!(template.contains(&format!("tag: \"{}\"", env!("CARGO_PKG_VERSION"))));
    let stack = Stack::from_yaml_str(&template).unwrap();
    assert_eq!(stack, Stack::default());
}

#[test]
fn the_init_template_spells_out_every_field_that_has_a_value() {
    // Optional fields that are unset by default are shown as comments.
    let template: Value = serde_saphyr::from_str(&init_template()).unwrap();
    let mut shown = BTreeSet::new();
    leaf_paths(&template, "", &mut shown);
    let defaults = serde_json::to_value(Stack::default()).unwrap();
    let mut all = BTreeSet::new();
    leaf_paths(&defaults, "", &mut all);
    for path in &all {
        let unset = path
            .split('.')
            .try_fold(&defaults, |v, k| v.get(k))
            .is_some_and(Value::is_null);
        let storage = path.starts_with("storage.");
        if unset || storage {
            assert!(
                init_template().contains(&format!("# {}:", path.rsplit('.').next().unwrap())),
                "{path} is neither shown nor commented"
            );
        } else {
            assert!(shown.contains(path), "{path} is missing from the template");
        }
    }
}

#[test]
fn an_empty_file_is_the_defaults() {
    assert_eq!(Stack::from_yaml_str("").unwrap(), Stack::default());
    assert_eq!(Stack::from_yaml_str("{}\n").unwrap(), Stack::default());
    assert_eq!(Stack::default().images.tag, env!("CARGO_PKG_VERSION"));
}

#[test]
fn unknown_fields_and_bad_values_are_refused_naming_the_field() {
    let table = [
        ("namespces: kelp\n", "namespces"),
        ("kafka: {replica: 3}\n", "replica"),
        ("kafka: {mode: kraftt}\n", "kraftt"),
        ("storage: {rbd: {pool: p}}\n", "cluster_id"),
        ("storage: {rbd: {cluster_id: c, pool: p, fs: xfs}}\n", "fs"),
        (
            "collector: {tolerations: [{operator: exists, efect: x}]}\n",
            "efect",
        ),
        ("shipper: {bulk: {max_byte: 1}}\n", "max_byte"),
        ("namespace: Kelp\n", "namespace"),
        ("namespace: \"\"\n", "namespace"),
        ("images: {registry: \"ghcr.io/x/\"}\n", "images.registry"),
        ("images: {kafka: \"\"}\n", "images"),
        (
            "storage: {storage_class: x, rbd: {cluster_id: c, pool: p}}\n",
            "storage",
        ),
        (
            "storage: {storage_class: Fast_RBD}\n",
            "storage.storage_class",
        ),
        ("zookeeper: {replicas: 2}\n", "zookeeper.replicas"),
        ("zookeeper: {heap_mib: 1000}\n", "zookeeper.heap_mib"),
        ("kafka: {version: \"4.0.0\"}\n", "kafka.version"),
        (
            "kafka: {mode: kraft, version: \"3.5.1\"}\n",
            "kafka.version",
        ),
        ("kafka: {replicas: 1}\n", "kafka.default_replication_factor"),
        (
            "kafka: {min_insync_replicas: 4}\n",
            "kafka.min_insync_replicas",
        ),
        ("kafka: {cluster_id: short}\n", "kafka.cluster_id"),
        (
            "kafka: {cluster_id: \"-kU3OEVBNTcwNTJENDM2Qg\"}\n",
            "kafka.cluster_id",
        ),
        (
            "kafka: {topics: {logs: {name: \"logs-{namespace}\", partitions: 1, retention_hours: 1}}}\n",
            "kafka.topics.logs",
        ),
        (
            "kafka: {topics: {dead_letter: {name: kelp-logs, partitions: 1, retention_hours: 1}}}\n",
            "kafka.topics.dead_letter",
        ),
        (
            "elasticsearch: {version: \"7.10.2\"}\n",
            "elasticsearch.version",
        ),
        (
            "elasticsearch: {version: \"9.1.0\"}\n",
            "elasticsearch.version",
        ),
        (
            "elasticsearch: {heap_mib: 40000, resources: {cpu_request_millis: 1, memory_mib: 65536}}\n",
            "elasticsearch.heap_mib",
        ),
        ("kibana: {version: \"7.17.29\"}\n", "kibana.version"),
        ("kibana: {replicas: 0}\n", "kibana.replicas"),
        ("collector: {include: []}\n", "collector.include"),
        (
            "collector: {include: [\"/home/*.log\"]}\n",
            "collector.include",
        ),
        (
            "collector: {include: [\"/var/log/syslog\"]}\n",
            "collector.include",
        ),
        (
            "collector: {multiline: {rule: cobol}}\n",
            "collector.multiline",
        ),
        ("collector: {state_dir: relative}\n", "collector.state_dir"),
        (
            "collector: {tolerations: [{operator: equal, value: x}]}\n",
            "collector.tolerations",
        ),
        (
            "shipper: {index_template: \"logs-{@timestamp:%Q}\"}\n",
            "shipper.index_template",
        ),
        (
            "shipper: {resources: {cpu_request_millis: 0, memory_mib: 512}}\n",
            "shipper.resources",
        ),
        (
            "shipper: {resources: {cpu_request_millis: 500, cpu_limit_millis: 100, memory_mib: 512}}\n",
            "shipper.resources",
        ),
        (
            "common: {labels: {app.kubernetes.io/name: x}}\n",
            "common.labels",
        ),
    ];
    for (text, needle) in table {
        let error = Stack::from_yaml_str(text).unwrap_err().to_string();
        assert!(error.contains(needle), "{text:?}: {error}");
    }
}

#[test]
fn good_variants_are_accepted() {
    let table = [
        "kafka: {mode: kraft}\n",
        "kafka: {mode: kraft, version: \"3.9.2\"}\n",
        "kafka: {replicas: 1, default_replication_factor: 1, min_insync_replicas: 1}\n",
        "kafka: {cluster_id: MkU3OEVBNTcwNTJENDM2Qg}\n",
        "elasticsearch: {version: \"7.17.29\"}\n",
        "elasticsearch: {version: \"8.0.0\", security: false}\n",
        "zookeeper: {replicas: 1}\n",
        "storage: {storage_class: ceph-rbd}\n",
        "storage: {rbd: {cluster_id: 7d3c1f2e, pool: kubernetes}}\n",
        "collector: {multiline: {rule: custom, start: '^\\d', continue_pattern: '^\\s'}}\n",
        "collector: {tolerations: [], priority_class: null}\n",
        "common: {anti_affinity: preferred, labels: {team: platform}}\n",
    ];
    for text in table {
        if let Err(error) = Stack::from_yaml_str(text) {
            panic!("{text:?}: {error}");
        }
    }
}

#[test]
fn heaps_are_half_the_memory_with_a_cap() {
    let mut stack = Stack::default();
    assert_eq!(stack.zookeeper.heap_mib(), 512);
    assert_eq!(stack.kafka.heap_mib(), 2048);
    assert_eq!(stack.elasticsearch.heap_mib(), 2048);
    stack.elasticsearch.resources.memory_mib = 128 * 1024;
    assert_eq!(stack.elasticsearch.heap_mib(), 31 * 1024);
    stack.kafka.resources.memory_mib = 64 * 1024;
    assert_eq!(stack.kafka.heap_mib(), 6 * 1024);
    stack.zookeeper.heap_mib = Some(300);
    assert_eq!(stack.zookeeper.heap_mib(), 300);
}

#[test]
fn versions_choose_defaults() {
    let stack = Stack::from_yaml_str("kafka: {mode: kraft}\n").unwrap();
    assert_eq!(stack.kafka.version(), DEFAULT_KAFKA_KRAFT_VERSION);
    assert_eq!(
        Stack::default().kafka.version(),
        DEFAULT_KAFKA_ZOOKEEPER_MODE_VERSION
    );
    assert!(Stack::default().elasticsearch.security_enabled());
    let es7 = Stack::from_yaml_str("elasticsearch: {version: \"7.17.29\"}\n").unwrap();
    assert!(!es7.elasticsearch.security_enabled());
    let es7_secure =
        Stack::from_yaml_str("elasticsearch: {version: \"7.17.29\", security: true}\n").unwrap();
    assert!(es7_secure.elasticsearch.security_enabled());
    assert_eq!(version_parts("8.19.21"), Some((8, 19)));
    assert_eq!(version_parts("3.9"), Some((3, 9)));
    assert_eq!(version_parts("4.0.0-rc1"), Some((4, 0)));
    assert_eq!(version_parts("latest"), None);
    assert_eq!(version_parts("8.x"), None);
    assert_eq!(
        Stack::default().kafka.internal_replication_factor(),
        3,
        "three brokers"
    );
}

#[test]
fn loading_a_missing_file_names_it() {
    let error = Stack::load(Path::new("/nonexistent/kelp-stack.yaml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("/nonexistent/kelp-stack.yaml"), "{error}");
    assert!(error.starts_with("reading stack file"), "{error}");
}

#[test]
fn the_deployer_doc_lists_every_field() {
    let doc = include_str!("../../../docs/DEPLOYER.md");
    // The defaults, plus an RBD section so its fields are listed too.
    let mut stack = Stack::default();
    stack.storage.rbd = Some(Rbd {
        cluster_id: "c".to_owned(),
        pool: "p".to_owned(),
        monitors: Vec::new(),
        secret_name: default_rbd_secret_name(),
        secret_namespace: default_rbd_secret_namespace(),
        fstype: FsType::Ext4,
        kafka_fstype: FsType::Xfs,
        image_features: default_image_features(),
    });
    let mut paths = BTreeSet::from(["storage.rbd".to_owned()]);
    leaf_paths(&serde_json::to_value(&stack).unwrap(), "", &mut paths);
    leaf_paths(
        &serde_json::to_value(Stack::default()).unwrap(),
        "",
        &mut paths,
    );
    for path in paths {
        assert!(
            doc.contains(&format!("| `{path}` |")),
            "docs/DEPLOYER.md has no row for `{path}`"
        );
    }
}
