//! The Kafka cluster: a StatefulSet on the Apache `apache/kafka` image,
//! broker (and in KRaft mode controller) id from the pod's ordinal, each
//! broker advertising its own pod FQDN; and a Job that creates kelp's topics.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, PodSpec, PodTemplateSpec, Volume,
};
use sha2::{Digest, Sha256};

use super::Object;
use super::common::{
    App, CONFIG_DIR, CONFIG_VOLUME, config_map, config_volume, disruption_budget, env, env_field,
    headless_service, jvm_pod_security, meta, mount, pod_fqdn, pod_meta, port, pull_secrets,
    resources, restricted_container, script_probe, service_account, volume_claim,
};
use super::common::{ServerSet, server_set};
use super::storage::{Volumes, class_for};
use super::zookeeper;
use crate::stack::{KafkaMode, Resources, Stack, version_parts};

/// Name of the StatefulSet, its headless service and its pods' prefix.
pub(crate) const NAME: &str = "kafka";
/// The PLAINTEXT listener of clients and brokers.
pub(crate) const CLIENT_PORT: i32 = 9092;
/// The KRaft controller listener.
const CONTROLLER_PORT: i32 = 9093;
/// A writable directory for the broker's rendered properties and log files.
const RUN_DIR: &str = "/kelp/run";

fn app(stack: &Stack) -> App {
    App::new(NAME, "queue", stack.kafka.version())
}

/// The bootstrap list for clients: every broker's FQDN and port.
pub(crate) fn bootstrap_servers(stack: &Stack) -> Vec<String> {
    (0..stack.kafka.replicas)
        .map(|ordinal| format!("{}:{CLIENT_PORT}", pod_fqdn(stack, NAME, ordinal, NAME)))
        .collect()
}

/// The Kafka cluster id: `kafka.cluster_id`, else one derived from the
/// namespace, so the same stack always gets the same id: volumes formatted
/// (KRaft) or ZooKeeper seeded (ZooKeeper mode) by an earlier install match.
pub fn cluster_id(stack: &Stack) -> String {
    if let Some(id) = &stack.kafka.cluster_id {
        return id.clone();
    }
    let digest = Sha256::digest(format!("kelp/kafka/{}", stack.namespace).as_bytes());
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&digest[..16]);
    // A clear top bit keeps the first character out of `-` and `_`: Kafka
    // never starts an id with `-`, which command lines take for an option.
    uuid[0] &= 0x7f;
    base64url(&uuid)
}

/// Unpadded base64url, as Kafka writes a UUID.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

pub(crate) fn build(stack: &Stack) -> Vec<Object> {
    let app = app(stack);
    let config_name = format!("{NAME}-config");
    let (config, hash) = config_map(stack, &config_name, &app, config_files(stack));
    let mut ports = vec![("client", CLIENT_PORT)];
    if stack.kafka.mode == KafkaMode::Kraft {
        ports.push(("controller", CONTROLLER_PORT));
    }
    let topics_app = App::new("kafka-topics", "queue-setup", stack.kafka.version());
    let topics_config_name = "kafka-topics".to_owned();
    let (topics_config, topics_hash) = config_map(
        stack,
        &topics_config_name,
        &topics_app,
        BTreeMap::from([("create-topics.sh".to_owned(), topics_script(stack))]),
    );
    vec![
        Object::ServiceAccount(service_account(stack, NAME, &app)),
        Object::ConfigMap(config),
        Object::ConfigMap(topics_config),
        Object::Service(headless_service(stack, NAME, &app, &ports)),
        Object::PodDisruptionBudget(disruption_budget(stack, NAME, &app)),
        Object::StatefulSet(stateful_set(stack, &app, &config_name, &hash)),
        Object::Job(topics_job(
            stack,
            &topics_app,
            &topics_config_name,
            &topics_hash,
        )),
    ]
}

fn image(stack: &Stack) -> String {
    stack
        .images
        .kafka
        .clone()
        .unwrap_or_else(|| format!("docker.io/apache/kafka:{}", stack.kafka.version()))
}

fn config_files(stack: &Stack) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("server.properties".to_owned(), server_properties(stack)),
        ("start.sh".to_owned(), start_script(stack)),
        ("ready.sh".to_owned(), READY_SCRIPT.to_owned()),
    ])
}

/// The properties every broker shares; `start.sh` appends its id and
/// advertised listener.
fn server_properties(stack: &Stack) -> String {
    let kafka = &stack.kafka;
    let internal = kafka.internal_replication_factor();
    let internal_min_isr = internal.min(2);
    let mut out = String::from(
        "# Rendered by kelp. start.sh appends this broker's id and advertised listener.\n",
    );
    match kafka.mode {
        KafkaMode::Kraft => {
            let voters: Vec<String> = (0..kafka.replicas)
                .map(|ordinal| {
                    format!(
                        "{ordinal}@{}:{CONTROLLER_PORT}",
                        pod_fqdn(stack, NAME, ordinal, NAME)
                    )
                })
                .collect();
            let _ = write!(
                out,
                "\
# Every broker is also a controller; the voters are the pods.
process.roles=broker,controller
controller.listener.names=CONTROLLER
controller.quorum.voters={}
listeners=PLAINTEXT://:{CLIENT_PORT},CONTROLLER://:{CONTROLLER_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
",
                voters.join(",")
            );
        }
        KafkaMode::Zookeeper => {
            let _ = write!(
                out,
                "\
zookeeper.connect={}
listeners=PLAINTEXT://:{CLIENT_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT
",
                zookeeper::connect_string(stack)
            );
        }
    }
    let _ = write!(
        out,
        "\
inter.broker.listener.name=PLAINTEXT
# A subdirectory: ext4's lost+found at the volume root is not a partition.
log.dirs=/var/lib/kafka/data/logs
# kelp creates its topics (the kafka-topics job); a typo must not create one.
auto.create.topics.enable=false
default.replication.factor={}
min.insync.replicas={}
unclean.leader.election.enable=false
offsets.topic.replication.factor={internal}
transaction.state.log.replication.factor={internal}
transaction.state.log.min.isr={internal_min_isr}
",
        kafka.default_replication_factor, kafka.min_insync_replicas
    );
    if version_parts(kafka.version()).is_some_and(|(major, _)| major >= 4) {
        let _ = write!(
            out,
            "share.coordinator.state.topic.replication.factor={internal}\n\
             share.coordinator.state.topic.min.isr={internal_min_isr}\n"
        );
    }
    out
}

fn start_script(stack: &Stack) -> String {
    let suffix = super::common::service_fqdn(stack, NAME);
    let mut script = format!(
        "\
#!/bin/bash
# Starts this Kafka broker. Its id is the pod's ordinal; it advertises its
# own pod FQDN, so clients reach each broker directly (a bootstrap address
# alone is not enough for Kafka clients).
set -euo pipefail
ordinal=${{POD_NAME##*-}}
config={RUN_DIR}/server.properties
mkdir -p {RUN_DIR}/logs
cp {CONFIG_DIR}/server.properties \"$config\"
{{
  echo \"{id_key}=$ordinal\"
  echo \"advertised.listeners=PLAINTEXT://${{POD_NAME}}.{suffix}:{CLIENT_PORT}\"
}} >>\"$config\"
# Tools get a small heap of their own, not the broker's.
tool() {{ KAFKA_HEAP_OPTS=-Xmx128m \"$@\"; }}
",
        id_key = match stack.kafka.mode {
            KafkaMode::Kraft => "node.id",
            KafkaMode::Zookeeper => "broker.id",
        },
    );
    match stack.kafka.mode {
        KafkaMode::Kraft => script.push_str(
            "\
# Format the volume once with the stack's cluster id; a formatted volume is
# left as it is, and its meta.properties keeps the id.
tool /opt/kafka/bin/kafka-storage.sh format --ignore-formatted \\
  --cluster-id \"$KAFKA_CLUSTER_ID\" --config \"$config\"
",
        ),
        KafkaMode::Zookeeper => {
            let _ = write!(
                script,
                "\
# ZooKeeper holds the cluster id. Seed it with the stack's id before any
# broker picks a random one: an ensemble re-created empty gets the same id
# back, so brokers with kept volumes do not fail with
# InconsistentClusterIdException. A different id already there stops here.
zk={connect}
shell() {{ tool /opt/kafka/bin/zookeeper-shell.sh \"$zk\" \"$@\" 2>/dev/null || true; }}
want=\"\\\"id\\\":\\\"$KAFKA_CLUSTER_ID\\\"\"
held=
for attempt in $(seq 1 60); do
  shell create /cluster >/dev/null
  shell create /cluster/id \"{{\\\"version\\\":\\\"1\\\",$want}}\" >/dev/null
  held=$(shell get /cluster/id | grep -o '\"id\":\"[^\"]*\"' || true)
  [ -n \"$held\" ] && break
  echo \"waiting for zookeeper at $zk (attempt $attempt)\" >&2
  sleep 5
done
if [ \"$held\" != \"$want\" ]; then
  echo \"checking the kafka cluster id failed: zookeeper holds ${{held:-nothing}}, the stack says $KAFKA_CLUSTER_ID;\" \\
    \"set kafka.cluster_id to zookeeper's id to keep that cluster\" >&2
  exit 1
fi
",
                connect = zookeeper::connect_string(stack)
            );
        }
    }
    script.push_str("exec /opt/kafka/bin/kafka-server-start.sh \"$config\"\n");
    script
}

/// Ready when the broker answers Kafka's own API: an ApiVersions (v0)
/// request on the client port gets a response with its correlation id and
/// no error. The broker processes requests only once it has started, and
/// the check needs no JVM (a Kafka tool would start one every period).
const READY_SCRIPT: &str = "\
#!/bin/bash
# Ready when this broker answers an ApiVersions request (v0) on port 9092
# with our correlation id (7) and error code 0.
exec 3<>/dev/tcp/127.0.0.1/9092 || exit 1
# size 14, api key 18, version 0, correlation id 7, client id \"kelp\"
printf '\\x00\\x00\\x00\\x0e\\x00\\x12\\x00\\x00\\x00\\x00\\x00\\x07\\x00\\x04kelp' >&3
reply=$(timeout 5 head -c 10 <&3 | od -An -tx1 | tr -d ' \\n')
[ \"${reply:8:12}\" = 000000070000 ] || { echo \"kafka did not answer ApiVersions: ${reply:-nothing}\"; exit 1; }
";

fn stateful_set(stack: &Stack, app: &App, config_name: &str, hash: &str) -> StatefulSet {
    let kafka = &stack.kafka;
    let heap = kafka.heap_mib();
    let mut ports = vec![port("client", CLIENT_PORT)];
    if kafka.mode == KafkaMode::Kraft {
        ports.push(port("controller", CONTROLLER_PORT));
    }
    let container = Container {
        name: NAME.to_owned(),
        image: Some(image(stack)),
        command: Some(vec!["bash".to_owned(), format!("{CONFIG_DIR}/start.sh")]),
        env: Some(vec![
            env_field("POD_NAME", "metadata.name"),
            env("KAFKA_CLUSTER_ID", cluster_id(stack)),
            env("KAFKA_HEAP_OPTS", format!("-Xms{heap}m -Xmx{heap}m")),
            env("LOG_DIR", format!("{RUN_DIR}/logs")),
        ]),
        ports: Some(ports),
        resources: Some(resources(&kafka.resources)),
        readiness_probe: Some(script_probe("ready.sh", 10, 8)),
        volume_mounts: Some(vec![
            mount("data", "/var/lib/kafka/data", false),
            mount(CONFIG_VOLUME, CONFIG_DIR, true),
            mount("run", RUN_DIR, false),
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
            replicas: kafka.replicas,
            // A controlled shutdown moves partition leadership away.
            grace_seconds: 120,
            init_containers: None,
            container,
            volumes: vec![config_volume(config_name), empty_dir("run")],
            claim: volume_claim(
                stack,
                app,
                kafka.volume_size_gib,
                class_for(stack, Volumes::Kafka),
            ),
        },
    )
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn topics_script(stack: &Stack) -> String {
    let kafka = &stack.kafka;
    let mut script = format!(
        "\
#!/bin/bash
# Creates kelp's topics where they do not exist; existing topics are left
# as they are (partitions and configs are reconciled by kelp apply, later).
set -euo pipefail
bootstrap={bootstrap}
create() {{
  KAFKA_HEAP_OPTS=-Xmx192m /opt/kafka/bin/kafka-topics.sh --bootstrap-server \"$bootstrap\" \\
    --create --if-not-exists --topic \"$1\" --partitions \"$2\" \\
    --replication-factor {rf} --config min.insync.replicas={min_isr} \\
    --config retention.ms=\"$3\" --config unclean.leader.election.enable=false
}}
",
        bootstrap = bootstrap_servers(stack).join(","),
        rf = kafka.default_replication_factor,
        min_isr = kafka.min_insync_replicas,
    );
    for topic in [&kafka.topics.logs, &kafka.topics.dead_letter] {
        let retention_ms = u64::from(topic.retention_hours) * 3_600_000;
        let _ = writeln!(
            script,
            "create {} {} {retention_ms}",
            topic.name, topic.partitions
        );
    }
    script
}

/// The Job that creates the topics. Its name carries a hash of its spec: a
/// Job's spec cannot change, so new topic settings, a new image or new
/// labels make a new Job instead of a refused update.
fn topics_job(stack: &Stack, app: &App, config_name: &str, hash: &str) -> Job {
    let container = Container {
        name: "create-topics".to_owned(),
        image: Some(image(stack)),
        command: Some(vec![
            "bash".to_owned(),
            format!("{CONFIG_DIR}/create-topics.sh"),
        ]),
        resources: Some(resources(&Resources {
            cpu_request_millis: 100,
            cpu_limit_millis: None,
            memory_mib: 384,
        })),
        volume_mounts: Some(vec![mount(CONFIG_VOLUME, CONFIG_DIR, true)]),
        security_context: Some(restricted_container()),
        ..Container::default()
    };
    let spec = JobSpec {
        // Retried with growing delays while Kafka starts: about an hour.
        backoff_limit: Some(20),
        template: PodTemplateSpec {
            metadata: Some(pod_meta(stack, app, hash)),
            spec: Some(PodSpec {
                restart_policy: Some("OnFailure".to_owned()),
                service_account_name: Some(NAME.to_owned()),
                automount_service_account_token: Some(false),
                enable_service_links: Some(false),
                security_context: Some(jvm_pod_security()),
                image_pull_secrets: pull_secrets(stack),
                containers: vec![container],
                volumes: Some(vec![config_volume(config_name)]),
                ..PodSpec::default()
            }),
        },
        ..JobSpec::default()
    };
    // Serializing these types cannot fail; were it to, the name would still
    // be valid, only not specific to the spec.
    let spec_json = serde_json::to_vec(&spec).unwrap_or_default();
    let digest = Sha256::digest(&spec_json);
    let suffix: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    Job {
        metadata: meta(stack, &format!("kafka-topics-{suffix}"), app),
        spec: Some(spec),
        ..Job::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_known_values() {
        // RFC 4648 test vectors, in the url-safe alphabet without padding.
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn the_cluster_id_is_a_stable_kafka_uuid_per_namespace() {
        let mut stack = Stack::default();
        let id = cluster_id(&stack);
        assert_eq!(id.len(), 22);
        assert_eq!(id, cluster_id(&stack.clone()), "deterministic");
        // The stack accepts it back as an explicit id.
        let text = format!("kafka: {{cluster_id: {id}}}\n");
        assert_eq!(
            Stack::from_yaml_str(&text).unwrap().kafka.cluster_id,
            Some(id.clone())
        );
        stack.namespace = "logs".to_owned();
        let other = cluster_id(&stack);
        assert_ne!(id, other);
        assert!(!other.starts_with(['-', '_']));
        stack.kafka.cluster_id = Some("MkU3OEVBNTcwNTJENDM2Qg".to_owned());
        assert_eq!(cluster_id(&stack), "MkU3OEVBNTcwNTJENDM2Qg");
    }

    #[test]
    fn no_namespace_gets_an_id_starting_with_a_dash() {
        let mut stack = Stack::default();
        for i in 0..500 {
            stack.namespace = format!("ns-{i}");
            let id = cluster_id(&stack);
            assert!(!id.starts_with(['-', '_']), "{id}");
            assert!(Stack::from_yaml_str(&format!("kafka: {{cluster_id: \"{id}\"}}\n")).is_ok());
        }
    }
}
