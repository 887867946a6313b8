//! Multiline rules: join the lines of one logical event, such as a stack
//! trace, after partial-line reassembly, per stream of one file.
//!
//! Each rule classifies a line against the state of the event pending on
//! its stream: the line continues that event, is held back until the next
//! line shows whether the event goes on (blank lines inside a Go panic or
//! between chained Python tracebacks), or ends it and starts anew. Any line
//! that continues nothing is emitted as it is, so ordinary lines between
//! stack traces are never swallowed.
//!
//! Time is a parameter (`now_ms`, any monotonic milliseconds): the caller
//! calls [`Multiline::flush_expired`] so a pending event is emitted after
//! `flush_timeout_ms` of silence on its stream.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use kelp_record::{Flag, Stream};
use memchr::memmem;
use regex::bytes::Regex;

use super::limit::{append_bounded, truncate_bounded};
use super::reassemble::{Assembled, stream_index};

/// Default silence after which a pending event is emitted. Stack traces are
/// written in one burst; this only bounds how long an idle stream's last
/// line waits.
pub const DEFAULT_FLUSH_TIMEOUT_MS: u64 = 2000;

/// Default bound on lines per event (Filebeat's `max_lines` default).
pub const DEFAULT_MAX_LINES: usize = 500;

/// At most this many lines are held back waiting for the next line.
const MAX_HELD: usize = 4;

/// The built-in rules, by the name a user or a pod annotation gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleName {
    /// No joining: every line is its own event.
    None,
    /// Java (and JVM/.NET) stack traces: `at` frames, `Caused by:`,
    /// `Suppressed:`, `... N more`, and the message line before an exception.
    Java,
    /// Go panics and fatal errors with their goroutine dumps.
    Go,
    /// Python tracebacks, chained ones included, and the message line before them.
    Python,
}

impl RuleName {
    /// Every built-in rule.
    pub const ALL: [RuleName; 4] = [
        RuleName::None,
        RuleName::Java,
        RuleName::Go,
        RuleName::Python,
    ];

    /// The rule's name: `none`, `java`, `go` or `python`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleName::None => "none",
            RuleName::Java => "java",
            RuleName::Go => "go",
            RuleName::Python => "python",
        }
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuleName {
    type Err = RuleError;

    /// Reads a rule name, ignoring case and surrounding spaces.
    fn from_str(s: &str) -> Result<RuleName, RuleError> {
        let name = s.trim();
        RuleName::ALL
            .into_iter()
            .find(|rule| rule.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| RuleError::UnknownName(s.to_owned()))
    }
}

/// Why a multiline rule could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// The name is not a built-in rule.
    #[error("choosing multiline rule {0:?} failed: expected none, java, go or python")]
    UnknownName(String),
    /// A custom rule's pattern is not a valid regex.
    #[error("compiling multiline {which} pattern failed: {source}")]
    Pattern {
        /// `start` or `continue`.
        which: &'static str,
        /// The regex crate's explanation.
        source: regex::Error,
    },
}

/// A multiline rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Every line is its own event.
    None,
    /// See [`RuleName::Java`].
    Java,
    /// See [`RuleName::Go`].
    Go,
    /// See [`RuleName::Python`].
    Python,
    /// Start and continuation patterns, see [`Rule::custom`].
    Custom(CustomRule),
}

/// The patterns of a custom rule.
#[derive(Debug, Clone)]
pub struct CustomRule {
    start: Regex,
    continuation: Regex,
}

impl Rule {
    /// A rule from two regexes, in Fluent Bit's manner: while an event is
    /// pending, a line matching `continuation` joins it (this is checked
    /// first); otherwise the pending event is emitted, and a line matching
    /// `start` begins a new one while any other line is emitted alone.
    pub fn custom(start: &str, continuation: &str) -> Result<Rule, RuleError> {
        let compile = |which, pattern| {
            Regex::new(pattern).map_err(|source| RuleError::Pattern { which, source })
        };
        Ok(Rule::Custom(CustomRule {
            start: compile("start", start)?,
            continuation: compile("continue", continuation)?,
        }))
    }
}

impl Rule {
    /// Whether two rules join lines alike: the same built-in rule, or custom
    /// rules with the same patterns.
    pub fn same_as(&self, other: &Rule) -> bool {
        match (self, other) {
            (Rule::Custom(a), Rule::Custom(b)) => {
                a.start.as_str() == b.start.as_str()
                    && a.continuation.as_str() == b.continuation.as_str()
            }
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl From<RuleName> for Rule {
    fn from(name: RuleName) -> Rule {
        match name {
            RuleName::None => Rule::None,
            RuleName::Java => Rule::Java,
            RuleName::Go => Rule::Go,
            RuleName::Python => Rule::Python,
        }
    }
}

/// Settings of a [`Multiline`] joiner.
#[derive(Debug, Clone)]
pub struct Config {
    /// How lines are joined.
    pub rule: Rule,
    /// Silence on a stream after which its pending event is emitted.
    pub flush_timeout_ms: u64,
    /// Content past this many bytes is dropped; the event gets [`Flag::Truncated`].
    pub max_event_bytes: usize,
    /// Lines past this many are dropped; the event gets [`Flag::Truncated`].
    pub max_lines: usize,
}

impl Config {
    /// The rule with default limits.
    pub fn new(rule: Rule) -> Config {
        Config {
            rule,
            flush_timeout_ms: DEFAULT_FLUSH_TIMEOUT_MS,
            max_event_bytes: super::DEFAULT_MAX_EVENT_BYTES,
            max_lines: DEFAULT_MAX_LINES,
        }
    }
}

/// Applies a multiline rule to the two streams of one file.
///
/// Joined events get [`Flag::Multiline`] and keep the offset and timestamp
/// of their first line; lines are joined with `\n`. Output is in file order
/// per stream.
#[derive(Debug)]
pub struct Multiline {
    config: Config,
    pending: [Option<Pending>; 2],
}

/// Where a pending event is in its rule's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A plain line that an exception or traceback may still attach to.
    Message,
    /// Java: after an exception line or a frame.
    JavaTrace,
    /// Go: after `panic:`/`fatal error:`, before the first goroutine.
    GoHeader,
    /// Go: inside the goroutine dump.
    GoTrace,
    /// Python: inside a traceback.
    PyTrace,
    /// Python: after the exception line that ends a traceback.
    PyAfterError,
    /// Python: after "During handling of the above exception ...".
    PyChain,
    /// A custom rule's event.
    Custom,
}

/// What a line does, given the pending event's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Joins the pending event, which moves to the state.
    Append(State),
    /// Waits: joins only if the next line continues the event.
    Hold,
    /// Ends any pending event and begins a new one in the state.
    Begin(State),
    /// Ends any pending event and is emitted alone.
    Single,
}

#[derive(Debug)]
struct Pending {
    event: Assembled,
    state: State,
    lines: usize,
    joined: bool,
    truncated: bool,
    last_ms: u64,
    held: Vec<Assembled>,
}

impl Multiline {
    /// A joiner with nothing pending.
    pub fn new(config: Config) -> Multiline {
        Multiline {
            config,
            pending: [None, None],
        }
    }

    /// Takes the next line of its stream at time `now_ms`; appends the
    /// events it completes to `out`.
    pub fn push(&mut self, now_ms: u64, line: Assembled, out: &mut Vec<Assembled>) {
        let index = stream_index(line.stream);
        let state = self.pending[index].as_ref().map(|pending| pending.state);
        let decision = match decide(&self.config.rule, state, &line.content) {
            Decision::Append(next) => match self.pending[index].as_mut() {
                Some(pending) => {
                    pending.append(line, next, now_ms, &self.config);
                    return;
                }
                None => decide(&self.config.rule, None, &line.content),
            },
            Decision::Hold => match self.pending[index].as_mut() {
                Some(pending) if pending.held.len() < MAX_HELD => {
                    pending.held.push(line);
                    pending.last_ms = now_ms;
                    return;
                }
                _ => decide(&self.config.rule, None, &line.content),
            },
            fresh => fresh,
        };
        if self.pending[index].is_some() {
            let held = self.end(index, out);
            if !held.is_empty() {
                // Held lines did not continue the event: they are input again.
                for held_line in held {
                    self.push(now_ms, held_line, out);
                }
                if self.pending[index].is_some() {
                    self.push(now_ms, line, out);
                    return;
                }
            }
        }
        self.begin(now_ms, line, decision, out);
    }

    /// Takes new settings (a config reload). Under the same rule, pending
    /// events go on under the new limits. Under another rule they are
    /// emitted into `out` first, as they are: each event is joined by one
    /// rule, and the new rule applies from the next line on.
    pub fn reconfigure(&mut self, config: Config, out: &mut Vec<Assembled>) {
        if !self.config.rule.same_as(&config.rule) {
            self.flush(out);
        }
        self.config = config;
    }

    /// Emits the events whose stream has been silent for the flush timeout.
    pub fn flush_expired(&mut self, now_ms: u64, out: &mut Vec<Assembled>) {
        let timeout = self.config.flush_timeout_ms;
        self.flush_where(out, |pending| {
            now_ms.saturating_sub(pending.last_ms) >= timeout
        });
    }

    /// Emits everything pending, e.g. at the end of a file.
    pub fn flush(&mut self, out: &mut Vec<Assembled>) {
        self.flush_where(out, |_| true);
    }

    /// When the next pending event expires, if any: the time to call
    /// [`Multiline::flush_expired`] next.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let timeout = self.config.flush_timeout_ms;
        self.pending
            .iter()
            .flatten()
            .map(|pending| pending.last_ms.saturating_add(timeout))
            .min()
    }

    /// Offset of the first line of `stream`'s pending event, if any.
    pub fn pending_offset_of(&self, stream: Stream) -> Option<u64> {
        self.pending[stream_index(stream)]
            .as_ref()
            .map(|pending| pending.event.offset)
    }

    /// Offset of the earliest line not yet emitted: a checkpoint must not
    /// move past it.
    pub fn pending_offset(&self) -> Option<u64> {
        self.pending
            .iter()
            .flatten()
            .map(|pending| pending.event.offset)
            .min()
    }

    fn begin(
        &mut self,
        now_ms: u64,
        mut line: Assembled,
        decision: Decision,
        out: &mut Vec<Assembled>,
    ) {
        let truncated = truncate_bounded(&mut line.content, self.config.max_event_bytes);
        match decision {
            Decision::Begin(state) => {
                let index = stream_index(line.stream);
                self.pending[index] = Some(Pending {
                    event: line,
                    state,
                    lines: 1,
                    joined: false,
                    truncated,
                    last_ms: now_ms,
                    held: Vec::new(),
                });
            }
            // Without a pending event nothing appends or holds.
            Decision::Single | Decision::Append(_) | Decision::Hold => {
                if truncated && !line.flags.contains(&Flag::Truncated) {
                    line.flags.push(Flag::Truncated);
                }
                out.push(line);
            }
        }
    }

    /// Emits the stream's pending event; returns the lines it held back.
    fn end(&mut self, index: usize, out: &mut Vec<Assembled>) -> Vec<Assembled> {
        match self.pending[index].take() {
            Some(pending) => {
                let (event, held) = pending.finish();
                out.push(event);
                held
            }
            None => Vec::new(),
        }
    }

    fn flush_where(&mut self, out: &mut Vec<Assembled>, expired: impl Fn(&Pending) -> bool) {
        let start = out.len();
        for index in 0..self.pending.len() {
            // Held lines re-enter as input and may begin an event of their
            // own, so repeat; each round holds fewer lines, so this ends.
            while let Some(pending) = &self.pending[index]
                && expired(pending)
            {
                let last_ms = pending.last_ms;
                for held_line in self.end(index, out) {
                    self.push(last_ms, held_line, out);
                }
            }
        }
        // Per stream the order is already the file's; merge the two streams.
        out[start..].sort_by_key(|event| event.offset);
    }
}

impl Pending {
    fn append(&mut self, line: Assembled, next: State, now_ms: u64, config: &Config) {
        for held_line in std::mem::take(&mut self.held) {
            self.add(held_line, config);
        }
        self.add(line, config);
        self.state = next;
        self.last_ms = now_ms;
    }

    fn add(&mut self, line: Assembled, config: &Config) {
        self.joined = true;
        for flag in line.flags {
            if !self.event.flags.contains(&flag) {
                self.event.flags.push(flag);
            }
        }
        if self.lines >= config.max_lines {
            self.truncated = true;
            return;
        }
        self.lines += 1;
        if self.truncated {
            // Bytes after a cut would follow a gap.
            return;
        }
        let content = &mut self.event.content;
        let room = config.max_event_bytes.saturating_sub(content.len());
        if room == 0 || (room == 1 && !line.content.is_empty()) {
            // No room for the separator and some of the line.
            self.truncated = true;
            return;
        }
        append_bounded(content, b"\n", config.max_event_bytes);
        self.truncated = append_bounded(content, &line.content, config.max_event_bytes);
    }

    fn finish(mut self) -> (Assembled, Vec<Assembled>) {
        if self.joined && !self.event.flags.contains(&Flag::Multiline) {
            self.event.flags.push(Flag::Multiline);
        }
        if self.truncated && !self.event.flags.contains(&Flag::Truncated) {
            self.event.flags.push(Flag::Truncated);
        }
        (self.event, self.held)
    }
}

fn decide(rule: &Rule, state: Option<State>, line: &[u8]) -> Decision {
    match rule {
        Rule::None => Decision::Single,
        Rule::Java => java(state, line),
        Rule::Go => go(state, line),
        Rule::Python => python(state, line),
        Rule::Custom(custom) => {
            if state.is_some() && custom.continuation.is_match(line) {
                Decision::Append(State::Custom)
            } else if custom.start.is_match(line) {
                Decision::Begin(State::Custom)
            } else {
                Decision::Single
            }
        }
    }
}

/// Builds a regex from a constant pattern; the tests compile every one.
fn pattern(source: &str) -> Regex {
    Regex::new(source).expect("constant multiline pattern compiles")
}

fn is_blank(line: &[u8]) -> bool {
    line.trim_ascii().is_empty()
}

/// Whether the line starts like a class or exception name (or `Exception in thread`).
fn starts_like_a_name(line: &[u8]) -> bool {
    matches!(line.first(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_' | b'$'))
}

fn is_indented(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

/// Java (and .NET) line kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JavaKind {
    /// A frame or a line that only appears inside a trace.
    Frame,
    /// The first line of an exception, e.g. `java.lang.IllegalStateException: msg`.
    Exception,
    Blank,
    Other,
}

/// A qualified class name ending in Exception, Error or Throwable, alone or
/// before `: message`, optionally after Java's uncaught-exception prefix.
static JAVA_EXCEPTION: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r#"^(?:Exception in thread "[^"]*" )?(?:[A-Za-z_$][A-Za-z0-9_$]*\.)+(?:[A-Za-z_$][A-Za-z0-9_$]*)?(?:Exception|Error|Throwable)(?::.*)?\s*$"#,
    )
});

fn java_kind(line: &[u8]) -> JavaKind {
    let trimmed = line.trim_ascii_start();
    if trimmed.trim_ascii_end().is_empty() {
        return JavaKind::Blank;
    }
    let indented = trimmed.len() < line.len();
    let frame = (indented && trimmed.starts_with(b"at "))
        || trimmed.starts_with(b"Caused by:")
        || trimmed.starts_with(b"Suppressed:")
        || trimmed.starts_with(b"--- End of ")
        || is_java_more(trimmed);
    if frame {
        JavaKind::Frame
    } else if starts_like_a_name(line)
        && memchr::memchr(b'.', line).is_some()
        && JAVA_EXCEPTION.is_match(line)
    {
        // The cheap checks spare the regex most lines, which start with a
        // time stamp or `{`.
        JavaKind::Exception
    } else {
        JavaKind::Other
    }
}

/// `... 12 more` or logback's `... 12 common frames omitted`.
fn is_java_more(trimmed: &[u8]) -> bool {
    let Some(rest) = trimmed.strip_prefix(b"... ") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let tail = &rest[digits..];
    digits > 0 && (tail.starts_with(b" more") || tail.starts_with(b" common frames omitted"))
}

fn java(state: Option<State>, line: &[u8]) -> Decision {
    match (state, java_kind(line)) {
        // A message line followed by an exception is one event (logger.error("msg", e)).
        (Some(_), JavaKind::Frame) | (Some(State::Message), JavaKind::Exception) => {
            Decision::Append(State::JavaTrace)
        }
        (_, JavaKind::Frame | JavaKind::Exception) => Decision::Begin(State::JavaTrace),
        (_, JavaKind::Blank) => Decision::Single,
        // Any other line may be the message of an exception on the next line.
        (_, JavaKind::Other) => Decision::Begin(State::Message),
    }
}

/// Go line kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoKind {
    Blank,
    Indented,
    /// `goroutine 1 [running]:`, `runtime stack:`, `created by ...`, a
    /// function line, `...additional frames elided...`, `exit status 2`.
    Dump,
    /// `[signal SIGSEGV: ...]`.
    Signal,
    /// `panic: `, `fatal error: `, `runtime: `.
    Start,
    /// net/http's `http: panic serving ...`, followed by a goroutine dump.
    HttpPanic,
    Other,
}

static GO_GOROUTINE: LazyLock<Regex> = LazyLock::new(|| pattern(r"^goroutine [0-9]+ .*\]:\s*$"));

/// A function line of a goroutine dump: `main.main()`, `main.(*T).Run(...)`, `panic({0x4b8f20?, 0x5?})`.
static GO_FRAME: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[^\s(]+\(.*\)\s*$"));

static GO_HTTP_PANIC: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"http: panic serving "));

fn go_kind(line: &[u8], in_panic: bool) -> GoKind {
    if is_blank(line) {
        return GoKind::Blank;
    }
    if is_indented(line) {
        return GoKind::Indented;
    }
    if line.starts_with(b"panic: ")
        || line.starts_with(b"fatal error: ")
        || line.starts_with(b"runtime: ")
    {
        return GoKind::Start;
    }
    if !in_panic {
        // Outside a panic only the start lines matter.
        return if GO_HTTP_PANIC.find(line).is_some() {
            GoKind::HttpPanic
        } else {
            GoKind::Other
        };
    }
    if line.starts_with(b"[signal ") {
        return GoKind::Signal;
    }
    let dump = line.starts_with(b"created by ")
        || line.starts_with(b"...additional frames elided...")
        || line.starts_with(b"exit status ")
        || line.trim_ascii_end() == b"runtime stack:"
        || GO_GOROUTINE.is_match(line)
        || GO_FRAME.is_match(line);
    if dump { GoKind::Dump } else { GoKind::Other }
}

fn go(state: Option<State>, line: &[u8]) -> Decision {
    let kind = go_kind(line, state.is_some());
    match (state, kind) {
        (Some(_), GoKind::Blank) => Decision::Hold,
        (Some(_), GoKind::Dump) => Decision::Append(State::GoTrace),
        (Some(current), GoKind::Indented | GoKind::Signal) => Decision::Append(current),
        // `panic: x [recovered]` then another panic, or `runtime:` lines before `fatal error:`.
        (Some(State::GoHeader), GoKind::Start) => Decision::Append(State::GoHeader),
        (_, GoKind::Start | GoKind::HttpPanic) => Decision::Begin(State::GoHeader),
        _ => Decision::Single,
    }
}

/// Python line kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PyKind {
    /// `Traceback (most recent call last):`, also of an exception group.
    Header,
    /// The sentence between chained tracebacks.
    Chain,
    Blank,
    Indented,
    /// The exception line ending a traceback, e.g. `ValueError: bad`.
    Error,
    Other,
}

/// `Name: message`, or a bare name that reads like an exception class.
static PY_ERROR: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"^[A-Za-z_][A-Za-z0-9_.]*(?::(?:\s.*)?|Error|Exception|Interrupt|Exit|Warning|Iteration|Group)\s*$",
    )
});

fn python_kind(line: &[u8]) -> PyKind {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return PyKind::Blank;
    }
    // Exception groups print `+ Exception Group Traceback (...)`.
    let unplussed = trimmed.strip_prefix(b"+ ").unwrap_or(trimmed);
    let header = unplussed
        .strip_prefix(b"Exception Group ")
        .unwrap_or(unplussed);
    if header == b"Traceback (most recent call last):" {
        return PyKind::Header;
    }
    if trimmed == b"During handling of the above exception, another exception occurred:"
        || trimmed == b"The above exception was the direct cause of the following exception:"
    {
        return PyKind::Chain;
    }
    if is_indented(line) {
        PyKind::Indented
    } else if starts_like_a_name(line) && PY_ERROR.is_match(line) {
        PyKind::Error
    } else {
        PyKind::Other
    }
}

fn python(state: Option<State>, line: &[u8]) -> Decision {
    match (state, python_kind(line)) {
        // logging.exception("msg"): the message line, then the traceback.
        (Some(State::Message), PyKind::Header) => Decision::Append(State::PyTrace),
        (Some(State::PyTrace), PyKind::Indented) => Decision::Append(State::PyTrace),
        (Some(State::PyTrace), PyKind::Error) => Decision::Append(State::PyAfterError),
        // The blank line before "During handling ..." belongs only if that follows.
        (Some(State::PyAfterError), PyKind::Blank) => Decision::Hold,
        (Some(State::PyAfterError), PyKind::Chain) => Decision::Append(State::PyChain),
        (Some(State::PyChain), PyKind::Blank) => Decision::Append(State::PyChain),
        (Some(State::PyChain), PyKind::Header) => Decision::Append(State::PyTrace),
        (_, PyKind::Header) => Decision::Begin(State::PyTrace),
        (_, PyKind::Chain) => Decision::Begin(State::PyChain),
        (_, PyKind::Blank) => Decision::Single,
        (_, PyKind::Indented | PyKind::Error | PyKind::Other) => Decision::Begin(State::Message),
    }
}

#[cfg(test)]
mod tests;
