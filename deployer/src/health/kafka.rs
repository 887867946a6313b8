//! The Kafka gate: cluster metadata from a bootstrap address.
//!
//! A broker pod is Ready once it answers ApiVersions; the rollout needs the
//! cluster: every broker registered, and the log topics with a leader and
//! enough in-sync replicas on every partition (below `min.insync.replicas`
//! the collector's `acks=all` writes fail).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::metadata::Metadata;

use super::{CHECK_TIMEOUT, Gate, GateFuture, GateStatus};

/// Most partition problems named in one reason; the rest are counted.
const MAX_LISTED: usize = 5;

/// What the metadata says, as far as the gate cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterFacts {
    /// Ids of the registered brokers.
    pub brokers: Vec<i32>,
    /// Every topic the metadata lists.
    pub topics: Vec<TopicFacts>,
}

/// One topic of the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFacts {
    /// Topic name.
    pub name: String,
    /// The topic's error code, when the broker reported one.
    pub error: Option<String>,
    /// Its partitions.
    pub partitions: Vec<PartitionFacts>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFacts {
    /// Partition number.
    pub id: i32,
    /// Leader broker id; negative when there is none.
    pub leader: i32,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// The partition's error code, when the broker reported one.
    pub error: Option<String>,
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Decides from the facts: at least `expected_brokers` brokers, and every
/// topic of `topics` present with a leader and at least
/// `min_insync_replicas` in-sync replicas on every partition.
pub fn evaluate(
    facts: &ClusterFacts,
    expected_brokers: usize,
    topics: &[String],
    min_insync_replicas: usize,
) -> GateStatus {
    let mut ids = facts.brokers.clone();
    ids.sort_unstable();
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    if facts.brokers.len() < expected_brokers {
        return GateStatus::NotYet(format!(
            "{} of {expected_brokers} brokers registered (ids: {})",
            facts.brokers.len(),
            if ids.is_empty() {
                "none".to_owned()
            } else {
                ids.join(", ")
            }
        ));
    }
    let mut problems = Vec::new();
    let mut ready = Vec::new();
    for name in topics {
        let Some(topic) = facts.topics.iter().find(|t| &t.name == name) else {
            problems.push(format!("topic {name} does not exist"));
            continue;
        };
        if let Some(error) = &topic.error {
            problems.push(format!("topic {name}: {error}"));
            continue;
        }
        if topic.partitions.is_empty() {
            problems.push(format!("topic {name} has no partitions"));
            continue;
        }
        let mut bad = Vec::new();
        for p in &topic.partitions {
            if let Some(error) = &p.error {
                bad.push(format!("{name}-{}: {error}", p.id));
            } else if p.leader < 0 {
                bad.push(format!("{name}-{} has no leader", p.id));
            } else if p.isr.len() < min_insync_replicas {
                bad.push(format!(
                    "{name}-{} has {} of {min_insync_replicas} in-sync replicas",
                    p.id,
                    p.isr.len()
                ));
            }
        }
        if bad.is_empty() {
            ready.push(format!(
                "{name} ({})",
                plural(topic.partitions.len(), "partition")
            ));
        } else {
            let more = bad.len().saturating_sub(MAX_LISTED);
            bad.truncate(MAX_LISTED);
            if more > 0 {
                bad.push(format!("{more} more"));
            }
            problems.push(bad.join(", "));
        }
    }
    if !problems.is_empty() {
        return GateStatus::NotYet(problems.join("; "));
    }
    let mut text = format!(
        "{} registered (ids: {})",
        plural(facts.brokers.len(), "broker"),
        ids.join(", ")
    );
    if !ready.is_empty() {
        text.push_str(&format!(
            "; topics {} have leaders and at least {min_insync_replicas} in-sync replicas",
            ready.join(", ")
        ));
    }
    GateStatus::Healthy(text)
}

/// The facts of an rdkafka metadata answer.
fn facts(metadata: &Metadata) -> ClusterFacts {
    let code = |e: Option<rdkafka::types::RDKafkaRespErr>| e.map(|e| format!("{e:?}"));
    ClusterFacts {
        brokers: metadata.brokers().iter().map(|b| b.id()).collect(),
        topics: metadata
            .topics()
            .iter()
            .map(|t| TopicFacts {
                name: t.name().to_owned(),
                error: code(t.error()),
                partitions: t
                    .partitions()
                    .iter()
                    .map(|p| PartitionFacts {
                        id: p.id(),
                        leader: p.leader(),
                        isr: p.isr().to_vec(),
                        error: code(p.error()),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Fetches the metadata of every topic (a blocking librdkafka call).
/// Asking for all topics, not the wanted ones by name, never triggers a
/// broker's topic auto-creation.
fn fetch(bootstrap: &str, timeout: Duration) -> Result<ClusterFacts, String> {
    let timeout_ms = timeout.as_millis().to_string();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "kelp-health")
        .set("socket.timeout.ms", &timeout_ms)
        .set("socket.connection.setup.timeout.ms", &timeout_ms)
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(|e| format!("creating the kafka client failed: {e}"))?;
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| format!("fetching metadata from {bootstrap} failed: {e}"))?;
    Ok(facts(&metadata))
}

/// The gate: brokers registered, and optionally topics in sync.
#[derive(Debug, Clone)]
pub struct KafkaCluster {
    bootstrap: String,
    expected_brokers: usize,
    topics: Vec<String>,
    min_insync_replicas: usize,
}

impl KafkaCluster {
    /// A cluster reached through `bootstrap` (`host:port[,host:port]`) that
    /// must have at least `expected_brokers` brokers registered.
    pub fn new(bootstrap: String, expected_brokers: usize) -> KafkaCluster {
        KafkaCluster {
            bootstrap,
            expected_brokers,
            topics: Vec::new(),
            min_insync_replicas: 1,
        }
    }

    /// Also require these topics, every partition with a leader and at
    /// least `min_insync_replicas` in-sync replicas.
    pub fn with_topics(mut self, topics: Vec<String>, min_insync_replicas: usize) -> KafkaCluster {
        self.topics = topics;
        self.min_insync_replicas = min_insync_replicas;
        self
    }
}

impl Gate for KafkaCluster {
    fn name(&self) -> &str {
        "kafka brokers"
    }

    fn check(&self) -> GateFuture<'_> {
        Box::pin(async move {
            let bootstrap = self.bootstrap.clone();
            let fetch = tokio::task::spawn_blocking(move || fetch(&bootstrap, CHECK_TIMEOUT));
            // librdkafka bounds the fetch; this bounds creating and closing
            // the client too (a stuck one is left to finish in the background).
            match tokio::time::timeout(2 * CHECK_TIMEOUT, fetch).await {
                Ok(Ok(Ok(facts))) => evaluate(
                    &facts,
                    self.expected_brokers,
                    &self.topics,
                    self.min_insync_replicas,
                ),
                Ok(Ok(Err(why))) => GateStatus::NotYet(why),
                Ok(Err(e)) => GateStatus::NotYet(format!("fetching kafka metadata failed: {e}")),
                Err(_) => GateStatus::NotYet(format!(
                    "fetching kafka metadata from {} did not finish within {} s",
                    self.bootstrap,
                    (2 * CHECK_TIMEOUT).as_secs()
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(id: i32, leader: i32, isr: &[i32]) -> PartitionFacts {
        PartitionFacts {
            id,
            leader,
            isr: isr.to_vec(),
            error: None,
        }
    }

    fn topic(name: &str, partitions: Vec<PartitionFacts>) -> TopicFacts {
        TopicFacts {
            name: name.to_owned(),
            error: None,
            partitions,
        }
    }

    fn cluster(brokers: &[i32], topics: Vec<TopicFacts>) -> ClusterFacts {
        ClusterFacts {
            brokers: brokers.to_vec(),
            topics,
        }
    }

    #[test]
    fn brokers_and_topics_decide() {
        let logs = || {
            topic(
                "kelp-logs",
                vec![partition(0, 1, &[1, 2, 3]), partition(1, 2, &[2, 3])],
            )
        };
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // (facts, expected brokers, topics, min isr, healthy, text)
        type Case = (ClusterFacts, usize, Vec<String>, usize, bool, &'static str);
        let cases: Vec<Case> = vec![
            (
                cluster(&[1], vec![]),
                1,
                vec![],
                1,
                true,
                "1 broker registered (ids: 1)",
            ),
            (
                cluster(&[3, 1, 2], vec![]),
                3,
                vec![],
                1,
                true,
                "3 brokers registered (ids: 1, 2, 3)",
            ),
            (
                cluster(&[1], vec![]),
                3,
                vec![],
                1,
                false,
                "1 of 3 brokers registered (ids: 1)",
            ),
            (
                cluster(&[], vec![]),
                1,
                vec![],
                1,
                false,
                "0 of 1 brokers registered (ids: none)",
            ),
            (
                cluster(&[1, 2, 3], vec![logs()]),
                3,
                names(&["kelp-logs"]),
                2,
                true,
                "topics kelp-logs (2 partitions) have leaders and at least 2 in-sync replicas",
            ),
            (
                cluster(&[1, 2, 3], vec![logs()]),
                3,
                names(&["kelp-logs"]),
                3,
                false,
                "kelp-logs-1 has 2 of 3 in-sync replicas",
            ),
            (
                cluster(&[1, 2, 3], vec![logs()]),
                3,
                names(&["kelp-logs", "kelp-dead-letter"]),
                2,
                false,
                "topic kelp-dead-letter does not exist",
            ),
            (
                cluster(
                    &[1, 2, 3],
                    vec![topic("kelp-logs", vec![partition(0, -1, &[])])],
                ),
                3,
                names(&["kelp-logs"]),
                1,
                false,
                "kelp-logs-0 has no leader",
            ),
            (
                cluster(&[1], vec![topic("kelp-logs", vec![])]),
                1,
                names(&["kelp-logs"]),
                1,
                false,
                "topic kelp-logs has no partitions",
            ),
            (
                cluster(
                    &[1],
                    vec![TopicFacts {
                        error: Some("LeaderNotAvailable".to_owned()),
                        ..topic("kelp-logs", vec![])
                    }],
                ),
                1,
                names(&["kelp-logs"]),
                1,
                false,
                "topic kelp-logs: LeaderNotAvailable",
            ),
            (
                cluster(
                    &[1],
                    vec![topic("t", (0..8).map(|i| partition(i, -1, &[])).collect())],
                ),
                1,
                names(&["t"]),
                1,
                false,
                "t-4 has no leader, 3 more",
            ),
        ];
        for (facts, brokers, topics, isr, healthy, text) in cases {
            let status = evaluate(&facts, brokers, &topics, isr);
            assert_eq!(status.is_healthy(), healthy, "{facts:?}: {status:?}");
            let (GateStatus::Healthy(got) | GateStatus::NotYet(got)) = &status;
            assert!(got.contains(text), "{got:?} lacks {text:?}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_bootstrap_is_not_yet() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let gate = KafkaCluster::new(closed.clone(), 1);
        match gate.check().await {
            GateStatus::NotYet(why) => assert!(why.contains(&closed), "{why}"),
            healthy => panic!("{healthy:?}"),
        }
    }
}
