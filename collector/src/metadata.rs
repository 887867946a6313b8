//! Pod metadata from the Kubernetes API: labels, annotations, owner
//! workload, node and image, and the annotations that exclude a pod or
//! choose its multiline rule.
//!
//! The rim ([`watch`]) runs one list+watch of this node's pods
//! (`spec.nodeName=<node>`) and one of namespaces on a tokio runtime in a
//! thread of its own, and writes what it learns into a [`MetadataCache`].
//! The pipeline thread only reads the cache: it never waits on the API
//! server. It looks a file's pod up when it opens the file and again
//! whenever the cache's generation moved, never per line, and builds the
//! file's [`Enrichment`] and [`Decision`] from what it found.
//!
//! The core is pure and table-tested: [`pod`] (conversion and owner
//! workload), [`decide`] (annotations), [`store`] (the cache and its
//! retention of deleted pods), [`enrich`].
//!
//! Architecture Invariant: the pipeline never blocks on the API server; a
//! pod not known yet costs its file at most `unknown_pod_wait_ms` of delay,
//! after which events go out with path metadata only.

pub mod decide;
pub mod pod;
pub mod store;
pub mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

pub use self::decide::{Decision, Exclusion, decide};
pub use self::pod::{Inclusion, NamespaceMeta, PodMeta, owner_workload};
pub use self::store::Store;
pub use self::watch::{MetadataError, MetadataWatch};
use crate::parse::event::Enrichment;
use crate::parse::path::PathMeta;

/// The store shared between the watch thread (writer) and the pipeline
/// (reader), with a generation that moves on every change that matters.
#[derive(Debug)]
pub struct MetadataCache {
    store: RwLock<Store>,
    generation: AtomicU64,
    inclusion: Inclusion,
}

impl MetadataCache {
    /// An empty cache; `inclusion` says which labels and annotations are kept.
    pub fn new(inclusion: Inclusion) -> MetadataCache {
        MetadataCache {
            store: RwLock::new(Store::default()),
            generation: AtomicU64::new(0),
            inclusion,
        }
    }

    /// Moves on each change of a pod or namespace; cheap to poll.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Which labels and annotations are kept and shipped.
    pub fn inclusion(&self) -> &Inclusion {
        &self.inclusion
    }

    /// Reads the store. Writers hold the lock only to update a map.
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the store; `change` says whether anything readers use changed.
    pub fn update<T>(&self, change: impl FnOnce(&mut Store) -> (T, bool)) -> T {
        let mut store = self.store.write().unwrap_or_else(PoisonError::into_inner);
        let (result, changed) = change(&mut store);
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        result
    }
}

/// The API's metadata for `container` of `pod`: labels (as kept), the
/// shipped annotations, owner, node and image.
pub fn enrich(pod: &PodMeta, container: &str, inclusion: &Inclusion) -> Enrichment {
    Enrichment {
        pod_uid: Some(pod.uid.clone()),
        labels: pod.labels.clone(),
        annotations: pod
            .annotations
            .iter()
            .filter(|(key, _)| inclusion.ships_annotation(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        owner: pod.owner.clone(),
        node: pod.node.clone(),
        image: pod.image(container).map(str::to_owned),
    }
}

/// What one log file's pod and namespace are, as last looked up.
#[derive(Debug, Clone, Default)]
pub struct FileMeta {
    pod: Option<Arc<PodMeta>>,
    namespace: Option<Arc<NamespaceMeta>>,
    generation: Option<u64>,
}

impl FileMeta {
    /// Looks the file's pod and namespace up again if the cache changed
    /// since the last look. What is no longer in the cache (a deleted pod
    /// evicted, a deleted namespace) is kept: an open file keeps its
    /// metadata until it is released. Returns whether anything changed.
    pub fn refresh(&mut self, cache: &MetadataCache, path: Option<&PathMeta>) -> bool {
        let generation = cache.generation();
        if self.generation == Some(generation) {
            return false;
        }
        self.generation = Some(generation);
        let Some(path) = path else {
            return false;
        };
        let store = cache.read();
        let pod = store.pod(path.pod_uid.as_deref(), &path.namespace, &path.pod);
        let namespace = store.namespace(&path.namespace);
        drop(store);
        let mut changed = false;
        if let Some(pod) = pod
            && !self.pod.as_ref().is_some_and(|old| Arc::ptr_eq(old, &pod))
        {
            self.pod = Some(pod);
            changed = true;
        }
        if let Some(namespace) = namespace
            && !self
                .namespace
                .as_ref()
                .is_some_and(|old| Arc::ptr_eq(old, &namespace))
        {
            self.namespace = Some(namespace);
            changed = true;
        }
        changed
    }

    /// Whether the pod is known.
    pub fn pod_known(&self) -> bool {
        self.pod.is_some()
    }

    /// The enrichment of `container`'s events, if the pod is known.
    pub fn enrichment(&self, container: &str, inclusion: &Inclusion) -> Option<Enrichment> {
        self.pod
            .as_deref()
            .map(|pod| enrich(pod, container, inclusion))
    }

    /// What the annotations decide for `container`.
    pub fn decision(&self, container: &str) -> Decision {
        let empty = std::collections::BTreeMap::new();
        decide(
            self.pod.as_deref().map_or(&empty, |pod| &pod.annotations),
            self.namespace
                .as_deref()
                .map_or(&empty, |namespace| &namespace.annotations),
            container,
        )
    }
}

#[cfg(test)]
mod tests;
