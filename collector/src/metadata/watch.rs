//! The rim: one list+watch of this node's pods and one of namespaces, on a
//! single-threaded tokio runtime in a thread of its own, feeding the
//! [`MetadataCache`]. Watch failures are retried with kube's default
//! backoff forever and counted; the pipeline never waits for them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::oneshot;

use super::MetadataCache;
use super::pod::{NamespaceMeta, PodMeta};
use crate::internal_events::{
    MetadataCached, MetadataSynced, MetadataWatchFailed, MetadataWatchRestarted, Metrics,
};

/// How often deleted pods past their retention are forgotten.
const EVICT_INTERVAL: Duration = Duration::from_secs(5);

/// Why the watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// `kubernetes.kubeconfig` is unreadable or unusable.
    #[error("reading kubeconfig {path} failed: {source}")]
    Kubeconfig {
        /// `kubernetes.kubeconfig`.
        path: PathBuf,
        /// The cause.
        source: KubeconfigError,
    },
    /// Neither a kubeconfig nor the in-cluster service account is usable.
    #[error("building the kubernetes client failed: {0}")]
    Client(#[from] kube::Error),
    /// The runtime or its thread could not start.
    #[error("starting the metadata watch thread failed: {0}")]
    Start(std::io::Error),
}

/// What the watch needs from the config.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// This node's name: only its pods are watched.
    pub node: String,
    /// `kubernetes.kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `kubernetes.deleted_pod_retention_ms`.
    pub deleted_pod_retention_ms: u64,
}

/// The running watch; dropping it stops the watch and joins its thread.
#[derive(Debug)]
pub struct MetadataWatch {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetadataWatch {
    /// Builds the client (on the caller's thread, so a bad kubeconfig is an
    /// error here) and watches from a new thread. An unreachable API server
    /// is not an error: the watch retries and counts its failures.
    ///
    /// # Errors
    /// See [`MetadataError`].
    pub fn start(
        settings: WatchSettings,
        cache: Arc<MetadataCache>,
        metrics: Arc<Metrics>,
    ) -> Result<MetadataWatch, MetadataError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(MetadataError::Start)?;
        let client = runtime.block_on(client(settings.kubeconfig.as_deref()))?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("kelp-metadata".to_owned())
            .spawn(move || runtime.block_on(watch(client, settings, cache, metrics, stopped)))
            .map_err(MetadataError::Start)?;
        Ok(MetadataWatch {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for MetadataWatch {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn client(kubeconfig: Option<&Path>) -> Result<Client, MetadataError> {
    let Some(path) = kubeconfig else {
        return Ok(Client::try_default().await?);
    };
    let failed = |source| MetadataError::Kubeconfig {
        path: path.to_owned(),
        source,
    };
    let file = Kubeconfig::read_from(path).map_err(failed)?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(failed)?;
    Ok(Client::try_from(config)?)
}

/// Which watch an event came from, for logs and metric labels.
const PODS: &str = "pods";
const NAMESPACES: &str = "namespaces";

async fn watch(
    client: Client,
    settings: WatchSettings,
    cache: Arc<MetadataCache>,
    metrics: Arc<Metrics>,
    mut stopped: oneshot::Receiver<()>,
) {
    let epoch = Instant::now();
    let now_ms = || u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
    let node_selector = format!("spec.nodeName={}", settings.node);
    let pods = watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields(&node_selector),
    )
    .default_backoff();
    let namespaces =
        watcher(Api::<Namespace>::all(client), watcher::Config::default()).default_backoff();
    let mut pods = std::pin::pin!(pods);
    let mut namespaces = std::pin::pin!(namespaces);
    let mut evict = tokio::time::interval(EVICT_INTERVAL);
    let mut lists = [0u64; 2];
    tracing::info!(
        node = settings.node,
        "watching this node's pods and all namespaces"
    );
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(event) = pods.next() => match event {
                Ok(event) => on_pod(event, &cache, &metrics, now_ms(), &mut lists[0]),
                Err(error) => MetadataWatchFailed { resource: PODS, error: &error }.emit(&metrics),
            },
            Some(event) = namespaces.next() => match event {
                Ok(event) => on_namespace(event, &cache, &metrics, &mut lists[1]),
                Err(error) => MetadataWatchFailed { resource: NAMESPACES, error: &error }.emit(&metrics),
            },
            _ = evict.tick() => {
                let (pods, namespaces) = cache.update(|store| {
                    store.evict(now_ms(), settings.deleted_pod_retention_ms);
                    ((store.pods(), store.namespaces()), false)
                });
                MetadataCached { pods, namespaces }.emit(&metrics);
            }
        }
    }
}

fn on_pod(
    event: Event<Pod>,
    cache: &MetadataCache,
    metrics: &Metrics,
    now_ms: u64,
    lists: &mut u64,
) {
    match event {
        Event::Init => {
            if *lists > 0 {
                MetadataWatchRestarted { resource: PODS }.emit(metrics);
            }
            *lists += 1;
            cache.update(|store| (store.pods_relist_started(), false));
        }
        Event::InitApply(pod) | Event::Apply(pod) => {
            if let Some(meta) = PodMeta::from_pod(&pod, cache.inclusion()) {
                cache.update(|store| ((), store.apply_pod(meta)));
            }
        }
        Event::Delete(pod) => {
            if let Some(uid) = pod.metadata.uid.as_deref() {
                // Readers keep what they resolved: no new generation.
                cache.update(|store| (store.delete_pod(uid, now_ms), false));
            }
        }
        Event::InitDone => {
            let objects = cache.update(|store| {
                store.pods_relist_done(now_ms);
                (store.pods(), false)
            });
            MetadataSynced {
                resource: PODS,
                objects,
            }
            .emit(metrics);
        }
    }
}

fn on_namespace(
    event: Event<Namespace>,
    cache: &MetadataCache,
    metrics: &Metrics,
    lists: &mut u64,
) {
    match event {
        Event::Init => {
            if *lists > 0 {
                MetadataWatchRestarted {
                    resource: NAMESPACES,
                }
                .emit(metrics);
            }
            *lists += 1;
            cache.update(|store| (store.namespaces_relist_started(), false));
        }
        Event::InitApply(namespace) | Event::Apply(namespace) => {
            let meta = NamespaceMeta::from_namespace(&namespace);
            cache.update(|store| ((), store.apply_namespace(meta)));
        }
        Event::Delete(namespace) => {
            if let Some(name) = namespace.metadata.name.as_deref() {
                cache.update(|store| ((), store.delete_namespace(name)));
            }
        }
        Event::InitDone => {
            let objects = cache.update(|store| {
                let removed = store.namespaces_relist_done();
                (store.namespaces(), removed)
            });
            MetadataSynced {
                resource: NAMESPACES,
                objects,
            }
            .emit(metrics);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::metadata::Inclusion;

    fn pod(uid: &str, name: &str, version: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                namespace: Some("shop".into()),
                name: Some(name.into()),
                labels: Some(BTreeMap::from([("version".to_owned(), version.to_owned())])),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    fn namespace(name: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    #[test]
    fn watch_events_move_the_cache_and_its_generation() {
        let cache = MetadataCache::new(Inclusion {
            labels: true,
            annotations: Vec::new(),
        });
        let metrics = Metrics::new();
        let mut lists = [0u64; 2];
        let generation = |cache: &MetadataCache| cache.generation();
        let found =
            |cache: &MetadataCache, uid: &str| cache.read().pod(Some(uid), "", "").is_some();

        // The first list: no restart counted, synced once both lists are done.
        on_pod(Event::Init, &cache, &metrics, 0, &mut lists[0]);
        on_pod(
            Event::InitApply(pod("u1", "web", "1")),
            &cache,
            &metrics,
            0,
            &mut lists[0],
        );
        on_pod(Event::InitDone, &cache, &metrics, 0, &mut lists[0]);
        assert!(!cache.read().synced(), "namespaces not listed yet");
        on_namespace(Event::Init, &cache, &metrics, &mut lists[1]);
        on_namespace(
            Event::InitApply(namespace("shop")),
            &cache,
            &metrics,
            &mut lists[1],
        );
        on_namespace(Event::InitDone, &cache, &metrics, &mut lists[1]);
        assert!(cache.read().synced());
        assert!(found(&cache, "u1"));

        // An unchanged pod leaves the generation; a relabelled one moves it.
        let before = generation(&cache);
        on_pod(
            Event::Apply(pod("u1", "web", "1")),
            &cache,
            &metrics,
            10,
            &mut lists[0],
        );
        assert_eq!(generation(&cache), before);
        on_pod(
            Event::Apply(pod("u1", "web", "2")),
            &cache,
            &metrics,
            10,
            &mut lists[0],
        );
        assert!(generation(&cache) > before);

        // A deletion keeps the pod for the retention.
        on_pod(
            Event::Delete(pod("u1", "web", "2")),
            &cache,
            &metrics,
            20,
            &mut lists[0],
        );
        assert!(found(&cache, "u1"));
        assert_eq!(cache.update(|store| (store.evict(20, 0), false)), 1);
        assert!(!found(&cache, "u1"));

        // A relist after the first counts as a restart and marks what it
        // no longer lists as deleted.
        on_pod(
            Event::Apply(pod("u2", "api", "1")),
            &cache,
            &metrics,
            30,
            &mut lists[0],
        );
        on_pod(Event::Init, &cache, &metrics, 40, &mut lists[0]);
        on_pod(
            Event::InitApply(pod("u3", "db", "1")),
            &cache,
            &metrics,
            40,
            &mut lists[0],
        );
        on_pod(Event::InitDone, &cache, &metrics, 40, &mut lists[0]);
        assert_eq!(cache.update(|store| (store.evict(40, 0), false)), 1);
        assert!(!found(&cache, "u2") && found(&cache, "u3"));
        let text = metrics.encode();
        assert!(
            text.contains("kelp_collector_metadata_watch_restarts_total{resource=\"pods\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "kelp_collector_metadata_watch_restarts_total{resource=\"namespaces\"} 0"
            ),
            "{text}"
        );
    }
}
