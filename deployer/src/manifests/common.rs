//! Pieces every component uses: names, labels, the config hash, services,
//! disruption budgets, affinity, resources, probes. Also the Namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar,
    EnvVarSource, ExecAction, LocalObjectReference, Namespace, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, Volume,
    VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Object;
use crate::stack::{AntiAffinity, Resources, Stack};

/// Pod-template annotation holding [`config_hash`] of the pods' ConfigMap:
/// a changed config changes the template, so the pods roll.
pub const CONFIG_HASH_ANNOTATION: &str = "kelp.io/config-hash";

/// `app.kubernetes.io/part-of` and `managed-by` of every object.
pub(crate) const KELP: &str = "kelp";

/// Where components mount their ConfigMap (scripts and config files).
pub(crate) const CONFIG_DIR: &str = "/etc/kelp/config";

/// Name of the ConfigMap volume in every pod.
pub(crate) const CONFIG_VOLUME: &str = "config";

/// The identity of one application of the stack, for names and labels.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// `app.kubernetes.io/name`, also the name of its main objects.
    pub(crate) name: &'static str,
    /// `app.kubernetes.io/component`: its role in the stack.
    pub(crate) component: &'static str,
    /// `app.kubernetes.io/version`.
    pub(crate) version: String,
}

impl App {
    pub(crate) fn new(name: &'static str, component: &'static str, version: &str) -> App {
        App {
            name,
            component,
            version: version.to_owned(),
        }
    }
}

/// The labels that select an application's pods. Only labels that never
/// change: a selector is immutable.
pub(crate) fn selector_labels(stack: &Stack, app: &App) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), app.name.to_owned()),
        (
            "app.kubernetes.io/instance".to_owned(),
            stack.namespace.clone(),
        ),
    ])
}

/// Every label of an application's objects and pods: the stack's own
/// `common.labels`, then the standard `app.kubernetes.io` ones.
pub(crate) fn labels(stack: &Stack, app: &App) -> BTreeMap<String, String> {
    let mut labels = stack.common.labels.clone();
    labels.extend(selector_labels(stack, app));
    labels.extend([
        (
            "app.kubernetes.io/component".to_owned(),
            app.component.to_owned(),
        ),
        ("app.kubernetes.io/part-of".to_owned(), KELP.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), KELP.to_owned()),
        (
            "app.kubernetes.io/version".to_owned(),
            label_value(&app.version),
        ),
    ]);
    labels
}

/// A string as a valid label value: at most 63 of `A-Za-z0-9-_.`, starting
/// and ending alphanumeric (an image tag may hold `+` or be longer).
fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// Metadata of a namespaced object.
pub(crate) fn meta(stack: &Stack, name: &str, app: &App) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(stack.namespace.clone()),
        labels: Some(labels(stack, app)),
        ..ObjectMeta::default()
    }
}

/// Metadata of a cluster-scoped object.
pub(crate) fn cluster_meta(stack: &Stack, name: &str, app: &App) -> ObjectMeta {
    ObjectMeta {
        namespace: None,
        ..meta(stack, name, app)
    }
}

/// The pods' FQDN suffix below a headless service: `<service>.<ns>.svc.<domain>`.
pub(crate) fn service_fqdn(stack: &Stack, service: &str) -> String {
    format!(
        "{service}.{}.svc.{}",
        stack.namespace, stack.common.cluster_domain
    )
}

/// The FQDN of pod `<name>-<ordinal>` of a StatefulSet behind `service`.
pub(crate) fn pod_fqdn(stack: &Stack, name: &str, ordinal: u32, service: &str) -> String {
    format!("{name}-{ordinal}.{}", service_fqdn(stack, service))
}

/// sha256 (hex) of a ConfigMap's data, keys in order, each key and value
/// followed by a NUL so that no two different maps hash alike.
pub fn config_hash(data: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A ConfigMap and the hash of its data.
pub(crate) fn config_map(
    stack: &Stack,
    name: &str,
    app: &App,
    data: BTreeMap<String, String>,
) -> (ConfigMap, String) {
    let hash = config_hash(&data);
    let config_map = ConfigMap {
        metadata: meta(stack, name, app),
        data: Some(data),
        ..ConfigMap::default()
    };
    (config_map, hash)
}

/// A config file's text from a JSON value: YAML without the null fields
/// (the programs' defaults apply to what is absent), after a comment
/// naming the program's reference for the rest.
pub(crate) fn config_text(value: &Value, reference: &str) -> String {
    let value = without_nulls(value);
    // serde-saphyr only fails on non-string map keys, which a JSON value
    // cannot have; JSON is YAML too, so the fallback is still a valid config.
    let body = serde_saphyr::to_string(&value).unwrap_or_else(|_| format!("{value:#}\n"));
    format!(
        "# Rendered by kelp from the stack file. Fields not set here keep their\n\
         # defaults; {reference} shows every field.\n{body}"
    )
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The pod template's metadata: labels and the config hash.
pub(crate) fn pod_meta(stack: &Stack, app: &App, config_hash: &str) -> ObjectMeta {
    ObjectMeta {
        labels: Some(labels(stack, app)),
        annotations: Some(BTreeMap::from([(
            CONFIG_HASH_ANNOTATION.to_owned(),
            config_hash.to_owned(),
        )])),
        ..ObjectMeta::default()
    }
}

/// A service account. Only the collector talks to the API server; the
/// others get no token mounted.
pub(crate) fn service_account(stack: &Stack, name: &str, app: &App) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(stack, name, app),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

fn service_ports(ports: &[(&str, i32)]) -> Vec<ServicePort> {
    ports
        .iter()
        .map(|(name, port)| ServicePort {
            name: Some((*name).to_owned()),
            port: *port,
            target_port: Some(IntOrString::Int(*port)),
            protocol: Some("TCP".to_owned()),
            ..ServicePort::default()
        })
        .collect()
}

/// The headless service that gives each pod of a StatefulSet its DNS name.
/// It publishes pods before they are ready: members of a quorum must find
/// each other to become ready at all.
pub(crate) fn headless_service(
    stack: &Stack,
    name: &str,
    app: &App,
    ports: &[(&str, i32)],
) -> Service {
    Service {
        metadata: meta(stack, name, app),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(stack, app)),
            ports: Some(service_ports(ports)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A ClusterIP service over the ready pods, for clients.
pub(crate) fn client_service(
    stack: &Stack,
    name: &str,
    app: &App,
    ports: &[(&str, i32)],
) -> Service {
    Service {
        metadata: meta(stack, name, app),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(stack, app)),
            ports: Some(service_ports(ports)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A disruption budget letting one pod go at a time: a drain never takes
/// two ZooKeeper servers, Kafka brokers or Elasticsearch nodes at once.
pub(crate) fn disruption_budget(stack: &Stack, name: &str, app: &App) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(stack, name, app),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(stack, app)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// The label selector of an application's pods.
pub(crate) fn selector(stack: &Stack, app: &App) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(stack, app)),
        ..LabelSelector::default()
    }
}

/// Anti-affinity between an application's pods on the node level.
pub(crate) fn anti_affinity(stack: &Stack, app: &App, strength: AntiAffinity) -> Affinity {
    let term = PodAffinityTerm {
        label_selector: Some(selector(stack, app)),
        topology_key: "kubernetes.io/hostname".to_owned(),
        ..PodAffinityTerm::default()
    };
    let anti = match strength {
        AntiAffinity::Required => PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..PodAntiAffinity::default()
        },
        AntiAffinity::Preferred => PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: term,
                },
            ]),
            ..PodAntiAffinity::default()
        },
    };
    Affinity {
        pod_anti_affinity: Some(anti),
        ..Affinity::default()
    }
}

/// Requests and limits: memory request equals the limit.
pub(crate) fn resources(resources: &Resources) -> ResourceRequirements {
    let memory = Quantity(format!("{}Mi", resources.memory_mib));
    let cpu = |millis: u32| Quantity(format!("{millis}m"));
    let mut limits = BTreeMap::from([("memory".to_owned(), memory.clone())]);
    if let Some(limit) = resources.cpu_limit_millis {
        limits.insert("cpu".to_owned(), cpu(limit));
    }
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), cpu(resources.cpu_request_millis)),
            ("memory".to_owned(), memory),
        ])),
        limits: Some(limits),
        ..ResourceRequirements::default()
    }
}

/// Pod security for the JVM images, which all run as uid 1000. Volumes are
/// chowned to the group only when their root does not match yet: a
/// recursive chown of a large Kafka or Elasticsearch volume at every start
/// would take minutes.
pub(crate) fn jvm_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_user: Some(1000),
        run_as_non_root: Some(true),
        fs_group: Some(1000),
        fs_group_change_policy: Some("OnRootMismatch".to_owned()),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..PodSecurityContext::default()
    }
}

pub(crate) fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    }
}

/// A container that needs no privilege at all.
pub(crate) fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// An environment variable with a fixed value.
pub(crate) fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// An environment variable from the downward API, e.g. `metadata.name`.
pub(crate) fn env_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// An environment variable from a key of a Secret that must exist.
pub(crate) fn env_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// A named TCP container port.
pub(crate) fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: port,
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

/// The volume of a component's ConfigMap; scripts in it are executable.
pub(crate) fn config_volume(config_map: &str) -> Volume {
    Volume {
        name: CONFIG_VOLUME.to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_owned(),
            default_mode: Some(0o555),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A volume mount.
pub(crate) fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// A mount of one file of a volume (`subPath`).
pub(crate) fn mount_file(volume: &str, path: &str, key: &str) -> VolumeMount {
    VolumeMount {
        sub_path: Some(key.to_owned()),
        ..mount(volume, path, true)
    }
}

/// A probe that runs a script from the ConfigMap.
pub(crate) fn script_probe(script: &str, period_seconds: i32, timeout_seconds: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec!["bash".to_owned(), format!("{CONFIG_DIR}/{script}")]),
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(timeout_seconds),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// Labels of volume claim templates: only those that never change, since
/// a StatefulSet's `volumeClaimTemplates` cannot be updated (no version,
/// no `common.labels`).
fn claim_labels(stack: &Stack, app: &App) -> BTreeMap<String, String> {
    let mut labels = selector_labels(stack, app);
    labels.extend([
        (
            "app.kubernetes.io/component".to_owned(),
            app.component.to_owned(),
        ),
        ("app.kubernetes.io/part-of".to_owned(), KELP.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), KELP.to_owned()),
    ]);
    labels
}

/// The claim template of a StatefulSet's data volume.
pub(crate) fn volume_claim(
    stack: &Stack,
    app: &App,
    size_gib: u32,
    storage_class: Option<String>,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".to_owned()),
            labels: Some(claim_labels(stack, app)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage_class,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(format!("{size_gib}Gi")),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            volume_mode: Some("Filesystem".to_owned()),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// One pod at a time, highest ordinal first; each must be ready (back in
/// its quorum or cluster) before the next goes.
pub(crate) fn rolling_update() -> StatefulSetUpdateStrategy {
    StatefulSetUpdateStrategy {
        type_: Some("RollingUpdate".to_owned()),
        ..StatefulSetUpdateStrategy::default()
    }
}

/// Claims outlive the StatefulSet and scale-downs: data is deleted only on
/// purpose.
pub(crate) fn retain_claims() -> StatefulSetPersistentVolumeClaimRetentionPolicy {
    StatefulSetPersistentVolumeClaimRetentionPolicy {
        when_deleted: Some("Retain".to_owned()),
        when_scaled: Some("Retain".to_owned()),
    }
}

/// What sets apart the StatefulSets of ZooKeeper, Kafka and Elasticsearch;
/// [`server_set`] adds what they share.
pub(crate) struct ServerSet {
    pub(crate) replicas: u32,
    /// Seconds a pod gets to stop after SIGTERM.
    pub(crate) grace_seconds: i64,
    pub(crate) init_containers: Option<Vec<Container>>,
    pub(crate) container: Container,
    pub(crate) volumes: Vec<Volume>,
    /// The claim template of the data volume.
    pub(crate) claim: PersistentVolumeClaim,
}

/// The StatefulSet of a JVM server that forms a quorum or cluster with its
/// peers. All pods start together (`Parallel`): none is ready before the
/// quorum is (ZooKeeper's ensemble, KRaft's controllers, Elasticsearch's
/// masters). Service links stay off: they would set variables such as
/// `KAFKA_PORT` that the servers' scripts may read as settings.
pub(crate) fn server_set(
    stack: &Stack,
    name: &str,
    app: &App,
    config_hash: &str,
    set: ServerSet,
) -> StatefulSet {
    StatefulSet {
        metadata: meta(stack, name, app),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas(set.replicas)),
            service_name: Some(name.to_owned()),
            pod_management_policy: Some("Parallel".to_owned()),
            update_strategy: Some(rolling_update()),
            persistent_volume_claim_retention_policy: Some(retain_claims()),
            selector: selector(stack, app),
            template: PodTemplateSpec {
                metadata: Some(pod_meta(stack, app, config_hash)),
                spec: Some(PodSpec {
                    service_account_name: Some(name.to_owned()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    affinity: Some(anti_affinity(stack, app, stack.common.anti_affinity)),
                    security_context: Some(jvm_pod_security()),
                    termination_grace_period_seconds: Some(set.grace_seconds),
                    image_pull_secrets: pull_secrets(stack),
                    init_containers: set.init_containers,
                    containers: vec![set.container],
                    volumes: Some(set.volumes),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![set.claim]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// A replica count as Kubernetes takes it.
pub(crate) fn replicas(count: u32) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// The stack's image pull secrets, if any.
pub(crate) fn pull_secrets(stack: &Stack) -> Option<Vec<LocalObjectReference>> {
    let secrets = &stack.images.pull_secrets;
    (!secrets.is_empty()).then(|| {
        secrets
            .iter()
            .map(|name| LocalObjectReference { name: name.clone() })
            .collect()
    })
}

/// The Namespace. Its pods need the `privileged` Pod Security level: the
/// collector mounts host paths and Elasticsearch's init container sets a
/// sysctl; every other container drops all capabilities.
pub(crate) fn build(stack: &Stack) -> Vec<Object> {
    let app = App::new(KELP, "stack", &stack.images.tag);
    let mut metadata = cluster_meta(stack, &stack.namespace, &app);
    if let Some(labels) = metadata.labels.as_mut() {
        labels.insert(
            "pod-security.kubernetes.io/enforce".to_owned(),
            "privileged".to_owned(),
        );
    }
    vec![Object::Namespace(Namespace {
        metadata,
        ..Namespace::default()
    })]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_hash_depends_on_keys_values_and_their_split() {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        let base = config_hash(&map(&[("a", "1"), ("b", "2")]));
        assert_eq!(base.len(), 64);
        assert_eq!(base, config_hash(&map(&[("b", "2"), ("a", "1")])));
        assert_ne!(base, config_hash(&map(&[("a", "1"), ("b", "3")])));
        assert_ne!(base, config_hash(&map(&[("a", "1"), ("c", "2")])));
        assert_ne!(
            config_hash(&map(&[("ab", "c")])),
            config_hash(&map(&[("a", "bc")]))
        );
        // sha256 of the empty input.
        assert_eq!(
            config_hash(&BTreeMap::new()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn label_values_are_made_valid() {
        assert_eq!(label_value("0.1.0"), "0.1.0");
        assert_eq!(label_value("1.0.0+build.5"), "1.0.0_build.5");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn config_text_drops_nulls_and_parses_back() {
        let value = serde_json::json!({"a": null, "b": {"c": null, "d": [1, null]}, "e": "x: y"});
        let text = config_text(&value, "x.yaml");
        assert!(text.starts_with("# Rendered by kelp"));
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"b": {"d": [1, null]}, "e": "x: y"})
        );
    }
}
