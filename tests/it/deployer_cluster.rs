//! The deployer's cluster steps against the testbed's real kube-apiserver
//! (kwok nodes): the preflight, the generated Secrets, and volume growth.
//! Each test works in its own namespace (and StorageClasses) and removes
//! them at the end.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, HostPathVolumeSource, Namespace, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec, Pod,
    PodSpec, PodTemplateSpec, Secret, Volume, VolumeResourceRequirements,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kelp_deployer::manifests::{self, Object};
use kelp_deployer::preflight::{self, Outcome, PreflightReport};
use kelp_deployer::stack::Stack;
use kelp_deployer::{growth, secrets};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

async fn client() -> anyhow::Result<Client> {
    kelp_tests::service("KUBECONFIG", "k8s")?;
    Client::try_default()
        .await
        .context("building a kube client from KUBECONFIG failed")
}

fn storage_class() -> String {
    std::env::var("KELP_K8S_STORAGE_CLASS").unwrap_or_else(|_| "kelp-test".to_owned())
}

fn kubectl() -> Command {
    Command::new(std::env::var("KELP_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned()))
}

/// Cluster objects a test made, deleted when it ends (pass or fail).
#[derive(Default)]
struct Cleanup(Vec<(&'static str, String)>);

impl Cleanup {
    fn add(&mut self, kind: &'static str, name: &str) {
        self.0.push((kind, name.to_owned()));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (kind, name) in self.0.iter().rev() {
            let _ = kubectl()
                .args(["delete", kind, name, "--wait=false", "--ignore-not-found"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

async fn create_namespace(
    client: &Client,
    cleanup: &mut Cleanup,
    labels: &[(&str, &str)],
) -> anyhow::Result<String> {
    let name = kelp_tests::unique("kelp-it");
    let namespace = Namespace {
        metadata: ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..meta(&name)
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("creating namespace {name} failed"))?;
    cleanup.add("namespace", &name);
    Ok(name)
}

fn small_stack(namespace: &str, extra: &str) -> anyhow::Result<Stack> {
    let yaml = format!(
        "namespace: {namespace}\n\
         storage: {{storage_class: \"{class}\"}}\n\
         zookeeper: {{replicas: 1}}\n\
         kafka: {{replicas: 1, default_replication_factor: 1, min_insync_replicas: 1}}\n\
         elasticsearch: {{replicas: 1}}\n{extra}",
        class = storage_class()
    );
    Stack::from_yaml_str(&yaml).context("parsing the test stack failed")
}

fn check<'a>(report: &'a PreflightReport, name: &str) -> anyhow::Result<&'a preflight::Check> {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .with_context(|| format!("no check {name:?} in\n{report}"))
}

fn expect_failure(report: &PreflightReport, name: &str, fix: &str) -> anyhow::Result<()> {
    let found = check(report, name)?;
    ensure!(
        found.outcome == Outcome::Fail,
        "{name} should fail:\n{report}"
    );
    ensure!(!report.passed(), "the report should fail:\n{report}");
    let text = found.fix.clone().unwrap_or_default();
    ensure!(text.contains(fix), "{name}: fix {text:?} lacks {fix:?}");
    ensure!(
        report.to_string().contains(&format!("     fix: {text}")),
        "the display lacks the fix:\n{report}"
    );
    Ok(())
}

/// The rendered Elasticsearch pod, as a bare Pod (its data volume an
/// emptyDir), to ask the API server what Pod Security admits.
fn elasticsearch_pod(stack: &Stack) -> anyhow::Result<Pod> {
    let template = manifests::build(stack)
        .into_iter()
        .find_map(|o| match o {
            Object::StatefulSet(sts) if sts.metadata.name.as_deref() == Some("elasticsearch") => {
                sts.spec.map(|s| s.template)
            }
            _ => None,
        })
        .context("no elasticsearch statefulset rendered")?;
    let mut spec = template.spec.context("no pod spec")?;
    // Admission would first refuse the missing service account.
    spec.service_account_name = None;
    spec.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: "data".to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    Ok(Pod {
        metadata: meta("elasticsearch-preflight"),
        spec: Some(spec),
        ..Pod::default()
    })
}

async fn dry_run_pod(client: &Client, namespace: &str, pod: &Pod) -> Result<(), kube::Error> {
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&params, pod)
        .await
        .map(|_| ())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up k8s"]
async fn preflight_passes_on_the_testbed_and_each_problem_fails_with_its_fix() -> anyhow::Result<()>
{
    let client = client().await?;
    let mut cleanup = Cleanup::default();

    // A small stack on the testbed's class, in a namespace kelp would create.
    let fresh = kelp_tests::unique("kelp-it");
    let stack = small_stack(&fresh, "")?;
    let report = preflight::run(&client, &stack).await?;
    ensure!(report.passed(), "the testbed should pass:\n{report}");
    ensure!(
        check(&report, "kubernetes version")?.outcome == Outcome::Pass,
        "{report}"
    );
    ensure!(
        check(&report, "storage class")?
            .detail
            .contains(&storage_class()),
        "{report}"
    );

    // A StorageClass that does not exist.
    let missing = kelp_tests::unique("kelp-missing");
    let stack = Stack::from_yaml_str(&format!(
        "namespace: {fresh}\nstorage: {{storage_class: {missing}}}\n\
         zookeeper: {{replicas: 1}}\n\
         kafka: {{replicas: 1, default_replication_factor: 1, min_insync_replicas: 1}}\n\
         elasticsearch: {{replicas: 1}}\n"
    ))?;
    let report = preflight::run(&client, &stack).await?;
    expect_failure(&report, "storage class", "create the StorageClass")?;

    // Required anti-affinity with one more broker than there are nodes.
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .len();
    let mut stack = small_stack(&fresh, "")?;
    stack.kafka.replicas = u32::try_from(nodes + 1)?;
    stack.common.anti_affinity = kelp_deployer::stack::AntiAffinity::Required;
    let report = preflight::run(&client, &stack).await?;
    expect_failure(
        &report,
        "nodes for kafka",
        &format!("lower kafka.replicas to {nodes}, or set common.anti_affinity: preferred"),
    )?;
    // The same with preferred anti-affinity only warns.
    stack.common.anti_affinity = kelp_deployer::stack::AntiAffinity::Preferred;
    let report = preflight::run(&client, &stack).await?;
    ensure!(
        check(&report, "nodes for kafka")?.outcome == Outcome::Warn && report.passed(),
        "{report}"
    );

    // A namespace that enforces `restricted`, and the privileged init container.
    let restricted = create_namespace(
        &client,
        &mut cleanup,
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await?;
    let stack = small_stack(&restricted, "")?;
    let report = preflight::run(&client, &stack).await?;
    expect_failure(
        &report,
        "pod security: elasticsearch max-map-count",
        &format!(
            "kubectl label namespace {restricted} pod-security.kubernetes.io/enforce=privileged --overwrite"
        ),
    )?;
    expect_failure(&report, "pod security: collector host paths", "privileged")?;
    // The API server agrees: it refuses the Elasticsearch pod there, and
    // admits it in a privileged namespace.
    let pod = elasticsearch_pod(&stack)?;
    match dry_run_pod(&client, &restricted, &pod).await {
        Err(kube::Error::Api(status)) if status.message.contains("PodSecurity") => {}
        other => bail!("the restricted namespace should refuse the pod, got {other:?}"),
    }
    let privileged = create_namespace(
        &client,
        &mut cleanup,
        &[("pod-security.kubernetes.io/enforce", "privileged")],
    )
    .await?;
    let stack = small_stack(&privileged, "")?;
    let report = preflight::run(&client, &stack).await?;
    ensure!(report.passed(), "{report}");
    dry_run_pod(&client, &privileged, &elasticsearch_pod(&stack)?)
        .await
        .context("a privileged namespace should admit the elasticsearch pod")?;
    Ok(())
}

fn secret_data(secret: &Secret, key: &str) -> Vec<u8> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up k8s"]
async fn secrets_are_created_once_and_a_users_secret_wins() -> anyhow::Result<()> {
    let client = client().await?;
    let mut cleanup = Cleanup::default();
    let namespace = create_namespace(&client, &mut cleanup, &[]).await?;
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);

    // The user brings Kibana's password.
    let theirs = Secret {
        metadata: meta(manifests::KIBANA_ELASTICSEARCH_PASSWORD_SECRET),
        data: Some(BTreeMap::from([(
            "password".to_owned(),
            ByteString(b"user-chosen".to_vec()),
        )])),
        ..Secret::default()
    };
    api.create(&PostParams::default(), &theirs).await?;

    let stack = small_stack(&namespace, "")?;
    let first = secrets::ensure(&client, &stack).await?;
    let mut created = first.created.clone();
    created.sort();
    ensure!(
        created
            == [
                manifests::ELASTICSEARCH_CERTS_SECRET,
                manifests::ELASTICSEARCH_ELASTIC_PASSWORD_SECRET,
                manifests::SHIPPER_ELASTICSEARCH_PASSWORD_SECRET,
            ],
        "created: {first}"
    );
    ensure!(
        first.kept == [manifests::KIBANA_ELASTICSEARCH_PASSWORD_SECRET],
        "kept: {first}"
    );
    let kibana = api
        .get(manifests::KIBANA_ELASTICSEARCH_PASSWORD_SECRET)
        .await?;
    ensure!(
        secret_data(&kibana, "password") == b"user-chosen",
        "overwritten"
    );
    let certs = api.get(manifests::ELASTICSEARCH_CERTS_SECRET).await?;
    ensure!(certs.type_.as_deref() == Some("kubernetes.io/tls"));
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        ensure!(
            String::from_utf8(secret_data(&certs, key))?.starts_with("-----BEGIN "),
            "{key} is not PEM"
        );
    }
    let elastic = api
        .get(manifests::ELASTICSEARCH_ELASTIC_PASSWORD_SECRET)
        .await?;
    ensure!(secret_data(&elastic, "password").len() == secrets::PASSWORD_CHARS);
    // The report names Secrets, never values.
    ensure!(!first.to_string().contains("BEGIN"), "{first}");

    // A second run keeps all four and writes nothing.
    let versions = |list: Vec<Secret>| -> BTreeMap<String, String> {
        list.into_iter()
            .map(|s| {
                (
                    s.metadata.name.unwrap_or_default(),
                    s.metadata.resource_version.unwrap_or_default(),
                )
            })
            .collect()
    };
    let before = versions(api.list(&ListParams::default()).await?.items);
    let second = secrets::ensure(&client, &stack).await?;
    ensure!(second.is_noop() && second.kept.len() == 4, "{second}");
    let after = versions(api.list(&ListParams::default()).await?.items);
    ensure!(
        before == after,
        "resource versions moved: {before:?} -> {after:?}"
    );

    // The credentials for the Elasticsearch user setup read back.
    let credentials = secrets::read_credentials(&client, &stack).await?;
    ensure!(credentials.kibana_system.expose() == "user-chosen");
    ensure!(credentials.elastic.expose().as_bytes() == secret_data(&elastic, "password"));

    // An existing Secret without a key the pods read is an error, not kept.
    let broken_ns = create_namespace(&client, &mut cleanup, &[]).await?;
    let broken = Secret {
        metadata: meta(manifests::ELASTICSEARCH_CERTS_SECRET),
        data: Some(BTreeMap::from([(
            "tls.crt".to_owned(),
            ByteString(b"x".to_vec()),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), &broken_ns)
        .create(&PostParams::default(), &broken)
        .await?;
    match secrets::ensure(&client, &small_stack(&broken_ns, "")?).await {
        Err(error @ secrets::SecretsError::MissingKey { .. }) => {
            ensure!(error.to_string().contains("has no key ca.crt"), "{error}");
        }
        other => bail!("expected a missing key error, got {other:?}"),
    }

    // Security off: nothing to create.
    let off = secrets::ensure(
        &client,
        &small_stack(&broken_ns, "").map(|mut s| {
            s.elasticsearch.security = Some(false);
            s
        })?,
    )
    .await?;
    ensure!(off.created.is_empty() && off.kept.is_empty(), "{off}");
    Ok(())
}

const GROW_LABEL: (&str, &str) = ("app", "kelp-it-grow");

fn grow_sts(name: &str, class: &str, replicas: i32, size: &str) -> StatefulSet {
    let labels = BTreeMap::from([(GROW_LABEL.0.to_owned(), GROW_LABEL.1.to_owned())]);
    StatefulSet {
        metadata: meta(name),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(name.to_owned()),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".to_owned(),
                        // kwok runs no container: the image is never pulled.
                        image: Some("registry.invalid/kelp-it:1".to_owned()),
                        volume_mounts: Some(vec![k8s_openapi::api::core::v1::VolumeMount {
                            name: "data".to_owned(),
                            mount_path: "/data".to_owned(),
                            ..Default::default()
                        }]),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: meta("data"),
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                    storage_class_name: Some(class.to_owned()),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_owned(),
                            Quantity(size.to_owned()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            }]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// A StorageClass with the testbed class's provisioner.
async fn create_class(
    client: &Client,
    cleanup: &mut Cleanup,
    expansion: bool,
) -> anyhow::Result<String> {
    let api: Api<StorageClass> = Api::all(client.clone());
    let testbed = api
        .get(&storage_class())
        .await
        .context("reading the testbed's storage class failed")?;
    let name = kelp_tests::unique("kelp-it-grow");
    let class = StorageClass {
        metadata: meta(&name),
        provisioner: testbed.provisioner,
        allow_volume_expansion: Some(expansion),
        reclaim_policy: Some("Retain".to_owned()),
        volume_binding_mode: Some("Immediate".to_owned()),
        ..StorageClass::default()
    };
    api.create(&PostParams::default(), &class).await?;
    cleanup.add("storageclass", &name);
    Ok(name)
}

/// The testbed's fake provisioner serves only its own class, so volumes of
/// the test's class are provisioned the static way: a PersistentVolume
/// pre-bound to each claim the StatefulSet will make.
async fn create_volumes(
    client: &Client,
    cleanup: &mut Cleanup,
    namespace: &str,
    class: &str,
    sts: &str,
    replicas: i32,
) -> anyhow::Result<()> {
    let api: Api<PersistentVolume> = Api::all(client.clone());
    for ordinal in 0..replicas {
        let claim = format!("data-{sts}-{ordinal}");
        let name = format!("{class}-{ordinal}");
        let volume = PersistentVolume {
            metadata: meta(&name),
            spec: Some(PersistentVolumeSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                capacity: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity("1Gi".to_owned()),
                )])),
                storage_class_name: Some(class.to_owned()),
                persistent_volume_reclaim_policy: Some("Retain".to_owned()),
                claim_ref: Some(ObjectReference {
                    api_version: Some("v1".to_owned()),
                    kind: Some("PersistentVolumeClaim".to_owned()),
                    namespace: Some(namespace.to_owned()),
                    name: Some(claim),
                    ..ObjectReference::default()
                }),
                host_path: Some(HostPathVolumeSource {
                    path: format!("/nonexistent/kelp-it/{name}"),
                    type_: None,
                }),
                ..PersistentVolumeSpec::default()
            }),
            ..PersistentVolume::default()
        };
        api.create(&PostParams::default(), &volume).await?;
        cleanup.add("persistentvolume", &name);
    }
    Ok(())
}

/// Polls `probe` every 500 ms until it returns `Some`, failing after `limit`
/// with `what` and the last state.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Result<T, String>>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match probe().await? {
            Ok(value) => return Ok(value),
            Err(state) if Instant::now() > deadline => {
                bail!("{what} did not happen within {limit:?}: {state}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

fn storage_of(claim: &PersistentVolumeClaim) -> String {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

/// Pod name -> (uid, uid of its controller owner).
async fn pods(
    client: &Client,
    namespace: &str,
) -> anyhow::Result<BTreeMap<String, (String, Option<String>)>> {
    let list = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("{}={}", GROW_LABEL.0, GROW_LABEL.1)))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let owner = p
                .metadata
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .find(|o| o.controller == Some(true))
                .map(|o| o.uid);
            (
                p.metadata.name.unwrap_or_default(),
                (p.metadata.uid.unwrap_or_default(), owner),
            )
        })
        .collect())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up k8s"]
async fn volumes_grow_and_the_recreated_statefulset_adopts_the_running_pods() -> anyhow::Result<()>
{
    let client = client().await?;
    let mut cleanup = Cleanup::default();
    let namespace = create_namespace(&client, &mut cleanup, &[]).await?;
    let class = create_class(&client, &mut cleanup, true).await?;
    let replicas = 2;
    create_volumes(&client, &mut cleanup, &namespace, &class, "grow", replicas).await?;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    sets.create(
        &PostParams::default(),
        &grow_sts("grow", &class, replicas, "1Gi"),
    )
    .await?;

    wait_for(
        "claims bound and pods running",
        Duration::from_secs(180),
        || async {
            let bound = claims
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
                .count();
            let running = Api::<Pod>::namespaced(client.clone(), &namespace)
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            Ok(if bound == 2 && running == 2 {
                Ok(())
            } else {
                Err(format!("{bound} claims bound, {running} pods running"))
            })
        },
    )
    .await?;
    let before = pods(&client, &namespace).await?;
    let live = sets.get("grow").await?;
    let old_uid = live.metadata.uid.clone();
    ensure!(
        before.values().all(|(_, owner)| owner == &old_uid),
        "pods not owned by the statefulset: {before:?}"
    );

    let desired = grow_sts("grow", &class, replicas, "2Gi");
    let plan = growth::plan(&live, &desired);
    ensure!(plan.is_needed() && plan.grow.len() == 1, "{plan}");
    let report = growth::execute(&client, &namespace, &plan).await?;
    ensure!(
        report.patched == ["data-grow-0", "data-grow-1"] && report.statefulset_deleted,
        "{report}"
    );
    for claim in claims.list(&ListParams::default()).await?.items {
        ensure!(
            storage_of(&claim) == "2Gi",
            "{:?} not resized",
            claim.metadata.name
        );
    }
    ensure!(
        sets.get_opt("grow").await?.is_none(),
        "the statefulset is still there"
    );
    let orphaned = pods(&client, &namespace).await?;
    ensure!(
        orphaned.len() == 2
            && orphaned
                .iter()
                .all(|(name, (uid, owner))| owner.is_none() && before[name].0 == *uid),
        "the pods should keep running without an owner: {before:?} -> {orphaned:?}"
    );

    // The re-applied StatefulSet adopts the same pods.
    let created = sets.create(&PostParams::default(), &desired).await?;
    let new_uid = created.metadata.uid.clone();
    let adopted = wait_for("adoption", Duration::from_secs(120), || async {
        let now = pods(&client, &namespace).await?;
        Ok(
            if now.values().all(|(_, owner)| owner == &new_uid) && now.len() == 2 {
                Ok(now)
            } else {
                Err(format!("{now:?}"))
            },
        )
    })
    .await?;
    ensure!(
        adopted
            .iter()
            .all(|(name, (uid, _))| before[name].0 == *uid),
        "the pods were replaced, not adopted: {before:?} -> {adopted:?}"
    );

    // Growing again plans nothing, and a second execute is a no-op.
    let live = sets.get("grow").await?;
    let again = growth::plan(&live, &desired);
    ensure!(!again.is_needed() && again.refused.is_empty(), "{again}");
    let noop = growth::execute(&client, &namespace, &again).await?;
    ensure!(
        noop.patched.is_empty() && !noop.statefulset_deleted,
        "{noop}"
    );

    // A shrink is refused before anything is touched.
    let shrink = growth::plan(&live, &grow_sts("grow", &class, replicas, "512Mi"));
    match growth::execute(&client, &namespace, &shrink).await {
        Err(error @ growth::GrowthError::Refused { .. }) => {
            ensure!(
                error.to_string().contains("volumes cannot shrink"),
                "{error}"
            );
        }
        other => bail!("a shrink should be refused, got {other:?}"),
    }
    ensure!(
        sets.get_opt("grow").await?.is_some(),
        "the statefulset was touched"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up k8s"]
async fn growth_stops_when_the_class_cannot_expand() -> anyhow::Result<()> {
    let client = client().await?;
    let mut cleanup = Cleanup::default();
    let namespace = create_namespace(&client, &mut cleanup, &[]).await?;
    let class = create_class(&client, &mut cleanup, false).await?;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let live = sets
        .create(&PostParams::default(), &grow_sts("fixed", &class, 1, "1Gi"))
        .await?;
    let plan = growth::plan(&live, &grow_sts("fixed", &class, 1, "2Gi"));
    ensure!(plan.is_needed(), "{plan}");
    match growth::execute(&client, &namespace, &plan).await {
        Err(error @ growth::GrowthError::ExpansionNotAllowed { .. }) => ensure!(
            error.to_string().contains(&format!(
                "storageclass {class} does not allow volume expansion; fix:"
            )),
            "{error}"
        ),
        other => bail!("expected the class to be refused, got {other:?}"),
    }
    ensure!(
        sets.get_opt("fixed").await?.is_some(),
        "the statefulset must be left alone"
    );
    Ok(())
}
