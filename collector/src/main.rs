//! `kelp-collector`: the per-node agent that tails container logs and ships them to Kafka.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kelp_collector::app::LogFilter;
use kelp_collector::fingerprint::{FINGERPRINT_BYTES, fingerprint};
use kelp_collector::parse::event::{EventBuilder, Source};
use kelp_collector::parse::multiline::{self, Multiline, Rule, RuleName};
use kelp_collector::parse::path::parse_path;
use kelp_collector::parse::reassemble::{Assembled, Reassembler};
use kelp_collector::parse::{DEFAULT_MAX_EVENT_BYTES, Format, MalformedReason, detect, parse_line};
use tracing::{debug, info, warn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

/// Tails the kubelet's container logs (CRI and docker json-file), joins
/// partial and multiline events, adds pod metadata and ships each event to
/// Kafka. A file's checkpoint moves only after Kafka has acknowledged the
/// lines before it.
#[derive(Debug, Parser)]
#[command(name = "kelp-collector", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tails container logs and ships every event to the configured sink.
    ///
    /// Reads the files the config's `tail.include` globs match (by default
    /// the kubelet's /var/log/pods), parses and joins their lines, and sends
    /// each event to Kafka (or, for debugging, stdout or an NDJSON file). A
    /// file's checkpoint moves only over lines whose events Kafka has
    /// acknowledged, and is written durably every `checkpoint.interval_ms`.
    /// While Kafka is unreachable nothing is dropped: reading pauses and
    /// resumes where it stopped.
    ///
    /// SIGTERM or SIGINT stops reading, waits up to
    /// `delivery.shutdown_timeout_ms` for acknowledgements, saves the
    /// checkpoints and exits 0.
    ///
    /// SIGHUP reads the config again without losing state: the tail,
    /// multiline, delivery, checkpoint interval and log settings apply at
    /// once; a change that needs a restart (e.g. the sink) is logged; an
    /// invalid file is logged and the running config kept.
    ///
    /// `metrics.listen` (default 0.0.0.0:9101) serves /metrics
    /// (Prometheus), /healthz (the pipeline loop runs) and /readyz (Kafka
    /// reachable, checkpoints loaded).
    ///
    /// Examples:
    ///
    ///   kelp-collector run --config /etc/kelp/collector.yaml
    ///
    ///   kelp-collector run --config backfill.yaml --batch
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Parses container log files and prints their events as JSON records.
    ///
    /// Reads each FILE to its end through the collector's own parsing: the
    /// line format (CRI or docker json-file), the joining of lines the
    /// runtime split, the multiline rule, and the Kubernetes metadata in the
    /// file's path. Prints each event to stdout as the JSON record the
    /// collector would send to Kafka, one per line. Nothing is sent and no
    /// checkpoint is written, so it is safe to run on a live node.
    ///
    /// Lines that do not parse are counted, not printed. A summary per file
    /// goes to stderr, e.g. `0.log: 120 events, 2 malformed lines (timestamp:
    /// 2)`; set RUST_LOG=debug to see the offset and reason of each one.
    ///
    /// At the end of a file, a last line without a newline is parsed as it
    /// is, and a split line or multiline event still open is printed (the
    /// running collector would wait for more).
    ///
    /// Examples:
    ///
    ///   kelp-collector parse /var/log/pods/shop_web-1_<uid>/app/0.log | jq .message
    ///
    ///   kelp-collector parse --multiline java --max-event-bytes 65536 0.log
    ///
    ///   kelp-collector parse --multiline-start '^\d{4}-' --multiline-continue '^\s' 0.log
    #[command(verbatim_doc_comment)]
    Parse(ParseArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The config file, YAML or (with a .toml extension) TOML. See
    /// collector/config.example.yaml for every field.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,

    /// Read everything present, deliver it, save checkpoints and exit
    /// (backfills, tests). Split or multiline events still open at the end
    /// of a file are sent as they are.
    #[arg(long)]
    batch: bool,

    /// Move an unreadable checkpoint file aside (`<name>.reset-<ms>`) and
    /// start every file from the beginning. Re-sent events keep their ids, so
    /// the shipper overwrites them.
    #[arg(long)]
    reset_checkpoints: bool,
}

#[derive(Debug, Args)]
struct ParseArgs {
    /// Line format; `auto` takes each file's format from its first
    /// recognisable line (a JSON object is docker's).
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,

    /// Multiline rule: none, java, go or python.
    #[arg(long, value_name = "RULE", default_value = "none")]
    multiline: RuleName,

    /// Custom multiline rule: regex matching an event's first line.
    /// Overrides --multiline; needs --multiline-continue.
    #[arg(long, value_name = "REGEX", requires = "multiline_continue")]
    multiline_start: Option<String>,

    /// Custom multiline rule: regex matching the lines that continue an
    /// event; checked before --multiline-start while an event is open.
    #[arg(long, value_name = "REGEX", requires = "multiline_start")]
    multiline_continue: Option<String>,

    /// Content past this many bytes of an event is dropped and the event
    /// flagged `truncated`.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_EVENT_BYTES)]
    max_event_bytes: usize,

    /// Lines past this many in a multiline event are dropped and the event
    /// flagged `truncated`.
    #[arg(long, value_name = "N", default_value_t = multiline::DEFAULT_MAX_LINES)]
    max_lines: usize,

    /// Host name for `host.name`; defaults to this machine's.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,

    /// Log files to parse, e.g. /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Auto,
    Cri,
    Docker,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let log = init_tracing();
    match cli.command {
        Command::Parse(args) => quiet_broken_pipe(parse_files(&args)),
        Command::Run(args) => {
            let options = kelp_collector::app::RunOptions {
                batch: args.batch,
                reset_checkpoints: args.reset_checkpoints,
            };
            kelp_collector::app::run(&args.config, options, &log).with_context(|| {
                format!("kelp-collector run --config {}", args.config.display())
            })?;
            Ok(())
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` if set, else `info` until `run`
/// applies the config's `log.filter` (and again on each SIGHUP).
fn init_tracing() -> LogFilter {
    let from_env = EnvFilter::try_from_default_env().ok();
    let env_override = from_env.is_some();
    let (filter, handle) = reload::Layer::new(from_env.unwrap_or_else(|| EnvFilter::new("info")));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(io::stderr)
                .with_target(false)
                .with_ansi(io::stderr().is_terminal()),
        )
        .init();
    LogFilter::new(env_override, move |directives| {
        let filter = EnvFilter::builder()
            .parse(directives)
            .map_err(|error| error.to_string())?;
        handle.reload(filter).map_err(|error| error.to_string())
    })
}

/// A closed stdout (e.g. `| head`) ends the command quietly.
fn quiet_broken_pipe(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(error)
            if error
                .downcast_ref::<io::Error>()
                .is_some_and(|error| error.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn parse_files(args: &ParseArgs) -> anyhow::Result<()> {
    let rule = match (&args.multiline_start, &args.multiline_continue) {
        (Some(start), Some(continuation)) => Rule::custom(start, continuation)?,
        _ => Rule::from(args.multiline),
    };
    let settings = Settings {
        format: args.format,
        rule,
        max_event_bytes: args.max_event_bytes,
        max_lines: args.max_lines,
        host: match &args.host {
            Some(host) => host.clone(),
            None => local_host_name(),
        },
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    for path in &args.files {
        let summary = parse_file(path, &settings, &mut out)?;
        info!("{}", summary.describe(path));
    }
    out.flush()?;
    Ok(())
}

/// What applies to every file of one run.
#[derive(Debug)]
struct Settings {
    format: FormatArg,
    rule: Rule,
    max_event_bytes: usize,
    max_lines: usize,
    host: String,
}

/// Per-file counts for the summary line.
#[derive(Debug, Default)]
struct Summary {
    events: u64,
    malformed: BTreeMap<MalformedReason, u64>,
    unterminated: bool,
}

impl Summary {
    fn describe(&self, path: &Path) -> String {
        let malformed: u64 = self.malformed.values().sum();
        let mut text = format!(
            "{}: {} events, {} malformed lines",
            path.display(),
            self.events,
            malformed
        );
        if malformed > 0 {
            let reasons: Vec<String> = self
                .malformed
                .iter()
                .map(|(reason, count)| format!("{}: {count}", reason.as_str()))
                .collect();
            text.push_str(&format!(" ({})", reasons.join(", ")));
        }
        if self.unterminated {
            text.push_str("; the last line has no newline");
        }
        text
    }
}

/// The per-file pipeline: format → reassembly → multiline → record.
struct Pipeline<'a, W> {
    path: &'a Path,
    format: Option<Format>,
    source: Source,
    builder: Option<EventBuilder>,
    reassembler: Reassembler,
    multiline: Multiline,
    emitted: Vec<Assembled>,
    json: Vec<u8>,
    out: &'a mut W,
    summary: Summary,
}

impl<W: Write> Pipeline<'_, W> {
    /// Sets the format once it is known; builds records from then on.
    fn set_format(&mut self, format: Format) {
        self.format = Some(format);
        self.source.format = format;
        self.builder = Some(EventBuilder::new(&self.source));
    }

    /// Takes the line at `offset`, with its `\n` unless it is the file's last.
    fn line(&mut self, offset: u64, line: &[u8]) -> io::Result<()> {
        let format = match self.format {
            Some(format) => format,
            None => match detect(line) {
                Some(detected) => {
                    self.set_format(detected);
                    detected
                }
                None if line.trim_ascii().is_empty() => {
                    self.malformed(offset, MalformedReason::Empty);
                    return Ok(());
                }
                None => {
                    self.malformed(offset, MalformedReason::UnknownFormat);
                    return Ok(());
                }
            },
        };
        match parse_line(format, line) {
            Ok(parsed) => match self.reassembler.push(offset, parsed) {
                Some(assembled) => self.push(assembled),
                None => Ok(()),
            },
            Err(error) => {
                self.malformed(offset, error.reason);
                Ok(())
            }
        }
    }

    fn malformed(&mut self, offset: u64, reason: MalformedReason) {
        debug!(
            "{}: malformed line at offset {offset}: {reason}",
            self.path.display()
        );
        *self.summary.malformed.entry(reason).or_default() += 1;
    }

    fn push(&mut self, assembled: Assembled) -> io::Result<()> {
        // The parse command has no clock: time stands still, and the end of
        // the file flushes.
        self.multiline.push(0, assembled, &mut self.emitted);
        self.write_emitted()
    }

    fn finish(&mut self) -> io::Result<()> {
        let mut rest = Vec::new();
        self.reassembler.flush(&mut rest);
        for assembled in rest {
            self.multiline.push(0, assembled, &mut self.emitted);
        }
        self.multiline.flush(&mut self.emitted);
        self.write_emitted()
    }

    fn write_emitted(&mut self) -> io::Result<()> {
        let Some(builder) = self.builder.as_mut() else {
            return Ok(());
        };
        for assembled in self.emitted.drain(..) {
            builder.build(assembled).write_json(&mut self.json);
            self.json.push(b'\n');
            self.out.write_all(&self.json)?;
            self.summary.events += 1;
        }
        Ok(())
    }
}

fn parse_file(path: &Path, settings: &Settings, out: &mut impl Write) -> anyhow::Result<Summary> {
    let reading = || format!("reading {} failed", path.display());
    let mut file = File::open(path).with_context(reading)?;
    let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
    (&mut file)
        .take(FINGERPRINT_BYTES as u64)
        .read_to_end(&mut head)
        .with_context(reading)?;
    let file_identity = fingerprint(&head).unwrap_or_else(|| {
        warn!(
            "{}: too short to fingerprint; event ids use file 0",
            path.display()
        );
        0
    });
    file.seek(SeekFrom::Start(0)).with_context(reading)?;
    let reader = BufReader::with_capacity(1 << 18, file);
    parse_reader(path, file_identity, reader, settings, out)
}

/// Runs the pipeline over one file's lines and writes its records to `out`.
fn parse_reader(
    path: &Path,
    file_identity: u64,
    mut reader: impl BufRead,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<Summary> {
    let path_text = path.to_string_lossy().into_owned();
    let mut config = multiline::Config::new(settings.rule.clone());
    config.max_event_bytes = settings.max_event_bytes;
    config.max_lines = settings.max_lines;
    let mut pipeline = Pipeline {
        path,
        format: None,
        source: Source {
            meta: parse_path(&path_text),
            path: path_text,
            file_identity,
            host: settings.host.clone(),
            format: Format::Cri,
        },
        builder: None,
        reassembler: Reassembler::new(settings.max_event_bytes),
        multiline: Multiline::new(config),
        emitted: Vec::new(),
        json: Vec::with_capacity(1024),
        out,
        summary: Summary::default(),
    };
    match settings.format {
        FormatArg::Auto => {}
        FormatArg::Cri => pipeline.set_format(Format::Cri),
        FormatArg::Docker => pipeline.set_format(Format::Docker),
    }

    // Lines are parsed in the reader's buffer; only a line that straddles
    // two reads is copied, into `carry`.
    let mut carry = Vec::new();
    let mut offset = 0u64;
    loop {
        let buf = reader
            .fill_buf()
            .with_context(|| format!("reading {} failed", path.display()))?;
        let read = buf.len();
        if read == 0 {
            break;
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', buf).map(|at| at + 1) {
            let line = &buf[start..end];
            let length = if carry.is_empty() {
                pipeline.line(offset, line)?;
                line.len()
            } else {
                carry.extend_from_slice(line);
                pipeline.line(offset, &carry)?;
                let length = carry.len();
                carry.clear();
                length
            };
            offset += length as u64;
            start = end;
        }
        carry.extend_from_slice(&buf[start..]);
        reader.consume(read);
    }
    if !carry.is_empty() {
        pipeline.summary.unterminated = true;
        pipeline.line(offset, &carry)?;
    }
    pipeline.finish()?;
    Ok(pipeline.summary)
}

/// This machine's host name, or empty if the kernel does not tell.
fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use clap::CommandFactory;
    use kelp_record::Event;

    use super::*;

    const CRI: &str = "\
2026-11-27T20:17:29.12Z stdout F hello
2026-11-27T20:17:29.13Z stderr F 2026-11-27 ERROR failed
2026-11-27T20:17:29.14Z stderr F java.lang.IllegalStateException: boom
not a log line
2026-11-27T21:17:29.150000000+01:00 stdout P part one,
2026-11-27T20:17:29.15Z stderr F \tat a.B.c(B.java:1)
2026-11-27T20:17:29.16Z stdout F  part two

2026-11-27T20:17:29.17Z stdout P cut off";

    fn settings(format: FormatArg, rule: RuleName) -> Settings {
        Settings {
            format,
            rule: Rule::from(rule),
            max_event_bytes: 1024,
            max_lines: 10,
            host: "node-1".to_owned(),
        }
    }

    fn run(input: &str, capacity: usize, settings: &Settings) -> (Vec<Event>, Summary) {
        let path = Path::new("/var/log/pods/shop_web-1_uid-1/app/0.log");
        let reader = BufReader::with_capacity(capacity, Cursor::new(input.as_bytes()));
        let mut out = Vec::new();
        let summary = parse_reader(path, 7, reader, settings, &mut out).unwrap();
        let events = out
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| Event::from_json(line).unwrap())
            .collect();
        (events, summary)
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parse_prints_each_event_once_whatever_the_read_size() {
        let settings = settings(FormatArg::Auto, RuleName::Java);
        let (want, summary) = run(CRI, 1 << 16, &settings);
        let at = |text: &str| CRI.find(text).unwrap() as u64;
        let got: Vec<(u64, &str, &str)> = want
            .iter()
            .map(|event| {
                (
                    event.log.offset,
                    event.stream.as_str(),
                    event.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, "stdout", "hello"),
                (at("2026-11-27T21:17:29.15"), "stdout", "part one, part two"),
                (
                    at("2026-11-27T20:17:29.13"),
                    "stderr",
                    "2026-11-27 ERROR failed\njava.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)"
                ),
                (at("2026-11-27T20:17:29.17"), "stdout", "cut off"),
            ]
        );
        for event in &want {
            // Offsets point at the first line of each event.
            let line = &CRI[event.log.offset as usize..];
            assert!(line.starts_with("2026-11-27T2"), "{line}");
            assert_eq!(event.container.runtime, "cri");
            assert_eq!(event.kubernetes.pod.name, "web-1");
            assert_eq!(event.host.name, "node-1");
            assert_eq!(event.event.id.file, 7);
        }
        assert_eq!(
            summary.describe(Path::new("0.log")),
            "0.log: 4 events, 2 malformed lines (empty: 1, timestamp: 1); the last line has no newline"
        );
        for capacity in [1, 2, 7, 40, 100] {
            assert_eq!(run(CRI, capacity, &settings).0, want, "capacity {capacity}");
        }
    }

    #[test]
    fn auto_format_follows_the_first_recognisable_line() {
        let docker = "\n{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-27T20:17:29Z\"}\n\
            2026-11-27T20:17:29.12Z stdout F cri line\n";
        let (events, summary) = run(docker, 64, &settings(FormatArg::Auto, RuleName::None));
        assert_eq!(events.len(), 1);
        assert_eq!(
            (
                events[0].message.as_str(),
                events[0].container.runtime.as_str()
            ),
            ("a", "docker")
        );
        assert_eq!(
            summary.describe(Path::new("x")),
            "x: 1 events, 2 malformed lines (empty: 1, json: 1)"
        );
        let (events, _) = run(docker, 64, &settings(FormatArg::Cri, RuleName::None));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].message, "cri line");
    }
}
