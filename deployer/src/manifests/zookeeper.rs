//! The ZooKeeper ensemble for Kafka's ZooKeeper mode: a StatefulSet on the
//! official `zookeeper` image, one server per pod, the server id from the
//! pod's ordinal, a static ensemble of the pods' DNS names.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Container;

use super::Object;
use super::common::{
    App, CONFIG_DIR, CONFIG_VOLUME, config_map, config_volume, disruption_budget, env, env_field,
    headless_service, mount, pod_fqdn, port, resources, restricted_container, script_probe,
    service_account, volume_claim,
};
use super::common::{ServerSet, server_set};
use super::storage::{Volumes, class_for};
use crate::stack::{KafkaMode, Stack};

/// Name of the StatefulSet, its headless service and its pods' prefix.
pub(crate) const NAME: &str = "zookeeper";
/// The client port Kafka connects to.
pub(crate) const CLIENT_PORT: i32 = 2181;

pub(crate) fn app(stack: &Stack) -> App {
    App::new(NAME, "coordination", &stack.zookeeper.version)
}

/// `zookeeper.connect` for Kafka: every server's FQDN and client port.
pub(crate) fn connect_string(stack: &Stack) -> String {
    (0..stack.zookeeper.replicas)
        .map(|ordinal| format!("{}:{CLIENT_PORT}", pod_fqdn(stack, NAME, ordinal, NAME)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The ensemble's objects; none in KRaft mode.
pub(crate) fn build(stack: &Stack) -> Vec<Object> {
    if stack.kafka.mode != KafkaMode::Zookeeper {
        return Vec::new();
    }
    let app = app(stack);
    let config_name = format!("{NAME}-config");
    let (config, hash) = config_map(stack, &config_name, &app, config_files(stack));
    vec![
        Object::ServiceAccount(service_account(stack, NAME, &app)),
        Object::ConfigMap(config),
        Object::Service(headless_service(
            stack,
            NAME,
            &app,
            &[("client", CLIENT_PORT), ("peer", 2888), ("election", 3888)],
        )),
        Object::PodDisruptionBudget(disruption_budget(stack, NAME, &app)),
        Object::StatefulSet(stateful_set(stack, &app, &config_name, &hash)),
    ]
}

fn config_files(stack: &Stack) -> BTreeMap<String, String> {
    let servers: String = (0..stack.zookeeper.replicas)
        .map(|ordinal| {
            format!(
                "server.{}={}:2888:3888;{CLIENT_PORT}\n",
                ordinal + 1,
                pod_fqdn(stack, NAME, ordinal, NAME)
            )
        })
        .collect();
    let zoo_cfg = format!(
        "\
# Rendered by kelp. The ensemble is static: server.N is pod N-1.
dataDir=/data
clientPort={CLIENT_PORT}
tickTime=2000
initLimit=10
syncLimit=5
autopurge.snapRetainCount=3
autopurge.purgeInterval=24
# srvr for the readiness probe, mntr for monitoring.
4lw.commands.whitelist=srvr,mntr,ruok
admin.enableServer=false
# Bind the quorum ports on every interface: a pod's own DNS name may not
# resolve yet when it starts.
quorumListenOnAllIPs=true
standaloneEnabled=false
reconfigEnabled=false
{servers}"
    );
    let start = format!(
        "\
#!/bin/bash
# Starts this ZooKeeper server. Its id is the pod's ordinal + 1, so pod N
# is the server.(N+1) line of zoo.cfg.
set -euo pipefail
ordinal=${{POD_NAME##*-}}
echo \"$((ordinal + 1))\" >/data/myid
exec zkServer.sh start-foreground {CONFIG_DIR}/zoo.cfg
"
    );
    let ready = "\
#!/bin/bash
# Ready when this server serves as part of a quorum: srvr reports it as
# leader or follower. (ruok would only prove that the process answers.)
exec 3<>/dev/tcp/127.0.0.1/2181 || exit 1
printf srvr >&3
mode=$(timeout 4 cat <&3 | sed -n 's/^Mode: //p')
case \"$mode\" in
  leader|follower|standalone) exit 0 ;;
  *) echo \"zookeeper is not serving (mode: ${mode:-none})\"; exit 1 ;;
esac
";
    BTreeMap::from([
        ("zoo.cfg".to_owned(), zoo_cfg),
        ("start.sh".to_owned(), start),
        ("ready.sh".to_owned(), ready.to_owned()),
    ])
}

fn stateful_set(stack: &Stack, app: &App, config_name: &str, hash: &str) -> StatefulSet {
    let zk = &stack.zookeeper;
    let image = stack
        .images
        .zookeeper
        .clone()
        .unwrap_or_else(|| format!("docker.io/library/zookeeper:{}", zk.version));
    let container = Container {
        name: NAME.to_owned(),
        image: Some(image),
        command: Some(vec!["bash".to_owned(), format!("{CONFIG_DIR}/start.sh")]),
        env: Some(vec![
            env_field("POD_NAME", "metadata.name"),
            env("ZK_SERVER_HEAP", zk.heap_mib().to_string()),
        ]),
        ports: Some(vec![
            port("client", CLIENT_PORT),
            port("peer", 2888),
            port("election", 3888),
        ]),
        resources: Some(resources(&zk.resources)),
        readiness_probe: Some(script_probe("ready.sh", 10, 5)),
        volume_mounts: Some(vec![
            mount("data", "/data", false),
            mount(CONFIG_VOLUME, CONFIG_DIR, true),
        ]),
        security_context: Some(restricted_container()),
        ..Container::default()
    };
    server_set(
        stack,
        NAME,
        app,
        hash,
        ServerSet {
            replicas: zk.replicas,
            grace_seconds: 60,
            init_containers: None,
            container,
            volumes: vec![config_volume(config_name)],
            claim: volume_claim(
                stack,
                app,
                zk.volume_size_gib,
                class_for(stack, Volumes::Other),
            ),
        },
    )
}
