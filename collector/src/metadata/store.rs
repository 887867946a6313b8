//! The pod and namespace cache: fed by the watches, read by the pipeline.
//! Pure: time is a parameter (milliseconds on any monotonic clock).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::pod::{NamespaceMeta, PodMeta};

/// The pods of this node and all namespaces, as the watches last saw them.
///
/// A deleted pod is kept, marked deleted, for the retention given to
/// [`Store::evict`], so files found after the deletion still get its
/// metadata. A relist (the watch's `Init` .. `InitDone`) marks pods it no
/// longer lists as deleted, the same way.
#[derive(Debug, Default)]
pub struct Store {
    pods: HashMap<String, Arc<PodMeta>>,
    /// `(namespace, name)` to the uid of the pod last applied under that
    /// name, for paths without a uid.
    by_name: HashMap<(String, String), String>,
    /// Deleted pods' uids, with when they were deleted.
    deleted: HashMap<String, u64>,
    namespaces: HashMap<String, Arc<NamespaceMeta>>,
    /// Uids seen since the pods' relist began.
    relisted_pods: Option<HashSet<String>>,
    /// Names seen since the namespaces' relist began.
    relisted_namespaces: Option<HashSet<String>>,
    pods_synced: bool,
    namespaces_synced: bool,
}

impl Store {
    /// The pod with `uid`, or, when the uid is unknown or not given, the
    /// pod last applied as `namespace`/`name` (deleted pods included).
    pub fn pod(&self, uid: Option<&str>, namespace: &str, name: &str) -> Option<Arc<PodMeta>> {
        if let Some(pod) = uid.and_then(|uid| self.pods.get(uid)) {
            return Some(Arc::clone(pod));
        }
        // A static pod's path carries its config hash, not the mirror pod's uid.
        let uid = self.by_name.get(&(namespace.to_owned(), name.to_owned()))?;
        self.pods.get(uid).map(Arc::clone)
    }

    /// The namespace `name`.
    pub fn namespace(&self, name: &str) -> Option<Arc<NamespaceMeta>> {
        self.namespaces.get(name).map(Arc::clone)
    }

    /// Pods known, deleted ones still retained included.
    pub fn pods(&self) -> usize {
        self.pods.len()
    }

    /// Namespaces known.
    pub fn namespaces(&self) -> usize {
        self.namespaces.len()
    }

    /// Both watches completed a list at least once.
    pub fn synced(&self) -> bool {
        self.pods_synced && self.namespaces_synced
    }

    /// A pod was added or changed. Returns whether what the collector keeps
    /// of it changed (status updates mostly do not).
    pub fn apply_pod(&mut self, pod: PodMeta) -> bool {
        if let Some(seen) = &mut self.relisted_pods {
            seen.insert(pod.uid.clone());
        }
        let undeleted = self.deleted.remove(&pod.uid).is_some();
        self.by_name
            .insert((pod.namespace.clone(), pod.name.clone()), pod.uid.clone());
        match self.pods.get(&pod.uid) {
            Some(known) if **known == pod => undeleted,
            _ => {
                self.pods.insert(pod.uid.clone(), Arc::new(pod));
                true
            }
        }
    }

    /// A pod was deleted at `now_ms`: kept until evicted.
    pub fn delete_pod(&mut self, uid: &str, now_ms: u64) {
        if self.pods.contains_key(uid) {
            self.deleted.entry(uid.to_owned()).or_insert(now_ms);
        }
    }

    /// The pods' watch starts a full list.
    pub fn pods_relist_started(&mut self) {
        self.relisted_pods = Some(HashSet::new());
    }

    /// The pods' full list is complete at `now_ms`: pods it did not list
    /// were deleted meanwhile. Returns whether any was.
    pub fn pods_relist_done(&mut self, now_ms: u64) -> bool {
        self.pods_synced = true;
        let Some(seen) = self.relisted_pods.take() else {
            return false;
        };
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|uid| !seen.contains(*uid) && !self.deleted.contains_key(*uid))
            .cloned()
            .collect();
        for uid in &gone {
            self.delete_pod(uid, now_ms);
        }
        !gone.is_empty()
    }

    /// A namespace was added or changed. Returns whether its decision
    /// annotations changed.
    pub fn apply_namespace(&mut self, namespace: NamespaceMeta) -> bool {
        if let Some(seen) = &mut self.relisted_namespaces {
            seen.insert(namespace.name.clone());
        }
        match self.namespaces.get(&namespace.name) {
            Some(known) if **known == namespace => false,
            _ => {
                self.namespaces
                    .insert(namespace.name.clone(), Arc::new(namespace));
                true
            }
        }
    }

    /// A namespace was deleted. Open files keep what they resolved.
    pub fn delete_namespace(&mut self, name: &str) -> bool {
        self.namespaces.remove(name).is_some()
    }

    /// The namespaces' watch starts a full list.
    pub fn namespaces_relist_started(&mut self) {
        self.relisted_namespaces = Some(HashSet::new());
    }

    /// The namespaces' full list is complete. Returns whether any namespace
    /// it did not list was removed.
    pub fn namespaces_relist_done(&mut self) -> bool {
        self.namespaces_synced = true;
        let Some(seen) = self.relisted_namespaces.take() else {
            return false;
        };
        let before = self.namespaces.len();
        self.namespaces.retain(|name, _| seen.contains(name));
        self.namespaces.len() != before
    }

    /// Forgets pods deleted at least `retention_ms` before `now_ms`; returns
    /// how many.
    pub fn evict(&mut self, now_ms: u64, retention_ms: u64) -> usize {
        let expired: Vec<String> = self
            .deleted
            .iter()
            .filter(|(_, at)| now_ms.saturating_sub(**at) >= retention_ms)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in &expired {
            self.deleted.remove(uid);
            if let Some(pod) = self.pods.remove(uid) {
                let key = (pod.namespace.clone(), pod.name.clone());
                if self.by_name.get(&key) == Some(uid) {
                    self.by_name.remove(&key);
                }
            }
        }
        expired.len()
    }
}
