//! `kelp status`: per step of the rollout, which objects exist, how far
//! each workload has rolled out, and what the application's gate says now
//! (one check, no waiting).

use std::fmt;

use super::endpoints::Endpoints;
use super::rollout::Rollout;
use super::steps::{self, GateKind};
use super::{ApplyError, Context, cluster, kube_error};
use crate::health::GateStatus;
use crate::stack::Stack;

/// The state of one step's component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatus {
    /// The step's name, e.g. `kafka`.
    pub name: String,
    /// How many of its objects exist.
    pub present: usize,
    /// `Kind/name` of the objects that do not.
    pub missing: Vec<String>,
    /// Each workload's `Kind/name` and rollout state.
    pub workloads: Vec<(String, Rollout)>,
    /// The gate's name and its answer, when the step has one.
    pub gate: Option<(String, GateStatus)>,
}

impl ComponentStatus {
    /// Present, rolled out and (if it has a gate) healthy.
    pub fn healthy(&self) -> bool {
        self.missing.is_empty()
            && self
                .workloads
                .iter()
                .all(|(_, r)| matches!(r, Rollout::Done(_)))
            && self.gate.as_ref().is_none_or(|(_, g)| g.is_healthy())
    }
}

/// What `kelp status` found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusReport {
    /// One entry per step, in rollout order.
    pub components: Vec<ComponentStatus>,
}

impl StatusReport {
    /// Every component healthy.
    pub fn healthy(&self) -> bool {
        self.components.iter().all(ComponentStatus::healthy)
    }
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.components {
            let total = c.present + c.missing.len();
            let word = if c.healthy() {
                "healthy"
            } else {
                "NOT HEALTHY"
            };
            writeln!(f, "{}: {word}", c.name)?;
            writeln!(f, "  objects: {}/{total} present", c.present)?;
            for missing in &c.missing {
                writeln!(f, "  missing: {missing}")?;
            }
            for (id, rollout) in &c.workloads {
                let word = match rollout {
                    Rollout::Done(_) => "",
                    Rollout::Waiting(_) => " (rolling out)",
                    Rollout::Failed(_) => " (failed)",
                };
                writeln!(f, "  {id}: {}{word}", rollout.text())?;
            }
            if let Some((name, status)) = &c.gate {
                match status {
                    GateStatus::Healthy(text) => writeln!(f, "  {name}: healthy: {text}")?,
                    GateStatus::NotYet(text) => writeln!(f, "  {name}: not healthy: {text}")?,
                }
            }
        }
        let word = if self.healthy() {
            "the stack is healthy"
        } else {
            "the stack is NOT healthy"
        };
        writeln!(f, "{word}")
    }
}

/// Reads the state of every component of the stack.
///
/// # Errors
/// When the API server cannot be read.
pub async fn status(
    client: kube::Client,
    stack: &Stack,
    endpoints: &Endpoints,
) -> Result<StatusReport, ApplyError> {
    let context = Context {
        client,
        stack,
        endpoints,
    };
    let mut report = StatusReport::default();
    for step in steps::steps(stack) {
        let mut component = ComponentStatus {
            name: step.name.to_owned(),
            present: 0,
            missing: Vec::new(),
            workloads: Vec::new(),
            gate: None,
        };
        for object in &step.objects {
            let live = cluster::get(&context.client, object)
                .await
                .map_err(|e| kube_error(step.name, "reading", object, e))?;
            if live.is_none() {
                component.missing.push(object.id());
                continue;
            }
            component.present += 1;
            if let Some(rollout) = cluster::rollout_state(&context.client, object)
                .await
                .map_err(|e| kube_error(step.name, "reading", object, e))?
            {
                component.workloads.push((object.id(), rollout));
            }
        }
        if let Some(kind) = step.gate {
            component.gate = Some(check_gate(&context, step.name, kind).await);
        }
        report.components.push(component);
    }
    Ok(report)
}

/// One check of a gate; a gate that cannot be reached is not healthy.
async fn check_gate(context: &Context<'_>, step: &str, kind: GateKind) -> (String, GateStatus) {
    match context.gate(step, kind).await {
        Ok(reachable) => {
            let status = reachable.gate.check().await;
            (reachable.gate.name().to_owned(), status)
        }
        Err(error) => ("gate".to_owned(), GateStatus::NotYet(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(missing: &[&str], rollout: Rollout, gate: Option<GateStatus>) -> ComponentStatus {
        ComponentStatus {
            name: "kafka".to_owned(),
            present: 3,
            missing: missing.iter().map(|m| (*m).to_owned()).collect(),
            workloads: vec![("StatefulSet/kafka".to_owned(), rollout)],
            gate: gate.map(|g| ("kafka cluster".to_owned(), g)),
        }
    }

    #[test]
    fn health_needs_objects_rollouts_and_gates() {
        let done = || Rollout::Done("3/3 ready".to_owned());
        let table = [
            (component(&[], done(), None), true),
            (
                component(&[], done(), Some(GateStatus::Healthy("3 brokers".into()))),
                true,
            ),
            (
                component(&[], done(), Some(GateStatus::NotYet("1 of 3".into()))),
                false,
            ),
            (component(&["Service/kafka"], done(), None), false),
            (
                component(&[], Rollout::Waiting("1/3 ready".into()), None),
                false,
            ),
        ];
        for (c, want) in table {
            assert_eq!(c.healthy(), want, "{c:?}");
            let report = StatusReport {
                components: vec![c],
            };
            assert_eq!(report.healthy(), want);
            let text = report.to_string();
            assert_eq!(text.ends_with("the stack is healthy\n"), want, "{text}");
        }
    }

    #[test]
    fn the_report_names_what_is_wrong() {
        let report = StatusReport {
            components: vec![component(
                &["Service/kafka"],
                Rollout::Waiting("1/3 ready".into()),
                Some(GateStatus::NotYet("1 of 3 brokers registered".into())),
            )],
        };
        assert_eq!(
            report.to_string(),
            "kafka: NOT HEALTHY\n  objects: 3/4 present\n  missing: Service/kafka\n  \
             StatefulSet/kafka: 1/3 ready (rolling out)\n  kafka cluster: not healthy: 1 of 3 \
             brokers registered\nthe stack is NOT healthy\n"
        );
    }
}
