//! `photobulk serve`: the JSON-RPC sidecar for the PowerShell module (see `photobulk_sidecar`
//! and docs/protocol.md). Only argument parsing lives here.

use std::path::PathBuf;
use std::time::Duration;

/// Serve JSON-RPC on a named pipe (Windows) or `$TMPDIR/CoreFxPipe_NAME` (Unix)
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Pipe name (letters, digits, '.', '_', '-'); the PowerShell module picks a random one
    #[arg(long, value_name = "NAME")]
    pipe: String,
    /// Exit after this many seconds with no client connected (0: never)
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    idle_timeout: u64,
    /// Keep serving after the last client disconnects (until shutdown, exit or idle timeout)
    #[arg(long)]
    persist: bool,
    /// Append logs to this file instead of stderr
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
    /// Default backup folder for photo writes (else PHOTOBULK_BACKUP_DIR)
    #[arg(long, env = "PHOTOBULK_BACKUP_DIR", value_name = "DIR")]
    backup_dir: Option<PathBuf>,
    /// Largest message accepted, in bytes
    #[arg(long, default_value_t = photobulk_protocol::DEFAULT_MAX_MESSAGE_BYTES, value_name = "BYTES")]
    max_message_bytes: usize,
}

pub fn run(args: ServeArgs) -> std::process::ExitCode {
    let code = photobulk_sidecar::serve::main(photobulk_sidecar::serve::ServeOptions {
        pipe: args.pipe,
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
        persist: args.persist,
        log_file: args.log_file,
        backup_dir: args.backup_dir,
        max_message_bytes: args.max_message_bytes.max(1024),
    });
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
