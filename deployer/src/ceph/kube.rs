//! The Kubernetes side of `kelp storage rbd`: server-side apply of the
//! ceph-csi objects (field manager `kelp`) and the check that the ceph-csi
//! RBD driver is installed and its pods are Ready. The verdict on what the
//! cluster returned is the pure [`driver_verdict`].

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::manifests::CephCsiObject;

/// ceph-csi's RBD driver name, and the labels of its pods: the same the
/// stack's preflight (`crate::preflight`) looks for.
pub use crate::preflight::{
    CEPH_CSI_POD_SELECTOR as DRIVER_POD_SELECTOR, CEPH_CSI_RBD_DRIVER as RBD_DRIVER,
};

/// The field manager kelp applies with.
pub use crate::secrets::FIELD_MANAGER;

/// A failed Kubernetes step.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No usable kubeconfig / in-cluster config.
    #[error("connecting to Kubernetes failed (set KUBECONFIG or run inside the cluster)")]
    Connect(#[source] kube::Error),
    /// The API server refused or failed a request.
    #[error("{step} failed")]
    Api {
        /// The step, e.g. `applying Secret ceph-csi/csi-rbd-secret`.
        step: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// A dry run cannot create the namespace its objects go to.
    #[error(
        "the dry run needs namespace {0} to exist (a dry run stores nothing, not even the \
         namespace): create it (`kubectl create namespace {0}`) or apply without --dry-run"
    )]
    DryRunNamespace(String),
    /// The driver is missing or not ready.
    #[error("checking the ceph-csi driver failed: {0}")]
    Driver(String),
}

/// A client from KUBECONFIG or the in-cluster config.
pub async fn client() -> Result<kube::Client, KubeError> {
    kube::Client::try_default()
        .await
        .map_err(KubeError::Connect)
}

/// Server-side applies every object in order (namespace first), forcing
/// kelp's ownership of the fields it sets; `dry_run` asks the API server
/// to validate without storing.
pub async fn apply(
    client: &kube::Client,
    objects: &[CephCsiObject],
    dry_run: bool,
) -> Result<(), KubeError> {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if dry_run {
        params = params.dry_run();
    }
    if dry_run {
        // A dry run stores nothing, not even the namespace its objects need.
        for object in objects {
            if let CephCsiObject::Namespace(o) = object {
                let api: Api<Namespace> = Api::all(client.clone());
                let step = format!("reading namespace {}", name(&o.metadata));
                let found = api
                    .get_opt(name(&o.metadata))
                    .await
                    .map_err(|source| KubeError::Api { step, source })?;
                if found.is_none() {
                    return Err(KubeError::DryRunNamespace(name(&o.metadata).to_owned()));
                }
            }
        }
    }
    for object in objects {
        let step = format!(
            "applying {}{}",
            object.id(),
            if dry_run { " (dry run)" } else { "" }
        );
        let error = |source| KubeError::Api {
            step: step.clone(),
            source,
        };
        match object {
            CephCsiObject::Namespace(o) => {
                let api: Api<Namespace> = Api::all(client.clone());
                api.patch(name(&o.metadata), &params, &Patch::Apply(o))
                    .await
                    .map(drop)
            }
            CephCsiObject::ConfigMap(o) => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace(&o.metadata));
                api.patch(name(&o.metadata), &params, &Patch::Apply(o))
                    .await
                    .map(drop)
            }
            CephCsiObject::Secret(o) => {
                let api: Api<Secret> = Api::namespaced(client.clone(), namespace(&o.metadata));
                api.patch(name(&o.metadata), &params, &Patch::Apply(o))
                    .await
                    .map(drop)
            }
            CephCsiObject::StorageClass(o) => {
                let api: Api<StorageClass> = Api::all(client.clone());
                api.patch(name(&o.metadata), &params, &Patch::Apply(o))
                    .await
                    .map(drop)
            }
        }
        .map_err(error)?;
        tracing::info!("{step}: done");
    }
    Ok(())
}

fn name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn namespace(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// A driver pod as the verdict needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverPod {
    /// `namespace/name`.
    pub id: String,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
}

/// Reads the CSIDriver `rbd.csi.ceph.com` and the driver's pods in every
/// namespace, and judges them.
pub async fn check_driver(client: &kube::Client) -> Result<String, KubeError> {
    check_driver_named(client, RBD_DRIVER, None).await
}

/// Reads the CSIDriver `driver` and the driver's pods (in `namespace`, or
/// in every namespace), and judges them.
pub async fn check_driver_named(
    client: &kube::Client,
    driver: &str,
    namespace: Option<&str>,
) -> Result<String, KubeError> {
    let drivers: Api<CSIDriver> = Api::all(client.clone());
    let present = drivers
        .get_opt(driver)
        .await
        .map_err(|source| KubeError::Api {
            step: format!("reading CSIDriver {driver}"),
            source,
        })?
        .is_some();
    let pods: Api<Pod> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let list = pods
        .list(&ListParams::default().labels(DRIVER_POD_SELECTOR))
        .await
        .map_err(|source| KubeError::Api {
            step: format!("listing the ceph-csi pods ({DRIVER_POD_SELECTOR})"),
            source,
        })?;
    let pods: Vec<DriverPod> = list
        .items
        .iter()
        .map(|pod| DriverPod {
            id: format!(
                "{}/{}",
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                pod.metadata.name.as_deref().unwrap_or_default()
            ),
            ready: pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        })
        .collect();
    driver_verdict(driver, present, &pods).map_err(KubeError::Driver)
}

/// Ok (with a summary) when the CSIDriver `driver` exists and every driver
/// pod, of which there is at least one, is Ready; else what is wrong and
/// the fix.
pub fn driver_verdict(
    driver: &str,
    csi_driver_present: bool,
    pods: &[DriverPod],
) -> Result<String, String> {
    if !csi_driver_present {
        return Err(format!(
            "the CSIDriver {driver} does not exist: ceph-csi is not installed; install it with \
             `kelp storage rbd --install-driver` (docs/STORAGE.md, \"Installing ceph-csi\") in \
             the namespace of the ceph-csi-config ConfigMap"
        ));
    }
    if pods.is_empty() {
        return Err(format!(
            "the CSIDriver {driver} exists but no ceph-csi RBD pod runs ({DRIVER_POD_SELECTOR}): \
             check the csi-rbdplugin DaemonSet and the csi-rbdplugin-provisioner Deployment"
        ));
    }
    let not_ready: Vec<&str> = pods
        .iter()
        .filter(|p| !p.ready)
        .map(|p| p.id.as_str())
        .collect();
    if !not_ready.is_empty() {
        return Err(format!(
            "{} of {} ceph-csi RBD pods are not Ready: {}; see `kubectl describe pod` and their logs",
            not_ready.len(),
            pods.len(),
            not_ready.join(", ")
        ));
    }
    Ok(format!(
        "CSIDriver {driver} present, {} driver pods Ready",
        pods.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(id: &str, ready: bool) -> DriverPod {
        DriverPod {
            id: id.to_owned(),
            ready,
        }
    }

    #[test]
    fn the_driver_verdict() {
        let cases: [(bool, Vec<DriverPod>, Result<&str, &str>); 6] = [
            (false, vec![pod("ceph-csi/a", true)], Err("does not exist")),
            (true, vec![], Err("no ceph-csi RBD pod runs")),
            (
                true,
                vec![pod("ceph-csi/a", true), pod("ceph-csi/b", false)],
                Err("1 of 2 ceph-csi RBD pods are not Ready: ceph-csi/b"),
            ),
            (
                true,
                vec![pod("ceph-csi/a", true)],
                Ok("1 driver pods Ready"),
            ),
            (false, vec![], Err("ceph-csi is not installed")),
            (false, vec![], Err("--install-driver")),
        ];
        for (present, pods, want) in cases {
            match (driver_verdict(RBD_DRIVER, present, &pods), want) {
                (Ok(got), Ok(want)) | (Err(got), Err(want)) => {
                    assert!(got.contains(want), "{got} vs {want}")
                }
                (got, want) => panic!("{present} {pods:?}: {got:?} vs {want:?}"),
            }
        }
    }
}
