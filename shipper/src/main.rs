//! `kelp-shipper`: a Kafka consumer group that bulk-indexes events into
//! Elasticsearch or OpenSearch.
//!
//! This binary is the rim around the pure core in the library: it owns the
//! clock, the consumer ([`pipeline`]), the HTTP client ([`search`]), the
//! operations endpoint ([`server`]) and the typed internal events
//! ([`internal_events`]).

mod internal_events;
mod pipeline;
mod producer;
mod search;
mod server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use kelp_shipper::backoff::SplitMix64;
use kelp_shipper::config::Config;
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer};
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Readiness, Settings, Shared, ShipperConsumer, ShipperContext};
use crate::producer::DeadLetterProducer;
use crate::search::SearchClient;

/// Consumes kelp event records from Kafka and bulk-indexes them into
/// Elasticsearch (7, 8, 9) or OpenSearch (2, 3). A Kafka offset moves only
/// after the search engine has the documents before it; the document `_id`
/// is the record's event id, so a retry overwrites instead of duplicating.
#[derive(Debug, Parser)]
#[command(name = "kelp-shipper", version, about, long_about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "KELP_LOG_FORMAT", global = true)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `info,kelp_shipper=debug,librdkafka=warn`.
    #[arg(long, default_value = "info", env = "KELP_LOG", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the shipper until SIGTERM or SIGINT. On the first signal it stops
    /// fetching, finishes in-flight bulk requests (up to
    /// `bulk.revoke_drain_timeout_ms`), commits the final offsets and exits 0;
    /// a second signal exits at once. It exits 1 when the search engine
    /// refuses its requests (401, 403, other 4xx for the whole request),
    /// leaving the offsets where they are.
    Run {
        /// The configuration file, YAML (`.yaml`, `.yml`) or TOML (`.toml`).
        #[arg(long, short, env = "KELP_SHIPPER_CONFIG")]
        config: PathBuf,
    },
    /// Parse and validate a configuration file, load the secrets and TLS
    /// files it names, and print the effective configuration (defaults
    /// filled in, secret-looking Kafka properties redacted) as JSON.
    CheckConfig {
        /// The configuration file, YAML (`.yaml`, `.yml`) or TOML (`.toml`).
        #[arg(long, short, env = "KELP_SHIPPER_CONFIG")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_logging(cli.log_format, &cli.log) {
        // Logging is not up: stdout is the only channel left that is not stderr.
        println!("kelp-shipper: {error:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Run { config } => run(&config),
        Command::CheckConfig { config } => check_config(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("parsing the log filter {filter:?} failed"))?;
    // Colours only for a person at a terminal, not in a collected log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("initialising logging failed: {e}"))
}

fn load_config(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {} failed", path.display()))?;
    Config::from_file_text(path, &text)
        .with_context(|| format!("loading {} failed", path.display()))
}

fn check_config(path: &Path) -> anyhow::Result<()> {
    let config = load_config(path)?;
    // Building the client loads the secrets and the TLS files.
    SearchClient::new(&config.elasticsearch, config.bulk.gzip)?;
    let text = serde_json::to_string_pretty(&config.redacted())
        .context("printing the effective config failed")?;
    println!("{text}");
    Ok(())
}

fn settings(config: &Config) -> anyhow::Result<Settings> {
    let bulk = &config.bulk;
    let slots = bulk.max_in_flight.saturating_add(1);
    Ok(Settings {
        template: config.index_template()?,
        limits: bulk.limits(),
        bulk: bulk.clone(),
        max_in_flight: bulk.max_in_flight,
        backoff: bulk.backoff()?,
        drain_timeout: Duration::from_millis(bulk.revoke_drain_timeout_ms),
        dead_letter_topic: config.dead_letter.topic.clone(),
        max_buffered_bytes: bulk.max_bytes.saturating_mul(slots),
        max_buffered_events: bulk.max_events.saturating_mul(slots),
    })
}

fn run(path: &Path) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kelp-shipper")
        .build()
        .context("starting the async runtime failed")?;
    let result = runtime.block_on(run_async(config));
    // Bulk tasks still retrying after the drain bound end here; their
    // offsets were never stored.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run_async(config: Config) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    let readiness = Arc::new(Readiness::default());

    let listener = tokio::net::TcpListener::bind(config.metrics.listen_address)
        .await
        .with_context(|| {
            format!(
                "listening on metrics.listen_address {} failed",
                config.metrics.listen_address
            )
        })?;
    tracing::info!(address = %config.metrics.listen_address, "serving /metrics, /healthz and /readyz");
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(server::serve(
        listener,
        Arc::clone(&readiness),
        server_stop.clone(),
    ));
    let result = ship(config, Arc::clone(&readiness), cancel).await;
    server_stop.cancel();
    let _ = server.await;
    result
}

async fn ship(
    config: Config,
    readiness: Arc<Readiness>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let settings = settings(&config)?;
    let client = Arc::new(SearchClient::new(&config.elasticsearch, config.bulk.gzip)?);

    let template = if config.template.install {
        Some(config.template_settings()?)
    } else {
        None
    };
    let mut rng = SplitMix64::new(u64::from(std::process::id()));
    let setup = search::setup(
        &client,
        template.as_ref(),
        settings.backoff,
        &mut rng,
        &cancel,
    )
    .await;
    match setup {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::info!("stopped before the search engine was ready");
            return Ok(());
        }
        Err(error) => return Err(error).context("setting up the search engine failed"),
    }
    readiness.engine.store(true, Ordering::Relaxed);
    readiness.template.store(true, Ordering::Relaxed);

    let mut producer_config = ClientConfig::new();
    for (key, value) in config.kafka.producer_properties() {
        producer_config.set(key, value);
    }
    let producer = Arc::new(
        DeadLetterProducer::new(&producer_config)
            .context("creating the dead-letter producer failed")?,
    );

    let shared = Shared::new(
        settings,
        Arc::clone(&client),
        Arc::clone(&producer),
        Arc::clone(&readiness),
        cancel.clone(),
    );
    let mut consumer_config = ClientConfig::new();
    for (key, value) in config.kafka.consumer_properties() {
        consumer_config.set(key, value);
    }
    let consumer: Arc<ShipperConsumer> = Arc::new(
        consumer_config
            .create_with_context(ShipperContext::new(Arc::clone(&shared)))
            .context("creating the kafka consumer failed")?,
    );
    shared.set_consumer(&consumer);
    let topics: Vec<&str> = match &config.kafka.topic_regex {
        Some(regex) => vec![regex.as_str()],
        None => config.kafka.topics.iter().map(String::as_str).collect(),
    };
    consumer
        .subscribe(&topics)
        .context("subscribing to the topics failed")?;
    readiness.subscribed.store(true, Ordering::Relaxed);
    tracing::info!(?topics, group = %config.kafka.group_id, "subscribed");

    let dispatched = pipeline::dispatch(Arc::clone(&shared), Arc::clone(&consumer), cancel).await;

    // Stop: the dispatcher no longer fetches. Finish what is in flight.
    let drained = shared.drain().await;
    if drained {
        tracing::info!("in-flight bulks finished");
    } else if shared.fatal().is_none() {
        tracing::warn!(
            "in-flight bulks did not finish within bulk.revoke_drain_timeout_ms: their records will be sent again"
        );
    }
    // Every completion already stored its offsets; commit them now rather
    // than at the next auto-commit tick.
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(%error, "final commit: nothing to commit or it failed");
    }
    // Closing runs a last revoke and leaves the group; it blocks, so not on a worker.
    let closed = tokio::task::spawn_blocking(move || {
        drop(consumer);
        let _ = producer.flush(Duration::from_secs(5));
    })
    .await;
    if closed.is_err() {
        tracing::warn!("closing the kafka clients failed");
    }
    dispatched.context("consuming from kafka failed")?;
    if let Some(reason) = shared.fatal() {
        anyhow::bail!("shipping stopped: {reason}");
    }
    tracing::info!("stopped");
    Ok(())
}

fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("installing signal handlers failed: only SIGKILL stops the shipper");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        cancel.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting now; unfinished records will be sent again");
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn settings_derive_bounds_from_the_bulk_config() {
        let config = Config::from_yaml_str(
            "kafka:\n  bootstrap_servers: [k:9092]\n  topics: [t]\nelasticsearch:\n  urls: [http://e:9200]\nbulk:\n  max_bytes: 1048576\n  max_events: 100\n  max_in_flight: 3\n",
        )
        .unwrap();
        let s = settings(&config).unwrap();
        assert_eq!(s.max_buffered_bytes, 4 * 1_048_576);
        assert_eq!(s.max_buffered_events, 400);
        assert_eq!(s.max_in_flight, 3);
        assert_eq!(s.drain_timeout, Duration::from_millis(22_500));
    }
}
