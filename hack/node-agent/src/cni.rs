//! Pod networking as a CNI runtime does it: a network namespace per pod (`ip netns`), joined to
//! the host bridge by Debian's `bridge` plugin with `host-local` IPAM, so each pod has its own IP
//! from the node's pod CIDR and every server in it can listen on `0.0.0.0`. Also the bridge
//! itself, the Service CIDR route onto it (for kube-proxy's rules), and `cleanup`, which removes
//! all of it. Pods get no default route: they reach other pods, Services and the host's bridge
//! address, nothing else.

use std::{
    fs,
    io::Write,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    str::FromStr,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Network namespaces of pods are named `mp-<first 12 hex digits of the pod UID>`.
pub const NETNS_PREFIX: &str = "mp-";
/// The CNI network name (also the CNI cache key).
const NETWORK: &str = "modelpilot";

/// An IPv4 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (addr, prefix) = s.split_once('/').context("CIDR wants ADDRESS/PREFIX")?;
        let addr: Ipv4Addr = addr.parse().with_context(|| format!("CIDR {s}"))?;
        let prefix: u8 = prefix.parse().with_context(|| format!("CIDR {s}"))?;
        if prefix > 30 {
            bail!("CIDR {s}: prefix must be at most /30");
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Ok(Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// The first host address: the bridge's (the pods' gateway and the node's InternalIP).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }
}

/// What the agent needs to wire pods.
#[derive(Debug, Clone)]
pub struct Network {
    pub bridge: String,
    pub pod_cidr: Cidr,
    pub service_cidr: Cidr,
    pub cluster_cidr: Cidr,
    pub cni_bin_dir: PathBuf,
    pub state_dir: PathBuf,
}

/// What a pod's sandbox is, recorded in its directory so `cleanup` can undo it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sandbox {
    pub netns: String,
    pub container_id: String,
    pub ip: Option<Ipv4Addr>,
}

impl Sandbox {
    pub fn for_pod(uid: &str) -> Self {
        let hex: String = uid
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(12)
            .collect();
        Self {
            netns: format!("{NETNS_PREFIX}{hex}"),
            container_id: format!("modelpilot-{uid}"),
            ip: None,
        }
    }

    pub fn netns_path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.netns)
    }
}

/// The CNI configuration of the node's network.
///
/// ```text
/// bridge mp-br0, isGateway (the bridge holds 10.244.128.1), no IP masquerade, hairpin on;
/// host-local IPAM over 10.244.128.0/24 with its state under <state>/cni-ipam; routes to the
/// Service CIDR and the cluster's pod CIDR only (no default route).
/// ```
pub fn cni_config(net: &Network) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": "bridge",
        "bridge": net.bridge,
        "isGateway": true,
        "isDefaultGateway": false,
        "ipMasq": false,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "dataDir": net.state_dir.join("cni-ipam"),
            "ranges": [[{"subnet": net.pod_cidr.to_string(), "gateway": net.pod_cidr.gateway().to_string()}]],
            "routes": [{"dst": net.service_cidr.to_string()}, {"dst": net.cluster_cidr.to_string()}]
        }
    })
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates the bridge with the gateway address (when missing) and routes the Service CIDR onto
/// it, so host connections to ClusterIPs leave with the bridge's address and kube-proxy's DNAT
/// sends them to pods.
pub fn ensure_bridge(net: &Network) -> anyhow::Result<()> {
    let gw = format!("{}/{}", net.pod_cidr.gateway(), net.pod_cidr.prefix);
    if run("ip", &["link", "show", "dev", &net.bridge]).is_err() {
        run(
            "ip",
            &["link", "add", "name", &net.bridge, "type", "bridge"],
        )?;
    }
    let addrs = run("ip", &["-4", "addr", "show", "dev", &net.bridge])?;
    if !addrs.contains(&gw) {
        run("ip", &["addr", "add", &gw, "dev", &net.bridge])?;
    }
    run("ip", &["link", "set", &net.bridge, "up"])?;
    run(
        "ip",
        &[
            "route",
            "replace",
            &net.service_cidr.to_string(),
            "dev",
            &net.bridge,
        ],
    )?;
    Ok(())
}

fn cni(net: &Network, command: &str, sandbox: &Sandbox) -> anyhow::Result<String> {
    let plugin = net.cni_bin_dir.join("bridge");
    let mut child = Command::new(&plugin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &sandbox.container_id)
        .env("CNI_NETNS", sandbox.netns_path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", &net.cni_bin_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "running CNI plugin {} (Debian: containernetworking-plugins)",
                plugin.display()
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(cni_config(net).to_string().as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "CNI {command} failed: {} {}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(stdout)
}

#[derive(Deserialize)]
struct CniResult {
    ips: Vec<CniIp>,
}

#[derive(Deserialize)]
struct CniIp {
    address: String,
}

/// The pod IP from a CNI ADD result (`"address": "10.244.128.5/24"`).
pub fn parse_cni_ip(result: &str) -> anyhow::Result<Ipv4Addr> {
    let parsed: CniResult = serde_json::from_str(result).context("CNI result")?;
    let ip = parsed.ips.first().context("CNI result has no IP")?;
    let addr = ip.address.split('/').next().unwrap_or_default();
    addr.parse()
        .with_context(|| format!("CNI IP '{}'", ip.address))
}

/// Creates the pod's network namespace, brings up its loopback and attaches it to the bridge.
/// The sandbox record is written first, so a crash half-way is still cleaned up.
pub fn setup(net: &Network, pod_dir: &Path, sandbox: &mut Sandbox) -> anyhow::Result<Ipv4Addr> {
    write_record(pod_dir, sandbox)?;
    if !sandbox.netns_path().exists() {
        run("ip", &["netns", "add", &sandbox.netns])?;
    }
    run("ip", &["-n", &sandbox.netns, "link", "set", "lo", "up"])?;
    let result = match cni(net, "ADD", sandbox) {
        Ok(result) => result,
        Err(err) => {
            // ADD may have half-succeeded (IP allocated, veth made): undo before a retry.
            let _ = cni(net, "DEL", sandbox);
            return Err(err);
        }
    };
    let ip = parse_cni_ip(&result)?;
    sandbox.ip = Some(ip);
    write_record(pod_dir, sandbox)?;
    Ok(ip)
}

/// Releases the pod's IP, removes its veth and namespace. Idempotent.
pub fn teardown(net: &Network, sandbox: &Sandbox) -> anyhow::Result<()> {
    kill_netns_processes(&sandbox.netns);
    let del = cni(net, "DEL", sandbox);
    if sandbox.netns_path().exists() {
        run("ip", &["netns", "del", &sandbox.netns])?;
    }
    del.map(drop)
}

fn write_record(pod_dir: &Path, sandbox: &Sandbox) -> anyhow::Result<()> {
    fs::create_dir_all(pod_dir)?;
    fs::write(pod_dir.join("sandbox.json"), serde_json::to_vec(sandbox)?)?;
    Ok(())
}

/// SIGKILLs every process in a network namespace and waits (bounded) until none is left.
pub fn kill_netns_processes(netns: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids: Vec<i32> = run("ip", &["netns", "pids", netns])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `modelpilot-node-agent cleanup`: every pod's processes, network namespace, IP and veth, then
/// the bridge and the agent's pod state. Safe to run any number of times, agent up or not (it
/// is run after the agent stopped, and by a starting agent before it adopts its pods afresh).
pub fn cleanup(state_dir: &Path, bridge: &str, cni_bin_dir: &Path) -> anyhow::Result<()> {
    let pods_dir = state_dir.join("pods");
    let mut errors = Vec::new();
    let placeholder: Cidr = Cidr {
        addr: Ipv4Addr::new(10, 244, 128, 0),
        prefix: 24,
    };
    let net = Network {
        bridge: bridge.into(),
        pod_cidr: placeholder,
        service_cidr: placeholder,
        cluster_cidr: placeholder,
        cni_bin_dir: cni_bin_dir.into(),
        state_dir: state_dir.into(),
    };
    if let Ok(entries) = fs::read_dir(&pods_dir) {
        for entry in entries.flatten() {
            let record = entry.path().join("sandbox.json");
            let Ok(bytes) = fs::read(&record) else {
                continue;
            };
            match serde_json::from_slice::<Sandbox>(&bytes) {
                Ok(sandbox) => {
                    if let Err(err) = teardown(&net, &sandbox) {
                        errors.push(format!("{}: {err:#}", sandbox.netns));
                    }
                }
                Err(err) => errors.push(format!("{}: {err}", record.display())),
            }
        }
    }
    // Namespaces whose record was lost.
    for name in run("ip", &["netns", "list"]).unwrap_or_default().lines() {
        let name = name.split_whitespace().next().unwrap_or_default();
        if name.starts_with(NETNS_PREFIX) {
            kill_netns_processes(name);
            if let Err(err) = run("ip", &["netns", "del", name]) {
                errors.push(format!("{name}: {err:#}"));
            }
        }
    }
    if run("ip", &["link", "show", "dev", bridge]).is_ok() {
        // veths whose namespace is gone are gone too; anything still enslaved goes now.
        let slaves = run("ip", &["-o", "link", "show", "master", bridge]).unwrap_or_default();
        for line in slaves.lines() {
            if let Some(name) = line
                .split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap_or_default())
            {
                let _ = run("ip", &["link", "del", name]);
            }
        }
        if let Err(err) = run("ip", &["link", "del", bridge]) {
            errors.push(format!("bridge {bridge}: {err:#}"));
        }
    }
    for dir in [pods_dir, state_dir.join("cni-ipam")] {
        if dir.exists()
            && let Err(err) = fs::remove_dir_all(&dir)
        {
            errors.push(format!("{}: {err}", dir.display()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("cleanup left: {}", errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c: Cidr = "10.244.128.7/24".parse().expect("parses");
        assert_eq!(c.to_string(), "10.244.128.0/24");
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 244, 128, 1));
        for bad in ["10.0.0.0", "10.0.0.0/31", "x/24", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sandbox_names_fit_and_differ() {
        let a = Sandbox::for_pod("0f6d2c1e-5b7a-4c39-9d0e-1a2b3c4d5e6f");
        assert_eq!(a.netns, "mp-0f6d2c1e5b7a");
        assert_ne!(
            a.netns,
            Sandbox::for_pod("1f6d2c1e-5b7a-4c39-9d0e-1a2b3c4d5e6f").netns
        );
    }

    #[test]
    fn cni_results() {
        let r = r#"{"cniVersion":"1.0.0","interfaces":[],"ips":[{"interface":2,"address":"10.244.128.5/24","gateway":"10.244.128.1"}]}"#;
        assert_eq!(parse_cni_ip(r).expect("ip"), Ipv4Addr::new(10, 244, 128, 5));
        assert!(parse_cni_ip(r#"{"ips":[]}"#).is_err());
        assert!(parse_cni_ip("not json").is_err());
    }

    #[test]
    fn config_has_no_default_route() {
        let net = Network {
            bridge: "mp-br0".into(),
            pod_cidr: "10.244.128.0/24".parse().expect("cidr"),
            service_cidr: "10.96.0.0/16".parse().expect("cidr"),
            cluster_cidr: "10.244.0.0/16".parse().expect("cidr"),
            cni_bin_dir: "/usr/lib/cni".into(),
            state_dir: "/s".into(),
        };
        let c = cni_config(&net);
        assert_eq!(c["ipam"]["ranges"][0][0]["gateway"], "10.244.128.1");
        let routes = c["ipam"]["routes"].as_array().expect("routes");
        assert!(routes.iter().all(|r| r["dst"] != "0.0.0.0/0"));
        assert_eq!(c["isDefaultGateway"], false);
    }
}
