//! Storage: the ceph-csi RBD StorageClasses kelp renders, and which class
//! each component's volumes use.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::storage::v1::StorageClass;

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
