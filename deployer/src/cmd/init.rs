//! `kelp init`: a commented stack file with every field at its default.

use clap::Args;
use kelp_deployer::stack::init_template;

/// Arguments of `kelp init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {}

/// Prints the stack file template.
pub(crate) fn run(_args: &InitArgs) -> anyhow::Result<()> {
    super::write_stdout(&init_template())
}
