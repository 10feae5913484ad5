//! `modelpilot-node-agent`: a development tool that plays the kubelet's part for the local
//! cluster's real node (`make cluster-up`), running each container as a host process inside the
//! pod's own network namespace, so the operator's end-to-end tests, the demo and the benchmarks
//! exercise servers that really fetch, load and serve models. It is not part of the product.
//!
//! Subcommands:
//! - `run`: register the Node, keep it Ready, run the pods bound to it, serve container logs;
//! - `cleanup`: kill every process and remove every namespace, veth and bridge it created
//!   (idempotent; `make cluster-down` runs it after stopping the agent);
//! - `exec-in-pod` (internal): enter a pod's network namespace, set up the container's mounts in
//!   a private mount namespace and exec the container's program.

mod cli;
mod cni;
mod container;
mod env;
mod images;
mod logs;
mod manager;
mod node;
mod pod;
mod probe;
mod process;
mod status;
mod trampoline;
mod volumes;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::ExecInPod(args) => trampoline::exec_in_pod(args),
        cli::Command::Cleanup(args) => {
            init_logging();
            report(cni::cleanup(
                &args.state_dir,
                &args.bridge,
                &args.cni_bin_dir,
            ))
        }
        cli::Command::Run(args) => {
            init_logging();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => return report(Err(err.into())),
            };
            report(runtime.block_on(manager::run(*args)))
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .init();
}

fn report(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("modelpilot-node-agent: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
