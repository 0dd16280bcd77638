//! The emulator as a process, as `scripts/pester` and `scripts/bench/graph` start it: it prints
//! its settings as `NAME=value` lines on stdout, answers on the printed URLs, and stops when killed.
//! (This test is also why `cargo test --no-run` builds `target/debug/graph-emulator`, so the
//! Pester run uses the binary of the same build.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn prints_its_settings_and_serves_them() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_graph-emulator"))
        .args(["--port", "0", "--users", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start graph-emulator");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut settings = std::collections::HashMap::new();
    for _ in 0..5 {
        let line = lines.next().expect("a settings line").expect("utf-8");
        let (k, v) = line.split_once('=').expect("NAME=value");
        settings.insert(k.to_string(), v.to_string());
    }
    for k in [
        "PB_GRAPH_AUTHORITY",
        "PB_GRAPH_URL",
        "PB_GRAPH_TENANT",
        "PB_GRAPH_CLIENT_ID",
        "PB_GRAPH_CLIENT_SECRET",
    ] {
        assert!(settings.contains_key(k), "{k} missing: {settings:?}");
    }
    let authority = &settings["PB_GRAPH_AUTHORITY"];
    let host = authority.trim_start_matches("http://");
    assert!(host.starts_with("127.0.0.1:"), "loopback only: {authority}");
    assert!(settings["PB_GRAPH_URL"].starts_with(authority.as_str()));
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET /_emulator/stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"uploads_applied\":0"), "{reply}");
    child.kill().expect("kill");
    child.wait().expect("wait");
}
