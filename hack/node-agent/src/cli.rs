//! Command-line flags of the node agent. The cluster scripts (hack/cluster/up.sh, down.sh) are
//! the only callers; every path and address they pass is documented in docs/testing.md.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "modelpilot-node-agent", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Register the node and run the pods bound to it until SIGTERM.
    Run(Box<RunArgs>),
    /// Remove every process, network namespace, veth and the bridge left by an agent.
    Cleanup(CleanupArgs),
    /// Internal: enter a pod's namespaces and exec a container's program.
    #[command(hide = true)]
    ExecInPod(ExecArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Kubeconfig with the node's identity (system:node:<name> in system:nodes).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Name of the Node this agent owns.
    #[arg(long, default_value = "modelpilot-node-0")]
    pub node_name: String,
    /// Where pod directories, logs, volumes and CNI state live.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// The node's pod CIDR; its first address is the bridge (and the node's InternalIP).
    #[arg(long, default_value = "10.244.128.0/24")]
    pub pod_cidr: String,
    /// The Service CIDR, routed onto the bridge for kube-proxy.
    #[arg(long, default_value = "10.96.0.0/16")]
    pub service_cidr: String,
    /// The whole cluster's pod CIDR (a route in every pod).
    #[arg(long, default_value = "10.244.0.0/16")]
    pub cluster_cidr: String,
    /// Name of the host bridge the pods' veths join.
    #[arg(long, default_value = "mp-br0")]
    pub bridge: String,
    /// Directory of the CNI plugins (Debian's containernetworking-plugins).
    #[arg(long, default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,
    /// The image table (YAML): which host executable runs which image.
    #[arg(long)]
    pub images: PathBuf,
    /// Address of the kubelet-style HTTPS endpoint (container logs) the API server dials.
    #[arg(long)]
    pub listen: SocketAddr,
    #[arg(long)]
    pub tls_cert: PathBuf,
    #[arg(long)]
    pub tls_key: PathBuf,
    /// CA that signs the API server's kubelet client certificate.
    #[arg(long)]
    pub client_ca: PathBuf,
    /// First restart back-off of a crashed container, doubled per crash (kubelet: 10 s).
    #[arg(long, default_value_t = 1)]
    pub restart_backoff_seconds: u64,
    /// Cap of the restart back-off (kubelet: 300 s).
    #[arg(long, default_value_t = 300)]
    pub restart_backoff_max_seconds: u64,
    /// Node status and Lease renewal period.
    #[arg(long, default_value_t = 10)]
    pub heartbeat_seconds: u64,
}

#[derive(Args, Debug, Clone)]
pub struct CleanupArgs {
    #[arg(long)]
    pub state_dir: PathBuf,
    #[arg(long, default_value = "mp-br0")]
    pub bridge: String,
    #[arg(long, default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Network namespace file to join (e.g. /var/run/netns/mp-…).
    #[arg(long)]
    pub netns: PathBuf,
    /// A bind mount `SOURCE=TARGET` or `SOURCE=TARGET=ro` made in a private mount namespace.
    #[arg(long = "bind")]
    pub binds: Vec<String>,
    /// A host path that must stay visible (the program, its libraries) even if a bind hides it.
    #[arg(long = "keep")]
    pub keeps: Vec<PathBuf>,
    /// Working directory (created when missing, as the kubelet does).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}
