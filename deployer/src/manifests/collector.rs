//! kelp-collector: a DaemonSet that reads the kubelet's log files on every
//! node and keeps its checkpoints on the node. Its config file is
//! kelp-collector's own format (collector/src/config.rs); tests parse it
//! with the collector's parser.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, HTTPGetAction, HostPathVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SecurityContext, ServiceAccount, Toleration, Volume,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::Object;
use super::common::{
    App, CONFIG_DIR, CONFIG_VOLUME, cluster_meta, config_map, config_text, config_volume,
    env_field, meta, mount, pod_meta, port, pull_secrets, resources, runtime_default_seccomp,
    selector,
};
use super::kafka;
use crate::stack::{Stack, TolerationOperator};

/// Name of the DaemonSet, its service account and ConfigMap prefix.
pub(crate) const NAME: &str = "kelp-collector";
/// The config file's name in the ConfigMap.
pub(crate) const CONFIG_FILE: &str = "collector.yaml";
/// The metrics, health and readiness port (the collector's default).
const METRICS_PORT: i32 = 9101;
/// The kubelet's log directories (volume name, path), mounted read-only.
/// `/var/log/containers` holds symlinks into `/var/log/pods`.
pub(crate) const LOG_DIRS: [(&str, &str); 2] = [
    ("pod-logs", "/var/log/pods"),
    ("container-logs", "/var/log/containers"),
];

fn app(stack: &Stack) -> App {
    App::new(NAME, "collector", &stack.images.tag)
}

/// The image: `images.collector` or `<registry>/kelp-collector:<tag>`.
pub(crate) fn image(stack: &Stack) -> String {
    stack.images.collector.clone().unwrap_or_else(|| {
        format!(
            "{}/kelp-collector:{}",
            stack.images.registry, stack.images.tag
        )
    })
}

/// The cluster-wide RBAC objects' name: `kelp-collector-<namespace>`, so
/// stacks in several namespaces do not share them.
fn rbac_name(stack: &Stack) -> String {
    format!("{NAME}-{}", stack.namespace)
}

/// Where checkpoints are written, on the node's state directory.
pub(crate) fn checkpoint_path(stack: &Stack) -> String {
    format!(
        "{}/checkpoints.json",
        stack.collector.state_dir.trim_end_matches('/')
    )
}

pub(crate) fn build(stack: &Stack) -> Vec<Object> {
    let app = app(stack);
    let config_name = format!("{NAME}-config");
    let (config, hash) = config_map(
        stack,
        &config_name,
        &app,
        BTreeMap::from([(
            CONFIG_FILE.to_owned(),
            config_text(&config(stack), "collector/config.example.yaml"),
        )]),
    );
    vec![
        // The only component that talks to the API server (pod metadata).
        Object::ServiceAccount(ServiceAccount {
            metadata: meta(stack, NAME, &app),
            ..ServiceAccount::default()
        }),
        Object::ClusterRole(ClusterRole {
            metadata: cluster_meta(stack, &rbac_name(stack), &app),
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["namespaces".to_owned(), "pods".to_owned()]),
                verbs: vec!["get".to_owned(), "list".to_owned(), "watch".to_owned()],
                ..PolicyRule::default()
            }]),
            ..ClusterRole::default()
        }),
        Object::ClusterRoleBinding(ClusterRoleBinding {
            metadata: cluster_meta(stack, &rbac_name(stack), &app),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".to_owned()),
                kind: "ClusterRole".to_owned(),
                name: rbac_name(stack),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name: NAME.to_owned(),
                namespace: Some(stack.namespace.clone()),
                ..Subject::default()
            }]),
        }),
        Object::ConfigMap(config),
        Object::DaemonSet(daemon_set(stack, &app, &config_name, &hash)),
    ]
}

/// The collector's config: what the stack decides; the collector's
/// defaults for the rest (collector/config.example.yaml).
pub(crate) fn config(stack: &Stack) -> Value {
    json!({
        "tail": {"include": stack.collector.include},
        "parse": {"multiline": stack.collector.multiline},
        "checkpoint": {"path": checkpoint_path(stack)},
        "sink": {
            "kind": "kafka",
            "bootstrap_servers": kafka::bootstrap_servers(stack).join(","),
            "topic": stack.kafka.topics.logs.name,
        },
        "metrics": {"listen": format!("0.0.0.0:{METRICS_PORT}")},
        // Pod labels, owner and image from this node's pods (NODE_NAME and
        // the ClusterRole below), and the kelp.io/* annotations honoured.
        "kubernetes": {"enabled": true},
    })
}

fn host_path(name: &str, path: &str, kind: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        host_path: Some(HostPathVolumeSource {
            path: path.to_owned(),
            type_: Some(kind.to_owned()),
        }),
        ..Volume::default()
    }
}

fn http_probe(path: &str, initial_delay_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(METRICS_PORT),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay_seconds),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn tolerations(stack: &Stack) -> Option<Vec<Toleration>> {
    let tolerations = &stack.collector.tolerations;
    (!tolerations.is_empty()).then(|| {
        tolerations
            .iter()
            .map(|t| Toleration {
                key: t.key.clone(),
                operator: Some(
                    match t.operator {
                        TolerationOperator::Exists => "Exists",
                        TolerationOperator::Equal => "Equal",
                    }
                    .to_owned(),
                ),
                value: t.value.clone(),
                effect: t.effect.clone(),
                ..Toleration::default()
            })
            .collect()
    })
}

fn daemon_set(stack: &Stack, app: &App, config_name: &str, hash: &str) -> DaemonSet {
    let state_dir = stack.collector.state_dir.trim_end_matches('/').to_owned();
    let mut mounts: Vec<_> = LOG_DIRS
        .iter()
        .map(|(name, dir)| mount(name, dir, true))
        .collect();
    mounts.push(mount("state", &state_dir, false));
    mounts.push(mount(CONFIG_VOLUME, CONFIG_DIR, true));
    let mut volumes: Vec<_> = LOG_DIRS
        .iter()
        .map(|(name, dir)| host_path(name, dir, "Directory"))
        .collect();
    volumes.push(host_path("state", &state_dir, "DirectoryOrCreate"));
    volumes.push(config_volume(config_name));
    let container = Container {
        name: NAME.to_owned(),
        image: Some(image(stack)),
        args: Some(vec![
            "run".to_owned(),
            "--config".to_owned(),
            format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        ]),
        env: Some(vec![env_field("NODE_NAME", "spec.nodeName")]),
        ports: Some(vec![port("metrics", METRICS_PORT)]),
        resources: Some(resources(&stack.collector.resources)),
        readiness_probe: Some(http_probe("/readyz", 5)),
        // /healthz fails after the config's liveness_timeout_ms (30 s)
        // without a pipeline round.
        liveness_probe: Some(http_probe("/healthz", 30)),
        volume_mounts: Some(mounts),
        // The kubelet's log files are 0640 root: uid 0, but nothing else of
        // root's power. DAC_READ_SEARCH covers files another runtime wrote
        // with other owners.
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: Some(vec!["DAC_READ_SEARCH".to_owned()]),
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    DaemonSet {
        metadata: meta(stack, NAME, app),
        spec: Some(DaemonSetSpec {
            selector: selector(stack, app),
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::Int(1)),
                    ..RollingUpdateDaemonSet::default()
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(pod_meta(stack, app, hash)),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.to_owned()),
                    automount_service_account_token: Some(true),
                    enable_service_links: Some(false),
                    priority_class_name: stack.collector.priority_class.clone(),
                    tolerations: tolerations(stack),
                    security_context: Some(PodSecurityContext {
                        seccomp_profile: Some(runtime_default_seccomp()),
                        ..PodSecurityContext::default()
                    }),
                    // The collector's delivery.shutdown_timeout_ms (10 s) and a
                    // checkpoint save.
                    termination_grace_period_seconds: Some(30),
                    image_pull_secrets: pull_secrets(stack),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DaemonSetSpec::default()
        }),
        ..DaemonSet::default()
    }
}
