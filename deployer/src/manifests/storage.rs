//! Storage: the ceph-csi RBD StorageClasses kelp renders, and which class
//! each component's volumes use.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Object;
use super::common::{App, KELP, cluster_meta};
use crate::stack::{FsType, Rbd, Stack};

/// ceph-csi's RBD provisioner.
pub(crate) const RBD_PROVISIONER: &str = "rbd.csi.ceph.com";

/// Annotation recording the Ceph monitors (ceph-csi takes them from its own
/// ConfigMap; the preflight check compares).
pub(crate) const MONITORS_ANNOTATION: &str = "kelp.io/ceph-monitors";

/// Which component a volume belongs to, for the file system choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Volumes {
    /// Kafka's log segments.
    Kafka,
    /// ZooKeeper's and Elasticsearch's data.
    Other,
}

/// The StorageClass of a component's volumes: the configured one, kelp's
/// RBD class for its file system, or `None` for the cluster's default.
pub(crate) fn class_for(stack: &Stack, volumes: Volumes) -> Option<String> {
    if let Some(class) = &stack.storage.storage_class {
        return Some(class.clone());
    }
    stack
        .storage
        .rbd
        .as_ref()
        .map(|rbd| rbd_class_name(stack, fstype(rbd, volumes)))
}

fn fstype(rbd: &Rbd, volumes: Volumes) -> FsType {
    match volumes {
        Volumes::Kafka => rbd.kafka_fstype,
        Volumes::Other => rbd.fstype,
    }
}

/// `<namespace>-rbd-<fstype>`: one class per file system in use.
fn rbd_class_name(stack: &Stack, fstype: FsType) -> String {
    format!("{}-rbd-{}", stack.namespace, fstype.as_str())
}

/// The RBD StorageClasses (none unless `storage.rbd` is set). Volumes are
/// kept when their claim is deleted (`Retain`): log data outlives a
/// mistaken `kubectl delete`. Expansion is allowed so volumes can grow.
pub(crate) fn build(stack: &Stack) -> Vec<Object> {
    let Some(rbd) = &stack.storage.rbd else {
        return Vec::new();
    };
    let app = App::new(KELP, "storage", &stack.images.tag);
    let fstypes: BTreeSet<FsType> = [Volumes::Other, Volumes::Kafka]
        .into_iter()
        .map(|volumes| fstype(rbd, volumes))
        .collect();
    fstypes
        .into_iter()
        .map(|fstype| {
            let mut metadata = cluster_meta(stack, &rbd_class_name(stack, fstype), &app);
            if !rbd.monitors.is_empty() {
                metadata.annotations = Some(BTreeMap::from([(
                    MONITORS_ANNOTATION.to_owned(),
                    rbd.monitors.join(","),
                )]));
            }
            Object::StorageClass(StorageClass {
                metadata,
                provisioner: RBD_PROVISIONER.to_owned(),
                parameters: Some(parameters(rbd, fstype)),
                reclaim_policy: Some("Retain".to_owned()),
                allow_volume_expansion: Some(true),
                // RBD images map on any node: nothing to wait for.
                volume_binding_mode: Some("Immediate".to_owned()),
                ..StorageClass::default()
            })
        })
        .collect()
}

/// ceph-csi's parameters: one Secret serves provisioning, expansion and
/// staging.
fn parameters(rbd: &Rbd, fstype: FsType) -> BTreeMap<String, String> {
    let mut parameters = BTreeMap::from([
        ("clusterID".to_owned(), rbd.cluster_id.clone()),
        ("pool".to_owned(), rbd.pool.clone()),
        ("imageFeatures".to_owned(), rbd.image_features.clone()),
        (
            "csi.storage.k8s.io/fstype".to_owned(),
            fstype.as_str().to_owned(),
        ),
    ]);
    for step in ["provisioner", "controller-expand", "node-stage"] {
        parameters.insert(
            format!("csi.storage.k8s.io/{step}-secret-name"),
            rbd.secret_name.clone(),
        );
        parameters.insert(
            format!("csi.storage.k8s.io/{step}-secret-namespace"),
            rbd.secret_namespace.clone(),
        );
    }
    parameters
}

/// Name of ceph-csi's cluster ConfigMap (its deploy manifests and Helm
/// chart read this name).
pub const CEPH_CSI_CONFIG: &str = "ceph-csi-config";

/// What the ceph-csi objects say about the Ceph cluster and the client.
#[derive(Debug, Clone)]
pub struct CephCsiInputs {
    /// The cluster's fsid, ceph-csi's `clusterID`.
    pub fsid: String,
    /// The monitors, `ip:port` (msgr v1).
    pub monitors: Vec<String>,
    /// The client's id without `client.` (ceph-csi's `userID`).
    pub user_id: String,
    /// The client's key (ceph-csi's `userKey`).
    pub user_key: crate::ceph::CephKey,
}

/// One ceph-csi object kelp renders for `kelp storage rbd`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum CephCsiObject {
    /// ceph-csi's namespace (`storage.rbd.secret_namespace`).
    Namespace(Namespace),
    /// `ceph-csi-config`: clusterID and monitors.
    ConfigMap(ConfigMap),
    /// The client's credentials, `userID`/`userKey`.
    Secret(Secret),
    /// The StorageClasses `kelp render` also renders.
    StorageClass(StorageClass),
}

impl CephCsiObject {
    /// `Kind namespace/name`, for messages.
    pub fn id(&self) -> String {
        let (kind, meta) = match self {
            CephCsiObject::Namespace(o) => ("Namespace", &o.metadata),
            CephCsiObject::ConfigMap(o) => ("ConfigMap", &o.metadata),
            CephCsiObject::Secret(o) => ("Secret", &o.metadata),
            CephCsiObject::StorageClass(o) => ("StorageClass", &o.metadata),
        };
        match &meta.namespace {
            Some(ns) => format!("{kind} {ns}/{}", meta.name.as_deref().unwrap_or_default()),
            None => format!("{kind} {}", meta.name.as_deref().unwrap_or_default()),
        }
    }
}

/// The objects ceph-csi needs for the stack's `storage.rbd` (which must be
/// set): its namespace, `ceph-csi-config` with this cluster's entry, the
/// client Secret, and the StorageClasses. The ConfigMap holds only this
/// cluster: with several clusters, merge the entries by hand.
pub fn ceph_csi(stack: &Stack, inputs: &CephCsiInputs) -> Vec<CephCsiObject> {
    let Some(rbd) = &stack.storage.rbd else {
        return Vec::new();
    };
    let app = App::new(KELP, "storage", &stack.images.tag);
    let namespaced = |name: &str| ObjectMeta {
        namespace: Some(rbd.secret_namespace.clone()),
        ..cluster_meta(stack, name, &app)
    };
    let entry = serde_json::json!([{
        "clusterID": inputs.fsid,
        "monitors": inputs.monitors,
    }]);
    let mut objects = vec![
        CephCsiObject::Namespace(Namespace {
            metadata: cluster_meta(stack, &rbd.secret_namespace, &app),
            ..Namespace::default()
        }),
        CephCsiObject::ConfigMap(ConfigMap {
            metadata: namespaced(CEPH_CSI_CONFIG),
            data: Some(BTreeMap::from([(
                "config.json".to_owned(),
                entry.to_string(),
            )])),
            ..ConfigMap::default()
        }),
        CephCsiObject::Secret(Secret {
            metadata: namespaced(&rbd.secret_name),
            string_data: Some(BTreeMap::from([
                ("userID".to_owned(), inputs.user_id.clone()),
                ("userKey".to_owned(), inputs.user_key.expose().to_owned()),
            ])),
            type_: Some("Opaque".to_owned()),
            ..Secret::default()
        }),
    ];
    objects.extend(build(stack).into_iter().filter_map(|object| match object {
        Object::StorageClass(class) => Some(CephCsiObject::StorageClass(class)),
        _ => None,
    }));
    objects
}

/// Multi-document YAML of the ceph-csi objects.
pub fn ceph_csi_yaml(objects: &[CephCsiObject]) -> Result<String, super::RenderError> {
    super::documents_yaml(objects, CephCsiObject::id)
}

#[cfg(test)]
mod ceph_csi_tests {
    use super::*;
    use crate::stack::Rbd;

    fn stack() -> Stack {
        let mut stack = Stack::default();
        stack.storage.rbd = Some(Rbd {
            cluster_id: "feaefd74-8eac-4829-b3dc-3c93463b404e".to_owned(),
            pool: "kubernetes".to_owned(),
            monitors: vec!["10.0.0.1:6789".to_owned()],
            secret_name: "csi-rbd-secret".to_owned(),
            secret_namespace: "ceph-csi".to_owned(),
            fstype: FsType::Ext4,
            kafka_fstype: FsType::Xfs,
            image_features: "layering".to_owned(),
        });
        stack
    }

    fn inputs() -> CephCsiInputs {
        CephCsiInputs {
            fsid: "feaefd74-8eac-4829-b3dc-3c93463b404e".to_owned(),
            monitors: vec!["10.0.0.1:6789".to_owned(), "10.0.0.2:6789".to_owned()],
            user_id: "kelp".to_owned(),
            user_key: crate::ceph::CephKey::new("AQA9secret==".to_owned()),
        }
    }

    #[test]
    fn the_config_map_names_the_cluster_and_its_monitors() {
        let objects = ceph_csi(&stack(), &inputs());
        let ids: Vec<String> = objects.iter().map(CephCsiObject::id).collect();
        assert_eq!(
            ids,
            [
                "Namespace ceph-csi",
                "ConfigMap ceph-csi/ceph-csi-config",
                "Secret ceph-csi/csi-rbd-secret",
                "StorageClass kelp-rbd-ext4",
                "StorageClass kelp-rbd-xfs",
            ]
        );
        let CephCsiObject::ConfigMap(config) = &objects[1] else {
            panic!("{:?}", objects[1]);
        };
        let json: serde_json::Value =
            serde_json::from_str(&config.data.as_ref().unwrap()["config.json"]).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"clusterID": "feaefd74-8eac-4829-b3dc-3c93463b404e",
                "monitors": ["10.0.0.1:6789", "10.0.0.2:6789"]}])
        );
        let CephCsiObject::Secret(secret) = &objects[2] else {
            panic!("{:?}", objects[2]);
        };
        let data = secret.string_data.as_ref().unwrap();
        assert_eq!(data["userID"], "kelp");
        assert_eq!(data["userKey"], "AQA9secret==");
        let CephCsiObject::StorageClass(class) = &objects[4] else {
            panic!("{:?}", objects[4]);
        };
        let parameters = class.parameters.as_ref().unwrap();
        assert_eq!(
            parameters["clusterID"],
            "feaefd74-8eac-4829-b3dc-3c93463b404e"
        );
        assert_eq!(parameters["imageFeatures"], "layering");
        assert_eq!(parameters["csi.storage.k8s.io/fstype"], "xfs");
        assert_eq!(class.reclaim_policy.as_deref(), Some("Retain"));
        assert_eq!(class.allow_volume_expansion, Some(true));
        let yaml = ceph_csi_yaml(&objects).unwrap();
        assert_eq!(yaml.matches("---\n").count(), 5, "{yaml}");
        assert!(yaml.contains("kind: Secret"), "{yaml}");
    }

    #[test]
    fn nothing_without_rbd() {
        assert!(ceph_csi(&Stack::default(), &inputs()).is_empty());
    }
}
