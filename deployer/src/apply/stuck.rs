//! What to show when a wait times out: the pods that are not ready, their
//! containers' states (waiting reason, last termination) and their recent
//! events, the way `kubectl describe` would, in a few lines. Pure: the
//! engine lists pods and events and prints what this returns.

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};

/// Events shown per pod: the most recent ones say why it is stuck.
const EVENTS_PER_OBJECT: usize = 5;

/// Whether a pod counts as stuck: not finished and not ready.
fn is_stuck(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return true;
    };
    if matches!(status.phase.as_deref(), Some("Succeeded")) {
        return false;
    }
    !status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn container_lines(out: &mut String, status: &ContainerStatus) {
    let state = status.state.clone().unwrap_or_default();
    if let Some(waiting) = &state.waiting {
        let _ = writeln!(
            out,
            "  container {}: waiting: {}{}",
            status.name,
            waiting.reason.as_deref().unwrap_or("unknown"),
            waiting
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
    } else if let Some(terminated) = &state.terminated {
        let _ = writeln!(
            out,
            "  container {}: terminated: {} (exit code {})",
            status.name,
            terminated.reason.as_deref().unwrap_or("unknown"),
            terminated.exit_code
        );
    } else if state.running.is_some() && !status.ready {
        let _ = writeln!(out, "  container {}: running, not ready", status.name);
    }
    if let Some(last) = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
    {
        let _ = writeln!(
            out,
            "  container {}: last terminated: {} (exit code {}, {} restarts){}",
            status.name,
            last.reason.as_deref().unwrap_or("unknown"),
            last.exit_code,
            status.restart_count,
            last.message
                .as_deref()
                .map(|m| format!(": {}", m.trim()))
                .unwrap_or_default()
        );
    }
}

/// The events about `kind/name`, newest last, at most [`EVENTS_PER_OBJECT`].
fn event_lines(out: &mut String, events: &[Event], kind: &str, name: &str) {
    let mut mine: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
        })
        .collect();
    mine.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
    });
    let skip = mine.len().saturating_sub(EVENTS_PER_OBJECT);
    for event in mine.into_iter().skip(skip) {
        let count = event
            .count
            .filter(|c| *c > 1)
            .map(|c| format!(" (x{c})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  event: {} {}{count}: {}",
            event.type_.as_deref().unwrap_or("Normal"),
            event.reason.as_deref().unwrap_or(""),
            event.message.as_deref().unwrap_or("").trim()
        );
    }
}

/// A report of the workload's stuck pods and events: the workload's own
/// events (e.g. `FailedCreate`), then per pod not ready its phase, container
/// states and events. Says so when every pod is ready.
pub fn describe(workload: (&str, &str), pods: &[Pod], events: &[Event]) -> String {
    let (kind, name) = workload;
    let mut out = String::new();
    let _ = writeln!(out, "{kind}/{name}:");
    event_lines(&mut out, events, kind, name);
    let stuck: Vec<&Pod> = pods.iter().filter(|p| is_stuck(p)).collect();
    if pods.is_empty() {
        out.push_str("  no pods\n");
    } else if stuck.is_empty() {
        let _ = writeln!(out, "  all {} pods ready", pods.len());
    }
    for pod in stuck {
        let pod_name = pod.metadata.name.as_deref().unwrap_or("");
        let status = pod.status.clone().unwrap_or_default();
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("no node");
        let _ = writeln!(
            out,
            "pod {pod_name} ({}, {node}, not ready):",
            status.phase.as_deref().unwrap_or("Unknown")
        );
        for condition in status.conditions.iter().flatten() {
            if condition.status != "True"
                && let Some(message) = &condition.message
            {
                let _ = writeln!(out, "  condition {}: {message}", condition.type_);
            }
        }
        for container in status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
        {
            container_lines(&mut out, container);
        }
        event_lines(&mut out, events, "Pod", pod_name);
    }
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ObjectReference, PodCondition, PodSpec, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn pod(name: &str, phase: &str, ready: bool, containers: Vec<ContainerStatus>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.to_owned());
        pod.spec = Some(PodSpec {
            node_name: Some("node-1".to_owned()),
            ..PodSpec::default()
        });
        pod.status = Some(PodStatus {
            phase: Some(phase.to_owned()),
            conditions: Some(vec![
                PodCondition {
                    type_: "Ready".to_owned(),
                    status: if ready { "True" } else { "False" }.to_owned(),
                    ..PodCondition::default()
                },
                PodCondition {
                    type_: "PodScheduled".to_owned(),
                    status: if phase == "Pending" { "False" } else { "True" }.to_owned(),
                    message: Some("0/3 nodes are available: 3 Insufficient memory.".to_owned()),
                    ..PodCondition::default()
                },
            ]),
            container_statuses: Some(containers),
            ..PodStatus::default()
        });
        pod
    }

    fn container(
        name: &str,
        state: ContainerState,
        last: Option<ContainerState>,
    ) -> ContainerStatus {
        ContainerStatus {
            name: name.to_owned(),
            state: Some(state),
            last_state: last,
            restart_count: 4,
            ..ContainerStatus::default()
        }
    }

    fn event(kind: &str, name: &str, reason: &str, message: &str, count: i32, secs: i64) -> Event {
        Event {
            involved_object: ObjectReference {
                kind: Some(kind.to_owned()),
                name: Some(name.to_owned()),
                ..ObjectReference::default()
            },
            type_: Some("Warning".to_owned()),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            count: Some(count),
            last_timestamp: Some(Time(Timestamp::from_second(secs).unwrap())),
            ..Event::default()
        }
    }

    #[test]
    fn stuck_pods_show_states_and_events() {
        let crash = container(
            "kafka",
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("CrashLoopBackOff".to_owned()),
                    message: Some("back-off 5m0s restarting failed container".to_owned()),
                }),
                ..ContainerState::default()
            },
            Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    reason: Some("Error".to_owned()),
                    exit_code: 1,
                    message: Some("cluster id mismatch\n".to_owned()),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
        );
        let running = container(
            "kafka",
            ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..ContainerState::default()
            },
            None,
        );
        let pods = vec![
            pod("kafka-0", "Running", true, vec![running.clone()]),
            pod("kafka-1", "Running", false, vec![crash]),
            pod("kafka-2", "Pending", false, vec![]),
            pod("kafka-topics-x", "Succeeded", false, vec![]),
        ];
        let events = vec![
            event(
                "Pod",
                "kafka-1",
                "BackOff",
                "Back-off restarting failed container",
                12,
                20,
            ),
            event("Pod", "kafka-1", "Pulled", "image pulled", 1, 10),
            event(
                "Pod",
                "kafka-2",
                "FailedScheduling",
                "0/3 nodes are available",
                3,
                5,
            ),
            event(
                "StatefulSet",
                "kafka",
                "FailedCreate",
                "quota exceeded",
                1,
                1,
            ),
            event("Pod", "other-0", "BackOff", "not ours", 1, 1),
        ];
        let got = describe(("StatefulSet", "kafka"), &pods, &events);
        let want = "\
StatefulSet/kafka:
  event: Warning FailedCreate: quota exceeded
pod kafka-1 (Running, node-1, not ready):
  container kafka: waiting: CrashLoopBackOff: back-off 5m0s restarting failed container
  container kafka: last terminated: Error (exit code 1, 4 restarts): cluster id mismatch
  event: Warning Pulled: image pulled
  event: Warning BackOff (x12): Back-off restarting failed container
pod kafka-2 (Pending, node-1, not ready):
  condition PodScheduled: 0/3 nodes are available: 3 Insufficient memory.
  event: Warning FailedScheduling (x3): 0/3 nodes are available
";
        assert_eq!(got, want);

        let ready = describe(("StatefulSet", "kafka"), &pods[..1], &[]);
        assert_eq!(ready, "StatefulSet/kafka:\n  all 1 pods ready\n");
        let none = describe(("Deployment", "kibana"), &[], &[]);
        assert_eq!(none, "Deployment/kibana:\n  no pods\n");
        let not_ready_running = describe(
            ("StatefulSet", "kafka"),
            &[pod("kafka-0", "Running", false, vec![running])],
            &[],
        );
        assert!(
            not_ready_running.contains("container kafka: running, not ready"),
            "{not_ready_running}"
        );
    }
}
