//! The stack as Kubernetes objects: pure functions from a validated
//! [`Stack`] to k8s-openapi types, with no cluster IO. `kelp render` prints
//! them; `kelp apply` (later) will server-side-apply them in the same order.
//!
//! One module per component, each with `build(&Stack) -> Vec<Object>`;
//! [`build`] puts them in rollout order. Shared pieces (labels, the config
//! hash, headless services, disruption budgets) are in `common`.

mod collector;
mod common;
mod elasticsearch;
mod kafka;
mod kibana;
mod shipper;
mod storage;
mod zookeeper;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, KeyToPath, Namespace, PodTemplateSpec, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::stack::Stack;

pub use common::{CONFIG_HASH_ANNOTATION, config_hash};
pub use elasticsearch::{
    CERTS_SECRET as ELASTICSEARCH_CERTS_SECRET,
    ELASTIC_PASSWORD_SECRET as ELASTICSEARCH_ELASTIC_PASSWORD_SECRET,
};
pub use kafka::cluster_id as kafka_cluster_id;
pub use kibana::ELASTICSEARCH_PASSWORD_SECRET as KIBANA_ELASTICSEARCH_PASSWORD_SECRET;
pub use shipper::ELASTICSEARCH_PASSWORD_SECRET as SHIPPER_ELASTICSEARCH_PASSWORD_SECRET;
pub use storage::{CEPH_CSI_CONFIG, CephCsiInputs, CephCsiObject, ceph_csi, ceph_csi_yaml};

/// One Kubernetes object of the stack. Serializes as the object itself,
/// with `apiVersion` and `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    Namespace(Namespace),
    StorageClass(StorageClass),
    ServiceAccount(ServiceAccount),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    ConfigMap(ConfigMap),
    Service(Service),
    PodDisruptionBudget(PodDisruptionBudget),
    StatefulSet(StatefulSet),
    Deployment(Deployment),
    DaemonSet(DaemonSet),
    Job(Job),
}

/// Applies `$body` to the object inside whatever variant `$object` is.
macro_rules! each {
    ($object:expr, $inner:ident => $body:expr) => {
        match $object {
            Object::Namespace($inner) => $body,
            Object::StorageClass($inner) => $body,
            Object::ServiceAccount($inner) => $body,
            Object::ClusterRole($inner) => $body,
            Object::ClusterRoleBinding($inner) => $body,
            Object::ConfigMap($inner) => $body,
            Object::Service($inner) => $body,
            Object::PodDisruptionBudget($inner) => $body,
            Object::StatefulSet($inner) => $body,
            Object::Deployment($inner) => $body,
            Object::DaemonSet($inner) => $body,
            Object::Job($inner) => $body,
        }
    };
}

/// `kind` and `apiVersion` of a k8s-openapi type.
fn type_of<T: k8s_openapi::Resource>(_: &T) -> (&'static str, &'static str) {
    (T::KIND, T::API_VERSION)
}

impl Object {
    /// The object's `kind`, e.g. `StatefulSet`.
    pub fn kind(&self) -> &'static str {
        each!(self, o => type_of(o).0)
    }

    /// The object's `apiVersion`, e.g. `apps/v1`.
    pub fn api_version(&self) -> &'static str {
        each!(self, o => type_of(o).1)
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        each!(self, o => &o.metadata)
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `Kind/name`, as `kubectl` prints it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }

    /// The pod template of a workload; `None` for other objects.
    pub fn pod_template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Object::StatefulSet(o) => o.spec.as_ref().map(|s| &s.template),
            Object::Deployment(o) => o.spec.as_ref().map(|s| &s.template),
            Object::DaemonSet(o) => o.spec.as_ref().map(|s| &s.template),
            Object::Job(o) => o.spec.as_ref().map(|s| &s.template),
            _ => None,
        }
    }

    /// Whether the object is set-up that workloads need before they start:
    /// the namespace, storage, identities and configuration. Secrets are
    /// referenced by name, not rendered (docs/DEPLOYER.md lists them).
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            Object::Namespace(_)
                | Object::StorageClass(_)
                | Object::ServiceAccount(_)
                | Object::ClusterRole(_)
                | Object::ClusterRoleBinding(_)
                | Object::ConfigMap(_)
        )
    }
}

/// The stack's components in rollout order: each one's dependencies come
/// before it, and the collector last, so it never writes to a missing topic.
pub const COMPONENTS: [&str; 8] = [
    "namespace",
    "storage",
    "zookeeper",
    "kafka",
    "elasticsearch",
    "kibana",
    "shipper",
    "collector",
];

/// The objects of one component (a name from [`COMPONENTS`]); empty for an
/// unknown name and for ZooKeeper in KRaft mode.
pub fn build_component(stack: &Stack, component: &str) -> Vec<Object> {
    match component {
        "namespace" => common::build(stack),
        "storage" => storage::build(stack),
        "zookeeper" => zookeeper::build(stack),
        "kafka" => kafka::build(stack),
        "elasticsearch" => elasticsearch::build(stack),
        "kibana" => kibana::build(stack),
        "shipper" => shipper::build(stack),
        "collector" => collector::build(stack),
        _ => Vec::new(),
    }
}

/// Every object of the stack in rollout order: first the namespace, storage,
/// service accounts, RBAC and configuration of all components, then each
/// component's services, disruption budget and workload: ZooKeeper, Kafka
/// (and its topic job), Elasticsearch, Kibana, the shipper, the collector.
pub fn build(stack: &Stack) -> Vec<Object> {
    let mut objects: Vec<Object> = COMPONENTS
        .iter()
        .flat_map(|component| build_component(stack, component))
        .collect();
    // Stable: within each group the component order stays.
    objects.sort_by_key(|object| !object.is_setup());
    objects
}

/// Every container image the objects run, as `(workload, image)`; the
/// workload is `<object>` or, for a second container, `<object>/<container>`.
pub fn images(objects: &[Object]) -> Vec<(String, String)> {
    let mut images = Vec::new();
    for object in objects {
        let Some(spec) = object.pod_template().and_then(|t| t.spec.as_ref()) else {
            continue;
        };
        let containers = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers);
        for container in containers {
            let workload = if container.name == object.name() {
                object.name().to_owned()
            } else {
                format!("{}/{}", object.name(), container.name)
            };
            images.push((workload, container.image.clone().unwrap_or_default()));
        }
    }
    images
}

/// The Secrets the pods read, with the keys they read: kelp refers to them
/// by name and does not create them yet.
pub fn referenced_secrets(objects: &[Object]) -> BTreeMap<String, Vec<String>> {
    let mut secrets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let keys = |items: &Option<Vec<KeyToPath>>| -> Vec<String> {
        items
            .iter()
            .flatten()
            .map(|item| item.key.clone())
            .collect()
    };
    for spec in objects
        .iter()
        .filter_map(|o| o.pod_template().and_then(|t| t.spec.as_ref()))
    {
        let containers = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers);
        for env in containers.flat_map(|c| c.env.iter().flatten()) {
            if let Some(r) = env
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            {
                secrets
                    .entry(r.name.clone())
                    .or_default()
                    .insert(r.key.clone());
            }
        }
        for volume in spec.volumes.iter().flatten() {
            if let Some(secret) = &volume.secret {
                let name = secret.secret_name.clone().unwrap_or_default();
                secrets.entry(name).or_default().extend(keys(&secret.items));
            }
            let projected = volume
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten());
            for secret in projected.filter_map(|source| source.secret.as_ref()) {
                let entry = secrets.entry(secret.name.clone()).or_default();
                entry.extend(keys(&secret.items));
            }
        }
    }
    secrets
        .into_iter()
        .map(|(name, keys)| (name, keys.into_iter().collect()))
        .collect()
}

/// Why the manifests could not be written as YAML.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The YAML serializer refused an object.
    #[error("rendering {id} as yaml failed: {source}")]
    Yaml {
        /// `Kind/name` of the object.
        id: String,
        /// The cause.
        source: serde_saphyr::SerializeError,
    },
}

/// The objects as one multi-document YAML stream, `---` between documents,
/// for `kubectl apply -f -` or a GitOps repository.
///
/// # Errors
/// When an object cannot be serialized (not expected for these types).
pub fn to_yaml(objects: &[Object]) -> Result<String, RenderError> {
    documents_yaml(objects, Object::id)
}

/// Multi-document YAML, `---` before each document; `id` names an object
/// that fails to serialize.
pub(crate) fn documents_yaml<T: Serialize>(
    objects: &[T],
    id: impl Fn(&T) -> String,
) -> Result<String, RenderError> {
    let mut out = String::new();
    for object in objects {
        let text = serde_saphyr::to_string(object).map_err(|source| RenderError::Yaml {
            id: id(object),
            source,
        })?;
        out.push_str("---\n");
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
