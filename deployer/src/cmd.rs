//! `kelp`'s subcommands, one module each.

pub(crate) mod apply;
pub(crate) mod dashboards;
pub(crate) mod destroy;
pub(crate) mod init;
pub(crate) mod plan;
pub(crate) mod probe;
pub(crate) mod render;
pub(crate) mod status;
pub(crate) mod storage;

use std::io::Write as _;

/// Writes command output to stdout. A reader that stops early (`| head`)
/// is not an error: the rest is simply not wanted.
pub(crate) fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(error).context("writing to stdout failed"))
        }
        _ => Ok(()),
    }
}
