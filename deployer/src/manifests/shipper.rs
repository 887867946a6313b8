//! kelp-shipper: a Deployment of consumers in one Kafka consumer group,
//! indexing into Elasticsearch. Its config file is kelp-shipper's own
//! format (shipper/src/config.rs); tests parse it with the shipper's parser.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, HTTPGetAction, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, SecretProjection, SecurityContext, Volume, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::Object;
use super::common::{
    App, CONFIG_DIR, CONFIG_VOLUME, anti_affinity, config_map, config_text, config_volume,
    disruption_budget, meta, mount, pod_meta, port, pull_secrets, replicas, resources,
    restricted_container, runtime_default_seccomp, selector, service_account,
};
use super::{elasticsearch, kafka};
use crate::stack::{AntiAffinity, Stack};

/// Name of the Deployment, its ConfigMap prefix and service account.
pub(crate) const NAME: &str = "kelp-shipper";
/// The config file's name in the ConfigMap.
pub(crate) const CONFIG_FILE: &str = "shipper.yaml";
/// The metrics, health and readiness port (the shipper's default).
const METRICS_PORT: i32 = 9102;
/// Secret with `password`: the `kelp-shipper` user's password in
/// Elasticsearch (security on). Created by `kelp apply` later.
pub const ELASTICSEARCH_PASSWORD_SECRET: &str = "kelp-shipper-elasticsearch-password";
/// Where the Elasticsearch password and CA are mounted.
pub(crate) const SECRETS_DIR: &str = "/etc/kelp/elasticsearch";
/// The user the distroless `nonroot` image runs as.
const NONROOT: i64 = 65532;

fn app(stack: &Stack) -> App {
    App::new(NAME, "shipper", &stack.images.tag)
}

/// The image: `images.shipper` or `<registry>/kelp-shipper:<tag>`.
pub(crate) fn image(stack: &Stack) -> String {
    stack.images.shipper.clone().unwrap_or_else(|| {
        format!(
            "{}/kelp-shipper:{}",
            stack.images.registry, stack.images.tag
        )
    })
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
            config_text(&config(stack), "shipper/config.example.yaml"),
        )]),
    );
    vec![
        Object::ServiceAccount(service_account(stack, NAME, &app)),
        Object::ConfigMap(config),
        Object::PodDisruptionBudget(disruption_budget(stack, NAME, &app)),
        Object::Deployment(deployment(stack, &app, &config_name, &hash)),
    ]
}

/// The shipper's config: what the stack decides; the shipper's defaults
/// for the rest.
pub(crate) fn config(stack: &Stack) -> Value {
    let security = stack.elasticsearch.security_enabled();
    let auth = if security {
        json!({"basic": {
            "username": "kelp-shipper",
            "password_file": format!("{SECRETS_DIR}/password"),
        }})
    } else {
        json!("none")
    };
    let tls = if security {
        json!({"ca_file": format!("{SECRETS_DIR}/ca.crt")})
    } else {
        json!({})
    };
    let mut template = stack.shipper.template.clone();
    // A single node cannot hold replicas: the indices would stay yellow.
    if template.replicas.is_none() && stack.elasticsearch.replicas == 1 {
        template.replicas = Some(0);
    }
    json!({
        "kafka": {
            "bootstrap_servers": kafka::bootstrap_servers(stack),
            "topics": [stack.kafka.topics.logs.name],
            "group_id": "kelp-shipper",
        },
        "elasticsearch": {
            "urls": [elasticsearch::url(stack)],
            "index_template": stack.shipper.index_template,
            "auth": auth,
            "tls": tls,
        },
        "bulk": stack.shipper.bulk,
        "dead_letter": {"topic": stack.kafka.topics.dead_letter.name},
        "template": template,
        "metrics": {"listen_address": format!("0.0.0.0:{METRICS_PORT}")},
    })
}

fn http_probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(METRICS_PORT),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn secret_projection(secret: &str, key: &str) -> VolumeProjection {
    VolumeProjection {
        secret: Some(SecretProjection {
            name: secret.to_owned(),
            items: Some(vec![KeyToPath {
                key: key.to_owned(),
                path: key.to_owned(),
                ..KeyToPath::default()
            }]),
            optional: Some(false),
        }),
        ..VolumeProjection::default()
    }
}

fn deployment(stack: &Stack, app: &App, config_name: &str, hash: &str) -> Deployment {
    let mut mounts = vec![mount(CONFIG_VOLUME, CONFIG_DIR, true)];
    let mut volumes = vec![config_volume(config_name)];
    if stack.elasticsearch.security_enabled() {
        // The password and only the CA of Elasticsearch's certificate.
        mounts.push(mount("elasticsearch", SECRETS_DIR, true));
        volumes.push(Volume {
            name: "elasticsearch".to_owned(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![
                    secret_projection(ELASTICSEARCH_PASSWORD_SECRET, "password"),
                    secret_projection(elasticsearch::CERTS_SECRET, "ca.crt"),
                ]),
                default_mode: Some(0o440),
            }),
            ..Volume::default()
        });
    }
    let container = Container {
        name: NAME.to_owned(),
        image: Some(image(stack)),
        args: Some(vec![
            "run".to_owned(),
            "--config".to_owned(),
            format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        ]),
        ports: Some(vec![port("metrics", METRICS_PORT)]),
        resources: Some(resources(&stack.shipper.resources)),
        readiness_probe: Some(http_probe("/readyz")),
        liveness_probe: Some(http_probe("/healthz")),
        volume_mounts: Some(mounts),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            ..restricted_container()
        }),
        ..Container::default()
    };
    Deployment {
        metadata: meta(stack, NAME, app),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas(stack.shipper.replicas)),
            selector: selector(stack, app),
            template: PodTemplateSpec {
                metadata: Some(pod_meta(stack, app, hash)),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.to_owned()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    affinity: Some(anti_affinity(stack, app, AntiAffinity::Preferred)),
                    // fsGroup makes the mounted secret files readable.
                    security_context: Some(PodSecurityContext {
                        run_as_user: Some(NONROOT),
                        run_as_group: Some(NONROOT),
                        run_as_non_root: Some(true),
                        fs_group: Some(NONROOT),
                        seccomp_profile: Some(runtime_default_seccomp()),
                        ..PodSecurityContext::default()
                    }),
                    // Past the shipper's revoke_drain_timeout_ms: in-flight
                    // bulks finish and their offsets are committed.
                    termination_grace_period_seconds: Some(
                        i64::try_from(stack.shipper.bulk.revoke_drain_timeout_ms / 1000)
                            .unwrap_or(i64::MAX / 2)
                            .saturating_add(30),
                    ),
                    image_pull_secrets: pull_secrets(stack),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}
