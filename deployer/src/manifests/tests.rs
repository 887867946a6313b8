//! Snapshots per builder, invariants over every object, and the drift
//! check: the configs rendered for the collector and the shipper must be
//! accepted by the programs' own config parsers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, PodSpec, Service};
use serde_json::Value;

use super::*;
use crate::stack::{AntiAffinity, KafkaMode, Stack};

/// The default stack, with a fixed tag so snapshots survive version bumps.
fn default_stack() -> Stack {
    let mut stack = Stack::default();
    stack.images.tag = "0.0.0-test".to_owned();
    stack
}

/// KRaft, RBD, Elasticsearch 7.17 without security or mmap, every option
/// that changes the output away from its default.
fn variant_stack() -> Stack {
    Stack::from_yaml_str(
        r#"
namespace: logging
images:
  tag: 0.0.0-test
  registry: registry.example.org/kelp
  pull_secrets: [mirror-pull]
storage:
  rbd:
    cluster_id: 7d3c1f2e-0000-4000-8000-000000000000
    pool: kubernetes
    monitors: ["10.0.0.1:6789", "10.0.0.2:6789"]
kafka:
  mode: kraft
  replicas: 5
  cluster_id: MkU3OEVBNTcwNTJENDM2Qg
  topics:
    logs: {name: logs, partitions: 24, retention_hours: 24}
    dead_letter: {name: logs-rejected, partitions: 1, retention_hours: 720}
elasticsearch:
  version: "7.17.29"
  max_map_count_init: false
  allow_mmap: false
  heap_mib: 1024
kibana:
  replicas: 2
collector:
  include: ["/var/log/pods/*/*/*.log"]
  multiline: {rule: custom, start: '^\d{4}-', continue_pattern: '^\s'}
  tolerations:
    - {key: dedicated, operator: equal, value: logs, effect: NoSchedule}
  priority_class: null
  state_dir: /var/lib/kelp/collector/
common:
  labels: {team: platform}
  anti_affinity: preferred
  cluster_domain: k8s.example
"#,
    )
    .unwrap()
}

/// Everything on one node: replication 1, a single-node Elasticsearch.
fn single_node_stack() -> Stack {
    Stack::from_yaml_str(
        "images: {tag: 0.0.0-test}\n\
         storage: {storage_class: local-path}\n\
         zookeeper: {replicas: 1}\n\
         kafka: {replicas: 1, default_replication_factor: 1, min_insync_replicas: 1}\n\
         elasticsearch: {replicas: 1, security: false}\n\
         shipper: {replicas: 1}\n",
    )
    .unwrap()
}

fn stacks() -> [(&'static str, Stack); 3] {
    [
        ("default", default_stack()),
        ("variant", variant_stack()),
        ("single-node", single_node_stack()),
    ]
}

/// Compares with `snapshots/<name>.yaml`; `KELP_UPDATE_SNAPSHOTS=1` rewrites it.
fn assert_snapshot(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/manifests/snapshots")
        .join(format!("{name}.yaml"));
    if std::env::var_os("KELP_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with KELP_UPDATE_SNAPSHOTS=1)", path.display()));
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(w, g)| w != g)
            .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
        panic!(
            "snapshot {name} differs from line {}: want {:?}, got {:?} \
             (review, then run with KELP_UPDATE_SNAPSHOTS=1)",
            line + 1,
            want.lines().nth(line),
            got.lines().nth(line)
        );
    }
}

#[test]
fn builder_snapshots() {
    let table: [(&str, Stack, &[&str]); 3] = [
        (
            "default",
            default_stack(),
            &[
                "namespace",
                "zookeeper",
                "kafka",
                "elasticsearch",
                "kibana",
                "shipper",
                "collector",
            ],
        ),
        (
            "variant",
            variant_stack(),
            &[
                "storage",
                "kafka",
                "elasticsearch",
                "kibana",
                "shipper",
                "collector",
            ],
        ),
        (
            "single-node",
            single_node_stack(),
            &["zookeeper", "kafka", "elasticsearch", "shipper"],
        ),
    ];
    for (variant, stack, components) in table {
        for component in components {
            let objects = build_component(&stack, component);
            assert!(!objects.is_empty(), "{component} {variant}");
            assert_snapshot(
                &format!("{component}-{variant}"),
                &to_yaml(&objects).unwrap(),
            );
        }
    }
}

#[test]
fn kraft_mode_has_no_zookeeper_and_no_storage_class_without_rbd() {
    assert!(build_component(&variant_stack(), "zookeeper").is_empty());
    assert!(build_component(&default_stack(), "storage").is_empty());
    assert!(build_component(&default_stack(), "nonsense").is_empty());
}

// --- helpers over the rendered objects ---

fn workloads(objects: &[Object]) -> impl Iterator<Item = (&Object, &PodSpec)> {
    objects.iter().filter_map(|o| {
        o.pod_template()
            .and_then(|t| t.spec.as_ref())
            .map(|spec| (o, spec))
    })
}

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
}

fn find<'a>(objects: &'a [Object], kind: &str, name: &str) -> &'a Object {
    objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name)
        .unwrap_or_else(|| panic!("{kind}/{name} missing"))
}

fn config_map_data<'a>(objects: &'a [Object], name: &str) -> &'a BTreeMap<String, String> {
    match find(objects, "ConfigMap", name) {
        Object::ConfigMap(cm) => cm.data.as_ref().unwrap(),
        _ => unreachable!(),
    }
}

fn service<'a>(objects: &'a [Object], name: &str) -> &'a Service {
    match find(objects, "Service", name) {
        Object::Service(service) => service,
        _ => unreachable!(),
    }
}

fn labels_of(object: &Object) -> &BTreeMap<String, String> {
    object.metadata().labels.as_ref().unwrap()
}

fn pod_labels(object: &Object) -> &BTreeMap<String, String> {
    object
        .pod_template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .unwrap()
}

fn selector_of(object: &Object) -> BTreeMap<String, String> {
    let selector = match object {
        Object::StatefulSet(o) => &o.spec.as_ref().unwrap().selector,
        Object::Deployment(o) => &o.spec.as_ref().unwrap().selector,
        Object::DaemonSet(o) => &o.spec.as_ref().unwrap().selector,
        Object::PodDisruptionBudget(o) => o.spec.as_ref().unwrap().selector.as_ref().unwrap(),
        _ => panic!("{} has no selector", object.id()),
    };
    selector.match_labels.clone().unwrap()
}

fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

const STANDARD_LABELS: [&str; 6] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
];

// --- invariants ---

#[test]
fn every_pod_template_has_resources_labels_and_the_config_hash() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        let mut seen = 0;
        for (object, spec) in workloads(&objects) {
            seen += 1;
            let id = format!("{variant}: {}", object.id());
            for container in all_containers(spec) {
                let resources = container.resources.as_ref().expect(&id);
                let requests = resources.requests.as_ref().expect(&id);
                assert!(
                    requests.contains_key("cpu") && requests.contains_key("memory"),
                    "{id}"
                );
                let limits = resources.limits.as_ref().expect(&id);
                assert_eq!(limits.get("memory"), requests.get("memory"), "{id}");
                assert!(
                    container.image.as_ref().is_some_and(|i| !i.is_empty()),
                    "{id}"
                );
            }
            let labels = pod_labels(object);
            for key in STANDARD_LABELS {
                assert!(labels.contains_key(key), "{id} lacks {key}");
            }
            assert!(is_subset(&stack.common.labels, labels), "{id}");
            // The hash is the one of the ConfigMap the pods mount.
            let annotations = object
                .pod_template()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref())
                .expect(&id);
            let config_maps: Vec<&str> = spec
                .volumes
                .iter()
                .flatten()
                .filter_map(|v| v.config_map.as_ref().map(|c| c.name.as_str()))
                .collect();
            assert_eq!(config_maps.len(), 1, "{id}");
            assert_eq!(
                annotations.get(CONFIG_HASH_ANNOTATION),
                Some(&config_hash(config_map_data(&objects, config_maps[0]))),
                "{id}"
            );
        }
        assert!(seen >= 6, "{variant}: {seen} workloads");
    }
}

#[test]
fn a_config_change_changes_the_pod_template_and_nothing_else_does() {
    let hash = |stack: &Stack, kind: &str, name: &str| {
        let objects = build(stack);
        find(&objects, kind, name)
            .pod_template()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[CONFIG_HASH_ANNOTATION]
            .clone()
    };
    let base = default_stack();
    let mut changed = base.clone();
    changed.collector.multiline.rule = "go".to_owned();
    assert_ne!(
        hash(&base, "DaemonSet", "kelp-collector"),
        hash(&changed, "DaemonSet", "kelp-collector")
    );
    let mut scaled = base.clone();
    scaled.kibana.replicas = 3;
    scaled.collector.resources.memory_mib = 512;
    assert_eq!(
        hash(&base, "Deployment", "kibana"),
        hash(&scaled, "Deployment", "kibana")
    );
    assert_eq!(
        hash(&base, "DaemonSet", "kelp-collector"),
        hash(&scaled, "DaemonSet", "kelp-collector")
    );
    let mut topics = base.clone();
    topics.kafka.topics.logs.partitions = 48;
    let job = |stack: &Stack| {
        build(stack)
            .iter()
            .find(|o| o.kind() == "Job")
            .unwrap()
            .name()
            .to_owned()
    };
    assert_ne!(
        job(&base),
        job(&topics),
        "new topic settings make a new Job"
    );
    // ... which changes neither the brokers nor the collector.
    assert_eq!(
        hash(&base, "StatefulSet", "kafka"),
        hash(&topics, "StatefulSet", "kafka")
    );
}

#[test]
fn every_stateful_set_has_a_headless_service_that_publishes_not_ready_pods() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        for object in objects.iter().filter(|o| o.kind() == "StatefulSet") {
            let Object::StatefulSet(sts) = object else {
                unreachable!()
            };
            let spec = sts.spec.as_ref().unwrap();
            let name = spec.service_name.as_deref().unwrap();
            let service = service(&objects, name).spec.as_ref().unwrap();
            let id = format!("{variant}: {}", object.id());
            assert_eq!(service.cluster_ip.as_deref(), Some("None"), "{id}");
            assert_eq!(service.publish_not_ready_addresses, Some(true), "{id}");
            assert!(
                is_subset(service.selector.as_ref().unwrap(), pod_labels(object)),
                "{id}"
            );
            assert_eq!(
                spec.pod_management_policy.as_deref(),
                Some("Parallel"),
                "{id}"
            );
            // Claims come from the template, are kept, and use the class.
            let claims = spec.volume_claim_templates.as_ref().unwrap();
            assert_eq!(claims.len(), 1, "{id}");
            let retention = spec
                .persistent_volume_claim_retention_policy
                .as_ref()
                .unwrap();
            assert_eq!(retention.when_deleted.as_deref(), Some("Retain"), "{id}");
        }
    }
}

#[test]
fn disruption_budgets_match_exactly_one_workload() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        let budgets: Vec<&Object> = objects
            .iter()
            .filter(|o| o.kind() == "PodDisruptionBudget")
            .collect();
        for budget in &budgets {
            let selector = selector_of(budget);
            let matching: Vec<_> = workloads(&objects)
                .filter(|(o, _)| is_subset(&selector, pod_labels(o)))
                .collect();
            assert_eq!(matching.len(), 1, "{variant}: {}", budget.id());
            assert_eq!(selector_of(matching[0].0), selector, "{}", budget.id());
        }
        // Every replicated workload has one; the collector (a DaemonSet,
        // which drains do not evict) and the topic job do not.
        for object in objects
            .iter()
            .filter(|o| matches!(o.kind(), "StatefulSet" | "Deployment"))
        {
            assert!(
                budgets
                    .iter()
                    .any(|b| selector_of(b) == selector_of(object)),
                "{variant}: {} has no budget",
                object.id()
            );
        }
    }
}

#[test]
fn the_collector_may_only_read_pods_and_namespaces() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        let roles: Vec<&Object> = objects
            .iter()
            .filter(|o| matches!(o.kind(), "ClusterRole" | "Role"))
            .collect();
        assert_eq!(roles.len(), 1, "{variant}: only the collector has a role");
        let Object::ClusterRole(role) = roles[0] else {
            panic!("{variant}: not a ClusterRole")
        };
        let rules: Vec<_> = role.rules.iter().flatten().collect();
        assert_eq!(rules.len(), 1);
        let rule = rules[0];
        assert_eq!(rule.api_groups, Some(vec![String::new()]));
        let resources: BTreeSet<_> = rule
            .resources
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        assert_eq!(resources, BTreeSet::from(["namespaces", "pods"]));
        let verbs: BTreeSet<_> = rule.verbs.iter().map(String::as_str).collect();
        assert_eq!(verbs, BTreeSet::from(["get", "list", "watch"]));
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());

        let bindings: Vec<_> = objects
            .iter()
            .filter_map(|o| match o {
                Object::ClusterRoleBinding(b) => Some(b),
                _ => None,
            })
            .collect();
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].role_ref.name, roles[0].name());
        let subjects = bindings[0].subjects.as_ref().unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].name, "kelp-collector");
        assert_eq!(
            subjects[0].namespace.as_deref(),
            Some(stack.namespace.as_str())
        );
        // Only the collector's pods get an API token.
        for (object, spec) in workloads(&objects) {
            let wants_token = object.name() == "kelp-collector";
            assert_eq!(
                spec.automount_service_account_token,
                Some(wants_token),
                "{variant}: {}",
                object.id()
            );
        }
    }
}

#[test]
fn only_the_max_map_count_init_container_is_privileged() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        let mut privileged = Vec::new();
        for (object, spec) in workloads(&objects) {
            for container in all_containers(spec) {
                let context = container.security_context.as_ref();
                if context.and_then(|c| c.privileged) == Some(true) {
                    privileged.push(format!("{}/{}", object.name(), container.name));
                    continue;
                }
                let id = format!("{variant}: {}/{}", object.id(), container.name);
                let context = context.expect(&id);
                assert_eq!(context.allow_privilege_escalation, Some(false), "{id}");
                let capabilities = context.capabilities.as_ref().expect(&id);
                assert_eq!(capabilities.drop, Some(vec!["ALL".to_owned()]), "{id}");
                let added = capabilities.add.clone().unwrap_or_default();
                assert!(
                    added.is_empty() || added == ["DAC_READ_SEARCH"],
                    "{id}: {added:?}"
                );
            }
            // Host paths only for the collector, and its log mounts read-only.
            let host_paths: Vec<_> = spec
                .volumes
                .iter()
                .flatten()
                .filter(|v| v.host_path.is_some())
                .collect();
            if object.name() == "kelp-collector" {
                let mounts = spec.containers[0].volume_mounts.as_ref().unwrap();
                for (_, dir) in collector::LOG_DIRS {
                    let mount = mounts.iter().find(|m| m.mount_path == dir).unwrap();
                    assert_eq!(mount.read_only, Some(true), "{dir}");
                }
                assert_eq!(host_paths.len(), 3);
            } else {
                assert!(host_paths.is_empty(), "{variant}: {}", object.id());
                assert_ne!(spec.host_network, Some(true));
            }
        }
        let want: Vec<String> = if stack.elasticsearch.max_map_count_init {
            vec![format!(
                "elasticsearch/{}",
                elasticsearch::MAX_MAP_COUNT_CONTAINER
            )]
        } else {
            Vec::new()
        };
        assert_eq!(privileged, want, "{variant}");
    }
}

#[test]
fn objects_come_in_rollout_order_with_valid_names_and_labels() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        assert_eq!(objects[0].kind(), "Namespace");
        let first_workload = objects.iter().position(|o| !o.is_setup()).unwrap();
        assert!(
            objects[first_workload..].iter().all(|o| !o.is_setup()),
            "{variant}"
        );
        let order: Vec<&str> = objects
            .iter()
            .filter(|o| o.pod_template().is_some())
            .map(Object::name)
            .collect();
        let mut want = vec![
            "zookeeper",
            "kafka",
            "kafka-topics",
            "elasticsearch",
            "kibana",
            "kelp-shipper",
            "kelp-collector",
        ];
        if stack.kafka.mode == KafkaMode::Kraft {
            want.remove(0);
        }
        let order: Vec<&str> = order
            .iter()
            .map(|name| {
                if name.starts_with("kafka-topics-") {
                    "kafka-topics"
                } else {
                    name
                }
            })
            .collect();
        assert_eq!(order, want, "{variant}");

        let mut ids = BTreeSet::new();
        for object in &objects {
            let id = format!("{variant}: {}", object.id());
            assert!(ids.insert(object.id()), "{id} twice");
            assert!(crate::stack::is_dns_label(object.name()), "{id}");
            let labels = labels_of(object);
            for key in STANDARD_LABELS {
                let value = labels
                    .get(key)
                    .unwrap_or_else(|| panic!("{id} lacks {key}"));
                assert!(
                    !value.is_empty()
                        && value.len() <= 63
                        && value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                    "{id}: {key}={value}"
                );
            }
            let namespaced = !matches!(
                object.kind(),
                "Namespace" | "StorageClass" | "ClusterRole" | "ClusterRoleBinding"
            );
            assert_eq!(
                object.metadata().namespace.as_deref(),
                namespaced.then_some(stack.namespace.as_str()),
                "{id}"
            );
        }
    }
}

#[test]
fn the_yaml_stream_reads_back_as_the_objects() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        let yaml = to_yaml(&objects).unwrap();
        let documents: Vec<&str> = yaml
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .collect();
        assert_eq!(documents.len(), objects.len(), "{variant}");
        for (document, object) in documents.iter().zip(&objects) {
            let back: Value = serde_saphyr::from_str(document).unwrap();
            let want = serde_json::to_value(object).unwrap();
            assert_eq!(back, want, "{variant}: {}", object.id());
            assert_eq!(back["apiVersion"], object.api_version());
            assert_eq!(back["kind"], object.kind());
        }
    }
}

// --- storage, Kafka and Elasticsearch specifics ---

fn claim_class(objects: &[Object], name: &str) -> Option<String> {
    let Object::StatefulSet(sts) = find(objects, "StatefulSet", name) else {
        unreachable!()
    };
    let claims = sts
        .spec
        .as_ref()
        .unwrap()
        .volume_claim_templates
        .as_ref()
        .unwrap();
    claims[0].spec.as_ref().unwrap().storage_class_name.clone()
}

#[test]
fn volumes_use_the_configured_storage() {
    let objects = build(&default_stack());
    assert_eq!(
        claim_class(&objects, "kafka"),
        None,
        "the cluster's default"
    );
    let objects = build(&single_node_stack());
    for name in ["zookeeper", "kafka", "elasticsearch"] {
        assert_eq!(claim_class(&objects, name).as_deref(), Some("local-path"));
    }
    let objects = build(&variant_stack());
    assert_eq!(
        claim_class(&objects, "kafka").as_deref(),
        Some("logging-rbd-xfs")
    );
    assert_eq!(
        claim_class(&objects, "elasticsearch").as_deref(),
        Some("logging-rbd-ext4")
    );
    let classes: Vec<_> = objects
        .iter()
        .filter_map(|o| match o {
            Object::StorageClass(class) => Some(class),
            _ => None,
        })
        .collect();
    assert_eq!(classes.len(), 2);
    for class in classes {
        assert_eq!(class.provisioner, "rbd.csi.ceph.com");
        assert_eq!(class.reclaim_policy.as_deref(), Some("Retain"));
        assert_eq!(class.allow_volume_expansion, Some(true));
        let parameters = class.parameters.as_ref().unwrap();
        assert_eq!(parameters["imageFeatures"], "layering");
        assert_eq!(
            parameters["csi.storage.k8s.io/node-stage-secret-name"],
            "csi-rbd-secret"
        );
        assert_eq!(
            parameters["csi.storage.k8s.io/controller-expand-secret-namespace"],
            "ceph-csi"
        );
        assert!(
            class
                .metadata
                .name
                .as_deref()
                .unwrap()
                .ends_with(&parameters["csi.storage.k8s.io/fstype"])
        );
    }
    // One file system for everything gives one class.
    let mut same = variant_stack();
    if let Some(rbd) = same.storage.rbd.as_mut() {
        rbd.kafka_fstype = rbd.fstype;
    }
    assert_eq!(build_component(&same, "storage").len(), 1);
}

fn script(objects: &[Object], config_map: &str, key: &str) -> String {
    config_map_data(objects, config_map)[key].clone()
}

#[test]
fn kafka_brokers_advertise_their_own_fqdn_and_share_a_stable_cluster_id() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        let properties = script(&objects, "kafka-config", "server.properties");
        let start = script(&objects, "kafka-config", "start.sh");
        let suffix = format!(
            "kafka.{}.svc.{}:9092",
            stack.namespace, stack.common.cluster_domain
        );
        assert!(
            start.contains(&format!(
                "advertised.listeners=PLAINTEXT://${{POD_NAME}}.{suffix}"
            )),
            "{variant}"
        );
        assert!(properties.contains("auto.create.topics.enable=false"));
        assert!(properties.contains(&format!(
            "min.insync.replicas={}",
            stack.kafka.min_insync_replicas
        )));
        let Object::StatefulSet(sts) = find(&objects, "StatefulSet", "kafka") else {
            unreachable!()
        };
        let env = sts
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .env
            .clone()
            .unwrap();
        let id = env.iter().find(|e| e.name == "KAFKA_CLUSTER_ID").unwrap();
        assert_eq!(id.value.as_deref(), Some(kafka_cluster_id(&stack).as_str()));
        match stack.kafka.mode {
            KafkaMode::Kraft => {
                let voters = (0..stack.kafka.replicas)
                    .map(|i| {
                        format!(
                            "{i}@kafka-{i}.kafka.{}.svc.{}:9093",
                            stack.namespace, stack.common.cluster_domain
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                assert!(
                    properties.contains(&format!("controller.quorum.voters={voters}\n")),
                    "{variant}"
                );
                assert!(start.contains("echo \"node.id=$ordinal\""));
                assert!(start.contains("kafka-storage.sh format --ignore-formatted"));
                assert!(!properties.contains("zookeeper"));
            }
            KafkaMode::Zookeeper => {
                let connect = (0..stack.zookeeper.replicas)
                    .map(|i| {
                        format!(
                            "zookeeper-{i}.zookeeper.{}.svc.{}:2181",
                            stack.namespace, stack.common.cluster_domain
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                assert!(
                    properties.contains(&format!("zookeeper.connect={connect}\n")),
                    "{variant}"
                );
                assert!(start.contains("echo \"broker.id=$ordinal\""));
                assert!(start.contains("create /cluster/id"));
                // The ZooKeeper servers' ids come from their ordinals.
                let zk = script(&objects, "zookeeper-config", "zoo.cfg");
                for i in 0..stack.zookeeper.replicas {
                    assert!(
                        zk.contains(&format!("server.{}=zookeeper-{i}.", i + 1)),
                        "{variant}"
                    );
                }
                let zk_start = script(&objects, "zookeeper-config", "start.sh");
                assert!(zk_start.contains("echo \"$((ordinal + 1))\" >/data/myid"));
            }
        }
        let internal = stack.kafka.replicas.min(3);
        assert!(properties.contains(&format!("offsets.topic.replication.factor={internal}\n")));
        let topics = objects.iter().find(|o| o.kind() == "Job").unwrap();
        let Object::Job(job) = topics else {
            unreachable!()
        };
        let job_spec = job.spec.as_ref().unwrap();
        assert_eq!(
            job_spec
                .template
                .spec
                .as_ref()
                .unwrap()
                .restart_policy
                .as_deref(),
            Some("OnFailure")
        );
        let create = script(&objects, "kafka-topics", "create-topics.sh");
        for topic in [&stack.kafka.topics.logs, &stack.kafka.topics.dead_letter] {
            let line = format!(
                "create {} {} {}\n",
                topic.name,
                topic.partitions,
                u64::from(topic.retention_hours) * 3_600_000
            );
            assert!(create.contains(&line), "{variant}: {line}");
        }
    }
}

#[test]
fn elasticsearch_bootstraps_once_and_is_ready_on_its_own_node() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        let yml = script(&objects, "elasticsearch-config", "elasticsearch.yml");
        let start = script(&objects, "elasticsearch-config", "start.sh");
        let ready = script(&objects, "elasticsearch-config", "ready.sh");
        assert!(!yml.contains("initial_master_nodes:"), "{variant}");
        let masters = (0..stack.elasticsearch.replicas)
            .map(|i| format!("elasticsearch-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            start.contains(&format!("(-Ecluster.initial_master_nodes={masters})\n")),
            "{variant}"
        );
        assert!(start.contains("if [ ! -e /kelp/data/cluster-joined ]"));
        assert!(ready.contains("touch /kelp/data/cluster-joined"));
        assert!(ready.contains("/_cluster/health?local=true"));
        assert!(ready.contains("/_cat/master?local=true"));
        assert!(yml.contains(&format!(
            "discovery.seed_hosts: elasticsearch.{}.svc.{}\n",
            stack.namespace, stack.common.cluster_domain
        )));
        let security = stack.elasticsearch.security_enabled();
        assert!(yml.contains(&format!("xpack.security.enabled: {security}\n")));
        assert_eq!(
            yml.contains("xpack.security.http.ssl.enabled: true"),
            security
        );
        assert_eq!(ready.contains("https://"), security);
        assert_eq!(
            yml.contains("node.store.allow_mmap: false"),
            !stack.elasticsearch.allow_mmap
        );
        let secrets = referenced_secrets(&objects);
        assert_eq!(secrets.is_empty(), !security, "{variant}: {secrets:?}");
        let Object::StatefulSet(sts) = find(&objects, "StatefulSet", "elasticsearch") else {
            unreachable!()
        };
        let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let heap = stack.elasticsearch.heap_mib();
        let env = pod.containers[0].env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "ES_JAVA_OPTS"
            && e.value.as_deref() == Some(format!("-Xms{heap}m -Xmx{heap}m").as_str())));
        assert_eq!(
            pod.init_containers.is_some(),
            stack.elasticsearch.max_map_count_init
        );
    }
}

#[test]
fn anti_affinity_follows_the_stack_for_stateful_components() {
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        for (object, spec) in workloads(&objects) {
            let Some(affinity) = spec.affinity.as_ref() else {
                assert!(
                    matches!(object.kind(), "DaemonSet" | "Job"),
                    "{}",
                    object.id()
                );
                continue;
            };
            let anti = affinity.pod_anti_affinity.as_ref().unwrap();
            let required = anti
                .required_during_scheduling_ignored_during_execution
                .is_some();
            let want = object.kind() == "StatefulSet"
                && stack.common.anti_affinity == AntiAffinity::Required;
            assert_eq!(required, want, "{variant}: {}", object.id());
        }
    }
}

// --- config drift: the programs must accept what kelp renders ---

fn container<'a>(objects: &'a [Object], kind: &str, name: &str) -> (&'a PodSpec, &'a Container) {
    let spec = find(objects, kind, name)
        .pod_template()
        .and_then(|t| t.spec.as_ref())
        .unwrap();
    (spec, &spec.containers[0])
}

/// The file the container's `--config` argument names, read from the
/// ConfigMap mounted there.
fn config_file(objects: &[Object], spec: &PodSpec, container: &Container) -> String {
    let args = container.args.as_ref().unwrap();
    assert_eq!(args[..2], ["run", "--config"]);
    let path = std::path::Path::new(&args[2]);
    let dir = path.parent().unwrap().to_str().unwrap();
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == dir)
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap();
    let config_map = &volume.config_map.as_ref().unwrap().name;
    let key = path.file_name().unwrap().to_str().unwrap();
    config_map_data(objects, config_map)[key].clone()
}

#[test]
fn the_collector_accepts_its_rendered_config() {
    use kelp_collector::config::{Config, SinkConfig};
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        let (spec, container) = container(&objects, "DaemonSet", "kelp-collector");
        let text = config_file(&objects, spec, container);
        let config = Config::from_yaml_str(&text)
            .unwrap_or_else(|e| panic!("{variant}: the collector refuses its config: {e}\n{text}"));
        let SinkConfig::Kafka(sink) = &config.sink else {
            panic!("{variant}: not a kafka sink")
        };
        assert_eq!(
            sink.bootstrap_servers,
            kafka::bootstrap_servers(&stack).join(",")
        );
        assert_eq!(sink.topic, stack.kafka.topics.logs.name);
        assert_eq!(config.tail.include, stack.collector.include);
        assert_eq!(config.parse.multiline, stack.collector.multiline);
        // Checkpoints land on the node's state directory.
        let state = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "state")
            .and_then(|v| v.host_path.as_ref())
            .unwrap();
        assert_eq!(
            config.checkpoint.path.parent().unwrap().to_str(),
            Some(state.path.as_str())
        );
        let mounted = container
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == "state" && m.mount_path == state.path && m.read_only.is_none());
        assert!(mounted, "{variant}");
        // Probes and the port are where the collector listens.
        let port = container.ports.as_ref().unwrap()[0].container_port;
        assert_eq!(i32::from(config.metrics.listen.port()), port);
        assert!(config.node_name.is_none(), "from NODE_NAME");
        let env = container.env.as_ref().unwrap();
        assert!(env.iter().any(|e| {
            e.name == "NODE_NAME"
                && e.value_from
                    .as_ref()
                    .and_then(|v| v.field_ref.as_ref())
                    .map(|f| f.field_path.as_str())
                    == Some("spec.nodeName")
        }));
        // The collector's defaults are what it is not told.
        assert_eq!(
            config.delivery,
            kelp_collector::config::Config::from_yaml_str("sink: {kind: stdout}\n")
                .unwrap()
                .delivery
        );
    }
}

#[test]
fn the_shipper_accepts_its_rendered_config() {
    use kelp_shipper::config::{Auth, Config};
    for (variant, stack) in stacks() {
        let objects = build(&stack);
        let (spec, container) = container(&objects, "Deployment", "kelp-shipper");
        let text = config_file(&objects, spec, container);
        let config = Config::from_yaml_str(&text)
            .unwrap_or_else(|e| panic!("{variant}: the shipper refuses its config: {e}\n{text}"));
        assert_eq!(
            config.kafka.bootstrap_servers,
            kafka::bootstrap_servers(&stack)
        );
        assert_eq!(
            config.kafka.topics,
            vec![stack.kafka.topics.logs.name.clone()]
        );
        assert_eq!(
            config.dead_letter.topic,
            stack.kafka.topics.dead_letter.name
        );
        assert_eq!(config.bulk, stack.shipper.bulk);
        assert_eq!(
            config.elasticsearch.index_template,
            stack.shipper.index_template
        );
        // The URL is the client service's.
        let url = &config.elasticsearch.urls[0];
        let http = service(&objects, "elasticsearch-http");
        assert!(
            url.contains(&format!("//elasticsearch-http.{}.svc.", stack.namespace)),
            "{url}"
        );
        assert_eq!(
            http.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
            9200
        );
        let port = container.ports.as_ref().unwrap()[0].container_port;
        assert_eq!(i32::from(config.metrics.listen_address.port()), port);
        // Secrets named in the config are files the pod mounts.
        if stack.elasticsearch.security_enabled() {
            assert!(url.starts_with("https://"));
            let Auth::Basic(basic) = &config.elasticsearch.auth else {
                panic!("{variant}: no basic auth")
            };
            let files = [
                basic.password_file.clone().unwrap(),
                config.elasticsearch.tls.ca_file.clone().unwrap(),
            ];
            let volume = spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.projected.is_some())
                .unwrap();
            let mount = container
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| m.name == volume.name)
                .unwrap();
            let projected: BTreeSet<String> = volume
                .projected
                .as_ref()
                .unwrap()
                .sources
                .iter()
                .flatten()
                .flat_map(|s| s.secret.as_ref().unwrap().items.iter().flatten())
                .map(|item| format!("{}/{}", mount.mount_path, item.path))
                .collect();
            for file in files {
                assert!(
                    projected.contains(file.to_str().unwrap()),
                    "{variant}: {file:?}"
                );
            }
        } else {
            assert!(url.starts_with("http://"));
            assert_eq!(config.elasticsearch.auth, Auth::None);
        }
        let replicas = config.template.replicas;
        if stack.elasticsearch.replicas == 1 {
            assert_eq!(replicas, Some(0), "{variant}: one node holds no replicas");
        } else {
            assert_eq!(replicas, stack.shipper.template.replicas);
        }
    }
}

#[test]
fn images_default_to_kelp_registry_and_version() {
    let stack = Stack::default();
    let defaults: BTreeMap<String, String> = images(&build(&stack)).into_iter().collect();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        defaults["kelp-collector"],
        format!("ghcr.io/kelp-project/kelp-collector:{version}")
    );
    assert_eq!(
        defaults["kelp-shipper"],
        format!("ghcr.io/kelp-project/kelp-shipper:{version}")
    );
    assert_eq!(defaults["zookeeper"], "docker.io/library/zookeeper:3.8.4");
    assert_eq!(defaults["kafka"], "docker.io/apache/kafka:3.9.2");
    assert_eq!(
        defaults["elasticsearch"],
        "docker.elastic.co/elasticsearch/elasticsearch:8.19.21"
    );
    assert_eq!(
        defaults["kibana"],
        "docker.elastic.co/kibana/kibana:8.19.21"
    );
    let variant: BTreeMap<String, String> = images(&build(&variant_stack())).into_iter().collect();
    assert_eq!(
        variant["kelp-collector"],
        "registry.example.org/kelp/kelp-collector:0.0.0-test"
    );
    assert_eq!(variant["kafka"], "docker.io/apache/kafka:4.4.0");
    assert_eq!(variant["kibana"], "docker.elastic.co/kibana/kibana:7.17.29");
    let mut mirrored = Stack::default();
    mirrored.images.kafka = Some("mirror.example.org/kafka:3.9.2".to_owned());
    let mirrored: BTreeMap<String, String> = images(&build(&mirrored)).into_iter().collect();
    assert_eq!(mirrored["kafka"], "mirror.example.org/kafka:3.9.2");
    assert!(
        mirrored
            .iter()
            .any(|(w, i)| w.starts_with("kafka-topics-") && i == "mirror.example.org/kafka:3.9.2")
    );
}

#[test]
fn upgrades_leave_immutable_fields_alone() {
    // What a StatefulSet cannot change once created: selector, serviceName,
    // podManagementPolicy and volumeClaimTemplates.
    let immutable = |stack: &Stack| -> Vec<Value> {
        build(stack)
            .iter()
            .filter_map(|o| match o {
                Object::StatefulSet(sts) => {
                    let spec = sts.spec.as_ref().unwrap();
                    Some(serde_json::json!([
                        spec.selector,
                        spec.service_name,
                        spec.pod_management_policy,
                        spec.volume_claim_templates,
                    ]))
                }
                _ => None,
            })
            .collect()
    };
    let base = default_stack();
    let mut upgraded = base.clone();
    upgraded.images.tag = "9.9.9".to_owned();
    upgraded.zookeeper.version = "3.8.5".to_owned();
    upgraded.kafka.version = Some("3.9.3".to_owned());
    upgraded.elasticsearch.version = "8.19.30".to_owned();
    upgraded.kafka.resources.memory_mib = 8192;
    upgraded.elasticsearch.heap_mib = Some(3000);
    upgraded
        .common
        .labels
        .insert("team".to_owned(), "platform".to_owned());
    assert_eq!(immutable(&base), immutable(&upgraded));
    assert_eq!(immutable(&base).len(), 3);

    // A Job's spec cannot change either: a new image means a new Job, the
    // same stack the same Job.
    let job = |stack: &Stack| {
        build(stack)
            .iter()
            .find(|o| o.kind() == "Job")
            .unwrap()
            .name()
            .to_owned()
    };
    assert_eq!(job(&base), job(&base.clone()));
    assert_ne!(job(&base), job(&upgraded));
}
