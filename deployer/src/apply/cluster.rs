//! The cluster rim of the engine: rendered objects as dynamic API objects,
//! server-side apply with kelp's field manager, reads and deletes.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::rollout::{self, Rollout};
use crate::manifests::Object;

/// The one field manager of every object kelp applies: a second apply with
/// the same objects is then a no-op for the API server.
pub(super) const FIELD_MANAGER: &str = "kelp";

/// The API of an object's kind, in its namespace if it has one.
pub(super) fn api(client: &kube::Client, object: &Object) -> Api<DynamicObject> {
    let (group, version) = match object.api_version().split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", object.api_version()),
    };
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, object.kind()));
    match &object.metadata().namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// The object as the JSON the API takes (with `apiVersion` and `kind`).
pub(super) fn to_json(object: &Object) -> Result<Value, serde_json::Error> {
    serde_json::to_value(object)
}

/// The live object, `None` when it does not exist.
pub(super) async fn get(
    client: &kube::Client,
    object: &Object,
) -> Result<Option<DynamicObject>, kube::Error> {
    api(client, object).get_opt(object.name()).await
}

/// Server-side apply as kelp, taking over fields another manager set
/// (`force`): the stack file is the source of truth.
pub(super) async fn server_side_apply(
    client: &kube::Client,
    object: &Object,
    dry_run: bool,
) -> Result<DynamicObject, kube::Error> {
    let body = to_json(object).map_err(kube::Error::SerdeError)?;
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if dry_run {
        params = params.dry_run();
    }
    api(client, object)
        .patch(object.name(), &params, &Patch::Apply(&body))
        .await
}

/// Deletes an object (its dependents in the background); a missing object
/// is not an error. Returns whether it existed.
pub(super) async fn delete(client: &kube::Client, object: &Object) -> Result<bool, kube::Error> {
    match api(client, object)
        .delete(object.name(), &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(error) => Err(error),
    }
}

/// The rollout state of a workload; `None` for objects that are not one.
pub(super) async fn rollout_state(
    client: &kube::Client,
    object: &Object,
) -> Result<Option<Rollout>, kube::Error> {
    let namespace = object.metadata().namespace.clone().unwrap_or_default();
    let name = object.name();
    Ok(Some(match object {
        Object::StatefulSet(_) => rollout::stateful_set(
            &Api::<StatefulSet>::namespaced(client.clone(), &namespace)
                .get(name)
                .await?,
        ),
        Object::Deployment(_) => rollout::deployment(
            &Api::<Deployment>::namespaced(client.clone(), &namespace)
                .get(name)
                .await?,
        ),
        Object::DaemonSet(_) => rollout::daemon_set(
            &Api::<DaemonSet>::namespaced(client.clone(), &namespace)
                .get(name)
                .await?,
        ),
        Object::Job(_) => rollout::job(
            &Api::<Job>::namespaced(client.clone(), &namespace)
                .get(name)
                .await?,
        ),
        _ => return Ok(None),
    }))
}

/// The label selector of a workload's pods.
pub(super) fn pod_selector(object: &Object) -> String {
    let labels = match object {
        Object::StatefulSet(o) => o.spec.as_ref().map(|s| s.selector.clone()),
        Object::Deployment(o) => o.spec.as_ref().map(|s| s.selector.clone()),
        Object::DaemonSet(o) => o.spec.as_ref().map(|s| s.selector.clone()),
        // The Job controller labels its pods with the Job's name.
        Object::Job(_) => return format!("batch.kubernetes.io/job-name={}", object.name()),
        _ => None,
    };
    labels
        .and_then(|s| s.match_labels)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The pods of a workload.
pub(super) async fn pods(client: &kube::Client, object: &Object) -> Result<Vec<Pod>, kube::Error> {
    let namespace = object.metadata().namespace.clone().unwrap_or_default();
    Ok(Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default().labels(&pod_selector(object)))
        .await?
        .items)
}

/// What to show about a workload that did not roll out in time.
pub(super) async fn describe_stuck(client: &kube::Client, object: &Object) -> String {
    let namespace = object.metadata().namespace.clone().unwrap_or_default();
    let pods = pods(client, object).await.unwrap_or_default();
    let events = Api::<Event>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .map(|list| list.items)
        .unwrap_or_default();
    super::stuck::describe((object.kind(), object.name()), &pods, &events)
}
