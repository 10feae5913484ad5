//! `exec-in-pod` against the real kernel (needs root, as the agent does): the program runs in the
//! pod's network namespace, sees its volumes at their mount paths — read-only where asked —
//! and a volume mounted over `/tmp` hides neither the sources of the others nor the program,
//! even when the agent's state and the binaries live under `/tmp` (as in a CI clone there).

use std::{
    path::Path,
    process::{Command, Stdio},
};

struct Netns(String);

impl Netns {
    fn new(name: &str) -> Self {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .expect("ip netns add");
        assert!(
            ok.success(),
            "ip netns add {name} (the node agent's tests need root)"
        );
        Self(name.into())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn volumes_are_bound_in_a_private_mount_namespace_inside_the_pod_network() {
    let netns = Netns::new(&format!("agent-test-{}", std::process::id()));
    let state = tempfile::Builder::new()
        .prefix("agent-state")
        .tempdir_in("/tmp")
        .expect("state dir");
    let (tmp_vol, data_vol, term) = (
        state.path().join("tmp"),
        state.path().join("data"),
        state.path().join("term"),
    );
    std::fs::create_dir_all(&tmp_vol).expect("tmp volume");
    std::fs::create_dir_all(&data_vol).expect("data volume");
    std::fs::write(data_vol.join("model.txt"), "weights").expect("data file");
    std::fs::write(&term, "").expect("termination file");
    // The program itself lives under /tmp, which a volume covers: `--keep` keeps it visible.
    let bin = state.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::copy("/bin/sh", bin.join("sh")).expect("copy sh");
    let target = format!("/opt/modelpilot-agent-test-{}", std::process::id());
    let script = format!(
        "ls -A /tmp | wc -l; cat {target}/model.txt; echo; touch {target}/x 2>/dev/null || echo read-only; \
         echo done > /dev/termination-log; cat /proc/net/dev | grep -c eth || true"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_modelpilot-node-agent"))
        .args([
            "exec-in-pod",
            "--netns",
            &format!("/var/run/netns/{}", netns.0),
        ])
        .args(["--bind", &format!("{}=/tmp", tmp_vol.display())])
        .args(["--bind", &format!("{}={target}=ro", data_vol.display())])
        .args([
            "--bind",
            &format!("{}=/dev/termination-log", term.display()),
        ])
        .args(["--keep", &bin.display().to_string()])
        .args(["--", &bin.join("sh").display().to_string(), "-c", &script])
        .output()
        .expect("run exec-in-pod");
    let _ = std::fs::remove_dir(&target);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    // /tmp shows only what the kept path needed as its mount point.
    assert_eq!(lines[..3], ["1", "weights", "read-only"], "{stdout}");
    // The pod's namespace has only its loopback: no host interface is visible.
    assert_eq!(lines[3], "0", "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&term).expect("termination file"),
        "done\n"
    );
    assert!(!Path::new(&target).join("x").exists());
}
