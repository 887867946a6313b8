//! Volume growth: a StatefulSet's `volumeClaimTemplates` cannot be
//! updated, so a bigger `volume_size_gib` is done the way Kubernetes allows:
//! grow every existing claim, delete the StatefulSet while orphaning its
//! pods (they keep running and keep their volumes), and apply the
//! StatefulSet again with the new template, which adopts the pods.
//!
//! [`plan`] is the pure comparison of the live StatefulSet and the desired
//! one; [`execute`] does the first two steps and leaves the re-apply to the
//! caller (`kelp apply`). Both are idempotent: after a partial run, a new
//! plan and execute pick up what is left.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};

/// How long [`execute`] waits for the orphaning delete to finish.
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(120);
/// The annotation marking the default StorageClass.
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// One claim template whose size grows.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimGrowth {
    /// The template's name, e.g. `data`; claims are `<template>-<sts>-<ordinal>`.
    pub template: String,
    /// The template's StorageClass; `None` is the cluster's default.
    pub storage_class: Option<String>,
    /// The live size, e.g. `10Gi`.
    pub from: Quantity,
    /// The desired size, e.g. `20Gi`.
    pub to: Quantity,
}

/// A change kelp will not make.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The desired size is smaller: volumes never shrink.
    Shrink {
        /// The template.
        template: String,
        /// The live size.
        from: Quantity,
        /// The smaller desired size.
        to: Quantity,
    },
    /// A change other than the size: immutable for kelp.
    Immutable {
        /// The template.
        template: String,
        /// What changed, e.g. `storageClassName "a" -> "b"`.
        what: String,
    },
    /// A size that is not a Kubernetes quantity.
    Unreadable {
        /// The template.
        template: String,
        /// The text.
        value: String,
    },
}

impl Refusal {
    /// How to get past it.
    pub fn fix(&self) -> String {
        match self {
            Refusal::Shrink { from, .. } => format!(
                "volumes cannot shrink: keep the size at {} or more (volume_size_gib in the stack file)",
                from.0
            ),
            Refusal::Immutable { .. } => "a StatefulSet's volume claim templates cannot change: \
                 revert the stack change, or move the data to new volumes by hand (docs/OPERATIONS.md)"
                .to_owned(),
            Refusal::Unreadable { .. } => {
                "write the size as a Kubernetes quantity, e.g. 20Gi".to_owned()
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Shrink { template, from, to } => write!(
                f,
                "volume claim template {template}: shrinking from {} to {} is not possible",
                from.0, to.0
            )?,
            Refusal::Immutable { template, what } => {
                write!(f, "volume claim template {template}: {what} changed")?;
            }
            Refusal::Unreadable { template, value } => {
                write!(
                    f,
                    "volume claim template {template}: size {value:?} is not a quantity"
                )?;
            }
        }
        write!(f, "; fix: {}", self.fix())
    }
}

/// What growing one StatefulSet's volumes takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GrowthPlan {
    /// The StatefulSet's name.
    pub statefulset: String,
    /// Templates whose size grows.
    pub grow: Vec<ClaimGrowth>,
    /// Changes kelp refuses; [`execute`] does nothing while there is one.
    pub refused: Vec<Refusal>,
}

impl GrowthPlan {
    /// Whether a volume must grow (and nothing is refused).
    pub fn is_needed(&self) -> bool {
        !self.grow.is_empty() && self.refused.is_empty()
    }
}

impl fmt::Display for GrowthPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for growth in &self.grow {
            writeln!(
                f,
                "statefulset {}: grow {}-{}-* from {} to {}",
                self.statefulset, growth.template, self.statefulset, growth.from.0, growth.to.0
            )?;
        }
        for refusal in &self.refused {
            writeln!(f, "statefulset {}: {refusal}", self.statefulset)?;
        }
        Ok(())
    }
}

/// A quantity in bytes, rounded up; `None` if it is not one. Handles the
/// binary (`Ki`..`Ei`) and decimal (`k`..`E`) suffixes, decimal fractions
/// and exponents (`1e9`).
pub fn quantity_bytes(quantity: &str) -> Option<u128> {
    let text = quantity.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    // value = digits / 10^scale * multiplier.
    let digits: u128 = format!("{int_part}{frac_part}").parse().ok()?;
    let mut scale = u32::try_from(frac_part.len()).ok()?;
    let (multiplier, exponent): (u128, i32) = match suffix {
        "" => (1, 0),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        s if s.starts_with(['e', 'E']) => (1, s[1..].parse().ok()?),
        _ => return None,
    };
    let mut value = digits.checked_mul(multiplier)?;
    if exponent >= 0 {
        value = value.checked_mul(10u128.checked_pow(exponent.unsigned_abs())?)?;
    } else {
        scale = scale.checked_add(exponent.unsigned_abs())?;
    }
    let divisor = 10u128.checked_pow(scale)?;
    Some(value.div_ceil(divisor))
}

fn storage_request(spec: Option<&PersistentVolumeClaimSpec>) -> Option<&Quantity> {
    spec?.resources.as_ref()?.requests.as_ref()?.get("storage")
}

/// Fields of a claim template that must not change, as text for messages.
fn fixed_fields(claim: &PersistentVolumeClaim) -> Vec<(&'static str, String)> {
    let spec = claim.spec.clone().unwrap_or_default();
    let show = |value: &dyn fmt::Debug| format!("{value:?}");
    vec![
        ("accessModes", show(&spec.access_modes.unwrap_or_default())),
        ("storageClassName", show(&spec.storage_class_name)),
        // The API server fills in Filesystem.
        (
            "volumeMode",
            show(&spec.volume_mode.unwrap_or_else(|| "Filesystem".to_owned())),
        ),
        ("selector", show(&spec.selector)),
        ("dataSource", show(&spec.data_source)),
        (
            "resources.limits",
            show(&spec.resources.and_then(|r| r.limits)),
        ),
        ("labels", show(&claim.metadata.labels)),
    ]
}

fn templates(sts: &StatefulSet) -> Vec<PersistentVolumeClaim> {
    sts.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default()
}

/// Compares the live StatefulSet's claim templates with the desired ones:
/// which grow, and which changes kelp refuses (a smaller size, any other
/// change to a template, a template added or removed). Pure.
pub fn plan(live: &StatefulSet, desired: &StatefulSet) -> GrowthPlan {
    let mut plan = GrowthPlan {
        statefulset: desired.metadata.name.clone().unwrap_or_default(),
        ..GrowthPlan::default()
    };
    let live_templates = templates(live);
    let desired_templates = templates(desired);
    let name_of = |claim: &PersistentVolumeClaim| claim.metadata.name.clone().unwrap_or_default();
    for live_claim in &live_templates {
        let template = name_of(live_claim);
        if !desired_templates.iter().any(|d| name_of(d) == template) {
            plan.refused.push(Refusal::Immutable {
                template,
                what: "the template was removed, so it".to_owned(),
            });
        }
    }
    for desired_claim in &desired_templates {
        let template = name_of(desired_claim);
        let Some(live_claim) = live_templates.iter().find(|l| name_of(l) == template) else {
            plan.refused.push(Refusal::Immutable {
                template,
                what: "the template is new, so it".to_owned(),
            });
            continue;
        };
        for ((field, was), (_, will)) in fixed_fields(live_claim)
            .into_iter()
            .zip(fixed_fields(desired_claim))
        {
            if was != will {
                plan.refused.push(Refusal::Immutable {
                    template: template.clone(),
                    what: format!("{field} {was} -> {will}"),
                });
            }
        }
        let (Some(from), Some(to)) = (
            storage_request(live_claim.spec.as_ref()),
            storage_request(desired_claim.spec.as_ref()),
        ) else {
            continue;
        };
        let (Some(from_bytes), Some(to_bytes)) = (quantity_bytes(&from.0), quantity_bytes(&to.0))
        else {
            let value = if quantity_bytes(&from.0).is_none() {
                &from.0
            } else {
                &to.0
            };
            plan.refused.push(Refusal::Unreadable {
                template,
                value: value.clone(),
            });
            continue;
        };
        if to_bytes > from_bytes {
            plan.grow.push(ClaimGrowth {
                template,
                storage_class: desired_claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.storage_class_name.clone()),
                from: from.clone(),
                to: to.clone(),
            });
        } else if to_bytes < from_bytes {
            plan.refused.push(Refusal::Shrink {
                template,
                from: from.clone(),
                to: to.clone(),
            });
        }
    }
    plan
}

/// What [`execute`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrowthReport {
    /// The StatefulSet.
    pub statefulset: String,
    /// Claims patched to their new size.
    pub patched: Vec<String>,
    /// Claims already at (or above) the new size.
    pub unchanged: Vec<String>,
    /// Whether the StatefulSet was deleted now (false: it was already gone,
    /// or nothing had to grow).
    pub statefulset_deleted: bool,
}

impl fmt::Display for GrowthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for claim in &self.patched {
            writeln!(f, "persistentvolumeclaim {claim}: resized")?;
        }
        for claim in &self.unchanged {
            writeln!(f, "persistentvolumeclaim {claim}: already at size")?;
        }
        if self.statefulset_deleted {
            writeln!(
                f,
                "statefulset {}: deleted, pods orphaned (kept running); apply it again to adopt them",
                self.statefulset
            )?;
        }
        Ok(())
    }
}

/// Why growth could not be done.
#[derive(Debug, thiserror::Error)]
pub enum GrowthError {
    /// The plan holds refused changes.
    #[error("growing the volumes of statefulset {statefulset} refused: {reasons}")]
    Refused {
        /// The StatefulSet.
        statefulset: String,
        /// Every refusal with its fix.
        reasons: String,
    },
    /// The StorageClass does not allow expansion.
    #[error(
        "growing the volumes of statefulset {statefulset} failed: storageclass {class} does not allow volume expansion; \
         fix: set allowVolumeExpansion: true on it if its driver can expand (ceph-csi rbd can: kubectl patch storageclass {class} -p '{{\"allowVolumeExpansion\": true}}'), \
         or keep the old size"
    )]
    ExpansionNotAllowed {
        /// The StatefulSet.
        statefulset: String,
        /// The StorageClass.
        class: String,
    },
    /// The template names no StorageClass and the cluster has no default.
    #[error(
        "growing the volumes of statefulset {0} failed: its claims use the default storageclass and the cluster has none"
    )]
    NoDefaultClass(String),
    /// The API server refused a step.
    #[error("{step} failed: {source}")]
    Api {
        /// The step, e.g. `resizing persistentvolumeclaim kelp/data-kafka-0`.
        step: String,
        /// The cause.
        source: kube::Error,
    },
    /// Watching for the delete to finish failed.
    #[error("waiting for statefulset {statefulset} to be deleted failed: {detail}")]
    Wait {
        /// The StatefulSet.
        statefulset: String,
        /// The watch error.
        detail: String,
    },
    /// The orphaning delete did not finish in time.
    #[error(
        "deleting statefulset {0} (orphaning its pods) did not finish within {1:?}: check its finalizers and the garbage collector (kube-controller-manager)"
    )]
    DeleteTimeout(String, Duration),
}

fn api_error(step: String) -> impl FnOnce(kube::Error) -> GrowthError {
    move |source| GrowthError::Api { step, source }
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// The ordinal if `claim` is `<template>-<statefulset>-<ordinal>`.
pub fn claim_ordinal(claim: &str, template: &str, statefulset: &str) -> Option<u32> {
    let rest = claim
        .strip_prefix(template)?
        .strip_prefix('-')?
        .strip_prefix(statefulset)?
        .strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// Checks every class the plan grows allows expansion.
async fn check_classes(client: &kube::Client, plan: &GrowthPlan) -> Result<(), GrowthError> {
    let api: Api<StorageClass> = Api::all(client.clone());
    for growth in &plan.grow {
        let class = match &growth.storage_class {
            Some(name) => api
                .get(name)
                .await
                .map_err(api_error(format!("reading storageclass {name}")))?,
            None => api
                .list(&ListParams::default())
                .await
                .map_err(api_error("listing storage classes".to_owned()))?
                .items
                .into_iter()
                .find(|c| {
                    c.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                        .is_some_and(|v| v == "true")
                })
                .ok_or_else(|| GrowthError::NoDefaultClass(plan.statefulset.clone()))?,
        };
        if class.allow_volume_expansion != Some(true) {
            return Err(GrowthError::ExpansionNotAllowed {
                statefulset: plan.statefulset.clone(),
                class: class.metadata.name.unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// Grows every existing claim of the plan's templates to the new size, then
/// deletes the StatefulSet with `propagationPolicy: Orphan` and waits until
/// it is gone: the pods keep running on their (now larger) volumes. The
/// caller applies the new StatefulSet next, which adopts the pods. Checks
/// first that the StorageClasses allow expansion; does nothing when the
/// plan refuses something or nothing grows.
///
/// # Errors
/// When the plan is refused, a class does not allow expansion, or the API
/// server refuses a step.
pub async fn execute(
    client: &kube::Client,
    namespace: &str,
    plan: &GrowthPlan,
) -> Result<GrowthReport, GrowthError> {
    let sts_name = &plan.statefulset;
    let mut report = GrowthReport {
        statefulset: sts_name.clone(),
        ..GrowthReport::default()
    };
    if !plan.refused.is_empty() {
        return Err(GrowthError::Refused {
            statefulset: sts_name.clone(),
            reasons: plan
                .refused
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    if plan.grow.is_empty() {
        return Ok(report);
    }
    check_classes(client, plan).await?;

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let existing = claims
        .list(&ListParams::default())
        .await
        .map_err(api_error(format!(
            "listing persistentvolumeclaims in {namespace}"
        )))?;
    let mut names: Vec<(u32, String, &ClaimGrowth, Option<Quantity>)> = Vec::new();
    for claim in existing.items {
        let name = claim.metadata.name.clone().unwrap_or_default();
        for growth in &plan.grow {
            if let Some(ordinal) = claim_ordinal(&name, &growth.template, sts_name) {
                let current = storage_request(claim.spec.as_ref()).cloned();
                names.push((ordinal, name.clone(), growth, current));
            }
        }
    }
    names.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (_, name, growth, current) in names {
        let target = quantity_bytes(&growth.to.0);
        let now = current.as_ref().and_then(|q| quantity_bytes(&q.0));
        if matches!((now, target), (Some(now), Some(target)) if now >= target) {
            report.unchanged.push(name);
            continue;
        }
        let patch = serde_json::json!({
            "spec": {"resources": {"requests": {"storage": growth.to.0}}}
        });
        claims
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_error(format!(
                "resizing persistentvolumeclaim {namespace}/{name} to {}",
                growth.to.0
            )))?;
        tracing::info!(claim = %name, size = %growth.to.0, "persistent volume claim resized");
        report.patched.push(name);
    }

    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let step = format!("deleting statefulset {namespace}/{sts_name} (orphaning its pods)");
    let uid = match sets.get_opt(sts_name).await {
        Ok(Some(sts)) => sts.metadata.uid,
        Ok(None) => return Ok(report),
        Err(error) => return Err(api_error(step)(error)),
    };
    match sets.delete(sts_name, &DeleteParams::orphan()).await {
        Ok(_) => {}
        Err(error) if is_not_found(&error) => return Ok(report),
        Err(error) => return Err(api_error(step)(error)),
    }
    let gone = await_condition(
        sets,
        sts_name,
        conditions::is_deleted(uid.as_deref().unwrap_or_default()),
    );
    match tokio::time::timeout(DELETE_TIMEOUT, gone).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            return Err(GrowthError::Wait {
                statefulset: sts_name.clone(),
                detail: error.to_string(),
            });
        }
        Err(_) => return Err(GrowthError::DeleteTimeout(sts_name.clone(), DELETE_TIMEOUT)),
    }
    tracing::info!(statefulset = %sts_name, "statefulset deleted, pods orphaned");
    report.statefulset_deleted = true;
    Ok(report)
}

#[cfg(test)]
mod tests;
