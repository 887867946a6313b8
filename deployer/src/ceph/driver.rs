//! The ceph-csi RBD driver that `kelp storage rbd --install-driver`
//! installs: the pinned release (its version, the upstream files and their
//! sha256), the check of downloaded bytes against the pins, and the pure
//! transform that moves the upstream documents (which hard-code the
//! namespace `default`) into the ceph-csi namespace. No IO here: the
//! download and the apply are in `ceph::install`.
//!
//! The upstream files are not in this repository: kelp downloads them at
//! install time and refuses any byte that differs from the pin.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The pinned ceph-csi release: the newest stable tag when kelp pinned it.
pub const VERSION: &str = "v3.12.2";

/// Where the upstream files are served: `<UPSTREAM>/<tag>/<path>`.
pub const UPSTREAM: &str = "https://raw.githubusercontent.com/ceph/ceph-csi";

/// ceph-csi's own ConfigMap of Ceph clusters: kelp writes it from the
/// cluster's facts (`manifests::ceph_csi`), so no driver file may carry it.
pub const CONFIG_MAP: &str = crate::preflight::CEPH_CSI_CONFIG_MAP;

/// The KMS ConfigMap the driver pods mount; kelp creates it empty when
/// missing (no encryption), and never overwrites one a user wrote.
pub const KMS_CONFIG_MAP: &str = "ceph-csi-encryption-kms-config";

/// The labels kelp adds to every object it installs from the driver files,
/// so `kubectl delete -l` finds them for an uninstall.
pub const LABELS: [(&str, &str); 2] = [
    ("app.kubernetes.io/part-of", "ceph-csi"),
    ("app.kubernetes.io/managed-by", "kelp"),
];

/// A file of the pinned release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// The path in ceph-csi's repository at [`VERSION`].
    pub path: &'static str,
    /// The sha256 of its bytes, lowercase hex.
    pub sha256: &'static str,
}

/// The pinned files, in apply order: accounts and roles, the CSIDriver, the
/// ceph.conf ConfigMap, then the workloads. Left out on purpose:
/// `deploy/rbd/kubernetes/csi-config-map.yaml` (an empty `ceph-csi-config`,
/// which kelp writes itself with the cluster's facts).
pub const PINS: [Pin; 6] = [
    Pin {
        path: "deploy/rbd/kubernetes/csi-provisioner-rbac.yaml",
        sha256: "9b8d6379338c64dfa11b319c68001f9700d4d0c022567dc3d897d25be459d48a",
    },
    Pin {
        path: "deploy/rbd/kubernetes/csi-nodeplugin-rbac.yaml",
        sha256: "2f8c1ffe708c195dbc9b02dfdb674a164414d2eae25fc229fde913974413fa0d",
    },
    Pin {
        path: "deploy/rbd/kubernetes/csidriver.yaml",
        sha256: "1ed78b3fd5d45711ee3ee89485aa03e9c3ee31f6e0194118ee3af90f628ed68b",
    },
    Pin {
        path: "deploy/ceph-conf.yaml",
        sha256: "6e0b9a115f8184f0ad52d0be1c86206fdc3f4a5da99d0dc59e4bd0a81cd653e2",
    },
    Pin {
        path: "deploy/rbd/kubernetes/csi-rbdplugin-provisioner.yaml",
        sha256: "5cc82fd375e801995dcafc2b7b6e93e96b9401cb2cf9ef2718ed37095bda13b1",
    },
    Pin {
        path: "deploy/rbd/kubernetes/csi-rbdplugin.yaml",
        sha256: "7b9aa303d72205bcb325aebd72ae5367a6c569ead64717f73e4940a11d859de3",
    },
];

/// A failure of the pure steps: reading a manifest list, verifying a file,
/// parsing or placing its documents.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The manifest list (`--driver-manifests`) is unreadable or invalid.
    #[error("reading the driver manifest list failed: {0}")]
    List(String),
    /// A downloaded file is not the pinned one.
    #[error(
        "verifying {path} failed: its sha256 is {actual}, the pin is {expected}; the file is not \
         the pinned one (changed upstream, a wrong mirror or a tampered download), so nothing \
         was applied"
    )]
    Checksum {
        /// The file.
        path: String,
        /// The pin.
        expected: String,
        /// What was downloaded.
        actual: String,
    },
    /// A file is not UTF-8 text.
    #[error("reading {path} failed: it is not UTF-8 text")]
    NotText {
        /// The file.
        path: String,
    },
    /// A file is not YAML.
    #[error("parsing {path} failed")]
    Yaml {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A document kelp will not apply.
    #[error("reading document {index} of {path} failed: {reason}")]
    Document {
        /// The file.
        path: String,
        /// The document's position in the file, from 1.
        index: usize,
        /// Why.
        reason: String,
    },
}

/// One file of a [`ManifestSet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// The file's path below the base URL, e.g.
    /// `deploy/rbd/kubernetes/csi-rbdplugin.yaml`.
    pub path: String,
    /// The sha256 of the file's bytes, 64 lowercase hex digits
    /// (`sha256sum FILE`).
    pub sha256: String,
}

/// The driver files to install and their pins: kelp's own ([`PINS`]) or a
/// list the user gives with `--driver-manifests` (another ceph-csi
/// release on a mirror).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSet {
    /// The ceph-csi release, e.g. `v3.12.2`; without `--driver-base-url`
    /// the files come from `https://raw.githubusercontent.com/ceph/ceph-csi/<version>`.
    pub version: String,
    /// The files, in apply order.
    pub files: Vec<ManifestFile>,
}

impl ManifestSet {
    /// kelp's pinned release.
    pub fn pinned() -> ManifestSet {
        ManifestSet {
            version: VERSION.to_owned(),
            files: PINS
                .iter()
                .map(|pin| ManifestFile {
                    path: pin.path.to_owned(),
                    sha256: pin.sha256.to_owned(),
                })
                .collect(),
        }
    }

    /// Parses and checks a manifest list (YAML).
    pub fn from_yaml(text: &str) -> Result<ManifestSet, DriverError> {
        let set: ManifestSet =
            serde_saphyr::from_str(text).map_err(|e| DriverError::List(e.to_string()))?;
        set.validate()?;
        Ok(set)
    }

    /// A version usable in a URL, at least one file, relative paths
    /// without `..`, each once, and well-formed sha256 pins.
    pub fn validate(&self) -> Result<(), DriverError> {
        let fail = |reason: String| Err(DriverError::List(reason));
        if !is_segment(&self.version) {
            return fail(format!(
                "version {:?} must be a tag such as v3.12.2 (letters, digits, '.', '_', '-')",
                self.version
            ));
        }
        if self.files.is_empty() {
            return fail("it lists no files".to_owned());
        }
        let mut seen = BTreeSet::new();
        for file in &self.files {
            if !file.path.split('/').all(is_segment) {
                return fail(format!(
                    "path {:?} must be relative, with segments of letters, digits, '.', '_', '-' \
                     and no '..'",
                    file.path
                ));
            }
            if !seen.insert(file.path.as_str()) {
                return fail(format!("path {} is listed twice", file.path));
            }
            if !is_sha256_hex(&file.sha256) {
                return fail(format!(
                    "the sha256 of {} must be 64 lowercase hex digits, not {:?}",
                    file.path, file.sha256
                ));
            }
        }
        Ok(())
    }

    /// The base URL of the files when none is given: the release's tag on
    /// GitHub.
    pub fn default_base_url(&self) -> String {
        format!("{UPSTREAM}/{}", self.version)
    }
}

/// A path segment or tag: not empty, not `.` or `..`, only URL-safe
/// characters.
fn is_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

/// The URL of a file below a base URL (a trailing `/` on the base is fine).
pub fn file_url(base_url: &str, path: &str) -> String {
    format!("{}/{path}", base_url.trim_end_matches('/'))
}

/// The sha256 of some bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Ok when the bytes are the pinned file.
pub fn verify(file: &ManifestFile, bytes: &[u8]) -> Result<(), DriverError> {
    let actual = sha256_hex(bytes);
    if actual == file.sha256 {
        Ok(())
    } else {
        Err(DriverError::Checksum {
            path: file.path.clone(),
            expected: file.sha256.clone(),
            actual,
        })
    }
}

/// Whether a kind lives in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// It has a namespace: kelp sets the ceph-csi one.
    Namespaced,
    /// Cluster-scoped: no namespace.
    Cluster,
}

/// The kinds a driver file may hold and their scope; anything else is
/// refused rather than guessed (a Namespace, a StorageClass or a webhook
/// in a driver file is not what a user consented to).
pub fn scope(kind: &str) -> Option<Scope> {
    match kind {
        "ServiceAccount" | "Role" | "RoleBinding" | "ConfigMap" | "Service" | "Deployment"
        | "DaemonSet" => Some(Scope::Namespaced),
        "ClusterRole" | "ClusterRoleBinding" | "CSIDriver" => Some(Scope::Cluster),
        _ => None,
    }
}

/// The documents of a verified file, each checked and moved into
/// `namespace` by [`place`]. Empty documents (comment headers) are
/// skipped.
pub fn parse(path: &str, bytes: &[u8], namespace: &str) -> Result<Vec<Value>, DriverError> {
    let document_error = |index: usize, reason: String| DriverError::Document {
        path: path.to_owned(),
        index,
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| DriverError::NotText {
        path: path.to_owned(),
    })?;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|source| DriverError::Yaml {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
    docs.into_iter()
        .enumerate()
        .filter(|(_, doc)| !doc.is_null())
        .map(|(i, doc)| place(doc, namespace).map_err(|reason| document_error(i + 1, reason)))
        .collect()
}

/// One upstream document made ready to apply: `metadata.namespace` set for
/// namespaced kinds (and removed for cluster-scoped ones), every
/// ServiceAccount subject of a (Cluster)RoleBinding pointed at
/// `namespace`, kelp's [`LABELS`] added. Refuses documents without
/// `apiVersion`, `kind` or `metadata.name`, kinds outside [`scope`], and
/// kelp's own `ceph-csi-config`.
pub fn place(mut doc: Value, namespace: &str) -> Result<Value, String> {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("it has no kind")?
        .to_owned();
    if doc.get("apiVersion").and_then(Value::as_str).is_none() {
        return Err(format!("the {kind} has no apiVersion"));
    }
    let scope = scope(&kind).ok_or_else(|| {
        format!(
            "kelp does not install a {kind} from driver files (it installs ServiceAccount, Role, \
             RoleBinding, ConfigMap, Service, Deployment, DaemonSet, ClusterRole, \
             ClusterRoleBinding and CSIDriver)"
        )
    })?;
    let metadata = doc
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("the {kind} has no metadata"))?;
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| format!("the {kind} has no metadata.name"))?
        .to_owned();
    if kind == "ConfigMap" && name == CONFIG_MAP {
        return Err(format!(
            "it is ConfigMap {CONFIG_MAP}, which kelp writes itself from the Ceph cluster's \
             facts: leave that file out of the list"
        ));
    }
    match scope {
        Scope::Namespaced => {
            metadata.insert("namespace".to_owned(), Value::from(namespace));
        }
        Scope::Cluster => {
            metadata.remove("namespace");
        }
    }
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    let labels = labels
        .as_object_mut()
        .ok_or_else(|| format!("the labels of {kind} {name} are not a mapping"))?;
    for (key, value) in LABELS {
        labels.insert(key.to_owned(), Value::from(value));
    }
    if matches!(kind.as_str(), "RoleBinding" | "ClusterRoleBinding") {
        // The driver's accounts live where the driver does.
        let subjects = doc
            .get_mut("subjects")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten();
        for subject in subjects {
            if subject.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                && let Some(subject) = subject.as_object_mut()
            {
                subject.insert("namespace".to_owned(), Value::from(namespace));
            }
        }
    }
    Ok(doc)
}

/// `Kind name` or `Kind namespace/name` of a placed document.
pub fn id(doc: &Value) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let meta = doc.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
    {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// What an install will put in the cluster, for the consent prompt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Every object, as [`id`] prints it, in apply order.
    pub objects: Vec<String>,
    /// The CSIDriver names.
    pub csi_drivers: Vec<String>,
    /// Every container image, sorted, once.
    pub images: Vec<String>,
    /// The workloads with host access, one line each.
    pub privileged: Vec<String>,
}

/// Summarises placed documents.
pub fn summarize(docs: &[Value]) -> Summary {
    let mut summary = Summary::default();
    let mut images = BTreeSet::new();
    for doc in docs {
        summary.objects.push(id(doc));
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind == "CSIDriver"
            && let Some(name) = doc.pointer("/metadata/name").and_then(Value::as_str)
        {
            summary.csi_drivers.push(name.to_owned());
        }
        let Some(pod) = doc.pointer("/spec/template/spec") else {
            continue;
        };
        let containers: Vec<&Value> = ["containers", "initContainers"]
            .iter()
            .filter_map(|key| pod.get(*key).and_then(Value::as_array))
            .flatten()
            .collect();
        images.extend(
            containers
                .iter()
                .filter_map(|c| c.get("image").and_then(Value::as_str))
                .map(str::to_owned),
        );
        let mut host = Vec::new();
        let privileged: Vec<&str> = containers
            .iter()
            .filter(|c| c.pointer("/securityContext/privileged") == Some(&Value::Bool(true)))
            .filter_map(|c| c.get("name").and_then(Value::as_str))
            .collect();
        if !privileged.is_empty() {
            host.push(format!("privileged containers {}", privileged.join(", ")));
        }
        for (field, what) in [
            ("hostNetwork", "the host network"),
            ("hostPID", "the host PID namespace"),
        ] {
            if pod.get(field) == Some(&Value::Bool(true)) {
                host.push(what.to_owned());
            }
        }
        let paths: Vec<&str> = pod
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.pointer("/hostPath/path").and_then(Value::as_str))
            .collect();
        if !paths.is_empty() {
            host.push(format!("host paths {}", paths.join(", ")));
        }
        if !host.is_empty() {
            let where_ = if kind == "DaemonSet" {
                " (on every node)"
            } else {
                ""
            };
            summary
                .privileged
                .push(format!("{}{where_}: {}", id(doc), host.join("; ")));
        }
    }
    summary.images = images.into_iter().collect();
    summary
}

/// The consent text: what will be installed, from where, into which
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a> {
    /// The release.
    pub version: &'a str,
    /// Where the files came from.
    pub base_url: &'a str,
    /// Whether the pins are kelp's own (not a `--driver-manifests` list).
    pub kelp_pins: bool,
    /// The verified files.
    pub files: Vec<&'a str>,
    /// The ceph-csi namespace.
    pub namespace: &'a str,
    /// What the documents hold.
    pub summary: &'a Summary,
}

impl fmt::Display for Plan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.summary;
        writeln!(
            f,
            "kelp will install the ceph-csi RBD driver {} into namespace {}:",
            self.version, self.namespace
        )?;
        writeln!(
            f,
            "  files: {} from {}, each verified against {}:",
            self.files.len(),
            self.base_url,
            if self.kelp_pins {
                "kelp's sha256 pin"
            } else {
                "the sha256 of --driver-manifests"
            }
        )?;
        for file in &self.files {
            writeln!(f, "    {file}")?;
        }
        writeln!(
            f,
            "  namespace {}: created if missing, labelled {}=privileged (the node plugin needs it)",
            self.namespace,
            crate::preflight::POD_SECURITY_ENFORCE_LABEL
        )?;
        writeln!(
            f,
            "  ConfigMaps {CONFIG_MAP} and {KMS_CONFIG_MAP}: created empty if missing"
        )?;
        writeln!(
            f,
            "  objects ({}), applied server-side as kelp:",
            s.objects.len()
        )?;
        for object in &s.objects {
            writeln!(f, "    {object}")?;
        }
        writeln!(f, "  host access:")?;
        for line in &s.privileged {
            writeln!(f, "    {line}")?;
        }
        if s.privileged.is_empty() {
            writeln!(f, "    none")?;
        }
        writeln!(f, "  images (pulled by every node that runs them):")?;
        for image in &s.images {
            writeln!(f, "    {image}")?;
        }
        Ok(())
    }
}

/// The ConfigMaps the driver pods mount that kelp creates when missing, as
/// (name, key, value): `ceph-csi-config` with no cluster yet (`kelp storage
/// rbd --apply` fills it) and the KMS config with no KMS.
pub const EMPTY_CONFIG_MAPS: [(&str, &str, &str); 2] = [
    (CONFIG_MAP, "config.json", "[]"),
    (KMS_CONFIG_MAP, "config.json", "{}"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_pins_are_well_formed() {
        let set = ManifestSet::pinned();
        set.validate().unwrap();
        assert_eq!(set.files.len(), PINS.len());
        assert!(VERSION.starts_with("v3."), "{VERSION}");
        let base = set.default_base_url();
        assert_eq!(
            base,
            format!("https://raw.githubusercontent.com/ceph/ceph-csi/{VERSION}")
        );
        let mut paths = BTreeSet::new();
        for pin in PINS {
            assert!(paths.insert(pin.path), "{} twice", pin.path);
            assert!(is_sha256_hex(pin.sha256), "{}", pin.sha256);
            assert!(pin.path.starts_with("deploy/"), "{}", pin.path);
            assert!(pin.path.ends_with(".yaml"), "{}", pin.path);
            let url = file_url(&base, pin.path);
            assert_eq!(
                url,
                format!(
                    "https://raw.githubusercontent.com/ceph/ceph-csi/{VERSION}/{}",
                    pin.path
                )
            );
        }
        // The driver itself, its node plugin and its RBAC; never kelp's own
        // config map.
        for needed in [
            "deploy/rbd/kubernetes/csidriver.yaml",
            "deploy/rbd/kubernetes/csi-rbdplugin.yaml",
            "deploy/rbd/kubernetes/csi-rbdplugin-provisioner.yaml",
            "deploy/rbd/kubernetes/csi-nodeplugin-rbac.yaml",
            "deploy/rbd/kubernetes/csi-provisioner-rbac.yaml",
        ] {
            assert!(paths.contains(needed), "{needed} missing");
        }
        assert!(!paths.contains("deploy/rbd/kubernetes/csi-config-map.yaml"));
        // Roles before the workloads that use them.
        let position = |p: &str| PINS.iter().position(|pin| pin.path == p);
        assert!(
            position("deploy/rbd/kubernetes/csi-nodeplugin-rbac.yaml")
                < position("deploy/rbd/kubernetes/csi-rbdplugin.yaml")
        );
    }

    #[test]
    fn file_urls_join_base_and_path() {
        let cases = [
            ("https://m.example/ceph-csi/v3.12.2", "a/b.yaml"),
            ("https://m.example/ceph-csi/v3.12.2/", "a/b.yaml"),
        ];
        for (base, path) in cases {
            assert_eq!(
                file_url(base, path),
                "https://m.example/ceph-csi/v3.12.2/a/b.yaml"
            );
        }
    }

    #[test]
    fn sha256_verification() {
        // sha256("abc"), FIPS 180-2's test vector.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc"), abc);
        let file = ManifestFile {
            path: "x.yaml".to_owned(),
            sha256: abc.to_owned(),
        };
        verify(&file, b"abc").unwrap();
        let error = verify(&file, b"abd").unwrap_err().to_string();
        assert!(error.contains("verifying x.yaml failed"), "{error}");
        assert!(error.contains(abc), "{error}");
        assert!(error.contains(&sha256_hex(b"abd")), "{error}");
        assert!(error.contains("nothing was applied"), "{error}");
    }

    #[test]
    fn manifest_lists_are_checked() {
        let good = format!(
            "version: v3.13.0\nfiles:\n- path: deploy/a.yaml\n  sha256: {}\n",
            "a".repeat(64)
        );
        let set = ManifestSet::from_yaml(&good).unwrap();
        assert_eq!(set.version, "v3.13.0");
        assert_eq!(set.files[0].path, "deploy/a.yaml");
        let hex = "b".repeat(64);
        let cases = [
            ("version: v1\nfiles: []\n".to_owned(), "no files"),
            (
                format!("version: ''\nfiles:\n- path: a\n  sha256: {hex}\n"),
                "version",
            ),
            (
                format!("version: v/1\nfiles:\n- path: a\n  sha256: {hex}\n"),
                "version",
            ),
            (
                format!("version: v1\nfiles:\n- path: ../a\n  sha256: {hex}\n"),
                "relative",
            ),
            (
                format!("version: v1\nfiles:\n- path: /a\n  sha256: {hex}\n"),
                "relative",
            ),
            (
                format!(
                    "version: v1\nfiles:\n- path: a\n  sha256: {hex}\n- path: a\n  sha256: {hex}\n"
                ),
                "twice",
            ),
            (
                "version: v1\nfiles:\n- path: a\n  sha256: ABC\n".to_owned(),
                "64 lowercase hex",
            ),
            (
                format!(
                    "version: v1\nfiles:\n- path: a\n  sha256: {}\n",
                    "B".repeat(64)
                ),
                "64 lowercase hex",
            ),
            (
                format!("version: v1\nfiles:\n- path: a\n  sha256: {hex}\n  url: x\n"),
                "url",
            ),
            ("version: v1\nextra: 1\nfiles: []\n".to_owned(), "extra"),
        ];
        for (text, want) in cases {
            let error = ManifestSet::from_yaml(&text).unwrap_err().to_string();
            assert!(error.contains(want), "{text}: {error}");
            assert!(error.starts_with("reading the driver manifest list failed"));
        }
    }

    #[test]
    fn the_scope_table() {
        let cases = [
            ("ServiceAccount", Some(Scope::Namespaced)),
            ("Role", Some(Scope::Namespaced)),
            ("RoleBinding", Some(Scope::Namespaced)),
            ("ConfigMap", Some(Scope::Namespaced)),
            ("Service", Some(Scope::Namespaced)),
            ("Deployment", Some(Scope::Namespaced)),
            ("DaemonSet", Some(Scope::Namespaced)),
            ("ClusterRole", Some(Scope::Cluster)),
            ("ClusterRoleBinding", Some(Scope::Cluster)),
            ("CSIDriver", Some(Scope::Cluster)),
            ("Namespace", None),
            ("StorageClass", None),
            ("MutatingWebhookConfiguration", None),
            ("Secret", None),
        ];
        for (kind, want) in cases {
            assert_eq!(scope(kind), want, "{kind}");
        }
    }

    /// (document, namespace, what `place` gives: Ok(json) or Err(substring)).
    #[test]
    fn placing_documents() {
        let labels = json!({
            "app.kubernetes.io/part-of": "ceph-csi",
            "app.kubernetes.io/managed-by": "kelp",
        });
        let cases: Vec<(Value, Result<Value, &str>)> = vec![
            (
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "sa", "namespace": "default"}}),
                Ok(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": "sa", "namespace": "csi", "labels": labels}})),
            ),
            (
                // No namespace upstream (ceph-conf.yaml): set anyway.
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "ceph-config"}, "data": {"keyring": ""}}),
                Ok(json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "ceph-config", "namespace": "csi", "labels": labels},
                          "data": {"keyring": ""}})),
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                       "metadata": {"name": "p", "namespace": "default", "labels": {"a": "b"}},
                       "spec": {"template": {"metadata": {"labels": {"app": "p"}}}}}),
                Ok(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                          "metadata": {"name": "p", "namespace": "csi", "labels": {
                              "a": "b",
                              "app.kubernetes.io/part-of": "ceph-csi",
                              "app.kubernetes.io/managed-by": "kelp"}},
                          "spec": {"template": {"metadata": {"labels": {"app": "p"}}}}})),
            ),
            (
                json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                       "metadata": {"name": "rbd.csi.ceph.com", "namespace": "default"}}),
                Ok(
                    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                          "metadata": {"name": "rbd.csi.ceph.com", "labels": labels}}),
                ),
            ),
            (
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                       "metadata": {"name": "b"},
                       "subjects": [
                           {"kind": "ServiceAccount", "name": "sa", "namespace": "default"},
                           {"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"}],
                       "roleRef": {"kind": "ClusterRole", "name": "r"}}),
                Ok(
                    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                          "metadata": {"name": "b", "labels": labels},
                          "subjects": [
                              {"kind": "ServiceAccount", "name": "sa", "namespace": "csi"},
                              {"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"}],
                          "roleRef": {"kind": "ClusterRole", "name": "r"}}),
                ),
            ),
            (
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                       "metadata": {"name": "b", "namespace": "default"},
                       "subjects": [{"kind": "ServiceAccount", "name": "sa"}],
                       "roleRef": {"kind": "Role", "name": "r"}}),
                Ok(
                    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                          "metadata": {"name": "b", "namespace": "csi", "labels": labels},
                          "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "csi"}],
                          "roleRef": {"kind": "Role", "name": "r"}}),
                ),
            ),
            (
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
                Err("does not install a Namespace"),
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "ceph-csi-config"}}),
                Err("kelp writes itself"),
            ),
            (
                json!({"kind": "ServiceAccount", "metadata": {"name": "sa"}}),
                Err("no apiVersion"),
            ),
            (
                json!({"apiVersion": "v1", "metadata": {"name": "sa"}}),
                Err("no kind"),
            ),
            (
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {}}),
                Err("no metadata.name"),
            ),
            (
                json!({"apiVersion": "v1", "kind": "ServiceAccount"}),
                Err("no metadata"),
            ),
            (
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "sa", "labels": ["x"]}}),
                Err("not a mapping"),
            ),
        ];
        for (doc, want) in cases {
            let got = place(doc.clone(), "csi");
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{doc}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{doc}: {got}"),
                (got, want) => panic!("{doc}: {got:?} vs {want:?}"),
            }
        }
    }

    const FILE: &str = "# a comment header, an empty document\n---\n\
        apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  namespace: default\n\
        ---\n\
        kind: DaemonSet\napiVersion: apps/v1\nmetadata:\n  name: plugin\n  namespace: default\n\
        spec:\n  template:\n    spec:\n      hostNetwork: true\n      containers:\n\
        \x20       - name: a\n          image: quay.io/x/a:v1\n          securityContext:\n\
        \x20           privileged: true\n        - name: b\n          image: quay.io/x/b:v2\n\
        \x20     volumes:\n        - name: dev\n          hostPath:\n            path: /dev\n\
        \x20       - name: tmp\n          emptyDir: {\n            medium: \"Memory\"\n          }\n\
        ---\n\
        apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: prov\n\
        spec:\n  template:\n    spec:\n      containers:\n        - name: c\n\
        \x20         image: quay.io/x/a:v1\n\
        ---\n\
        apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata:\n  name: \"rbd.csi.ceph.com\"\n";

    #[test]
    fn parsing_and_summarizing_a_file() {
        let docs = parse("f.yaml", FILE.as_bytes(), "ceph-csi").unwrap();
        let ids: Vec<String> = docs.iter().map(id).collect();
        assert_eq!(
            ids,
            [
                "ServiceAccount ceph-csi/sa",
                "DaemonSet ceph-csi/plugin",
                "Deployment ceph-csi/prov",
                "CSIDriver rbd.csi.ceph.com"
            ]
        );
        let summary = summarize(&docs);
        assert_eq!(summary.objects, ids);
        assert_eq!(summary.csi_drivers, ["rbd.csi.ceph.com"]);
        assert_eq!(summary.images, ["quay.io/x/a:v1", "quay.io/x/b:v2"]);
        assert_eq!(
            summary.privileged,
            [
                "DaemonSet ceph-csi/plugin (on every node): privileged containers a; \
              the host network; host paths /dev"
            ]
        );
        let plan = Plan {
            version: "v3.12.2",
            base_url: "https://m.example",
            kelp_pins: true,
            files: vec!["f.yaml"],
            namespace: "ceph-csi",
            summary: &summary,
        }
        .to_string();
        for want in [
            "driver v3.12.2 into namespace ceph-csi",
            "1 from https://m.example",
            "kelp's sha256 pin",
            "quay.io/x/b:v2",
            "privileged containers a",
            "pod-security.kubernetes.io/enforce=privileged",
        ] {
            assert!(plan.contains(want), "{want} not in {plan}");
        }
    }

    #[test]
    fn bad_files_are_refused() {
        let cases: [(&[u8], &str); 4] = [
            (b"a: [unclosed\n", "parsing f.yaml failed"),
            (b"\xff\xfe", "reading f.yaml failed: it is not UTF-8"),
            (
                b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n",
                "document 1 of f.yaml failed: kelp does not install a Secret",
            ),
            (
                b"---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: s\n---\n- 1\n",
                "document 2 of f.yaml failed: it has no kind",
            ),
        ];
        for (bytes, want) in cases {
            let error = parse("f.yaml", bytes, "ns").unwrap_err().to_string();
            assert!(error.contains(want), "{error} vs {want}");
        }
    }
}
