//! Whether a workload has rolled out, read from its live status. Pure: the
//! engine fetches the objects and polls these until they say done.
//!
//! "Done" is what `kubectl rollout status` means: the controller has seen
//! the latest spec (`observedGeneration`), every replica runs the latest
//! template and is ready, and no replica of an older template is left.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Rolled out; the text says what was seen, e.g. `3/3 ready`.
    Done(String),
    /// Not yet; the text says what is missing.
    Waiting(String),
    /// Will not finish by waiting (a Job that failed).
    Failed(String),
}

impl Rollout {
    /// The text, whatever the state.
    pub fn text(&self) -> &str {
        match self {
            Rollout::Done(t) | Rollout::Waiting(t) | Rollout::Failed(t) => t,
        }
    }
}

/// The controller has not yet seen the latest spec.
fn stale(generation: Option<i64>, observed: Option<i64>) -> Option<Rollout> {
    match (generation, observed) {
        (Some(g), Some(o)) if o >= g => None,
        (None, _) => None,
        _ => Some(Rollout::Waiting("waiting for the controller".to_owned())),
    }
}

/// `ready`, `updated` and `desired` to a state, with the common wording.
fn replicas(desired: i32, updated: i32, ready: i32, total: i32) -> Rollout {
    if updated < desired {
        Rollout::Waiting(format!(
            "{updated}/{desired} updated, {ready}/{desired} ready"
        ))
    } else if ready < desired {
        Rollout::Waiting(format!("{ready}/{desired} ready"))
    } else if total > desired {
        Rollout::Waiting(format!("{} old replicas terminating", total - desired))
    } else {
        Rollout::Done(format!("{ready}/{desired} ready"))
    }
}

/// A StatefulSet: every replica updated to the update revision and ready.
pub fn stateful_set(sts: &StatefulSet) -> Rollout {
    let status = sts.status.clone().unwrap_or_default();
    if let Some(waiting) = stale(sts.metadata.generation, status.observed_generation) {
        return waiting;
    }
    let desired = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let state = replicas(desired, updated, ready, status.replicas);
    // During a rolling update the revisions differ until the last pod moved.
    match (&state, &status.current_revision, &status.update_revision) {
        (Rollout::Done(_), Some(current), Some(update)) if current != update && desired > 0 => {
            Rollout::Waiting(format!(
                "{ready}/{desired} ready, revision {update} rolling"
            ))
        }
        _ => state,
    }
}

/// A Deployment: every replica updated and available, no old ones left.
pub fn deployment(deployment: &Deployment) -> Rollout {
    let status = deployment.status.clone().unwrap_or_default();
    if let Some(waiting) = stale(deployment.metadata.generation, status.observed_generation) {
        return waiting;
    }
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    replicas(
        desired,
        status.updated_replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
        status.replicas.unwrap_or(0),
    )
}

/// A DaemonSet: a ready, updated pod on every node that should run one.
pub fn daemon_set(ds: &DaemonSet) -> Rollout {
    let Some(status) = ds.status.clone() else {
        return Rollout::Waiting("waiting for the controller".to_owned());
    };
    if let Some(waiting) = stale(ds.metadata.generation, status.observed_generation) {
        return waiting;
    }
    let desired = status.desired_number_scheduled;
    replicas(
        desired,
        status.updated_number_scheduled.unwrap_or(0),
        status.number_available.unwrap_or(0),
        status.current_number_scheduled,
    )
}

/// A Job: succeeded, or failed for good.
pub fn job(job: &Job) -> Rollout {
    let status = job.status.clone().unwrap_or_default();
    let condition = |kind: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if condition("Complete").is_some() {
        return Rollout::Done("succeeded".to_owned());
    }
    if let Some(failed) = condition("Failed") {
        return Rollout::Failed(format!(
            "failed: {}: {}",
            failed.reason.clone().unwrap_or_default(),
            failed.message.clone().unwrap_or_default()
        ));
    }
    Rollout::Waiting(format!(
        "{} running, {} failed attempts",
        status.active.unwrap_or(0),
        status.failed.unwrap_or(0)
    ))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{
        DaemonSetStatus, DeploymentSpec, DeploymentStatus, StatefulSetSpec, StatefulSetStatus,
    };
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

    use super::*;

    fn sts(
        generation: i64,
        observed: i64,
        desired: i32,
        (updated, ready, total): (i32, i32, i32),
        revisions: (&str, &str),
    ) -> StatefulSet {
        let mut sts = StatefulSet::default();
        sts.metadata.generation = Some(generation);
        sts.spec = Some(StatefulSetSpec {
            replicas: Some(desired),
            ..StatefulSetSpec::default()
        });
        sts.status = Some(StatefulSetStatus {
            observed_generation: Some(observed),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            replicas: total,
            current_revision: Some(revisions.0.to_owned()),
            update_revision: Some(revisions.1.to_owned()),
            ..StatefulSetStatus::default()
        });
        sts
    }

    #[test]
    fn stateful_sets() {
        let table = [
            (
                sts(2, 1, 3, (3, 3, 3), ("a", "a")),
                "W waiting for the controller",
            ),
            (
                sts(1, 1, 3, (1, 1, 3), ("a", "b")),
                "W 1/3 updated, 1/3 ready",
            ),
            (sts(1, 1, 3, (3, 2, 3), ("a", "a")), "W 2/3 ready"),
            (
                sts(1, 1, 3, (3, 3, 3), ("a", "b")),
                "W 3/3 ready, revision b rolling",
            ),
            (sts(1, 1, 3, (3, 3, 3), ("b", "b")), "D 3/3 ready"),
            (sts(3, 3, 1, (1, 1, 1), ("c", "c")), "D 1/1 ready"),
        ];
        for (object, want) in table {
            let got = match stateful_set(&object) {
                Rollout::Done(t) => format!("D {t}"),
                Rollout::Waiting(t) => format!("W {t}"),
                Rollout::Failed(t) => format!("F {t}"),
            };
            assert_eq!(got, want);
        }
        assert_eq!(
            stateful_set(&StatefulSet::default()),
            Rollout::Waiting("0/1 updated, 0/1 ready".to_owned())
        );
    }

    fn deploy(desired: i32, updated: i32, available: i32, total: i32) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.generation = Some(4);
        d.spec = Some(DeploymentSpec {
            replicas: Some(desired),
            ..DeploymentSpec::default()
        });
        d.status = Some(DeploymentStatus {
            observed_generation: Some(4),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            replicas: Some(total),
            ..DeploymentStatus::default()
        });
        d
    }

    #[test]
    fn deployments() {
        let table = [
            (
                deploy(2, 1, 2, 3),
                Rollout::Waiting("1/2 updated, 2/2 ready".to_owned()),
            ),
            (deploy(2, 2, 1, 2), Rollout::Waiting("1/2 ready".to_owned())),
            (
                deploy(2, 2, 2, 3),
                Rollout::Waiting("1 old replicas terminating".to_owned()),
            ),
            (deploy(2, 2, 2, 2), Rollout::Done("2/2 ready".to_owned())),
        ];
        for (object, want) in table {
            assert_eq!(deployment(&object), want);
        }
    }

    #[test]
    fn daemon_sets() {
        let ds = |desired, updated, available| {
            let mut ds = DaemonSet::default();
            ds.metadata.generation = Some(1);
            ds.status = Some(DaemonSetStatus {
                observed_generation: Some(1),
                desired_number_scheduled: desired,
                current_number_scheduled: desired,
                updated_number_scheduled: Some(updated),
                number_available: Some(available),
                ..DaemonSetStatus::default()
            });
            ds
        };
        assert_eq!(
            daemon_set(&ds(3, 2, 3)),
            Rollout::Waiting("2/3 updated, 3/3 ready".to_owned())
        );
        assert_eq!(
            daemon_set(&ds(3, 3, 3)),
            Rollout::Done("3/3 ready".to_owned())
        );
        assert!(matches!(
            daemon_set(&DaemonSet::default()),
            Rollout::Waiting(_)
        ));
    }

    #[test]
    fn jobs() {
        let with = |kind: &str, status: &str, active| Job {
            status: Some(JobStatus {
                active: Some(active),
                conditions: Some(vec![JobCondition {
                    type_: kind.to_owned(),
                    status: status.to_owned(),
                    reason: Some("BackoffLimitExceeded".to_owned()),
                    message: Some("Job has reached the specified backoff limit".to_owned()),
                    ..JobCondition::default()
                }]),
                ..JobStatus::default()
            }),
            ..Job::default()
        };
        assert_eq!(
            job(&with("Complete", "True", 0)),
            Rollout::Done("succeeded".to_owned())
        );
        assert_eq!(
            job(&with("Failed", "True", 0)),
            Rollout::Failed(
                "failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
                    .to_owned()
            )
        );
        assert_eq!(
            job(&with("Complete", "False", 1)),
            Rollout::Waiting("1 running, 0 failed attempts".to_owned())
        );
    }
}
