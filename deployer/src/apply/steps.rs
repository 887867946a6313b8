//! The rollout as data: which objects each step applies, which application
//! gate opens it and what runs after it. Pure: `kelp apply`, `plan`,
//! `status` and `destroy` all walk the same list.

use crate::manifests::{self, Object};
use crate::stack::Stack;

/// The application-level check that closes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    /// Every ZooKeeper server answers `srvr`, one leader.
    ZooKeeper,
    /// The brokers are registered; with `topics`, kelp's topics exist with
    /// enough in-sync replicas.
    Kafka {
        /// Also check the topics.
        topics: bool,
    },
    /// Elasticsearch cluster health.
    Elasticsearch,
    /// Kibana's `/api/status` says available.
    Kibana,
}

/// What runs once a step's gate is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// The generated Secrets (passwords, certificates), once the namespace exists.
    Secrets,
    /// With security on, the `kibana_system` password and the shipper's
    /// role and user; then the shipper's index template.
    ElasticsearchSetup,
    /// kelp's saved objects, into Kibana.
    Dashboards,
}

/// One step of the rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Short name for progress lines and reports, e.g. `kafka topics`.
    pub name: &'static str,
    /// The objects, in the order they are applied.
    pub objects: Vec<Object>,
    /// The gate that must open before the next step.
    pub gate: Option<GateKind>,
    /// What runs after the gate.
    pub after: Option<After>,
}

impl Step {
    /// The workloads whose rollout the step waits for.
    pub fn workloads(&self) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(|o| o.pod_template().is_some())
    }
}

/// The rollout in issue #5's order: namespace, RBAC, secrets and config;
/// ZooKeeper; Kafka, then its topics; Elasticsearch, then its index
/// template; Kibana, then the dashboards; the shipper; the collector.
/// Steps without objects (ZooKeeper in KRaft mode) are left out.
pub fn steps(stack: &Stack) -> Vec<Step> {
    let setup: Vec<Object> = manifests::build(stack)
        .into_iter()
        .filter(Object::is_setup)
        .collect();
    let component = |name: &str| -> Vec<Object> {
        manifests::build_component(stack, name)
            .into_iter()
            .filter(|o| !o.is_setup())
            .collect()
    };
    let (topic_jobs, kafka): (Vec<Object>, Vec<Object>) = component("kafka")
        .into_iter()
        .partition(|o| matches!(o, Object::Job(_)));
    let all = [
        Step {
            name: "setup",
            objects: setup,
            gate: None,
            after: Some(After::Secrets),
        },
        Step {
            name: "zookeeper",
            objects: component("zookeeper"),
            gate: Some(GateKind::ZooKeeper),
            after: None,
        },
        Step {
            name: "kafka",
            objects: kafka,
            gate: Some(GateKind::Kafka { topics: false }),
            after: None,
        },
        Step {
            name: "kafka topics",
            objects: topic_jobs,
            gate: Some(GateKind::Kafka { topics: true }),
            after: None,
        },
        Step {
            name: "elasticsearch",
            objects: component("elasticsearch"),
            gate: Some(GateKind::Elasticsearch),
            after: Some(After::ElasticsearchSetup),
        },
        Step {
            name: "kibana",
            objects: component("kibana"),
            gate: Some(GateKind::Kibana),
            after: Some(After::Dashboards),
        },
        Step {
            name: "shipper",
            objects: component("shipper"),
            gate: None,
            after: None,
        },
        Step {
            name: "collector",
            objects: component("collector"),
            gate: None,
            after: None,
        },
    ];
    all.into_iter().filter(|s| !s.objects.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::KafkaMode;

    fn kinds(step: &Step) -> Vec<String> {
        step.objects.iter().map(Object::id).collect()
    }

    #[test]
    fn the_steps_follow_the_rollout_order_and_cover_every_object() {
        let cases = [
            (
                KafkaMode::Zookeeper,
                vec![
                    "setup",
                    "zookeeper",
                    "kafka",
                    "kafka topics",
                    "elasticsearch",
                    "kibana",
                    "shipper",
                    "collector",
                ],
            ),
            (
                KafkaMode::Kraft,
                vec![
                    "setup",
                    "kafka",
                    "kafka topics",
                    "elasticsearch",
                    "kibana",
                    "shipper",
                    "collector",
                ],
            ),
        ];
        for (mode, names) in cases {
            let mut stack = Stack::default();
            stack.kafka.mode = mode;
            if mode == KafkaMode::Kraft {
                stack.kafka.version = None;
            }
            let steps = steps(&stack);
            let got: Vec<&str> = steps.iter().map(|s| s.name).collect();
            assert_eq!(got, names, "{mode:?}");
            // Every rendered object is in exactly one step, in render order.
            let flat: Vec<Object> = steps.iter().flat_map(|s| s.objects.clone()).collect();
            assert_eq!(flat, manifests::build(&stack), "{mode:?}");
        }
    }

    #[test]
    fn each_step_has_its_gate_and_follow_up() {
        let steps = steps(&Stack::default());
        let find = |name: &str| steps.iter().find(|s| s.name == name).unwrap();
        let table = [
            ("setup", None, Some(After::Secrets)),
            ("zookeeper", Some(GateKind::ZooKeeper), None),
            ("kafka", Some(GateKind::Kafka { topics: false }), None),
            ("kafka topics", Some(GateKind::Kafka { topics: true }), None),
            (
                "elasticsearch",
                Some(GateKind::Elasticsearch),
                Some(After::ElasticsearchSetup),
            ),
            ("kibana", Some(GateKind::Kibana), Some(After::Dashboards)),
            ("shipper", None, None),
            ("collector", None, None),
        ];
        for (name, gate, after) in table {
            let step = find(name);
            assert_eq!(step.gate, gate, "{name}");
            assert_eq!(step.after, after, "{name}");
        }
        let topics = find("kafka topics");
        assert!(
            kinds(topics)
                .iter()
                .all(|id| id.starts_with("Job/kafka-topics-")),
            "{:?}",
            kinds(topics)
        );
        assert!(kinds(find("kafka")).contains(&"StatefulSet/kafka".to_owned()));
        assert!(find("setup").workloads().next().is_none());
        assert_eq!(
            find("collector")
                .workloads()
                .map(Object::id)
                .collect::<Vec<_>>(),
            ["DaemonSet/kelp-collector"]
        );
    }
}
