//! The rim of `kelp storage rbd --install-driver`: downloads the ceph-csi
//! driver files, verifies every one against its pin before anything is
//! applied ([`prepare`], which touches no cluster), then creates the
//! namespace and the ConfigMaps the pods mount when missing, server-side
//! applies every document ([`install`]) and waits for the driver check
//! ([`wait_ready`]). The decisions are in the pure `ceph::driver`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::driver::{self, DriverError, ManifestSet, Summary};
use super::kube::{FIELD_MANAGER, KubeError, check_driver_named};
use crate::preflight::POD_SECURITY_ENFORCE_LABEL;

/// A failed install step.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A file could not be downloaded.
    #[error("downloading {url} failed")]
    Download {
        /// The file's URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// A file is larger than any driver manifest should be.
    #[error("downloading {url} failed: it is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge {
        /// The file's URL.
        url: String,
    },
    /// A verified file or its documents were refused.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The files hold no CSIDriver, so the driver check has nothing to look for.
    #[error(
        "reading the driver files failed: none holds a CSIDriver (ceph-csi's is in \
         deploy/rbd/kubernetes/csidriver.yaml)"
    )]
    NoCsiDriver,
    /// The namespace's Pod Security level refuses the node plugin.
    #[error(
        "installing ceph-csi into namespace {namespace} failed: it enforces the pod security \
         level {level}, which refuses the privileged node plugin; nothing was applied. If the \
         driver may run there: kubectl label namespace {namespace} \
         {POD_SECURITY_ENFORCE_LABEL}=privileged --overwrite"
    )]
    PodSecurity {
        /// The namespace.
        namespace: String,
        /// Its enforced level.
        level: String,
    },
    /// A Kubernetes step failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The driver did not become ready in time.
    #[error("waiting for the ceph-csi driver failed after {secs} s: {last}")]
    Timeout {
        /// The bound.
        secs: u64,
        /// The last verdict.
        last: String,
    },
}

/// The most kelp downloads of one file: ceph-csi's largest manifest is
/// about 8 KiB, so a bigger answer is not a manifest and is not buffered.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Verified driver files, ready to apply.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Every document, placed in the ceph-csi namespace, in apply order.
    pub docs: Vec<Value>,
    /// What they hold.
    pub summary: Summary,
    /// The CSIDriver the check looks for.
    pub csi_driver: String,
}

/// Downloads every file of `set` from `base_url`, verifies all of them
/// against their pins, then parses and places their documents in
/// `namespace`. Touches no cluster: a failure here has changed nothing.
/// `timeout` bounds each download.
pub async fn prepare(
    set: &ManifestSet,
    base_url: &str,
    namespace: &str,
    timeout: Duration,
) -> Result<Prepared, InstallError> {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|source| InstallError::Download {
            url: base_url.to_owned(),
            source,
        })?;
    let mut files = Vec::with_capacity(set.files.len());
    for file in &set.files {
        let url = driver::file_url(base_url, &file.path);
        let error = |source| InstallError::Download {
            url: url.clone(),
            source,
        };
        let mut response = http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(error)?;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(error)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_FILE_BYTES {
                return Err(InstallError::TooLarge { url });
            }
        }
        driver::verify(file, &bytes)?;
        tracing::info!("downloaded {url}: sha256 matches the pin");
        files.push((file, bytes));
    }
    let mut docs = Vec::new();
    for (file, bytes) in &files {
        docs.extend(driver::parse(&file.path, bytes, namespace)?);
    }
    let summary = driver::summarize(&docs);
    let csi_driver = summary
        .csi_drivers
        .first()
        .cloned()
        .ok_or(InstallError::NoCsiDriver)?;
    Ok(Prepared {
        docs,
        summary,
        csi_driver,
    })
}

/// Creates the namespace when missing (labelled to admit the privileged
/// node plugin), creates the ConfigMaps the pods mount when missing, then
/// server-side applies every document as kelp. `dry_run` changes nothing:
/// the namespace must exist and the API server only validates the
/// documents.
pub async fn install(
    client: &kube::Client,
    namespace: &str,
    prepared: &Prepared,
    dry_run: bool,
) -> Result<(), InstallError> {
    ensure_namespace(client, namespace, dry_run).await?;
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if dry_run {
        params = params.dry_run();
    }
    let suffix = if dry_run { " (dry run)" } else { "" };
    if !dry_run {
        create_config_maps(client, namespace).await?;
    }
    for doc in &prepared.docs {
        let step = format!("applying {}{suffix}", driver::id(doc));
        let (api, name) = dynamic_api(client, doc);
        api.patch(&name, &params, &Patch::Apply(doc))
            .await
            .map_err(|source| api_error(&step, source))?;
        tracing::info!("{step}: done");
    }
    Ok(())
}

/// Creates the ConfigMaps the driver pods mount, each only when missing.
async fn create_config_maps(client: &kube::Client, namespace: &str) -> Result<(), InstallError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for (name, key, value) in driver::EMPTY_CONFIG_MAPS {
        let step = format!("creating ConfigMap {namespace}/{name}");
        let exists = config_maps
            .get_opt(name)
            .await
            .map_err(|source| api_error(&step, source))?
            .is_some();
        if exists {
            // A user's (or `kelp storage rbd --apply`'s) content wins.
            continue;
        }
        let config_map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some(labels()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
            ..ConfigMap::default()
        };
        match config_maps.create(&post_params(), &config_map).await {
            Ok(_) => tracing::info!("{step}: done (empty)"),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => return Err(api_error(&step, source).into()),
        }
    }
    Ok(())
}

/// Polls the driver check (the CSIDriver exists, the driver's pods in
/// `namespace` are all Ready) until it passes or `timeout` ends.
pub async fn wait_ready(
    client: &kube::Client,
    csi_driver: &str,
    namespace: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<String, InstallError> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check_driver_named(client, csi_driver, Some(namespace)).await {
            Ok(summary) => return Ok(summary),
            Err(KubeError::Driver(reason)) => reason,
            Err(other) => other.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(InstallError::Timeout {
                secs: timeout.as_secs(),
                last,
            });
        }
        tracing::info!("waiting for the ceph-csi driver: {last}");
        tokio::time::sleep(poll).await;
    }
}

/// Creates the namespace labelled privileged, or labels an existing one
/// that has no Pod Security level; refuses one that enforces another level.
/// A dry run only reads: the namespace must exist.
async fn ensure_namespace(
    client: &kube::Client,
    namespace: &str,
    dry_run: bool,
) -> Result<(), InstallError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let step = format!("reading namespace {namespace}");
    let existing = api
        .get_opt(namespace)
        .await
        .map_err(|source| api_error(&step, source))?;
    if dry_run && existing.is_none() {
        return Err(KubeError::DryRunNamespace(namespace.to_owned()).into());
    }
    let Some(existing) = existing else {
        let mut labels = labels();
        labels.insert(
            POD_SECURITY_ENFORCE_LABEL.to_owned(),
            "privileged".to_owned(),
        );
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.to_owned()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let step = format!("creating namespace {namespace}");
        return match api.create(&post_params(), &object).await {
            Ok(_) => {
                tracing::info!("{step}: done");
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(source) => Err(api_error(&step, source).into()),
        };
    };
    let level = existing
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_SECURITY_ENFORCE_LABEL));
    match level.map(String::as_str) {
        Some("privileged") => Ok(()),
        Some(level) => Err(InstallError::PodSecurity {
            namespace: namespace.to_owned(),
            level: level.to_owned(),
        }),
        None if dry_run => Ok(()),
        None => {
            let step =
                format!("labelling namespace {namespace} {POD_SECURITY_ENFORCE_LABEL}=privileged");
            let patch = serde_json::json!({
                "metadata": {"labels": {POD_SECURITY_ENFORCE_LABEL: "privileged"}}
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            api.patch(namespace, &params, &Patch::Merge(&patch))
                .await
                .map_err(|source| api_error(&step, source))?;
            tracing::info!("{step}: done");
            Ok(())
        }
    }
}

/// The dynamic API of a placed document (its scope was decided by
/// `driver::place`: a namespace is set exactly for namespaced kinds) and
/// its name.
fn dynamic_api(client: &kube::Client, doc: &Value) -> (Api<DynamicObject>, String) {
    let text = |pointer: &str| {
        doc.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let api_version = text("/apiVersion");
    let (group, version) = api_version
        .split_once('/')
        .unwrap_or(("", api_version.as_str()));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &text("/kind")));
    let api = match doc.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    (api, text("/metadata/name"))
}

fn labels() -> BTreeMap<String, String> {
    driver::LABELS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

fn api_error(step: &str, source: kube::Error) -> KubeError {
    KubeError::Api {
        step: step.to_owned(),
        source,
    }
}
