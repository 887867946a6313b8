//! The preflight: before `kelp apply` touches anything, check that the
//! cluster can run the stack and say how to fix what cannot.
//!
//! [`gather`] reads the [`Facts`] from the API server (its version, the
//! StorageClasses and CSI drivers, the ceph-csi pods, the nodes, the
//! namespace's Pod Security label); [`evaluate`] is the pure decision, one
//! [`Check`] per question, tested with data tables; [`run`] is both.
//!
//! The minimum Kubernetes version is [`MIN_KUBERNETES`], 1.33: kelp's
//! client is built on k8s-openapi 0.29, whose oldest API is 1.33, and
//! upstream no longer supports anything older. By 1.33 everything the
//! rendered objects use is GA (StatefulSet claim retention, 1.32; Pod
//! Security admission; online volume expansion).

use std::fmt;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use kube::api::{Api, ListParams};

use crate::stack::{AntiAffinity, KafkaMode, Rbd, Stack};

/// The oldest Kubernetes (major, minor) kelp supports.
pub const MIN_KUBERNETES: (u32, u32) = (1, 33);
/// The newest Kubernetes kelp is tested against (the testbed's).
pub const NEWEST_TESTED_KUBERNETES: (u32, u32) = (1, 36);
/// ceph-csi's RBD driver name (its `CSIDriver` object and provisioner).
pub const CEPH_CSI_RBD_DRIVER: &str = "rbd.csi.ceph.com";
/// The ceph-csi RBD pods, in any namespace: `app` is
/// `csi-rbdplugin-provisioner` and `csi-rbdplugin` in ceph-csi's own
/// manifests, `ceph-csi-rbd` in its Helm chart.
pub const CEPH_CSI_POD_SELECTOR: &str =
    "app in (csi-rbdplugin,csi-rbdplugin-provisioner,ceph-csi-rbd)";
/// ceph-csi's ConfigMap listing each Ceph cluster (`clusterID`, monitors)
/// in its `config.json`, in the driver's namespace.
pub const CEPH_CSI_CONFIG_MAP: &str = "ceph-csi-config";
/// The namespace label Pod Security admission enforces.
pub const POD_SECURITY_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// The annotation that makes a StorageClass the default.
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Fine.
    Pass,
    /// Works, but something is worth knowing (the apply goes on).
    Warn,
    /// The stack cannot work on this cluster as it is: the apply stops.
    Fail,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
        }
    }
}

/// One question the preflight answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Short name, e.g. `storage class`.
    pub name: String,
    /// The answer.
    pub outcome: Outcome,
    /// What was found, e.g. `storageclass "fast" does not exist`.
    pub detail: String,
    /// How to fix a failure or warning.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreflightReport {
    /// In the order they were asked.
    pub checks: Vec<Check>,
}

impl PreflightReport {
    /// Whether no check failed (warnings pass).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Fail)
    }
}

impl fmt::Display for PreflightReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(
                f,
                "{} {}: {}",
                check.outcome.as_str(),
                check.name,
                check.detail
            )?;
            if check.outcome != Outcome::Pass
                && let Some(fix) = &check.fix
            {
                writeln!(f, "     fix: {fix}")?;
            }
        }
        Ok(())
    }
}

/// The API server's version as it reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerVersion {
    /// `major`, e.g. `1`.
    pub major: String,
    /// `minor`, e.g. `36` (some providers add `+`).
    pub minor: String,
    /// `gitVersion`, e.g. `v1.36.3`.
    pub git_version: String,
}

impl ServerVersion {
    /// (major, minor), from the fields or else from `gitVersion`.
    pub fn parsed(&self) -> Option<(u32, u32)> {
        let digits = |s: &str| -> Option<u32> {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            s[..end].parse().ok()
        };
        if let (Some(major), Some(minor)) = (digits(&self.major), digits(&self.minor)) {
            return Some((major, minor));
        }
        let mut parts = self.git_version.trim_start_matches('v').split('.');
        Some((digits(parts.next()?)?, digits(parts.next()?)?))
    }
}

/// A StorageClass, as far as the preflight cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageClassFacts {
    /// Its name.
    pub name: String,
    /// Its provisioner, e.g. `rbd.csi.ceph.com`.
    pub provisioner: String,
    /// `allowVolumeExpansion`.
    pub allow_volume_expansion: bool,
    /// Marked as the cluster's default.
    pub is_default: bool,
}

/// A pod of ceph-csi.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its `Ready` condition is true.
    pub ready: bool,
}

/// A node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// Its name.
    pub name: String,
    /// Its `Ready` condition is true.
    pub ready: bool,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    /// Taints with effect `NoSchedule` or `NoExecute`, as `key=value:effect`:
    /// kelp's stateful pods tolerate none.
    pub blocking_taints: Vec<String>,
}

impl NodeFacts {
    /// Whether kelp's ZooKeeper, Kafka and Elasticsearch pods can go there.
    pub fn schedulable(&self) -> bool {
        self.ready && !self.unschedulable && self.blocking_taints.is_empty()
    }
}

/// The stack's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceFacts {
    /// Its `pod-security.kubernetes.io/enforce` label, if any.
    pub enforce: Option<String>,
}

/// What the preflight reads from the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The API server's version.
    pub server_version: ServerVersion,
    /// Every StorageClass.
    pub storage_classes: Vec<StorageClassFacts>,
    /// Names of every CSIDriver object.
    pub csi_drivers: Vec<String>,
    /// Pods matching [`CEPH_CSI_POD_SELECTOR`], in every namespace.
    pub ceph_csi_pods: Vec<PodFacts>,
    /// With `storage.rbd`: the keys of the Secret its StorageClasses name
    /// (`secret_namespace/secret_name`); `None` when it does not exist.
    pub ceph_csi_secret_keys: Option<Vec<String>>,
    /// With `storage.rbd`: `config.json` of every [`CEPH_CSI_CONFIG_MAP`]
    /// in the namespaces of the ceph-csi pods, as (namespace, text).
    pub ceph_csi_configs: Vec<(String, String)>,
    /// Every node.
    pub nodes: Vec<NodeFacts>,
    /// The stack's namespace; `None` when it does not exist yet.
    pub namespace: Option<NamespaceFacts>,
}

/// Why the facts could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The API server refused or could not be reached.
    #[error("{step} failed: {source}")]
    Api {
        /// What was being read, e.g. `listing nodes`.
        step: &'static str,
        /// The cause.
        source: kube::Error,
    },
}

fn api_error(step: &'static str) -> impl FnOnce(kube::Error) -> PreflightError {
    move |source| PreflightError::Api { step, source }
}

/// Reads the facts and evaluates them.
///
/// # Errors
/// When the API server cannot be read.
pub async fn run(client: &kube::Client, stack: &Stack) -> Result<PreflightReport, PreflightError> {
    let facts = gather(client, stack).await?;
    Ok(evaluate(&facts, stack))
}

fn is_true(condition_status: &str) -> bool {
    condition_status == "True"
}

/// Reads what [`evaluate`] needs from the API server.
///
/// # Errors
/// When a read fails (a missing namespace is a fact, not an error).
pub async fn gather(client: &kube::Client, stack: &Stack) -> Result<Facts, PreflightError> {
    let info = client
        .apiserver_version()
        .await
        .map_err(api_error("reading the api server version"))?;
    let server_version = ServerVersion {
        major: info.major,
        minor: info.minor,
        git_version: info.git_version,
    };

    let classes = Api::<StorageClass>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api_error("listing storage classes"))?;
    let storage_classes = classes
        .items
        .into_iter()
        .map(|class| StorageClassFacts {
            is_default: class
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .is_some_and(|v| v == "true"),
            name: class.metadata.name.unwrap_or_default(),
            provisioner: class.provisioner,
            allow_volume_expansion: class.allow_volume_expansion.unwrap_or(false),
        })
        .collect();

    let drivers = Api::<CSIDriver>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api_error("listing csi drivers"))?;
    let csi_drivers = drivers
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();

    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels(CEPH_CSI_POD_SELECTOR))
        .await
        .map_err(api_error("listing ceph-csi pods"))?;
    let ceph_csi_pods: Vec<PodFacts> = pods
        .items
        .into_iter()
        .map(|pod| PodFacts {
            ready: pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && is_true(&c.status))),
            namespace: pod.metadata.namespace.unwrap_or_default(),
            name: pod.metadata.name.unwrap_or_default(),
        })
        .collect();

    let mut ceph_csi_secret_keys = None;
    let mut ceph_csi_configs = Vec::new();
    if let Some(rbd) = &stack.storage.rbd {
        ceph_csi_secret_keys = Api::<Secret>::namespaced(client.clone(), &rbd.secret_namespace)
            .get_opt(&rbd.secret_name)
            .await
            .map_err(api_error("reading the ceph-csi secret"))?
            .map(|secret| {
                secret
                    .data
                    .unwrap_or_default()
                    .into_keys()
                    .chain(secret.string_data.unwrap_or_default().into_keys())
                    .collect()
            });
        let namespaces: std::collections::BTreeSet<&str> =
            ceph_csi_pods.iter().map(|p| p.namespace.as_str()).collect();
        for namespace in namespaces {
            let config = Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get_opt(CEPH_CSI_CONFIG_MAP)
                .await
                .map_err(api_error("reading the ceph-csi config map"))?;
            if let Some(text) = config
                .and_then(|c| c.data)
                .and_then(|mut d| d.remove("config.json"))
            {
                ceph_csi_configs.push((namespace.to_owned(), text));
            }
        }
    }

    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api_error("listing nodes"))?;
    let nodes = nodes.items.into_iter().map(node_facts).collect();

    let namespace = Api::<Namespace>::all(client.clone())
        .get_opt(&stack.namespace)
        .await
        .map_err(api_error("reading the stack's namespace"))?
        .map(|ns| NamespaceFacts {
            enforce: ns
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_SECURITY_ENFORCE_LABEL))
                .cloned(),
        });

    Ok(Facts {
        server_version,
        storage_classes,
        csi_drivers,
        ceph_csi_pods,
        ceph_csi_secret_keys,
        ceph_csi_configs,
        nodes,
        namespace,
    })
}

fn node_facts(node: Node) -> NodeFacts {
    let spec = node.spec.unwrap_or_default();
    NodeFacts {
        name: node.metadata.name.unwrap_or_default(),
        ready: node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && is_true(&c.status))),
        unschedulable: spec.unschedulable.unwrap_or(false),
        blocking_taints: spec
            .taints
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .map(|t| match t.value {
                Some(value) => format!("{}={value}:{}", t.key, t.effect),
                None => format!("{}:{}", t.key, t.effect),
            })
            .collect(),
    }
}

/// Decides every check from the facts: pure.
pub fn evaluate(facts: &Facts, stack: &Stack) -> PreflightReport {
    let mut checks = vec![kubernetes_version(&facts.server_version)];
    checks.extend(storage(facts, stack));
    checks.extend(nodes(facts, stack));
    checks.extend(pod_security(facts, stack));
    PreflightReport { checks }
}

fn version_text((major, minor): (u32, u32)) -> String {
    format!("{major}.{minor}")
}

fn kubernetes_version(version: &ServerVersion) -> Check {
    const NAME: &str = "kubernetes version";
    let Some(parsed) = version.parsed() else {
        return Check::warn(
            NAME,
            format!(
                "cannot read the api server's version ({:?}); kelp needs {} or later",
                version.git_version,
                version_text(MIN_KUBERNETES)
            ),
            "check the version with kubectl version; kelp goes on as if it were supported",
        );
    };
    if parsed < MIN_KUBERNETES {
        return Check::fail(
            NAME,
            format!(
                "the api server is {}; kelp needs {} or later",
                version.git_version,
                version_text(MIN_KUBERNETES)
            ),
            format!(
                "upgrade the cluster to Kubernetes {} or later",
                version_text(MIN_KUBERNETES)
            ),
        );
    }
    if parsed > NEWEST_TESTED_KUBERNETES {
        return Check::warn(
            NAME,
            format!(
                "the api server is {}, newer than kelp was tested with ({})",
                version.git_version,
                version_text(NEWEST_TESTED_KUBERNETES)
            ),
            "none needed; report problems with this version",
        );
    }
    Check::pass(
        NAME,
        format!(
            "{} (kelp needs {} or later)",
            version.git_version,
            version_text(MIN_KUBERNETES)
        ),
    )
}

fn class_names(facts: &Facts) -> String {
    if facts.storage_classes.is_empty() {
        return "none".to_owned();
    }
    facts
        .storage_classes
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn storage(facts: &Facts, stack: &Stack) -> Vec<Check> {
    const NAME: &str = "storage class";
    let mut checks = Vec::new();
    let mut uses_rbd = stack.storage.rbd.is_some();
    if let Some(name) = &stack.storage.storage_class {
        match facts.storage_classes.iter().find(|c| &c.name == name) {
            None => checks.push(Check::fail(
                NAME,
                format!(
                    "storageclass {name:?} (storage.storage_class) does not exist; the cluster has: {}",
                    class_names(facts)
                ),
                "create the StorageClass, or set storage.storage_class to an existing one \
                 (or use storage.rbd to have kelp render a ceph-csi class)",
            )),
            Some(class) => {
                uses_rbd |= class.provisioner == CEPH_CSI_RBD_DRIVER;
                checks.push(class_check(NAME, class));
            }
        }
    } else if stack.storage.rbd.is_some() {
        checks.push(Check::pass(
            NAME,
            format!(
                "kelp renders ceph-csi rbd classes for pool {:?}",
                stack
                    .storage
                    .rbd
                    .as_ref()
                    .map(|r| r.pool.as_str())
                    .unwrap_or_default()
            ),
        ));
    } else {
        match facts.storage_classes.iter().find(|c| c.is_default) {
            None => checks.push(Check::fail(
                NAME,
                format!(
                    "the stack names no storage class and the cluster has no default one; the cluster has: {}",
                    class_names(facts)
                ),
                "set storage.storage_class to an existing StorageClass or configure storage.rbd",
            )),
            Some(class) => {
                uses_rbd |= class.provisioner == CEPH_CSI_RBD_DRIVER;
                checks.push(class_check(NAME, class));
            }
        }
    }
    if uses_rbd {
        checks.extend(ceph_csi(facts));
    }
    if let Some(rbd) = &stack.storage.rbd {
        checks.extend(rbd_wiring(facts, rbd));
    }
    checks
}

fn class_check(name: &str, class: &StorageClassFacts) -> Check {
    if class.allow_volume_expansion {
        Check::pass(
            name,
            format!(
                "{:?} ({}), volume expansion allowed",
                class.name, class.provisioner
            ),
        )
    } else {
        Check::warn(
            name,
            format!(
                "{:?} ({}) does not allow volume expansion: volumes cannot grow later",
                class.name, class.provisioner
            ),
            format!(
                "kubectl patch storageclass {} -p '{{\"allowVolumeExpansion\": true}}' (if its driver can expand)",
                class.name
            ),
        )
    }
}

fn ceph_csi(facts: &Facts) -> Vec<Check> {
    let mut checks = Vec::new();
    if facts.csi_drivers.iter().any(|d| d == CEPH_CSI_RBD_DRIVER) {
        checks.push(Check::pass(
            "ceph-csi driver",
            format!("CSIDriver {CEPH_CSI_RBD_DRIVER} is registered"),
        ));
    } else {
        checks.push(Check::fail(
            "ceph-csi driver",
            format!("CSIDriver {CEPH_CSI_RBD_DRIVER} does not exist: no volume can be provisioned"),
            "install ceph-csi's rbd plugin: `kelp storage rbd --install-driver`, or its Helm chart ceph-csi-rbd (docs/STORAGE.md)",
        ));
    }
    let not_ready: Vec<String> = facts
        .ceph_csi_pods
        .iter()
        .filter(|p| !p.ready)
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    let listing = format!("kubectl get pods -A -l '{CEPH_CSI_POD_SELECTOR}'");
    if facts.ceph_csi_pods.is_empty() {
        checks.push(Check::fail(
            "ceph-csi pods",
            format!("no pod matches {CEPH_CSI_POD_SELECTOR}: the provisioner and node plugin are not running"),
            format!("install or start ceph-csi's rbd provisioner and node plugin; check with {listing}"),
        ));
    } else if !not_ready.is_empty() {
        checks.push(Check::fail(
            "ceph-csi pods",
            format!(
                "{} of {} ceph-csi pods are not ready: {}",
                not_ready.len(),
                facts.ceph_csi_pods.len(),
                not_ready.join(", ")
            ),
            format!("look at their events and logs ({listing}, then kubectl describe pod)"),
        ));
    } else {
        checks.push(Check::pass(
            "ceph-csi pods",
            format!("{} pods ready", facts.ceph_csi_pods.len()),
        ));
    }
    checks
}

/// Whether ceph-csi's `config.json` lists `cluster_id`.
fn lists_cluster(config_json: &str, cluster_id: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(config_json).is_ok_and(|v| {
        v.as_array().is_some_and(|clusters| {
            clusters
                .iter()
                .any(|c| c.get("clusterID").and_then(|id| id.as_str()) == Some(cluster_id))
        })
    })
}

/// The objects kelp's RBD StorageClasses name but do not create: the
/// client's Secret and ceph-csi's entry for the cluster. Without them a
/// claim stays Pending with only a provisioner event saying why.
fn rbd_wiring(facts: &Facts, rbd: &Rbd) -> Vec<Check> {
    let secret = format!("{}/{}", rbd.secret_namespace, rbd.secret_name);
    let create_secret = format!(
        "kubectl -n {} create secret generic {} --from-literal=userID=<client, without client.> \
         --from-literal=userKey=<its key> (or kelp storage rbd, docs/STORAGE.md)",
        rbd.secret_namespace, rbd.secret_name
    );
    let mut checks = Vec::new();
    match &facts.ceph_csi_secret_keys {
        None => checks.push(Check::fail(
            "ceph-csi secret",
            format!(
                "secret {secret} (storage.rbd.secret_name) does not exist: provisioning would fail"
            ),
            create_secret,
        )),
        Some(keys) => {
            let missing: Vec<&str> = ["userID", "userKey"]
                .into_iter()
                .filter(|k| !keys.iter().any(|have| have == k))
                .collect();
            if missing.is_empty() {
                checks.push(Check::pass(
                    "ceph-csi secret",
                    format!("{secret} has userID and userKey"),
                ));
            } else {
                checks.push(Check::fail(
                    "ceph-csi secret",
                    format!("secret {secret} lacks {}", missing.join(" and ")),
                    create_secret,
                ));
            }
        }
    }
    let fix = format!(
        "add {{\"clusterID\": \"{}\", \"monitors\": [...]}} to config.json of the {CEPH_CSI_CONFIG_MAP} ConfigMap \
         in ceph-csi's namespace (or kelp storage rbd, docs/STORAGE.md)",
        rbd.cluster_id
    );
    if facts
        .ceph_csi_configs
        .iter()
        .any(|(_, text)| lists_cluster(text, &rbd.cluster_id))
    {
        checks.push(Check::pass(
            "ceph-csi cluster",
            format!("{CEPH_CSI_CONFIG_MAP} lists clusterID {}", rbd.cluster_id),
        ));
    } else if facts.ceph_csi_configs.is_empty() {
        checks.push(Check::fail(
            "ceph-csi cluster",
            format!("no {CEPH_CSI_CONFIG_MAP} ConfigMap with config.json beside the ceph-csi pods"),
            fix,
        ));
    } else {
        checks.push(Check::fail(
            "ceph-csi cluster",
            format!(
                "{CEPH_CSI_CONFIG_MAP} does not list clusterID {} (storage.rbd.cluster_id)",
                rbd.cluster_id
            ),
            fix,
        ));
    }
    checks
}

fn nodes(facts: &Facts, stack: &Stack) -> Vec<Check> {
    let schedulable = facts.nodes.iter().filter(|n| n.schedulable()).count();
    let schedulable = u32::try_from(schedulable).unwrap_or(u32::MAX);
    let excluded: Vec<String> = facts
        .nodes
        .iter()
        .filter(|n| !n.schedulable())
        .map(|n| {
            let why = if !n.ready {
                "not ready".to_owned()
            } else if n.unschedulable {
                "cordoned".to_owned()
            } else {
                format!("tainted {}", n.blocking_taints.join(","))
            };
            format!("{} ({why})", n.name)
        })
        .collect();
    let about = if excluded.is_empty() {
        format!("{schedulable} schedulable ready nodes")
    } else {
        format!(
            "{schedulable} schedulable ready nodes (not counted: {})",
            excluded.join(", ")
        )
    };
    if schedulable == 0 {
        return vec![Check::fail(
            "nodes",
            about,
            "add a ready, untainted node or uncordon one (kubectl uncordon)",
        )];
    }
    let mut components = Vec::new();
    if stack.kafka.mode == KafkaMode::Zookeeper {
        components.push(("zookeeper", "zookeeper.replicas", stack.zookeeper.replicas));
    }
    components.push(("kafka", "kafka.replicas", stack.kafka.replicas));
    components.push((
        "elasticsearch",
        "elasticsearch.replicas",
        stack.elasticsearch.replicas,
    ));
    components
        .into_iter()
        .map(|(component, field, replicas)| {
            let name = format!("nodes for {component}");
            if replicas <= schedulable {
                return Check::pass(
                    name,
                    format!("{replicas} replicas, one per node: {about}"),
                );
            }
            match stack.common.anti_affinity {
                AntiAffinity::Required => Check::fail(
                    name,
                    format!(
                        "{replicas} replicas with required anti-affinity need {replicas} nodes, \
                         but there are {about}: {} pods would stay Pending",
                        replicas - schedulable
                    ),
                    format!(
                        "add nodes, lower {field} to {schedulable}, or set common.anti_affinity: preferred \
                         (then one node loss can cost more than one member)"
                    ),
                ),
                AntiAffinity::Preferred => Check::warn(
                    name,
                    format!(
                        "{replicas} replicas on {about}: some nodes carry two, so one node loss costs more than one member"
                    ),
                    format!("add nodes or lower {field}"),
                ),
            }
        })
        .collect()
}

/// Whether a Pod Security level admits privileged containers and host paths.
fn admits_privileged(level: Option<&str>) -> bool {
    matches!(level, None | Some("privileged"))
}

fn pod_security(facts: &Facts, stack: &Stack) -> Vec<Check> {
    let ns = &stack.namespace;
    let level = facts.namespace.as_ref().and_then(|n| n.enforce.as_deref());
    let where_ = match (&facts.namespace, level) {
        (None, _) => format!(
            "namespace {ns} does not exist yet; kelp creates it with {POD_SECURITY_ENFORCE_LABEL}=privileged"
        ),
        (Some(_), None) => format!(
            "namespace {ns} has no {POD_SECURITY_ENFORCE_LABEL} label: the cluster's default level applies \
             (privileged unless the api server's admission configuration says otherwise); kelp sets privileged"
        ),
        (Some(_), Some(level)) => format!("namespace {ns} enforces {level}"),
    };
    let label_fix =
        format!("kubectl label namespace {ns} {POD_SECURITY_ENFORCE_LABEL}=privileged --overwrite");
    let mut checks = Vec::new();
    const ES: &str = "pod security: elasticsearch max-map-count";
    if !stack.elasticsearch.max_map_count_init {
        checks.push(Check::pass(
            ES,
            "no privileged init container (elasticsearch.max_map_count_init: false)",
        ));
    } else if admits_privileged(level) {
        checks.push(Check::pass(
            ES,
            format!("the privileged init container is allowed: {where_}"),
        ));
    } else {
        checks.push(Check::fail(
            ES,
            format!(
                "{where_}, which refuses Elasticsearch's privileged vm.max_map_count init container"
            ),
            format!(
                "{label_fix}; or set elasticsearch.max_map_count_init: false and either set \
                 vm.max_map_count=262144 on every node (/etc/sysctl.d) or elasticsearch.allow_mmap: false"
            ),
        ));
    }
    const COLLECTOR: &str = "pod security: collector host paths";
    if admits_privileged(level) {
        checks.push(Check::pass(
            COLLECTOR,
            format!("host path mounts are allowed: {where_}"),
        ));
    } else {
        checks.push(Check::fail(
            COLLECTOR,
            format!(
                "{where_}, which refuses the collector's hostPath volumes (/var/log/pods, its state \
                 directory) and its DAC_READ_SEARCH capability; only privileged allows them"
            ),
            label_fix,
        ));
    }
    checks
}

#[cfg(test)]
mod tests;
