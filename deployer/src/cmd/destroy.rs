//! `kelp destroy`: deletes the stack, keeping its data unless
//! `--purge-data` is given and confirmed.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use kelp_deployer::apply::progress::Mode;
use kelp_deployer::apply::{self, DestroyOptions};

use super::apply::StackArgs;

/// Arguments of `kelp destroy`.
#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Also delete the PersistentVolumeClaims (and with them the data),
    /// the generated Secrets, the Namespace and the StorageClasses. Asks
    /// you to type the namespace unless --yes is given.
    #[arg(long)]
    purge_data: bool,
    /// Confirm --purge-data without a prompt (for scripts).
    #[arg(long, requires = "purge_data")]
    yes: bool,
    /// Bound of the wait for the deleted objects to be gone, in seconds.
    #[arg(long, value_name = "N", default_value_t = 300)]
    timeout_secs: u64,
}

/// Asks for the namespace on the terminal.
fn confirm(namespace: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "destroying failed: --purge-data deletes the data of namespace {namespace}; \
         confirm with --yes when not at a terminal"
    );
    let mut stderr = std::io::stderr().lock();
    write!(
        stderr,
        "--purge-data deletes every volume of namespace {namespace}. Type the namespace to confirm: "
    )
    .and_then(|()| stderr.flush())
    .context("writing the prompt failed")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation failed")?;
    anyhow::ensure!(
        answer.trim() == namespace,
        "destroying failed: the confirmation did not match the namespace {namespace}; nothing deleted"
    );
    Ok(())
}

/// Destroys the stack and prints what was deleted and kept.
pub(crate) async fn run(args: &DestroyArgs) -> anyhow::Result<()> {
    let stack = args.stack.load()?;
    if args.purge_data && !args.yes {
        confirm(&stack.namespace)?;
    }
    let options = DestroyOptions {
        purge_data: args.purge_data,
        timeout: Duration::from_secs(args.timeout_secs),
        poll: Duration::from_secs(1),
        progress: Mode::detect(),
    };
    let report = apply::destroy(super::apply::client().await?, &stack, &options).await?;
    super::write_stdout(&report.to_string())
}
