//! `kelp-collector run`: builds the pipeline from a config and drives it
//! until SIGTERM/SIGINT (or, in batch mode, until everything is delivered).
//! SIGHUP reloads the config (see [`crate::reload`]); `/metrics`, `/healthz`
//! and `/readyz` are served from a thread of their own ([`crate::server`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::checkpoint::{CheckpointError, Checkpoints};
use crate::config::{Config, ConfigError, MetricsConfig, SinkConfig};
use crate::health::Health;
use crate::internal_events::{ConfigReloadFailed, ConfigReloaded, Metrics, MetricsTailEvents};
use crate::metadata::watch::WatchSettings;
use crate::metadata::{Inclusion, MetadataCache, MetadataError, MetadataWatch};
use crate::pipeline::{Mode, Pipeline, PipelineError, Settings, Stats};
use crate::reload::ReloadPlan;
use crate::server::Server;
use crate::sink::{FileSink, KafkaSink, KafkaSinkError, KeyChoice, Sink, StdoutSink};
use crate::tail::{TailError, TailEvents, Tailer};

/// Why `run` failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The checkpoint file is unreadable (see `--reset-checkpoints`).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The tailer could not start.
    #[error("starting the tailer failed: {0}")]
    Tail(#[from] TailError),
    /// The Kafka producer could not start.
    #[error(transparent)]
    Kafka(#[from] KafkaSinkError),
    /// The debug file sink could not be opened.
    #[error("opening the file sink failed: {0}")]
    FileSink(std::io::Error),
    /// Signal handlers could not be installed.
    #[error("installing signal handlers failed: {0}")]
    Signals(std::io::Error),
    /// The pipeline stopped with an error.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The Kubernetes metadata watch could not start.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// `kubernetes.enabled` without a node name to watch the pods of.
    #[error(
        "starting the kubernetes metadata watch failed: no node name (set node_name or NODE_NAME)"
    )]
    NoNodeName,
}

/// Options of `run` that are not in the config file.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Read what is there, deliver it, checkpoint, exit.
    pub batch: bool,
    /// Move an unreadable checkpoint file aside and start from scratch.
    pub reset_checkpoints: bool,
}

type SetFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Sets the filter of the process's log subscriber (`log.filter`), which
/// the binary owns.
pub struct LogFilter {
    /// `RUST_LOG` is set: it wins over `log.filter`.
    env_override: bool,
    set: SetFilter,
}

impl std::fmt::Debug for LogFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFilter")
            .field("env_override", &self.env_override)
            .finish_non_exhaustive()
    }
}

impl LogFilter {
    /// `set` replaces the subscriber's filter with directives;
    /// `env_override` says `RUST_LOG` is set, so `log.filter` is ignored.
    pub fn new(
        env_override: bool,
        set: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static,
    ) -> LogFilter {
        LogFilter {
            env_override,
            set: Box::new(set),
        }
    }

    /// A filter that cannot be changed (library use, tests).
    pub fn fixed() -> LogFilter {
        LogFilter::new(true, |_| Ok(()))
    }

    fn apply(&self, directives: &str) {
        if self.env_override {
            tracing::info!(
                filter = directives,
                "RUST_LOG is set and overrides log.filter"
            );
            return;
        }
        // Validation parsed the directives already; a failure here is a bug
        // worth a log line, not a stop.
        if let Err(error) = (self.set)(directives) {
            tracing::error!(filter = directives, %error, "setting log.filter failed");
        }
    }
}

/// What `drive` and reloads share.
struct Context<'a> {
    path: &'a Path,
    options: RunOptions,
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    log: &'a LogFilter,
    metadata: Option<Arc<MetadataCache>>,
}

/// Runs the collector with the config at `path`; returns its counters.
///
/// # Errors
/// See [`AppError`]: each names the step that failed.
pub fn run(path: &Path, options: RunOptions, log: &LogFilter) -> Result<Stats, AppError> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(AppError::Signals)?;
    }
    // Registered before anything slow: SIGHUP's default action is to exit.
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(AppError::Signals)?;
    let config = Config::load(path)?;
    // With RUST_LOG set, say so only when the file asks for something else.
    if !log.env_override || config.log != crate::config::LogConfig::default() {
        log.apply(&config.log.filter);
    }
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(ms(config.metrics.liveness_timeout_ms)));
    // Stopped (and joined) when dropped, after the pipeline's final save.
    let _server = start_server(&config.metrics, &metrics, &health);
    let (metadata, _watch) = match start_metadata(&config, &metrics)? {
        Some((cache, watch)) => (Some(cache), Some(watch)),
        None => (None, None),
    };
    let context = Context {
        path,
        options,
        stop,
        reload,
        metrics,
        health,
        log,
        metadata,
    };
    match config.sink.clone() {
        SinkConfig::Kafka(kafka) => {
            let sink = KafkaSink::new(&kafka)?;
            drive(config, sink, &context)
        }
        SinkConfig::Stdout => drive(config, StdoutSink::new(), &context),
        SinkConfig::File { path: file } => {
            let sink = FileSink::open(&file).map_err(AppError::FileSink)?;
            drive(config, sink, &context)
        }
    }
}

/// Serves the endpoint unless disabled. A port that cannot be bound is
/// logged, not fatal: shipping logs matters more than the endpoint, and a
/// liveness probe on the port makes the failure visible anyway.
fn start_server(
    config: &MetricsConfig,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
) -> Option<Server> {
    if !config.enabled {
        return None;
    }
    match Server::start(config.listen, Arc::clone(metrics), Arc::clone(health)) {
        Ok(server) => {
            tracing::info!(address = %server.local_addr(), "serving /metrics, /healthz and /readyz");
            Some(server)
        }
        Err(error) => {
            tracing::error!(%error, "running without /metrics, /healthz and /readyz");
            None
        }
    }
}

/// Starts the pods and namespaces watch when `kubernetes.enabled`.
fn start_metadata(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<Option<(Arc<MetadataCache>, MetadataWatch)>, AppError> {
    let kubernetes = &config.kubernetes;
    if !kubernetes.enabled {
        return Ok(None);
    }
    let node = node_name(config);
    if node.is_empty() {
        return Err(AppError::NoNodeName);
    }
    let cache = Arc::new(MetadataCache::new(Inclusion {
        labels: kubernetes.include_labels,
        annotations: kubernetes.include_annotations.clone(),
    }));
    let watch = MetadataWatch::start(
        WatchSettings {
            node,
            kubeconfig: kubernetes.kubeconfig.clone(),
            deleted_pod_retention_ms: kubernetes.deleted_pod_retention_ms,
        },
        Arc::clone(&cache),
        Arc::clone(metrics),
    )?;
    Ok(Some((cache, watch)))
}

/// Waits, at most `timeout` and not past a stop signal, for the first
/// complete lists of pods and namespaces, so files present at start are
/// read with their metadata. Reading starts anyway when the wait ends.
fn wait_for_metadata(cache: &MetadataCache, timeout: Duration, stop: &AtomicBool) {
    let started = Instant::now();
    while !cache.read().synced() {
        if started.elapsed() >= timeout || stop.load(Ordering::Relaxed) {
            tracing::warn!(
                waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "kubernetes metadata not listed yet; reading anyway, with path metadata for pods not known"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::info!(
        waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "kubernetes metadata listed; reading"
    );
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The pipeline settings of a config.
fn settings(config: &Config) -> Result<Settings, ConfigError> {
    let (topic, key) = match &config.sink {
        SinkConfig::Kafka(kafka) => (kafka.topic.clone(), kafka.key),
        SinkConfig::Stdout | SinkConfig::File { .. } => (String::new(), KeyChoice::None),
    };
    Ok(Settings {
        node_name: node_name(config),
        format: config.parse.format.fixed(),
        max_event_bytes: config.parse.max_event_bytes,
        multiline: config
            .parse
            .multiline
            .compile(config.parse.max_event_bytes)?,
        topic,
        key,
        max_in_flight_events: config.delivery.max_in_flight_events,
        retry_base: ms(config.delivery.retry_base_ms),
        retry_cap: ms(config.delivery.retry_cap_ms),
        checkpoint_interval: ms(config.checkpoint.interval_ms),
        checkpoint_path: config.checkpoint.path.clone(),
        shutdown_timeout: ms(config.delivery.shutdown_timeout_ms),
    })
}

fn drive<S: Sink>(config: Config, sink: S, context: &Context<'_>) -> Result<Stats, AppError> {
    context.health.set_sink(sink.status());
    let checkpoint_path = &config.checkpoint.path;
    let checkpoints = if context.options.reset_checkpoints {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Checkpoints::reset(checkpoint_path, now)?
    } else {
        Checkpoints::load(checkpoint_path)?
    };
    if let Some(dir) = checkpoint_path.parent() {
        // A missing state directory would only fail at the first save.
        std::fs::create_dir_all(dir).map_err(|source| {
            AppError::Checkpoint(CheckpointError::Write {
                path: checkpoint_path.clone(),
                source,
            })
        })?;
    }
    let events = MetricsTailEvents::new(Arc::clone(&context.metrics));
    let tailer = Tailer::new(config.tail.clone(), checkpoints, events)?;
    context.health.set_checkpoints_loaded();
    let mode = if context.options.batch {
        Mode::Batch
    } else {
        Mode::Follow
    };
    tracing::info!(
        include = ?config.tail.include,
        checkpoint = %checkpoint_path.display(),
        ?mode,
        "collector starting"
    );
    let mut pipeline = Pipeline::new(tailer, sink, settings(&config)?)
        .with_metrics(Arc::clone(&context.metrics))
        .with_health(Arc::clone(&context.health));
    if let Some(cache) = &context.metadata {
        wait_for_metadata(
            cache,
            ms(config.kubernetes.initial_sync_timeout_ms),
            &context.stop,
        );
        pipeline =
            pipeline.with_metadata(Arc::clone(cache), ms(config.kubernetes.unknown_pod_wait_ms));
    }
    let mut running = config;
    pipeline.run_with(mode, &context.stop, &context.reload, |pipeline| {
        reload(&mut running, pipeline, context);
    })?;
    let stats = pipeline.stats().clone();
    tracing::info!(
        lines_read = stats.lines_read,
        events_sent = stats.events_sent,
        events_acked = stats.events_acked,
        "collector stopped"
    );
    Ok(stats)
}

/// SIGHUP: reads the file again and applies what can change at runtime; an
/// unreadable or invalid file leaves everything as it was.
fn reload<S: Sink, E: TailEvents>(
    running: &mut Config,
    pipeline: &mut Pipeline<S, E>,
    context: &Context<'_>,
) {
    let path = context.path;
    let failed = |error: &dyn std::error::Error| {
        ConfigReloadFailed { path, error }.emit(&context.metrics);
    };
    let plan = match Config::load(path).and_then(|file| ReloadPlan::new(running, &file)) {
        Ok(plan) => plan,
        Err(error) => return failed(&error),
    };
    let settings = match settings(&plan.effective) {
        Ok(settings) => settings,
        Err(error) => return failed(&error),
    };
    if let Err(error) = pipeline.reconfigure(settings, &plan.effective.tail) {
        return failed(&error);
    }
    context
        .health
        .set_liveness_timeout(ms(plan.effective.metrics.liveness_timeout_ms));
    if plan.effective.log != running.log {
        context.log.apply(&plan.effective.log.filter);
    }
    ConfigReloaded {
        path,
        applied: &plan.applied,
        needs_restart: &plan.needs_restart,
    }
    .emit(&context.metrics);
    *running = plan.effective;
}

fn node_name(config: &Config) -> String {
    if let Some(name) = &config.node_name {
        return name.clone();
    }
    if let Ok(name) = std::env::var("NODE_NAME")
        && !name.is_empty()
    {
        return name;
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}
