//! Tables for the pure metadata core.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Namespace, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kelp_record::Owner;

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn reference(kind: &str, name: &str, controller: Option<bool>) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: "owner-uid".into(),
        controller,
        block_owner_deletion: None,
    }
}

fn owner(kind: &str, name: &str) -> Option<Owner> {
    Some(Owner {
        kind: kind.into(),
        name: name.into(),
    })
}

#[test]
fn owner_workload_derives_deployments_and_cron_jobs() {
    let hash = map(&[("pod-template-hash", "5d8f7c9b4")]);
    let none = map(&[]);
    type Case<'a> = (
        Vec<OwnerReference>,
        &'a BTreeMap<String, String>,
        Option<Owner>,
    );
    let table: Vec<Case<'_>> = vec![
        (vec![], &none, None),
        // The pod-template-hash label names the suffix exactly.
        (
            vec![reference("ReplicaSet", "web-5d8f7c9b4", Some(true))],
            &hash,
            owner("Deployment", "web"),
        ),
        (
            vec![reference("ReplicaSet", "my-web-app-5d8f7c9b4", Some(true))],
            &hash,
            owner("Deployment", "my-web-app"),
        ),
        // A label that does not match the name: a bare ReplicaSet.
        (
            vec![reference("ReplicaSet", "web-other", Some(true))],
            &hash,
            owner("ReplicaSet", "web-other"),
        ),
        // Without the label, a suffix in the hash alphabet.
        (
            vec![reference("ReplicaSet", "api-7b9fcd8c6", Some(true))],
            &none,
            owner("Deployment", "api"),
        ),
        // Vowels and 0/1/3 never appear in hashes; too short is no hash either.
        (
            vec![reference("ReplicaSet", "front-end", Some(true))],
            &none,
            owner("ReplicaSet", "front-end"),
        ),
        (
            vec![reference("ReplicaSet", "web-b2", Some(true))],
            &none,
            owner("ReplicaSet", "web-b2"),
        ),
        (
            vec![reference("StatefulSet", "kafka", Some(true))],
            &none,
            owner("StatefulSet", "kafka"),
        ),
        (
            vec![reference("DaemonSet", "kelp-collector", Some(true))],
            &none,
            owner("DaemonSet", "kelp-collector"),
        ),
        // CronJob jobs are <cronjob>-<minutes since the epoch>.
        (
            vec![reference("Job", "backup-29382741", Some(true))],
            &none,
            owner("CronJob", "backup"),
        ),
        (
            vec![reference("Job", "migrate-42", Some(true))],
            &none,
            owner("Job", "migrate-42"),
        ),
        (
            vec![reference("Job", "migrate", Some(true))],
            &none,
            owner("Job", "migrate"),
        ),
        // The controller reference wins over an earlier one.
        (
            vec![
                reference("ConfigMap", "settings", None),
                reference("StatefulSet", "db", Some(true)),
            ],
            &none,
            owner("StatefulSet", "db"),
        ),
        // No controller: the first reference.
        (
            vec![reference("Rollout", "canary", Some(false))],
            &none,
            owner("Rollout", "canary"),
        ),
    ];
    for (references, labels, want) in table {
        assert_eq!(
            owner_workload(&references, labels),
            want,
            "{references:?} {labels:?}"
        );
    }
}

#[test]
fn annotations_decide_exclusion_and_multiline_with_the_pod_winning() {
    use crate::parse::multiline::RuleName;
    struct Case {
        pod: &'static [(&'static str, &'static str)],
        namespace: &'static [(&'static str, &'static str)],
        container: &'static str,
        excluded: Option<Exclusion>,
        multiline: Option<RuleName>,
        invalid: usize,
    }
    let case = |pod, namespace, container, excluded, multiline, invalid| Case {
        pod,
        namespace,
        container,
        excluded,
        multiline,
        invalid,
    };
    let table = [
        case(&[], &[], "app", None, None, 0),
        case(
            &[("kelp.io/exclude", "true")],
            &[],
            "app",
            Some(Exclusion::Pod),
            None,
            0,
        ),
        case(
            &[("kelp.io/exclude", "TRUE")],
            &[],
            "app",
            Some(Exclusion::Pod),
            None,
            0,
        ),
        case(&[("kelp.io/exclude", "false")], &[], "app", None, None, 0),
        case(&[("kelp.io/exclude", "yes")], &[], "app", None, None, 1),
        // The namespace excludes; the pod opts back in, key by key.
        case(
            &[],
            &[("kelp.io/exclude", "true")],
            "app",
            Some(Exclusion::Pod),
            None,
            0,
        ),
        case(
            &[("kelp.io/exclude", "false")],
            &[("kelp.io/exclude", "true")],
            "app",
            None,
            None,
            0,
        ),
        case(
            &[("kelp.io/exclude-containers", "sidecar, proxy")],
            &[],
            "proxy",
            Some(Exclusion::Container),
            None,
            0,
        ),
        case(
            &[("kelp.io/exclude-containers", "sidecar, proxy")],
            &[],
            "app",
            None,
            None,
            0,
        ),
        case(
            &[],
            &[("kelp.io/exclude-containers", "sidecar")],
            "sidecar",
            Some(Exclusion::Container),
            None,
            0,
        ),
        case(
            &[("kelp.io/exclude-containers", "")],
            &[],
            "app",
            None,
            None,
            0,
        ),
        case(
            &[("fluentbit.io/exclude", "true")],
            &[],
            "app",
            Some(Exclusion::FluentBit),
            None,
            0,
        ),
        case(
            &[("co.elastic.logs/enabled", "false")],
            &[],
            "app",
            Some(Exclusion::Elastic),
            None,
            0,
        ),
        case(
            &[("co.elastic.logs/enabled", "true")],
            &[],
            "app",
            None,
            None,
            0,
        ),
        // Filebeat's per-container key overrides its pod-wide one.
        case(
            &[
                ("co.elastic.logs/enabled", "false"),
                ("co.elastic.logs.app/enabled", "true"),
            ],
            &[],
            "app",
            None,
            None,
            0,
        ),
        case(
            &[("co.elastic.logs.app/enabled", "false")],
            &[],
            "app",
            Some(Exclusion::Elastic),
            None,
            0,
        ),
        case(
            &[("co.elastic.logs.app/enabled", "false")],
            &[],
            "web",
            None,
            None,
            0,
        ),
        // Multiline: the container's key, then the pod's, then the namespace's.
        case(
            &[("kelp.io/multiline", "java")],
            &[],
            "app",
            None,
            Some(RuleName::Java),
            0,
        ),
        case(
            &[("kelp.io/multiline", " Go ")],
            &[],
            "app",
            None,
            Some(RuleName::Go),
            0,
        ),
        case(
            &[
                ("kelp.io/multiline", "java"),
                ("kelp.io/multiline.app", "python"),
            ],
            &[],
            "app",
            None,
            Some(RuleName::Python),
            0,
        ),
        case(
            &[
                ("kelp.io/multiline", "java"),
                ("kelp.io/multiline.app", "python"),
            ],
            &[],
            "web",
            None,
            Some(RuleName::Java),
            0,
        ),
        case(
            &[("kelp.io/multiline", "none")],
            &[("kelp.io/multiline", "java")],
            "app",
            None,
            Some(RuleName::None),
            0,
        ),
        case(
            &[],
            &[("kelp.io/multiline", "go")],
            "app",
            None,
            Some(RuleName::Go),
            0,
        ),
        case(&[("kelp.io/multiline", "cobol")], &[], "app", None, None, 1),
    ];
    for (index, case) in table.iter().enumerate() {
        let decision = decide(&map(case.pod), &map(case.namespace), case.container);
        assert_eq!(decision.excluded, case.excluded, "case {index}");
        assert_eq!(decision.multiline, case.multiline, "case {index}");
        assert_eq!(
            decision.invalid.len(),
            case.invalid,
            "case {index}: {decision:?}"
        );
    }
}

fn pod_meta(uid: &str, namespace: &str, name: &str) -> PodMeta {
    PodMeta {
        uid: uid.into(),
        namespace: namespace.into(),
        name: name.into(),
        labels: map(&[("app", name)]),
        annotations: map(&[("team", "a"), ("kelp.io/exclude", "false")]),
        owner: owner("StatefulSet", name),
        node: Some("node-1".into()),
        images: vec![("app".into(), format!("example.com/{name}:1"))],
    }
}

#[test]
fn enrichment_ships_what_the_inclusion_allows() {
    let pod = pod_meta("u1", "shop", "web");
    let all = Inclusion {
        labels: true,
        annotations: vec!["team".into()],
    };
    let enrichment = enrich(&pod, "app", &all);
    assert_eq!(enrichment.pod_uid.as_deref(), Some("u1"));
    assert_eq!(enrichment.labels, map(&[("app", "web")]));
    // The decision annotation is kept for deciding, not shipped.
    assert_eq!(enrichment.annotations, map(&[("team", "a")]));
    assert_eq!(enrichment.owner, owner("StatefulSet", "web"));
    assert_eq!(enrichment.node.as_deref(), Some("node-1"));
    assert_eq!(enrichment.image.as_deref(), Some("example.com/web:1"));
    // Another container has no image in this spec.
    assert_eq!(enrich(&pod, "sidecar", &all).image, None);

    let table = [
        (vec![], "team", false),
        (vec!["team"], "team", true),
        (vec!["team"], "teams", false),
        (vec!["example.com/*"], "example.com/owner", true),
        (vec!["example.com/*"], "example.org/owner", false),
        (vec!["*"], "anything", true),
    ];
    for (patterns, key, want) in table {
        let inclusion = Inclusion {
            labels: true,
            annotations: patterns.iter().map(|p| (*p).to_owned()).collect(),
        };
        assert_eq!(inclusion.ships_annotation(key), want, "{patterns:?} {key}");
    }
}

#[test]
fn pods_convert_with_images_of_every_container_kind() {
    let pod = Pod {
        metadata: ObjectMeta {
            uid: Some("u1".into()),
            namespace: Some("shop".into()),
            name: Some("web-5d8f7c9b4-x2x2x".into()),
            labels: Some(map(&[("app", "web"), ("pod-template-hash", "5d8f7c9b4")])),
            annotations: Some(map(&[
                ("kelp.io/multiline", "java"),
                ("fluentbit.io/exclude", "false"),
                ("co.elastic.logs.app/enabled", "true"),
                ("team", "a"),
                ("kubectl.kubernetes.io/last-applied-configuration", "{...}"),
            ])),
            owner_references: Some(vec![reference("ReplicaSet", "web-5d8f7c9b4", Some(true))]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("example.com/web:1".into()),
                ..Container::default()
            }],
            init_containers: Some(vec![Container {
                name: "init".into(),
                image: Some("example.com/init:1".into()),
                ..Container::default()
            }]),
            ephemeral_containers: Some(vec![EphemeralContainer {
                name: "debug".into(),
                image: Some("busybox".into()),
                ..EphemeralContainer::default()
            }]),
            ..PodSpec::default()
        }),
        status: None,
    };
    let inclusion = Inclusion {
        labels: true,
        annotations: vec!["team".into()],
    };
    let meta = PodMeta::from_pod(&pod, &inclusion).unwrap();
    assert_eq!(meta.uid, "u1");
    assert_eq!(
        (meta.namespace.as_str(), meta.name.as_str()),
        ("shop", "web-5d8f7c9b4-x2x2x")
    );
    assert_eq!(meta.owner, owner("Deployment", "web"));
    assert_eq!(meta.node.as_deref(), Some("node-1"));
    for (container, image) in [
        ("app", "example.com/web:1"),
        ("init", "example.com/init:1"),
        ("debug", "busybox"),
    ] {
        assert_eq!(meta.image(container), Some(image));
    }
    // Decision annotations and shipped ones are kept; the rest is dropped.
    let kept: Vec<&str> = meta.annotations.keys().map(String::as_str).collect();
    assert_eq!(
        kept,
        [
            "co.elastic.logs.app/enabled",
            "fluentbit.io/exclude",
            "kelp.io/multiline",
            "team"
        ]
    );
    assert_eq!(meta.labels.len(), 2);

    // Labels off: none kept, the owner still derived from them.
    let without = PodMeta::from_pod(&pod, &Inclusion::default()).unwrap();
    assert!(without.labels.is_empty());
    assert_eq!(without.owner, owner("Deployment", "web"));
    assert_eq!(without.annotations.len(), 3);

    // No uid, no pod.
    let mut anonymous = pod.clone();
    anonymous.metadata.uid = None;
    assert_eq!(PodMeta::from_pod(&anonymous, &inclusion), None);

    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some("shop".into()),
            annotations: Some(map(&[("kelp.io/exclude", "true"), ("owner", "team-a")])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let meta = NamespaceMeta::from_namespace(&namespace);
    assert_eq!(meta.name, "shop");
    assert_eq!(meta.annotations, map(&[("kelp.io/exclude", "true")]));
}

#[test]
fn store_keeps_deleted_pods_for_the_retention_and_relists_mark_deletions() {
    let mut store = Store::default();
    assert!(!store.synced());
    assert!(store.apply_pod(pod_meta("u1", "shop", "web")));
    // The same pod again (a status update) changes nothing readers see.
    assert!(!store.apply_pod(pod_meta("u1", "shop", "web")));
    let mut relabelled = pod_meta("u1", "shop", "web");
    relabelled.labels.insert("version".into(), "2".into());
    assert!(store.apply_pod(relabelled));
    assert_eq!(
        store.pod(Some("u1"), "shop", "web").unwrap().labels.len(),
        2
    );
    // By name when the uid is absent or unknown (a static pod's hash).
    assert_eq!(store.pod(None, "shop", "web").unwrap().uid, "u1");
    assert_eq!(
        store.pod(Some("config-hash"), "shop", "web").unwrap().uid,
        "u1"
    );
    assert!(store.pod(None, "shop", "api").is_none());

    // Deleted: still found until the retention passed.
    store.delete_pod("u1", 1_000);
    assert!(store.pod(Some("u1"), "shop", "web").is_some());
    assert_eq!(store.evict(1_000 + 299_999, 300_000), 0);
    assert!(store.pod(Some("u1"), "shop", "web").is_some());
    assert_eq!(store.evict(1_000 + 300_000, 300_000), 1);
    assert!(store.pod(Some("u1"), "shop", "web").is_none());
    assert!(store.pod(None, "shop", "web").is_none());
    assert_eq!(store.pods(), 0);

    // A relist that no longer lists a pod marks it deleted, then evicts it.
    store.apply_pod(pod_meta("u2", "shop", "api"));
    store.apply_pod(pod_meta("u3", "shop", "db"));
    store.pods_relist_started();
    store.apply_pod(pod_meta("u3", "shop", "db"));
    assert!(store.pods_relist_done(5_000));
    assert!(store.pod(Some("u2"), "shop", "api").is_some());
    assert_eq!(store.evict(5_000, 0), 1);
    assert!(store.pod(Some("u2"), "shop", "api").is_none());
    assert!(store.pod(Some("u3"), "shop", "db").is_some());

    // A recreated pod with the same name takes over the name; evicting the
    // old one leaves the new one findable by name.
    store.apply_pod(pod_meta("u4", "shop", "kafka-0"));
    store.delete_pod("u4", 6_000);
    store.apply_pod(pod_meta("u5", "shop", "kafka-0"));
    assert_eq!(store.pod(None, "shop", "kafka-0").unwrap().uid, "u5");
    assert_eq!(store.evict(6_000, 0), 1);
    assert_eq!(store.pod(None, "shop", "kafka-0").unwrap().uid, "u5");

    // Namespaces: changes and relists.
    let ns = |name: &str, exclude: &str| NamespaceMeta {
        name: name.into(),
        annotations: map(&[("kelp.io/exclude", exclude)]),
    };
    assert!(store.apply_namespace(ns("shop", "false")));
    assert!(!store.apply_namespace(ns("shop", "false")));
    assert!(store.apply_namespace(ns("shop", "true")));
    assert!(store.apply_namespace(ns("gone", "true")));
    store.namespaces_relist_started();
    store.apply_namespace(ns("shop", "true"));
    assert!(store.namespaces_relist_done());
    assert!(store.namespace("gone").is_none());
    assert!(store.namespace("shop").is_some());
    assert!(store.synced());
}

#[test]
fn open_files_keep_their_metadata_after_eviction_and_follow_changes() {
    let cache = MetadataCache::new(Inclusion {
        labels: true,
        annotations: Vec::new(),
    });
    let path = crate::parse::path::parse_path("/var/log/pods/shop_web_u1/app/0.log");
    let mut file = FileMeta::default();
    // Nothing known yet: looked up once per generation.
    assert!(!file.refresh(&cache, path.as_ref()));
    assert!(!file.pod_known());
    assert_eq!(file.enrichment("app", cache.inclusion()), None);

    cache.update(|store| ((), store.apply_pod(pod_meta("u1", "shop", "web"))));
    assert!(file.refresh(&cache, path.as_ref()));
    assert!(file.pod_known());
    assert_eq!(
        file.enrichment("app", cache.inclusion()).unwrap().labels,
        map(&[("app", "web")])
    );
    assert_eq!(file.decision("app").excluded, None);
    // Unchanged generation: no work.
    assert!(!file.refresh(&cache, path.as_ref()));

    // The namespace excludes, the pod's own "false" wins.
    cache.update(|store| {
        let ns = NamespaceMeta {
            name: "shop".into(),
            annotations: map(&[("kelp.io/exclude-containers", "app")]),
        };
        ((), store.apply_namespace(ns))
    });
    assert!(file.refresh(&cache, path.as_ref()));
    assert_eq!(file.decision("app").excluded, Some(Exclusion::Container));

    // Deleted and evicted: the open file keeps what it had.
    cache.update(|store| {
        store.delete_pod("u1", 0);
        store.delete_namespace("shop");
        (store.evict(10, 0), true)
    });
    assert!(!file.refresh(&cache, path.as_ref()));
    assert!(file.pod_known());
    assert_eq!(file.decision("app").excluded, Some(Exclusion::Container));
}
