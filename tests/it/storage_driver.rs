//! `kelp storage rbd --install-driver` against the testbed's real
//! kube-apiserver (kwok nodes make the DaemonSet's pods Ready): a small
//! synthetic driver served by a local HTTP server, pinned by a
//! `--driver-manifests` list. Refused without consent off a terminal,
//! refused when a file does not match its pin, both with nothing applied;
//! a dry run without its namespace is refused; with consent every object
//! lands in the chosen namespace, the bindings' subjects point there, and
//! the driver check passes.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, ensure};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::api::storage::v1::CSIDriver;
use kelp_deployer::ceph::driver::sha256_hex;
use kube::Client;
use kube::api::Api;

fn kubectl() -> Command {
    Command::new(std::env::var("KELP_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned()))
}

/// Deletes the namespace and the cluster-scoped objects, pass or fail.
struct Cleanup {
    namespace: String,
    cluster_name: String,
    csi_driver: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (kind, name) in [
            ("csidriver", &self.csi_driver),
            ("clusterrolebinding", &self.cluster_name),
            ("clusterrole", &self.cluster_name),
            ("namespace", &self.namespace),
        ] {
            let _ = kubectl()
                .args(["delete", kind, name, "--wait=false", "--ignore-not-found"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A tiny HTTP/1.1 server for the driver files: GET /<path>, one request
/// per connection. Returns its base URL.
fn serve(files: Files) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the file server failed")?;
    let address = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(match stream.try_clone() {
                Ok(s) => s,
                Err(_) => continue,
            });
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            let body = files.lock().ok().and_then(|f| f.get(&path).cloned());
            let (status, body) = match body {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .and_then(|()| stream.write_all(&body));
        }
    });
    Ok(format!("http://{address}/"))
}

fn manifests(cluster_name: &str, csi_driver: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "rbac.yaml",
            format!(
                "# a header, as upstream has\n---\n\
                 apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: rbd-csi-nodeplugin\n  namespace: default\n\
                 ---\n\
                 kind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\nmetadata:\n  name: {cluster_name}\n\
                 rules:\n  - apiGroups: [\"\"]\n    resources: [\"nodes\"]\n    verbs: [\"get\"]\n\
                 ---\n\
                 kind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\nmetadata:\n  name: {cluster_name}\n\
                 subjects:\n  - kind: ServiceAccount\n    name: rbd-csi-nodeplugin\n    namespace: default\n\
                 roleRef:\n  kind: ClusterRole\n  name: {cluster_name}\n  apiGroup: rbac.authorization.k8s.io\n"
            ),
        ),
        (
            "driver/csidriver.yaml",
            format!(
                "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata:\n  name: \"{csi_driver}\"\n\
                 spec:\n  attachRequired: true\n  podInfoOnMount: false\n"
            ),
        ),
        (
            "driver/plugin.yaml",
            "kind: DaemonSet\napiVersion: apps/v1\nmetadata:\n  name: csi-rbdplugin\n  namespace: default\n\
             spec:\n  selector:\n    matchLabels:\n      app: csi-rbdplugin\n  template:\n    metadata:\n\
             \x20     labels:\n        app: csi-rbdplugin\n    spec:\n      serviceAccountName: rbd-csi-nodeplugin\n\
             \x20     hostNetwork: true\n      containers:\n        - name: csi-rbdplugin\n\
             \x20         image: example.invalid/kelp/fake-csi:v0\n          securityContext:\n\
             \x20           privileged: true\n"
                .to_owned(),
        ),
    ]
}

async fn exists<K>(api: &Api<K>, name: &str) -> anyhow::Result<bool>
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api.get_opt(name).await?.is_some())
}

fn run(args: &[&str]) -> anyhow::Result<Output> {
    let binary = kelp_tests::fresh_binary("kelp", &["deployer/src"])?;
    Command::new(binary)
        .args(["storage", "rbd", "--install-driver"])
        .args(args)
        .env_remove("KELP_STACK")
        .stdin(Stdio::null())
        .output()
        .context("running kelp storage rbd --install-driver failed")
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up k8s"]
async fn install_driver_consents_verifies_and_places() -> anyhow::Result<()> {
    kelp_tests::service("KUBECONFIG", "k8s")?;
    let client = Client::try_default()
        .await
        .context("building a kube client from KUBECONFIG failed")?;
    let namespace = kelp_tests::unique("kelp-drv");
    let cluster_name = kelp_tests::unique("kelp-drv-role");
    let csi_driver = format!("{}.csi.kelp.test", kelp_tests::unique("d"));
    let _cleanup = Cleanup {
        namespace: namespace.clone(),
        cluster_name: cluster_name.clone(),
        csi_driver: csi_driver.clone(),
    };

    let files: Files = Arc::default();
    let mut list = "version: synthetic-1\nfiles:\n".to_owned();
    for (path, text) in manifests(&cluster_name, &csi_driver) {
        list.push_str(&format!(
            "  - path: {path}\n    sha256: {}\n",
            sha256_hex(text.as_bytes())
        ));
        files
            .lock()
            .map_err(|_| anyhow::anyhow!("file map poisoned"))?
            .insert(path.to_owned(), text.into_bytes());
    }
    let base_url = serve(files.clone())?;
    let dir = tempfile::tempdir()?;
    let list_path = dir.path().join("driver-manifests.yaml");
    std::fs::write(&list_path, &list)?;
    let list_arg = list_path.to_str().context("temp path is not UTF-8")?;
    let common = [
        "--driver-manifests",
        list_arg,
        "--driver-base-url",
        &base_url,
        "--csi-namespace",
        &namespace,
        "--driver-timeout-secs",
        "180",
    ];

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let drivers: Api<CSIDriver> = Api::all(client.clone());
    let roles: Api<ClusterRole> = Api::all(client.clone());

    // Off a terminal, without --yes: the plan is shown, nothing applied.
    let out = run(&common)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "installed without consent: {stderr}");
    ensure!(stderr.contains("rerun with --yes"), "{stderr}");
    ensure!(
        stderr.contains("example.invalid/kelp/fake-csi:v0")
            && stderr.contains(&format!(
                "DaemonSet {namespace}/csi-rbdplugin (on every node)"
            )),
        "the plan does not show the image and the privileged DaemonSet: {stderr}"
    );
    ensure!(
        !exists(&namespaces, &namespace).await?,
        "namespace created without consent"
    );
    ensure!(
        !exists(&drivers, &csi_driver).await?,
        "CSIDriver created without consent"
    );

    // A file that is not the pinned one: refused, nothing applied, even
    // the files before it.
    let good = files
        .lock()
        .map_err(|_| anyhow::anyhow!("file map poisoned"))?
        .get("driver/plugin.yaml")
        .cloned()
        .context("plugin.yaml missing")?;
    let tampered = String::from_utf8(good.clone())?.replace("fake-csi:v0", "evil:v1");
    files
        .lock()
        .map_err(|_| anyhow::anyhow!("file map poisoned"))?
        .insert("driver/plugin.yaml".to_owned(), tampered.into_bytes());
    let mut with_yes = common.to_vec();
    with_yes.push("--yes");
    let out = run(&with_yes)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "a tampered file was installed: {stderr}"
    );
    ensure!(
        stderr.contains("verifying driver/plugin.yaml failed")
            && stderr.contains("nothing was applied"),
        "{stderr}"
    );
    ensure!(
        !exists(&namespaces, &namespace).await?,
        "namespace created from a tampered set"
    );
    ensure!(
        !exists(&roles, &cluster_name).await?,
        "ClusterRole applied from a tampered set"
    );
    ensure!(
        !exists(&drivers, &csi_driver).await?,
        "CSIDriver applied from a tampered set"
    );

    // The pinned files again. A dry run needs no consent but an existing
    // namespace, and stores nothing.
    files
        .lock()
        .map_err(|_| anyhow::anyhow!("file map poisoned"))?
        .insert("driver/plugin.yaml".to_owned(), good);
    let mut dry_run = common.to_vec();
    dry_run.push("--dry-run");
    let out = run(&dry_run)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "a dry run without its namespace passed: {stderr}"
    );
    ensure!(
        stderr.contains(&format!("the dry run needs namespace {namespace} to exist")),
        "{stderr}"
    );
    ensure!(
        !exists(&namespaces, &namespace).await?,
        "a dry run created the namespace"
    );

    // With consent: installed and Ready.
    let out = run(&with_yes)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "install failed: {stderr}");
    ensure!(
        stderr.contains(&format!("CSIDriver {csi_driver} present")),
        "no passing driver check: {stderr}"
    );

    let ns = namespaces.get(&namespace).await?;
    let ns_labels = ns.metadata.labels.unwrap_or_default();
    ensure!(
        ns_labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str)
            == Some("privileged"),
        "{ns_labels:?}"
    );
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    ensure!(
        exists(&accounts, "rbd-csi-nodeplugin").await?,
        "ServiceAccount not in {namespace}"
    );
    let default_accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    ensure!(
        !exists(&default_accounts, "rbd-csi-nodeplugin").await?,
        "the ServiceAccount went to namespace default"
    );
    let daemon_sets: Api<DaemonSet> = Api::namespaced(client.clone(), &namespace);
    let plugin = daemon_sets.get("csi-rbdplugin").await?;
    let labels = plugin.metadata.labels.unwrap_or_default();
    ensure!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str)
            == Some("kelp"),
        "{labels:?}"
    );
    let managers: Vec<String> = plugin
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f.operation.as_deref() == Some("Apply"))
        .filter_map(|f| f.manager)
        .collect();
    ensure!(managers == ["kelp"], "applied by {managers:?}");
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&cluster_name)
        .await?;
    let subjects: Vec<(String, Option<String>)> = binding
        .subjects
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.name, s.namespace))
        .collect();
    ensure!(
        subjects == [("rbd-csi-nodeplugin".to_owned(), Some(namespace.clone()))],
        "{subjects:?}"
    );
    ensure!(exists(&drivers, &csi_driver).await?, "CSIDriver missing");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let config = config_maps.get("ceph-csi-config").await?;
    ensure!(
        config
            .data
            .unwrap_or_default()
            .get("config.json")
            .map(String::as_str)
            == Some("[]"),
        "ceph-csi-config is not the empty list"
    );
    ensure!(
        exists(&config_maps, "ceph-csi-encryption-kms-config").await?,
        "the KMS ConfigMap is missing"
    );
    Ok(())
}
