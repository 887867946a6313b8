//! The canary pod: its token, its manifest, and what its status says.
//! Pure functions; `probe.rs` does the API calls.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, Event, Pod, PodSecurityContext, PodSpec, ResourceRequirements,
    SeccompProfile, SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::verdict::{ContainerState, PodFacts};

/// The `app.kubernetes.io/name` of every probe pod.
pub const APP_NAME: &str = "kelp-probe";
/// The container's name.
pub const CONTAINER: &str = "probe";
/// `nobody`: the pod runs as non-root so that a namespace with the
/// `restricted` Pod Security level admits it too.
const NOBODY: i64 = 65534;

/// The unique text the canary writes: `kelp-probe-<16 hex digits>`. It is
/// also the pod's name, a valid DNS label, so each run's pod is its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    /// The token for 64 bits of entropy.
    pub fn from_entropy(bits: u64) -> Token {
        Token(format!("{APP_NAME}-{bits:016x}"))
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The log line the pod writes: the token plus words that say what
    /// it is to someone who finds it in the search engine.
    pub fn line(&self) -> String {
        format!("kelp probe canary {} (safe to ignore)", self.0)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the pod manifest depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSettings<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// The image; it must have `echo` on its `PATH`.
    pub image: &'a str,
    /// Pin to this node (`spec.nodeName`, bypassing the scheduler and
    /// tolerating every taint, so any node can be probed).
    pub node: Option<&'a str>,
    /// Extra labels (the stack's `common.labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// Pull secrets (the stack's `images.pull_secrets`).
    pub pull_secrets: &'a [String],
}

/// The canary pod: writes [`Token::line`] to stdout once and exits.
pub fn build(token: &Token, settings: &PodSettings<'_>) -> Pod {
    let mut labels = settings.labels.clone();
    labels.insert("app.kubernetes.io/name".to_owned(), APP_NAME.to_owned());
    labels.insert("app.kubernetes.io/managed-by".to_owned(), "kelp".to_owned());
    let memory = || Quantity("16Mi".to_owned());
    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(settings.image.to_owned()),
        // One write, then exit: the kubelet's log file gets exactly one line.
        command: Some(vec!["echo".to_owned(), token.line()]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("10m".to_owned())),
                ("memory".to_owned(), memory()),
            ])),
            limits: Some(BTreeMap::from([("memory".to_owned(), memory())])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let pull_secrets = (!settings.pull_secrets.is_empty()).then(|| {
        settings
            .pull_secrets
            .iter()
            .map(|name| k8s_openapi::api::core::v1::LocalObjectReference { name: name.clone() })
            .collect()
    });
    Pod {
        metadata: ObjectMeta {
            name: Some(token.as_str().to_owned()),
            namespace: Some(settings.namespace.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".to_owned()),
            node_name: settings.node.map(str::to_owned),
            tolerations: settings.node.map(|_| {
                vec![Toleration {
                    operator: Some("Exists".to_owned()),
                    ..Toleration::default()
                }]
            }),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(0),
            image_pull_secrets: pull_secrets,
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(NOBODY),
                run_as_group: Some(NOBODY),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// When the token can first have been written, in milliseconds since the
/// epoch: the container's start, else the pod's creation. Kubernetes
/// keeps both to the second.
pub fn started_ms(pod: &Pod) -> Option<i64> {
    let container_start = pod
        .status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .and_then(|statuses| statuses.iter().find(|s| s.name == CONTAINER))
        .and_then(|status| status.state.as_ref())
        .and_then(|state| {
            let running = state.running.as_ref().and_then(|r| r.started_at.as_ref());
            let terminated = state
                .terminated
                .as_ref()
                .and_then(|t| t.started_at.as_ref());
            running.or(terminated)
        })
        .map(|time| time.0.as_millisecond());
    container_start.or_else(|| created_ms(pod))
}

/// The pod's creation time, in milliseconds since the epoch.
pub fn created_ms(pod: &Pod) -> Option<i64> {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map(|time| time.0.as_millisecond())
}

/// What the pod's status and events say, for the verdict.
pub fn facts(pod: &Pod, events: &[Event]) -> PodFacts {
    let status = pod.status.as_ref();
    let container = status
        .and_then(|status| status.container_statuses.as_ref())
        .and_then(|statuses| statuses.iter().find(|s| s.name == CONTAINER))
        .and_then(|status| status.state.as_ref())
        .map_or(ContainerState::NotReported, |state| {
            if let Some(waiting) = &state.waiting {
                ContainerState::Waiting {
                    reason: waiting
                        .reason
                        .clone()
                        .unwrap_or_else(|| "no reason given".to_owned()),
                    message: waiting.message.clone(),
                }
            } else if let Some(terminated) = &state.terminated {
                ContainerState::Terminated {
                    exit_code: terminated.exit_code,
                    reason: terminated.reason.clone(),
                }
            } else if state.running.is_some() {
                ContainerState::Running
            } else {
                ContainerState::NotReported
            }
        });
    PodFacts {
        phase: status.and_then(|status| status.phase.clone()),
        node: pod.spec.as_ref().and_then(|spec| spec.node_name.clone()),
        container,
        events: event_lines(events),
    }
}

/// Events as `Type Reason: message (xN)`, oldest first.
pub fn event_lines(events: &[Event]) -> Vec<String> {
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|event| {
        event
            .last_timestamp
            .as_ref()
            .map(|t| t.0.as_millisecond())
            .or_else(|| event.event_time.as_ref().map(|t| t.0.as_millisecond()))
            .unwrap_or_default()
    });
    events
        .into_iter()
        .map(|event| {
            let mut line = format!(
                "{} {}: {}",
                event.type_.as_deref().unwrap_or("Normal"),
                event.reason.as_deref().unwrap_or("-"),
                event.message.as_deref().unwrap_or("").trim_end()
            );
            if let Some(count) = event.count.filter(|count| *count > 1) {
                line.push_str(&format!(" (x{count})"));
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated,
        ContainerStateWaiting, ContainerStatus, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn time(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    fn pod_with(phase: &str, state: Option<K8sState>) -> Pod {
        let mut pod = build(
            &Token::from_entropy(1),
            &PodSettings {
                namespace: "kelp",
                image: "busybox",
                node: None,
                labels: &BTreeMap::new(),
                pull_secrets: &[],
            },
        );
        pod.metadata.creation_timestamp = Some(time("2026-11-27T10:00:00Z"));
        pod.status = Some(PodStatus {
            phase: Some(phase.to_owned()),
            container_statuses: state.map(|state| {
                vec![ContainerStatus {
                    name: CONTAINER.to_owned(),
                    state: Some(state),
                    ..ContainerStatus::default()
                }]
            }),
            ..PodStatus::default()
        });
        pod
    }

    #[test]
    fn tokens_are_unique_dns_labels_that_the_line_contains() {
        let a = Token::from_entropy(0);
        let b = Token::from_entropy(u64::MAX);
        assert_eq!(a.as_str(), "kelp-probe-0000000000000000");
        assert_eq!(b.as_str(), "kelp-probe-ffffffffffffffff");
        assert_ne!(a, b);
        for token in [a, b] {
            assert!(crate::stack::is_dns_label(token.as_str()), "{token}");
            assert!(token.line().contains(token.as_str()));
            assert!(!token.line().contains('\n'));
        }
    }

    #[test]
    fn the_pod_writes_the_line_once_and_never_restarts() {
        let token = Token::from_entropy(0xabc);
        let labels = BTreeMap::from([("team".to_owned(), "platform".to_owned())]);
        let pull = ["mirror-creds".to_owned()];
        let pod = build(
            &token,
            &PodSettings {
                namespace: "logging",
                image: "registry.example/busybox:1",
                node: Some("node-7"),
                labels: &labels,
                pull_secrets: &pull,
            },
        );
        assert_eq!(pod.metadata.name.as_deref(), Some(token.as_str()));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("logging"));
        let pod_labels = pod.metadata.labels.clone().unwrap();
        assert_eq!(pod_labels["app.kubernetes.io/name"], "kelp-probe");
        assert_eq!(pod_labels["team"], "platform");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.node_name.as_deref(), Some("node-7"));
        assert!(spec.tolerations.is_some());
        assert_eq!(
            spec.image_pull_secrets.unwrap()[0].name,
            "mirror-creds".to_owned()
        );
        let container = &spec.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("registry.example/busybox:1")
        );
        assert_eq!(
            container.command.as_deref(),
            Some(&["echo".to_owned(), token.line()][..])
        );
        // Unpinned: the scheduler places it, and taints apply.
        let unpinned = build(
            &token,
            &PodSettings {
                namespace: "logging",
                image: "busybox",
                node: None,
                labels: &BTreeMap::new(),
                pull_secrets: &[],
            },
        );
        let spec = unpinned.spec.unwrap();
        assert_eq!(spec.node_name, None);
        assert_eq!(spec.tolerations, None);
        assert_eq!(spec.image_pull_secrets, None);
    }

    #[test]
    fn status_becomes_facts() {
        let waiting = K8sState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ImagePullBackOff".to_owned()),
                message: Some("back-off pulling image".to_owned()),
            }),
            ..K8sState::default()
        };
        let running = K8sState {
            running: Some(ContainerStateRunning {
                started_at: Some(time("2026-11-27T10:00:03Z")),
            }),
            ..K8sState::default()
        };
        let terminated = K8sState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 127,
                reason: Some("Error".to_owned()),
                started_at: Some(time("2026-11-27T10:00:02Z")),
                ..ContainerStateTerminated::default()
            }),
            ..K8sState::default()
        };
        let cases = [
            (
                pod_with("Pending", None),
                ContainerState::NotReported,
                1_795_773_600_000,
            ),
            (
                pod_with("Pending", Some(waiting)),
                ContainerState::Waiting {
                    reason: "ImagePullBackOff".to_owned(),
                    message: Some("back-off pulling image".to_owned()),
                },
                1_795_773_600_000,
            ),
            (
                pod_with("Running", Some(running)),
                ContainerState::Running,
                1_795_773_603_000,
            ),
            (
                pod_with("Failed", Some(terminated)),
                ContainerState::Terminated {
                    exit_code: 127,
                    reason: Some("Error".to_owned()),
                },
                1_795_773_602_000,
            ),
        ];
        for (pod, state, started) in cases {
            let facts = facts(&pod, &[]);
            assert_eq!(facts.container, state);
            assert_eq!(facts.phase, pod.status.as_ref().unwrap().phase);
            assert_eq!(started_ms(&pod), Some(started), "{state:?}");
        }
    }

    #[test]
    fn events_are_sorted_and_counted() {
        let event = |reason: &str, at: &str, count: i32| Event {
            type_: Some("Warning".to_owned()),
            reason: Some(reason.to_owned()),
            message: Some(format!("{reason} happened\n")),
            last_timestamp: Some(time(at)),
            count: Some(count),
            ..Event::default()
        };
        let lines = event_lines(&[
            event("Failed", "2026-11-27T10:00:05Z", 3),
            event("FailedScheduling", "2026-11-27T10:00:01Z", 1),
        ]);
        assert_eq!(
            lines,
            vec![
                "Warning FailedScheduling: FailedScheduling happened".to_owned(),
                "Warning Failed: Failed happened (x3)".to_owned(),
            ]
        );
    }
}
