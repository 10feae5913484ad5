//! The real `kubectl modelpilot` (the test binary as `modelpilot plugin …`) run against the test
//! cluster, and what it printed: for the tests that play the operator (`tests/plugin.rs`) and
//! the ones where the real controller answers (`tests/verbs_support`).

use std::process::{Output, Stdio};

use tokio::process::Command;

use super::{TestNamespace, kubeconfig_path};

/// `modelpilot plugin <args> -n <ns>`, its output piped, killed if dropped before it ends.
pub fn command(ns: &TestNamespace, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modelpilot"));
    command
        .arg("plugin")
        .args(args)
        .args(["-n", &ns.name])
        .env("KUBECONFIG", kubeconfig_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit code, stdout and stderr in one string, for assertion messages.
pub fn report(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Asserts it exited `code` and printed `want` on stdout.
pub fn assert_stdout(out: &Output, code: i32, want: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", report(out));
    assert!(
        text(&out.stdout).contains(want),
        "expected {want:?} on stdout:\n{}",
        report(out)
    );
}

/// Asserts it exited `code` and printed `want` on stderr.
pub fn assert_stderr(out: &Output, code: i32, want: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", report(out));
    assert!(
        text(&out.stderr).contains(want),
        "expected {want:?} on stderr:\n{}",
        report(out)
    );
}
