//! Kibana: a Deployment on Elastic's image that talks to Elasticsearch
//! through its client service. Upgrades recreate the pods, so two Kibana
//! versions never migrate the saved-object indices at the same time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, HTTPGetAction, KeyToPath, PodSpec, PodTemplateSpec, Probe, SecretVolumeSource,
    Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Object;
use super::common::{
    App, CONFIG_VOLUME, anti_affinity, client_service, config_map, config_volume,
    disruption_budget, env_secret, jvm_pod_security, meta, mount, mount_file, pod_meta, port,
    pull_secrets, replicas, resources, restricted_container, selector, service_account,
};
use super::elasticsearch;
use crate::stack::{AntiAffinity, Stack};

/// Name of the Deployment and its service.
pub(crate) const NAME: &str = "kibana";
/// Kibana's HTTP port.
pub(crate) const PORT: i32 = 5601;
/// Secret with `password`: the `kibana_system` user's password (security
/// on). Set in Elasticsearch by `kelp apply` later; by hand for now.
pub const ELASTICSEARCH_PASSWORD_SECRET: &str = "kibana-elasticsearch-password";
const KIBANA_CONFIG_DIR: &str = "/usr/share/kibana/config";

/// Kibana's version: its own, else Elasticsearch's, which it must match.
fn version(stack: &Stack) -> &str {
    stack
        .kibana
        .version
        .as_deref()
        .unwrap_or(&stack.elasticsearch.version)
}

pub(crate) fn build(stack: &Stack) -> Vec<Object> {
    let app = App::new(NAME, "dashboards", version(stack));
    let config_name = format!("{NAME}-config");
    let (config, hash) = config_map(
        stack,
        &config_name,
        &app,
        BTreeMap::from([("kibana.yml".to_owned(), kibana_yml(stack))]),
    );
    vec![
        Object::ServiceAccount(service_account(stack, NAME, &app)),
        Object::ConfigMap(config),
        Object::Service(client_service(stack, NAME, &app, &[("http", PORT)])),
        Object::PodDisruptionBudget(disruption_budget(stack, NAME, &app)),
        Object::Deployment(deployment(stack, &app, &config_name, &hash)),
    ]
}

fn kibana_yml(stack: &Stack) -> String {
    let mut yml = format!(
        "\
# Rendered by kelp.
server.name: kibana
server.host: 0.0.0.0
server.port: {PORT}
elasticsearch.hosts: [\"{}\"]
",
        elasticsearch::url(stack)
    );
    if stack.elasticsearch.security_enabled() {
        let _ = write!(
            yml,
            "\
elasticsearch.username: kibana_system
elasticsearch.password: ${{KIBANA_SYSTEM_PASSWORD}}
elasticsearch.ssl.certificateAuthorities: [\"{KIBANA_CONFIG_DIR}/certs/ca.crt\"]
elasticsearch.ssl.verificationMode: full
"
        );
    }
    yml
}

fn deployment(stack: &Stack, app: &App, config_name: &str, hash: &str) -> Deployment {
    let kibana = &stack.kibana;
    let image = stack
        .images
        .kibana
        .clone()
        .unwrap_or_else(|| format!("docker.elastic.co/kibana/kibana:{}", version(stack)));
    let mut mounts = vec![mount_file(
        CONFIG_VOLUME,
        &format!("{KIBANA_CONFIG_DIR}/kibana.yml"),
        "kibana.yml",
    )];
    let mut volumes = vec![config_volume(config_name)];
    let mut env = Vec::new();
    if stack.elasticsearch.security_enabled() {
        env.push(env_secret(
            "KIBANA_SYSTEM_PASSWORD",
            ELASTICSEARCH_PASSWORD_SECRET,
            "password",
        ));
        // Only the CA of Elasticsearch's certificate, not its key.
        mounts.push(mount(
            "elasticsearch-ca",
            &format!("{KIBANA_CONFIG_DIR}/certs"),
            true,
        ));
        volumes.push(Volume {
            name: "elasticsearch-ca".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(elasticsearch::CERTS_SECRET.to_owned()),
                items: Some(vec![KeyToPath {
                    key: "ca.crt".to_owned(),
                    path: "ca.crt".to_owned(),
                    ..KeyToPath::default()
                }]),
                default_mode: Some(0o440),
                optional: Some(false),
            }),
            ..Volume::default()
        });
    }
    let container = Container {
        name: NAME.to_owned(),
        image: Some(image),
        env: (!env.is_empty()).then_some(env),
        ports: Some(vec![port("http", PORT)]),
        resources: Some(resources(&kibana.resources)),
        // 200 once Kibana is available (saved objects migrated and
        // Elasticsearch reachable), 503 before; an unauthenticated caller
        // gets only the overall level.
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/api/status".to_owned()),
                port: IntOrString::Int(PORT),
                ..HTTPGetAction::default()
            }),
            initial_delay_seconds: Some(10),
            period_seconds: Some(10),
            timeout_seconds: Some(5),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        volume_mounts: Some(mounts),
        security_context: Some(restricted_container()),
        ..Container::default()
    };
    Deployment {
        metadata: meta(stack, NAME, app),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas(kibana.replicas)),
            selector: selector(stack, app),
            // No surge: an upgrade stops the old version before the new one
            // migrates the saved-object indices.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(pod_meta(stack, app, hash)),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.to_owned()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    affinity: Some(anti_affinity(stack, app, AntiAffinity::Preferred)),
                    security_context: Some(jvm_pod_security()),
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
