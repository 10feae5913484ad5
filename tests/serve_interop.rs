//! Interoperability with the clients users already have: runs the pytest suite in
//! `tests/python` (tritonclient.http and KServe's REST client) against real servers.

mod serve_support;

use std::process::Command;

use serve_support::{Server, models, python, repo};

#[test]
fn tritonclient_and_kserve_clients() {
    let servers: Vec<(&str, Server)> = ["iris", "multi", "identity"]
        .into_iter()
        .map(|m| (m, Server::ready(&format!("{m}.onnx"), &[])))
        .collect();
    let mut command = Command::new(python());
    command
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python",
        ])
        .current_dir(repo())
        .env("MODELPILOT_TEST_MODELS", models());
    for (model, server) in &servers {
        command.env(
            format!("MODELPILOT_TEST_{}_ADDR", model.to_uppercase()),
            format!("127.0.0.1:{}", server.port),
        );
    }
    let output = command.output().expect("run pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "pytest failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed"), "pytest ran no test:\n{stdout}");
    assert!(
        !stdout.contains("skipped"),
        "no test may be skipped:\n{stdout}"
    );
}
