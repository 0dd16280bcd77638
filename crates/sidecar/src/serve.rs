//! `photobulk serve --pipe NAME`: bind, print the start line, serve, exit.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use photobulk_protocol::methods::{StartLine, PROTOCOL_VERSION};

use crate::listen::run;
use crate::server::{Config, LogSink, Server};

/// What `photobulk serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub pipe: String,
    pub idle_timeout: Option<Duration>,
    pub persist: bool,
    pub log_file: Option<PathBuf>,
    pub backup_dir: Option<PathBuf>,
    pub max_message_bytes: usize,
}

fn print_start(line: &StartLine) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string(line).unwrap_or_default());
    let _ = out.flush();
}

fn failed(reason: String) -> i32 {
    print_start(&StartLine::Failed {
        reason: reason.clone(),
    });
    eprintln!("photobulk serve: {reason}");
    1
}

/// Run the server in this process; returns the exit code. The start line goes to stdout,
/// everything else to stderr or `log_file`.
pub fn main(opts: ServeOptions) -> i32 {
    if !photobulk_protocol::valid_pipe_name(&opts.pipe) {
        return failed(format!(
            "invalid pipe name {:?}: use 1-100 letters, digits, '.', '_' or '-'",
            opts.pipe
        ));
    }
    let log: LogSink = match &opts.log_file {
        Some(p) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Box::new(f),
            Err(e) => return failed(format!("cannot open log file {}: {e}", p.display())),
        },
        None => Box::new(std::io::stderr()),
    };
    let config = Config {
        max_message_bytes: opts.max_message_bytes,
        idle_timeout: opts.idle_timeout,
        exit_when_last_client_leaves: !opts.persist,
        backup_dir: opts.backup_dir.clone(),
        ..Config::default()
    };
    let server = Server::new(config, log);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failed(format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(async move {
        #[cfg(unix)]
        let (listener, path) = {
            let path = photobulk_protocol::unix_socket_path(
                &opts.pipe,
                std::env::var_os("TMPDIR").as_deref(),
            );
            match crate::unix::bind(&path, server.clone()) {
                Ok(l) => (l, path.display().to_string()),
                Err(e) => return failed(format!("cannot listen on {}: {e}", path.display())),
            }
        };
        #[cfg(windows)]
        let (listener, path) = match crate::windows::bind(&opts.pipe) {
            Ok(l) => (l, format!(r"\\.\pipe\{}", opts.pipe)),
            Err(e) => return failed(format!(r"cannot create \\.\pipe\{}: {e}", opts.pipe)),
        };
        print_start(&StartLine::Started {
            pipe: opts.pipe.clone(),
            path: path.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            protocol_version: PROTOCOL_VERSION,
        });
        server.log(format_args!("listening on {path}"));
        let s = server.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                s.log("interrupted: exiting after in-flight writes");
                s.exit();
            }
        });
        #[cfg(unix)]
        {
            let s = server.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                if let Ok(mut term) = signal(SignalKind::terminate()) {
                    term.recv().await;
                    s.log("terminated: exiting after in-flight writes");
                    s.exit();
                }
            });
        }
        run(listener, server.clone()).await;
        server.log("stopped");
        0
    })
}
