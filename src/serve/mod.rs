//! The inference server.

/// Flags of `modelpilot serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {}

/// Entry point of `modelpilot serve`.
pub fn main(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
