//! `kelp destroy`: deletes the stack in reverse rollout order. The data
//! stays unless asked: the PersistentVolumeClaims, the generated Secrets
//! (the passwords and certificates that data was written with), the
//! Namespace holding them and the StorageClasses their volumes name.
//! `purge_data` deletes those too.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, DeleteParams, ListParams};
use tokio::time::Instant;

use super::progress::{Mode, StepProgress};
use super::{ApplyError, cluster, kube_error, step_error, steps};
use crate::manifests::Object;
use crate::stack::Stack;

/// How `kelp destroy` runs.
#[derive(Debug, Clone)]
pub struct DestroyOptions {
    /// Also delete the claims (and so the data), the Namespace and the
    /// StorageClasses. The caller has confirmed it.
    pub purge_data: bool,
    /// Bound of the wait for the deleted objects to be gone.
    pub timeout: Duration,
    /// Pause between two checks.
    pub poll: Duration,
    /// How progress is shown.
    pub progress: Mode,
}

/// What `kelp destroy` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DestroyReport {
    /// `Kind/name` of what was deleted.
    pub deleted: Vec<String>,
    /// `Kind/name` of what was kept on purpose.
    pub kept: Vec<String>,
}

impl fmt::Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "deleted {} objects", self.deleted.len())?;
        for id in &self.deleted {
            writeln!(f, "  deleted: {id}")?;
        }
        for id in &self.kept {
            writeln!(f, "  kept: {id}")?;
        }
        if !self.kept.is_empty() {
            writeln!(
                f,
                "the data is kept: `kelp apply` brings the stack back onto it; \
                 `kelp destroy --purge-data` deletes it"
            )?;
        }
        Ok(())
    }
}

/// Whether destroy keeps the object unless purging: what holds or names
/// the data.
fn holds_data(object: &Object) -> bool {
    matches!(object, Object::Namespace(_) | Object::StorageClass(_))
}

/// Deletes the stack: see the module documentation.
///
/// # Errors
/// When a deletion fails or the objects are not gone in time.
pub async fn destroy(
    client: kube::Client,
    stack: &Stack,
    options: &DestroyOptions,
) -> Result<DestroyReport, ApplyError> {
    let mut report = DestroyReport::default();
    let mut progress = StepProgress::start(options.progress, "destroy");
    let mut deleted: Vec<Object> = Vec::new();
    let mut last: Vec<Object> = Vec::new();
    for step in steps::steps(stack).iter().rev() {
        for object in step.objects.iter().rev() {
            if holds_data(object) {
                if options.purge_data {
                    last.push(object.clone());
                } else {
                    report.kept.push(object.id());
                }
                continue;
            }
            progress.set(&format!("deleting {}", object.id()));
            if cluster::delete(&client, object)
                .await
                .map_err(|e| kube_error(step.name, "deleting", object, e))?
            {
                report.deleted.push(object.id());
                deleted.push(object.clone());
            }
        }
    }
    report
        .deleted
        .extend(delete_topic_jobs(&client, stack).await?);
    wait_gone(&client, &deleted, options, &mut progress).await?;

    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &stack.namespace);
    let selector = format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/managed-by=kelp",
        stack.namespace
    );
    let listed = claims
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| step_error("destroy", format!("listing claims failed: {e}")))?;
    for claim in listed.items {
        let name = claim.metadata.name.unwrap_or_default();
        if !options.purge_data {
            report.kept.push(format!("PersistentVolumeClaim/{name}"));
            continue;
        }
        progress.set(&format!("deleting PersistentVolumeClaim/{name}"));
        match claims.delete(&name, &DeleteParams::background()).await {
            Ok(_) => report.deleted.push(format!("PersistentVolumeClaim/{name}")),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                return Err(step_error(
                    "destroy",
                    format!("deleting claim {name} failed: {e}"),
                ));
            }
        }
    }
    if options.purge_data {
        wait_claims_gone(&claims, &selector, options, &mut progress).await?;
        // The Namespace last: deleting it also deletes the generated Secrets.
        for object in &last {
            progress.set(&format!("deleting {}", object.id()));
            if cluster::delete(&client, object)
                .await
                .map_err(|e| kube_error("destroy", "deleting", object, e))?
            {
                report.deleted.push(object.id());
            }
        }
        wait_gone(&client, &last, options, &mut progress).await?;
    } else {
        report
            .kept
            .push(format!("the Secrets in namespace {}", stack.namespace));
    }
    progress.finish(true, &format!("{} objects deleted", report.deleted.len()));
    Ok(report)
}

/// The topic Jobs of this and earlier stacks (their names carry a hash).
async fn delete_topic_jobs(
    client: &kube::Client,
    stack: &Stack,
) -> Result<Vec<String>, ApplyError> {
    let api = Api::<Job>::namespaced(client.clone(), &stack.namespace);
    let selector = format!(
        "app.kubernetes.io/name=kafka,app.kubernetes.io/instance={}",
        stack.namespace
    );
    let jobs = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(jobs) => jobs.items,
        Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
        Err(e) => return Err(step_error("destroy", format!("listing jobs failed: {e}"))),
    };
    let mut deleted = Vec::new();
    for job in jobs {
        let name = job.metadata.name.unwrap_or_default();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => deleted.push(format!("Job/{name}")),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                return Err(step_error(
                    "destroy",
                    format!("deleting job {name} failed: {e}"),
                ));
            }
        }
    }
    Ok(deleted)
}

/// Waits until none of `objects` exists any more.
async fn wait_gone(
    client: &kube::Client,
    objects: &[Object],
    options: &DestroyOptions,
    progress: &mut StepProgress,
) -> Result<(), ApplyError> {
    let started = Instant::now();
    loop {
        let mut left = Vec::new();
        for object in objects {
            if cluster::get(client, object)
                .await
                .map_err(|e| kube_error("destroy", "reading", object, e))?
                .is_some()
            {
                left.push(object.id());
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        progress.set(&format!("waiting for {} to be gone", left.join(", ")));
        if started.elapsed() + options.poll > options.timeout {
            return Err(step_error(
                "destroy",
                format!(
                    "waiting for deletion timed out after {} s: still there: {}",
                    options.timeout.as_secs(),
                    left.join(", ")
                ),
            ));
        }
        tokio::time::sleep(options.poll).await;
    }
}

async fn wait_claims_gone(
    claims: &Api<PersistentVolumeClaim>,
    selector: &str,
    options: &DestroyOptions,
    progress: &mut StepProgress,
) -> Result<(), ApplyError> {
    let started = Instant::now();
    loop {
        let left = claims
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| step_error("destroy", format!("listing claims failed: {e}")))?
            .items
            .len();
        if left == 0 {
            return Ok(());
        }
        progress.set(&format!("waiting for {left} claims to be gone"));
        if started.elapsed() + options.poll > options.timeout {
            return Err(step_error(
                "destroy",
                format!(
                    "waiting for the claims to be deleted timed out after {} s: {left} left",
                    options.timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(options.poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_namespace_and_storage_classes_hold_data() {
        let mut stack = Stack::default();
        stack.storage.rbd = Some(crate::stack::Rbd {
            cluster_id: "c".into(),
            pool: "p".into(),
            monitors: Vec::new(),
            secret_name: "s".into(),
            secret_namespace: "ceph-csi".into(),
            fstype: crate::stack::FsType::Ext4,
            kafka_fstype: crate::stack::FsType::Xfs,
            image_features: "layering".into(),
        });
        let kept: Vec<String> = crate::manifests::build(&stack)
            .iter()
            .filter(|o| holds_data(o))
            .map(Object::id)
            .collect();
        assert_eq!(
            kept,
            [
                "Namespace/kelp",
                "StorageClass/kelp-rbd-ext4",
                "StorageClass/kelp-rbd-xfs"
            ]
        );
    }

    #[test]
    fn the_report_says_how_to_get_rid_of_the_data() {
        let report = DestroyReport {
            deleted: vec!["StatefulSet/kafka".into()],
            kept: vec!["PersistentVolumeClaim/data-kafka-0".into()],
        };
        let text = report.to_string();
        assert!(
            text.contains("kept: PersistentVolumeClaim/data-kafka-0"),
            "{text}"
        );
        assert!(text.contains("--purge-data"), "{text}");
        let purged = DestroyReport {
            deleted: vec!["PersistentVolumeClaim/data-kafka-0".into()],
            kept: Vec::new(),
        };
        assert!(!purged.to_string().contains("--purge-data"));
    }
}
