use super::*;

fn stack(yaml: &str) -> Stack {
    Stack::from_yaml_str(yaml).unwrap()
}

fn node(name: &str) -> NodeFacts {
    NodeFacts {
        name: name.to_owned(),
        ready: true,
        unschedulable: false,
        blocking_taints: Vec::new(),
    }
}

fn class(name: &str, provisioner: &str, expansion: bool, default: bool) -> StorageClassFacts {
    StorageClassFacts {
        name: name.to_owned(),
        provisioner: provisioner.to_owned(),
        allow_volume_expansion: expansion,
        is_default: default,
    }
}

fn ceph_pod(name: &str, ready: bool) -> PodFacts {
    PodFacts {
        namespace: "ceph-csi".to_owned(),
        name: name.to_owned(),
        ready,
    }
}

/// A cluster where the default stack fits: 1.36, three nodes, a default
/// expandable class, ceph-csi running, no namespace yet.
fn good() -> Facts {
    Facts {
        server_version: ServerVersion {
            major: "1".to_owned(),
            minor: "36".to_owned(),
            git_version: "v1.36.3".to_owned(),
        },
        storage_classes: vec![
            class("fast", "kwok.x-k8s.io/volume", true, true),
            class("ceph", CEPH_CSI_RBD_DRIVER, true, false),
            class("fixed", "kwok.x-k8s.io/volume", false, false),
        ],
        csi_drivers: vec![CEPH_CSI_RBD_DRIVER.to_owned()],
        ceph_csi_pods: vec![
            ceph_pod("csi-rbdplugin-provisioner-0", true),
            ceph_pod("csi-rbdplugin-abcde", true),
        ],
        ceph_csi_secret_keys: Some(vec!["userID".to_owned(), "userKey".to_owned()]),
        ceph_csi_configs: vec![(
            "ceph-csi".to_owned(),
            format!(r#"[{{"clusterID": "{CLUSTER_ID}", "monitors": ["10.0.0.1:6789"]}}]"#),
        )],
        nodes: vec![node("a"), node("b"), node("c")],
        namespace: None,
    }
}

const CLUSTER_ID: &str = "7d3c1f2e-0000-4000-8000-000000000000";

const RBD: &str =
    "storage: {rbd: {cluster_id: 7d3c1f2e-0000-4000-8000-000000000000, pool: kube}}\n";

fn outcome(report: &PreflightReport, name: &str) -> Option<Outcome> {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.outcome)
}

#[test]
fn each_problem_fails_its_own_check_with_a_fix() {
    type Change = fn(&mut Facts);
    // (case, stack yaml, change to the good facts, check, outcome, text in detail or fix)
    let cases: &[(&str, &str, Change, &str, Outcome, &str)] = &[
        (
            "all good",
            "",
            |_| {},
            "kubernetes version",
            Outcome::Pass,
            "1.33 or later",
        ),
        (
            "all good storage",
            "",
            |_| {},
            "storage class",
            Outcome::Pass,
            "\"fast\"",
        ),
        (
            "old kubernetes",
            "",
            |f| {
                f.server_version = ServerVersion {
                    major: "1".to_owned(),
                    minor: "32".to_owned(),
                    git_version: "v1.32.9".to_owned(),
                }
            },
            "kubernetes version",
            Outcome::Fail,
            "upgrade the cluster to Kubernetes 1.33",
        ),
        (
            "provider minor with +",
            "",
            |f| {
                f.server_version = ServerVersion {
                    major: "1".to_owned(),
                    minor: "33+".to_owned(),
                    git_version: "v1.33.2-gke.100".to_owned(),
                }
            },
            "kubernetes version",
            Outcome::Pass,
            "v1.33.2-gke.100",
        ),
        (
            "newer than tested",
            "",
            |f| f.server_version.minor = "38".to_owned(),
            "kubernetes version",
            Outcome::Warn,
            "newer than kelp was tested",
        ),
        (
            "unreadable version",
            "",
            |f| f.server_version = ServerVersion::default(),
            "kubernetes version",
            Outcome::Warn,
            "cannot read",
        ),
        (
            "named class missing",
            "storage: {storage_class: slow}",
            |_| {},
            "storage class",
            Outcome::Fail,
            "storageclass \"slow\" (storage.storage_class) does not exist; the cluster has: fast, ceph, fixed",
        ),
        (
            "named class without expansion",
            "storage: {storage_class: fixed}",
            |_| {},
            "storage class",
            Outcome::Warn,
            "kubectl patch storageclass fixed",
        ),
        (
            "no default class",
            "",
            |f| {
                f.storage_classes
                    .iter_mut()
                    .for_each(|c| c.is_default = false)
            },
            "storage class",
            Outcome::Fail,
            "set storage.storage_class",
        ),
        (
            "rbd without the driver",
            RBD,
            |f| f.csi_drivers.clear(),
            "ceph-csi driver",
            Outcome::Fail,
            "install ceph-csi's rbd plugin",
        ),
        (
            "rbd with a pod not ready",
            RBD,
            |f| f.ceph_csi_pods[1].ready = false,
            "ceph-csi pods",
            Outcome::Fail,
            "1 of 2 ceph-csi pods are not ready: ceph-csi/csi-rbdplugin-abcde",
        ),
        (
            "rbd without pods",
            RBD,
            |f| f.ceph_csi_pods.clear(),
            "ceph-csi pods",
            Outcome::Fail,
            "no pod matches",
        ),
        (
            "rbd without the client secret",
            RBD,
            |f| f.ceph_csi_secret_keys = None,
            "ceph-csi secret",
            Outcome::Fail,
            "kubectl -n ceph-csi create secret generic csi-rbd-secret",
        ),
        (
            "rbd secret without the key",
            RBD,
            |f| f.ceph_csi_secret_keys = Some(vec!["userID".to_owned()]),
            "ceph-csi secret",
            Outcome::Fail,
            "secret ceph-csi/csi-rbd-secret lacks userKey",
        ),
        (
            "ceph-csi does not know the cluster",
            RBD,
            |f| f.ceph_csi_configs[0].1 = r#"[{"clusterID": "other"}]"#.to_owned(),
            "ceph-csi cluster",
            Outcome::Fail,
            "does not list clusterID 7d3c1f2e-0000-4000-8000-000000000000",
        ),
        (
            "no ceph-csi config map",
            RBD,
            |f| f.ceph_csi_configs.clear(),
            "ceph-csi cluster",
            Outcome::Fail,
            "add {\"clusterID\": \"7d3c1f2e-0000-4000-8000-000000000000\"",
        ),
        (
            "a named ceph class needs the driver too",
            "storage: {storage_class: ceph}",
            |f| f.csi_drivers.clear(),
            "ceph-csi driver",
            Outcome::Fail,
            "does not exist",
        ),
        (
            "required anti-affinity, too few nodes",
            "",
            |f| f.nodes[2].ready = false,
            "nodes for kafka",
            Outcome::Fail,
            "lower kafka.replicas to 2, or set common.anti_affinity: preferred",
        ),
        (
            "cordoned and tainted nodes do not count",
            "",
            |f| {
                f.nodes[0].unschedulable = true;
                f.nodes[1].blocking_taints = vec!["dedicated=gpu:NoSchedule".to_owned()];
            },
            "nodes for elasticsearch",
            Outcome::Fail,
            "not counted: a (cordoned), b (tainted dedicated=gpu:NoSchedule)",
        ),
        (
            "preferred anti-affinity, too few nodes",
            "common: {anti_affinity: preferred}",
            |f| f.nodes.truncate(1),
            "nodes for zookeeper",
            Outcome::Warn,
            "some nodes carry two",
        ),
        (
            "no node at all",
            "",
            |f| f.nodes.clear(),
            "nodes",
            Outcome::Fail,
            "add a ready, untainted node",
        ),
        (
            "restricted namespace and the init container",
            "",
            |f| {
                f.namespace = Some(NamespaceFacts {
                    enforce: Some("restricted".to_owned()),
                })
            },
            "pod security: elasticsearch max-map-count",
            Outcome::Fail,
            "kubectl label namespace kelp pod-security.kubernetes.io/enforce=privileged --overwrite; or set elasticsearch.max_map_count_init: false",
        ),
        (
            "baseline namespace and the collector",
            "",
            |f| {
                f.namespace = Some(NamespaceFacts {
                    enforce: Some("baseline".to_owned()),
                })
            },
            "pod security: collector host paths",
            Outcome::Fail,
            "refuses the collector's hostPath volumes",
        ),
        (
            "no init container, restricted namespace",
            "elasticsearch: {max_map_count_init: false}",
            |f| {
                f.namespace = Some(NamespaceFacts {
                    enforce: Some("restricted".to_owned()),
                })
            },
            "pod security: elasticsearch max-map-count",
            Outcome::Pass,
            "no privileged init container",
        ),
        (
            "unlabelled namespace",
            "",
            |f| f.namespace = Some(NamespaceFacts { enforce: None }),
            "pod security: elasticsearch max-map-count",
            Outcome::Pass,
            "cluster's default level applies",
        ),
        (
            "privileged namespace",
            "",
            |f| {
                f.namespace = Some(NamespaceFacts {
                    enforce: Some("privileged".to_owned()),
                })
            },
            "pod security: collector host paths",
            Outcome::Pass,
            "enforces privileged",
        ),
    ];
    for (case, yaml, change, check, expected, text) in cases {
        let mut facts = good();
        change(&mut facts);
        let report = evaluate(&facts, &stack(yaml));
        let found = report
            .checks
            .iter()
            .find(|c| c.name == *check)
            .unwrap_or_else(|| panic!("{case}: no check {check:?} in\n{report}"));
        assert_eq!(found.outcome, *expected, "{case}:\n{report}");
        let words = format!("{} {}", found.detail, found.fix.clone().unwrap_or_default());
        assert!(words.contains(text), "{case}: {text:?} not in {words:?}");
        if found.outcome != Outcome::Pass {
            assert!(
                found.fix.is_some(),
                "{case}: a failure or warning needs a fix"
            );
        }
        assert_eq!(
            report.passed(),
            report.checks.iter().all(|c| c.outcome != Outcome::Fail),
            "{case}"
        );
    }
}

#[test]
fn a_good_cluster_passes_everything() {
    for yaml in [
        "",
        RBD,
        "kafka: {mode: kraft}",
        "storage: {storage_class: ceph}",
    ] {
        let report = evaluate(&good(), &stack(yaml));
        assert!(report.passed(), "{yaml}:\n{report}");
        assert!(
            report.checks.iter().all(|c| c.outcome == Outcome::Pass),
            "{yaml}:\n{report}"
        );
    }
}

#[test]
fn which_checks_run_depends_on_the_stack() {
    let names = |yaml: &str| -> Vec<String> {
        evaluate(&good(), &stack(yaml))
            .checks
            .into_iter()
            .map(|c| c.name)
            .collect()
    };
    // No ceph-csi checks unless the volumes are RBD.
    assert!(!names("").iter().any(|n| n.starts_with("ceph-csi")));
    assert!(names(RBD).iter().any(|n| n == "ceph-csi pods"));
    assert!(names(RBD).iter().any(|n| n == "ceph-csi cluster"));
    // A named ceph class: the driver is checked, its wiring is the class's.
    assert!(
        !names("storage: {storage_class: ceph}")
            .iter()
            .any(|n| n == "ceph-csi secret")
    );
    // No ZooKeeper in KRaft mode.
    assert!(names("").iter().any(|n| n == "nodes for zookeeper"));
    assert!(
        !names("kafka: {mode: kraft}")
            .iter()
            .any(|n| n == "nodes for zookeeper")
    );
}

#[test]
fn one_failure_fails_the_report_and_display_shows_the_fix() {
    let mut facts = good();
    facts.nodes.truncate(2);
    let report = evaluate(&facts, &stack(""));
    assert!(!report.passed());
    assert_eq!(outcome(&report, "nodes for kafka"), Some(Outcome::Fail));
    assert_eq!(report.failures().count(), 3, "{report}");
    let text = report.to_string();
    assert!(
        text.starts_with("PASS kubernetes version: v1.36.3"),
        "{text}"
    );
    let fail = text
        .lines()
        .position(|l| l.starts_with("FAIL nodes for kafka:"))
        .unwrap();
    assert!(
        text.lines()
            .nth(fail + 1)
            .unwrap()
            .starts_with("     fix: add nodes, lower kafka.replicas to 2"),
        "{text}"
    );
    // Passing checks print no fix line.
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with("fix:"))
            .count(),
        report
            .checks
            .iter()
            .filter(|c| c.outcome != Outcome::Pass)
            .count()
    );
}

#[test]
fn server_versions_parse() {
    let cases = [
        ("1", "36", "v1.36.3", Some((1, 36))),
        ("1", "33+", "v1.33.1-eks", Some((1, 33))),
        ("", "", "v1.34.0", Some((1, 34))),
        ("", "", "garbage", None),
    ];
    for (major, minor, git, expected) in cases {
        let version = ServerVersion {
            major: major.to_owned(),
            minor: minor.to_owned(),
            git_version: git.to_owned(),
        };
        assert_eq!(version.parsed(), expected, "{git}");
    }
}

#[test]
fn nodes_are_read_with_their_blocking_taints() {
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus, Taint};
    let taint = |key: &str, value: Option<&str>, effect: &str| Taint {
        key: key.to_owned(),
        value: value.map(str::to_owned),
        effect: effect.to_owned(),
        ..Taint::default()
    };
    let node = |ready: &str, cordoned: Option<bool>, taints: Vec<Taint>| Node {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("n".to_owned()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            unschedulable: cordoned,
            taints: Some(taints),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".to_owned(),
                status: ready.to_owned(),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        }),
    };
    // (node, ready, unschedulable, blocking taints, schedulable)
    let cases = [
        (node("True", None, vec![]), true, false, vec![], true),
        (node("False", None, vec![]), false, false, vec![], false),
        (
            node("Unknown", Some(false), vec![]),
            false,
            false,
            vec![],
            false,
        ),
        (node("True", Some(true), vec![]), true, true, vec![], false),
        (
            node(
                "True",
                None,
                vec![
                    taint("soft", None, "PreferNoSchedule"),
                    taint("dedicated", Some("gpu"), "NoSchedule"),
                    taint(
                        "node.kubernetes.io/out-of-service",
                        Some("nodeshutdown"),
                        "NoExecute",
                    ),
                ],
            ),
            true,
            false,
            vec![
                "dedicated=gpu:NoSchedule".to_owned(),
                "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute".to_owned(),
            ],
            false,
        ),
        (
            node("True", None, vec![taint("soft", None, "PreferNoSchedule")]),
            true,
            false,
            vec![],
            true,
        ),
    ];
    for (i, (node, ready, unschedulable, taints, schedulable)) in cases.into_iter().enumerate() {
        let facts = node_facts(node);
        assert_eq!(facts.ready, ready, "case {i}");
        assert_eq!(facts.unschedulable, unschedulable, "case {i}");
        assert_eq!(facts.blocking_taints, taints, "case {i}");
        assert_eq!(facts.schedulable(), schedulable, "case {i}");
    }
}
