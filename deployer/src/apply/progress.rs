//! Progress of the rollout on stderr: a spinner per step with the latest
//! reason when stderr is a terminal, plain lines (one per change of
//! reason, through the log) when it is not, so CI logs stay readable.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Spinners (stderr is a terminal).
    Spinner,
    /// One line per change.
    Lines,
    /// Nothing (tests of the library).
    Quiet,
}

impl Mode {
    /// Spinners on a terminal, lines otherwise.
    pub fn detect() -> Mode {
        if std::io::stderr().is_terminal() {
            Mode::Spinner
        } else {
            Mode::Lines
        }
    }
}

/// The progress of one step.
#[derive(Debug)]
pub struct StepProgress {
    name: String,
    mode: Mode,
    bar: Option<ProgressBar>,
    last: String,
    started: Instant,
}

impl StepProgress {
    /// Starts showing a step.
    pub fn start(mode: Mode, name: &str) -> StepProgress {
        let bar = (mode == Mode::Spinner).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {prefix:.bold}: {wide_msg} [{elapsed}]")
            {
                bar.set_style(style);
            }
            bar.set_prefix(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        StepProgress {
            name: name.to_owned(),
            mode,
            bar,
            last: String::new(),
            started: Instant::now(),
        }
    }

    /// The latest reason, e.g. `kafka: 1/3 ready`.
    pub fn set(&mut self, message: &str) {
        if message == self.last {
            return;
        }
        message.clone_into(&mut self.last);
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.set_message(message.to_owned()),
            (None, Mode::Lines) => tracing::info!(
                "{}: {message} [{}s]",
                self.name,
                self.started.elapsed().as_secs()
            ),
            _ => {}
        }
    }

    /// Ends the step with a final line, kept on screen.
    pub fn finish(self, ok: bool, message: &str) {
        let mark = if ok { "ok" } else { "FAILED" };
        let line = format!(
            "{}: {mark}: {message} [{:.1}s]",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
        match (self.bar, self.mode) {
            (Some(bar), _) => {
                // Printed above the spinner, so it stays when the spinner goes.
                bar.println(line);
                bar.finish_and_clear();
            }
            (None, Mode::Lines) if ok => tracing::info!("{line}"),
            (None, Mode::Lines) => tracing::warn!("{line}"),
            _ => {}
        }
    }
}
