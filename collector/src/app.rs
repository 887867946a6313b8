//! `kelp-collector run`: builds the pipeline from a config and drives it
//! until SIGTERM/SIGINT (or, in batch mode, until everything is delivered).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::checkpoint::{CheckpointError, Checkpoints};
use crate::config::{Config, ConfigError, SinkConfig};
use crate::pipeline::{Mode, Pipeline, PipelineError, Settings, Stats};
use crate::sink::{FileSink, KafkaSink, KafkaSinkError, KeyChoice, Sink, StdoutSink};
use crate::tail::{CountingEvents, TailError, Tailer};

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
}

/// Options of `run` that are not in the config file.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Read what is there, deliver it, checkpoint, exit.
    pub batch: bool,
    /// Move an unreadable checkpoint file aside and start from scratch.
    pub reset_checkpoints: bool,
}

/// Runs the collector with the config at `path`; returns its counters.
///
/// # Errors
/// See [`AppError`]: each names the step that failed.
pub fn run(path: &Path, options: RunOptions) -> Result<Stats, AppError> {
    let config = Config::load(path)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(AppError::Signals)?;
    }
    match &config.sink {
        SinkConfig::Kafka(kafka) => {
            let sink = KafkaSink::new(kafka)?;
            drive(&config, sink, &kafka.topic, kafka.key, options, &stop)
        }
        SinkConfig::Stdout => drive(
            &config,
            StdoutSink::new(),
            "",
            KeyChoice::None,
            options,
            &stop,
        ),
        SinkConfig::File { path } => {
            let sink = FileSink::open(path).map_err(AppError::FileSink)?;
            drive(&config, sink, "", KeyChoice::None, options, &stop)
        }
    }
}

fn drive<S: Sink>(
    config: &Config,
    sink: S,
    topic: &str,
    key: KeyChoice,
    options: RunOptions,
    stop: &AtomicBool,
) -> Result<Stats, AppError> {
    let checkpoint_path = &config.checkpoint.path;
    let checkpoints = if options.reset_checkpoints {
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
    let tailer = Tailer::new(config.tail.clone(), checkpoints, CountingEvents::new())?;
    let settings = Settings {
        node_name: node_name(config),
        format: config.parse.format.fixed(),
        max_event_bytes: config.parse.max_event_bytes,
        multiline: config
            .parse
            .multiline
            .compile(config.parse.max_event_bytes)?,
        topic: topic.to_owned(),
        key,
        max_in_flight_events: config.delivery.max_in_flight_events,
        retry_base: Duration::from_millis(config.delivery.retry_base_ms),
        retry_cap: Duration::from_millis(config.delivery.retry_cap_ms),
        checkpoint_interval: Duration::from_millis(config.checkpoint.interval_ms),
        checkpoint_path: checkpoint_path.clone(),
        shutdown_timeout: Duration::from_millis(config.delivery.shutdown_timeout_ms),
    };
    let mode = if options.batch {
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
    let mut pipeline = Pipeline::new(tailer, sink, settings);
    pipeline.run(mode, stop)?;
    let stats = pipeline.stats().clone();
    tracing::info!(
        lines_read = stats.lines_read,
        events_sent = stats.events_sent,
        events_acked = stats.events_acked,
        "collector stopped"
    );
    Ok(stats)
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
