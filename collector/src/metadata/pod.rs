//! What the collector keeps of a pod and a namespace, converted from the
//! API objects, and the owner workload derived from a pod's owner reference.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kelp_record::Owner;

use super::decide::is_decision_annotation;

/// Which pod labels and annotations are kept and shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inclusion {
    /// Ship all labels.
    pub labels: bool,
    /// Annotation keys shipped: exact keys, or prefixes ending in `*`.
    pub annotations: Vec<String>,
}

impl Inclusion {
    /// Whether the annotation `key` is shipped.
    pub fn ships_annotation(&self, key: &str) -> bool {
        self.annotations
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => key.starts_with(prefix),
                None => key == pattern,
            })
    }
}

/// A pod as the collector needs it; the rest of the object is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMeta {
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// Labels, when shipped (see [`Inclusion::labels`]).
    pub labels: BTreeMap<String, String>,
    /// Annotations that are shipped or that decide exclusion and multiline.
    pub annotations: BTreeMap<String, String>,
    /// The owner workload (see [`owner_workload`]).
    pub owner: Option<Owner>,
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// Image per container name: containers, init and ephemeral containers.
    pub images: Vec<(String, String)>,
}

impl PodMeta {
    /// The parts of `pod` the collector keeps; `None` without a uid.
    pub fn from_pod(pod: &Pod, inclusion: &Inclusion) -> Option<PodMeta> {
        let meta = &pod.metadata;
        let uid = meta.uid.clone()?;
        let labels = meta.labels.clone().unwrap_or_default();
        let owner = meta
            .owner_references
            .as_deref()
            .and_then(|refs| owner_workload(refs, &labels));
        let annotations = meta
            .annotations
            .iter()
            .flatten()
            .filter(|(key, _)| is_decision_annotation(key) || inclusion.ships_annotation(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let spec = pod.spec.as_ref();
        let mut images = Vec::new();
        if let Some(spec) = spec {
            let containers = spec.containers.iter();
            let init = spec.init_containers.iter().flatten();
            images.extend(
                containers
                    .chain(init)
                    .filter_map(|c| Some((c.name.clone(), c.image.clone()?))),
            );
            images.extend(
                spec.ephemeral_containers
                    .iter()
                    .flatten()
                    .filter_map(|c| Some((c.name.clone(), c.image.clone()?))),
            );
        }
        Some(PodMeta {
            uid,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            labels: if inclusion.labels {
                labels
            } else {
                BTreeMap::new()
            },
            annotations,
            owner,
            node: spec.and_then(|spec| spec.node_name.clone()),
            images,
        })
    }

    /// The image of the container `name`, if the spec names one.
    pub fn image(&self, container: &str) -> Option<&str> {
        self.images
            .iter()
            .find(|(name, _)| name == container)
            .map(|(_, image)| image.as_str())
    }
}

/// A namespace's annotations that decide exclusion and multiline; nothing
/// else of a namespace is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceMeta {
    /// `metadata.name`.
    pub name: String,
    /// The decision annotations (see [`super::decide`]).
    pub annotations: BTreeMap<String, String>,
}

impl NamespaceMeta {
    /// The parts of `namespace` the collector keeps.
    pub fn from_namespace(namespace: &Namespace) -> NamespaceMeta {
        let meta = &namespace.metadata;
        NamespaceMeta {
            name: meta.name.clone().unwrap_or_default(),
            annotations: meta
                .annotations
                .iter()
                .flatten()
                .filter(|(key, _)| is_decision_annotation(key))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        }
    }
}

/// The label the Deployment controller puts on its ReplicaSets' pods; the
/// ReplicaSet is named `<deployment>-<hash>`.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The workload that owns a pod, from its owner references (the
/// controller, else the first): a ReplicaSet named `<name>-<hash>` becomes
/// the Deployment `<name>`, a Job named `<name>-<minutes>` (how the CronJob
/// controller names its Jobs) becomes the CronJob `<name>`; any other owner
/// (StatefulSet, DaemonSet, a bare ReplicaSet or Job, custom kinds) is kept
/// as it is.
pub fn owner_workload(
    references: &[OwnerReference],
    labels: &BTreeMap<String, String>,
) -> Option<Owner> {
    let owner = references
        .iter()
        .find(|r| r.controller == Some(true))
        .or_else(|| references.first())?;
    let (kind, name) = match owner.kind.as_str() {
        "ReplicaSet" => match deployment_of(&owner.name, labels.get(POD_TEMPLATE_HASH)) {
            Some(deployment) => ("Deployment", deployment),
            None => ("ReplicaSet", owner.name.as_str()),
        },
        "Job" => match cron_job_of(&owner.name) {
            Some(cron_job) => ("CronJob", cron_job),
            None => ("Job", owner.name.as_str()),
        },
        other => (other, owner.name.as_str()),
    };
    Some(Owner {
        kind: kind.to_owned(),
        name: name.to_owned(),
    })
}

/// The Deployment of a ReplicaSet: its name without the `-<hash>` suffix,
/// the pod's `pod-template-hash` label when present, else a suffix in the
/// alphabet Kubernetes encodes hashes with (no vowels, no 0, 1, 3).
fn deployment_of<'a>(replica_set: &'a str, hash: Option<&String>) -> Option<&'a str> {
    if let Some(hash) = hash {
        return replica_set
            .strip_suffix(hash.as_str())
            .and_then(|rest| rest.strip_suffix('-'))
            .filter(|name| !name.is_empty());
    }
    let (name, suffix) = replica_set.rsplit_once('-')?;
    let safe = |b: u8| b"bcdfghjklmnpqrstvwxz2456789".contains(&b);
    (!name.is_empty() && (5..=10).contains(&suffix.len()) && suffix.bytes().all(safe))
        .then_some(name)
}

/// The CronJob of a Job named `<cronjob>-<scheduled time in minutes since
/// the epoch>`: eight or more digits, as every such name has had since
/// 1989 (10^7 minutes).
fn cron_job_of(job: &str) -> Option<&str> {
    let (name, minutes) = job.rsplit_once('-')?;
    (!name.is_empty() && minutes.len() >= 8 && minutes.bytes().all(|b| b.is_ascii_digit()))
        .then_some(name)
}
