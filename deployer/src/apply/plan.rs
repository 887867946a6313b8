//! `kelp plan`: what `kelp apply` would change, from a server-side dry run
//! of each object compared with the live object ([`super::diff`]).

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;

use super::diff::{self, Change};
use super::steps;
use super::{ApplyError, cluster, kube_error};
use crate::manifests::Object;
use crate::stack::Stack;

/// What the apply would do to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    /// The rollout step.
    pub step: String,
    /// `Kind/name`.
    pub id: String,
    /// The change.
    pub change: Change,
}

/// The plan of the whole stack, in rollout order.
///
/// # Errors
/// When the API server cannot be read.
pub async fn plan(client: kube::Client, stack: &Stack) -> Result<Vec<PlanEntry>, ApplyError> {
    // Namespaced objects cannot be dry-run into a namespace that does not
    // exist: they are all creations then.
    let namespace_exists = Api::<Namespace>::all(client.clone())
        .get_opt(&stack.namespace)
        .await
        .map_err(|e| ApplyError::Step {
            step: "plan".to_owned(),
            message: format!("reading namespace {} failed: {e}", stack.namespace),
        })?
        .is_some();
    let mut entries = Vec::new();
    for step in steps::steps(stack) {
        for object in &step.objects {
            let change = if !namespace_exists && object.metadata().namespace.is_some() {
                Change::Create
            } else {
                object_change(&client, step.name, object).await?
            };
            entries.push(PlanEntry {
                step: step.name.to_owned(),
                id: object.id(),
                change,
            });
        }
    }
    Ok(entries)
}

async fn object_change(
    client: &kube::Client,
    step: &str,
    object: &Object,
) -> Result<Change, ApplyError> {
    let Some(live) = cluster::get(client, object)
        .await
        .map_err(|e| kube_error(step, "reading", object, e))?
    else {
        return Ok(Change::Create);
    };
    let after = match cluster::server_side_apply(client, object, true).await {
        Ok(after) => after,
        Err(kube::Error::Api(status)) => return Ok(Change::Refused(status.message)),
        Err(e) => return Err(kube_error(step, "dry-run applying", object, e)),
    };
    let to_value = |o| serde_json::to_value(o).unwrap_or_default();
    Ok(diff::change(Some(&to_value(live)), &to_value(after)))
}

/// The plan as text: one line per object that would change, the changed
/// paths under it, and a summary line.
pub fn format(entries: &[PlanEntry]) -> String {
    let mut out = String::new();
    let (mut create, mut update, mut refused, mut same) = (0, 0, 0, 0);
    for entry in entries {
        match &entry.change {
            Change::Create => {
                create += 1;
                let _ = writeln!(out, "create  {} ({})", entry.id, entry.step);
            }
            Change::Update(paths) => {
                update += 1;
                let _ = writeln!(out, "change  {} ({})", entry.id, entry.step);
                for path in paths {
                    let _ = writeln!(out, "          {path}");
                }
            }
            Change::Refused(message) => {
                refused += 1;
                let _ = writeln!(out, "refused {} ({}): {message}", entry.id, entry.step);
            }
            Change::Unchanged => same += 1,
        }
    }
    let _ = writeln!(
        out,
        "plan: {create} to create, {update} to change, {same} unchanged{}",
        if refused > 0 {
            format!(", {refused} refused by the api server")
        } else {
            String::new()
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_lists_changes_and_counts() {
        let entry = |id: &str, change| PlanEntry {
            step: "kafka".to_owned(),
            id: id.to_owned(),
            change,
        };
        let entries = vec![
            entry("Service/kafka", Change::Unchanged),
            entry(
                "StatefulSet/kafka",
                Change::Update(vec!["/spec/template/spec/containers/0/image".into()]),
            ),
            entry("Job/kafka-topics-1", Change::Create),
            entry(
                "StatefulSet/zookeeper",
                Change::Refused("spec: Forbidden: updates to statefulset spec".into()),
            ),
        ];
        assert_eq!(
            format(&entries),
            "change  StatefulSet/kafka (kafka)\n          /spec/template/spec/containers/0/image\n\
             create  Job/kafka-topics-1 (kafka)\n\
             refused StatefulSet/zookeeper (kafka): spec: Forbidden: updates to statefulset spec\n\
             plan: 1 to create, 1 to change, 1 unchanged, 1 refused by the api server\n"
        );
        assert_eq!(
            format(&entries[..1]),
            "plan: 0 to create, 0 to change, 1 unchanged\n"
        );
    }
}
