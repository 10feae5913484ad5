//! `kubectl modelpilot`: the rollout verbs and views for people, as a kubectl plugin.
//!
//! The plugin is the `modelpilot` binary itself. kubectl runs any `kubectl-<name>` executable on
//! the `PATH` for `kubectl <name> …`, so a symlink `kubectl-modelpilot` → `modelpilot` (`make
//! plugin` puts one next to the binary, or in `BINDIR=…`) makes `kubectl modelpilot promote iris`
//! work; `main.rs` recognises the name it was started under. Without the symlink, `modelpilot
//! plugin promote iris` is the same command.
//!
//! The verbs never act on the rollout themselves: each writes a request (the
//! `modelpilot.io/request` annotation, see [`request`]) and waits for the operator's answer in
//! `status.rollout.lastRequest`. Exit codes: 0 done, 1 refused (or an error), 2 no answer in time
//! (the request stays recorded and is handled when the operator runs). `status` and `history` only
//! read the object ([`render`], [`history`]).

pub mod cluster;
pub mod history;
pub mod render;
pub mod request;

#[cfg(test)]
mod fixtures;

use std::{ffi::OsStr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use k8s_openapi::jiff::Timestamp;

use self::{
    cluster::Target,
    request::{Action, EXIT_REFUSED, EXIT_TIMEOUT, Progress},
};

/// The executable name kubectl looks for.
pub const PLUGIN_NAME: &str = "kubectl-modelpilot";

/// Drive canary rollouts of ModelDeployments: promote, abort, pause, roll back, approve a
/// retraining; see their state and history.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "Verbs write a request for the operator and wait for its answer. Exit codes: 0 done, \
                  1 refused (or an error), 2 no answer within --wait (the request stays recorded)."
)]
pub struct PluginArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    verb: Verb,
}

/// Where the object lives (kubectl's own flags are not passed to plugins, so these repeat them).
#[derive(Args, Debug)]
struct Connection {
    /// Namespace of the ModelDeployment (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster account).
    #[arg(long, global = true, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, global = true)]
    context: Option<String>,
}

/// How long a verb waits for the operator's answer.
#[derive(Args, Debug)]
struct Wait {
    /// Seconds to wait for the operator's acknowledgement.
    #[arg(long = "wait", value_name = "SECONDS", default_value_t = 30)]
    seconds: u64,
    /// Write the request and return without waiting for the acknowledgement.
    #[arg(long, conflicts_with = "seconds")]
    no_wait: bool,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Move the rollout on to its next step; with --full, promote now (skip steps and analysis).
    Promote {
        /// The ModelDeployment.
        name: String,
        /// Skip the remaining steps and analysis.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Roll the candidate back; the stable revision serves everything.
    Abort {
        /// The ModelDeployment.
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Restart an aborted rollout from its first step.
    Retry {
        /// The ModelDeployment.
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Hold the rollout at its current step.
    Pause {
        /// The ModelDeployment.
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Continue a paused rollout.
    Resume {
        /// The ModelDeployment.
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Go back to an earlier revision (promoted as soon as it is ready).
    Rollback {
        /// The ModelDeployment.
        name: String,
        /// A revision name from `history`, or a stable index (1 = the previous stable revision).
        #[arg(long, value_name = "REV")]
        to_revision: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Let the retraining that waits for approval (`retraining.approval: true`) run its Job.
    Approve {
        /// The ModelDeployment.
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Start a retraining now (`spec.retraining`; the daily budget applies, the cooldown not).
    Retrain {
        /// The ModelDeployment.
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Show the rollout: phase, revisions, step, weights, analysis, last request.
    Status {
        /// The ModelDeployment.
        name: String,
        /// Print again on every change, until Ctrl-C.
        #[arg(short, long)]
        watch: bool,
    },
    /// List past rollouts, newest first, with the stable indexes `rollback` accepts.
    History {
        /// The ModelDeployment.
        name: String,
    },
}

/// Whether the program was started as `kubectl-modelpilot` (the basename of `argv[0]`).
///
/// ```
/// use modelpilot::plugin::is_plugin_name;
///
/// assert!(is_plugin_name("/usr/local/bin/kubectl-modelpilot".as_ref()));
/// assert!(is_plugin_name("kubectl-modelpilot.exe".as_ref()));
/// assert!(!is_plugin_name("/usr/local/bin/modelpilot".as_ref()));
/// ```
pub fn is_plugin_name(argv0: &OsStr) -> bool {
    std::path::Path::new(argv0)
        .file_stem()
        .is_some_and(|stem| stem == PLUGIN_NAME)
}

/// Whether this process runs as the kubectl plugin.
pub fn invoked_as_plugin() -> bool {
    std::env::args_os()
        .next()
        .is_some_and(|argv0| is_plugin_name(&argv0))
}

/// Parse the command line of `kubectl modelpilot …` (usage and errors name it that way).
pub fn parse_plugin_command_line() -> PluginArgs {
    let command = PluginArgs::command()
        .name(PLUGIN_NAME)
        .bin_name("kubectl modelpilot");
    PluginArgs::from_arg_matches(&command.get_matches()).unwrap_or_else(|err| err.exit())
}

/// Run a plugin command; errors are printed and exit 1.
pub fn main(args: PluginArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(args)));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Carry out one command; the exit code on success.
async fn run(args: PluginArgs) -> anyhow::Result<u8> {
    let (name, action, revision, wait) = match args.verb {
        Verb::Status { name, watch } => return status(&args.connection, &name, watch).await,
        Verb::History { name } => return history(&args.connection, &name).await,
        Verb::Promote { name, full, wait } => {
            let action = if full {
                Action::PromoteFull
            } else {
                Action::Promote
            };
            (name, action, None, wait)
        }
        Verb::Abort { name, wait } => (name, Action::Abort, None, wait),
        Verb::Retry { name, wait } => (name, Action::Retry, None, wait),
        Verb::Pause { name, wait } => (name, Action::Pause, None, wait),
        Verb::Resume { name, wait } => (name, Action::Resume, None, wait),
        Verb::Approve { name, wait } => (name, Action::Approve, None, wait),
        Verb::Retrain { name, wait } => (name, Action::Retrain, None, wait),
        Verb::Rollback {
            name,
            to_revision,
            wait,
        } => (name, Action::Rollback, Some(to_revision), wait),
    };
    let target = connect(&args.connection, &name).await?;
    let current = target.fetch().await?;
    let revision = revision
        .map(|arg| history::resolve_revision(&arg, current.status.as_ref()))
        .transpose()?;
    let request = request::new(action, revision, Timestamp::now(), rand::random());
    target.send(&request).await?;
    let described = match &request.revision {
        Some(rev) => format!("{} to {rev}", request.action),
        None => request.action.to_string(),
    };
    if wait.no_wait {
        emit(&format!(
            "{described} {name}: requested (id {}); not waiting for the operator\n",
            request.id
        ))?;
        return Ok(0);
    }
    eprintln!(
        "{described} {name}: requested (id {}), waiting up to {}s for the operator…",
        request.id, wait.seconds
    );
    let answer = target
        .await_answer(&request.id, Duration::from_secs(wait.seconds))
        .await?;
    Ok(match answer {
        Some(Progress::Acknowledged(ack)) => {
            emit(&format!("{}\n", request::render_ack(&name, &ack)))?;
            request::exit_code(&ack)
        }
        Some(Progress::Superseded(other)) => {
            eprintln!(
                "{described} {name}: replaced by request {other} before the operator handled it"
            );
            EXIT_REFUSED
        }
        Some(Progress::Pending) | None => {
            eprintln!(
                "{described} {name}: no answer from the operator within {}s. The request (id {}) is \
                 still recorded on the modelpilot.io/request annotation and will be handled when \
                 the operator runs; `kubectl modelpilot status {name}` shows its answer.",
                wait.seconds, request.id
            );
            EXIT_TIMEOUT
        }
    })
}

async fn connect(connection: &Connection, name: &str) -> anyhow::Result<Target> {
    cluster::connect(
        connection.kubeconfig.as_deref(),
        connection.context.as_deref(),
        connection.namespace.as_deref(),
        name,
    )
    .await
}

async fn status(connection: &Connection, name: &str, watch: bool) -> anyhow::Result<u8> {
    let target = connect(connection, name).await?;
    let mdep = target.fetch().await?;
    if watch {
        target
            .follow(mdep, |obj| render::render_status(obj, Timestamp::now()))
            .await?;
    } else {
        emit(&render::render_status(&mdep, Timestamp::now()))?;
    }
    Ok(0)
}

async fn history(connection: &Connection, name: &str) -> anyhow::Result<u8> {
    let target = connect(connection, name).await?;
    let mdep = target.fetch().await?;
    emit(&history::render_history(&mdep, Timestamp::now()))?;
    Ok(0)
}

/// Write to stdout; an error (a closed pipe) is returned rather than a panic as `print!` would.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}
