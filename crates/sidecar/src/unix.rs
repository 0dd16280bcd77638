//! Unix transport: a socket at `$TMPDIR/CoreFxPipe_NAME` (where .NET's
//! `NamedPipeClientStream` connects on Linux and macOS), mode 0600, peer uid checked.
//!
//! The socket is bound inside a fresh 0700 folder, set to 0600 and renamed into place, so no
//! other user can ever connect through a window between `bind` and `chmod`. A live server
//! already on the path is refused (first instance wins); a stale socket file is replaced.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use photobulk_protocol::{ErrorCode, Message, Response, ResponseError};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};

/// The bound socket; the file is removed on drop.
#[derive(Debug)]
pub struct UnixTransport {
    listener: UnixListener,
    path: PathBuf,
    uid: u32,
    log: std::sync::Arc<crate::server::Server>,
}

pub(crate) fn bind(
    path: &Path,
    server: std::sync::Arc<crate::server::Server>,
) -> io::Result<UnixTransport> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another server is listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let parent = path.parent().unwrap_or(Path::new("/tmp"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let private = parent.join(format!(".photobulk-bind-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let result = (|| {
        let tmp = private.join("s");
        let std_listener = std::os::unix::net::UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        std_listener.set_nonblocking(true)?;
        Ok::<_, io::Error>(std_listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    let std_listener = result?;
    let uid = std::fs::metadata(path)?.uid();
    Ok(UnixTransport {
        listener: UnixListener::from_std(std_listener)?,
        path: path.to_path_buf(),
        uid,
        log: server,
    })
}

impl Drop for UnixTransport {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl crate::listen::Accept for UnixTransport {
    type Conn = UnixStream;
    async fn accept(&mut self) -> io::Result<UnixStream> {
        loop {
            let (mut stream, _) = self.listener.accept().await?;
            match stream.peer_cred() {
                Ok(c) if c.uid() == self.uid => return Ok(stream),
                other => {
                    let who = other
                        .map(|c| c.uid().to_string())
                        .unwrap_or_else(|e| format!("unknown ({e})"));
                    self.log.log(format_args!(
                        "refused a client of uid {who} (server uid {})",
                        self.uid
                    ));
                    let e = ResponseError::new(
                        ErrorCode::PeerRefused,
                        "this server accepts only its own user's processes",
                    );
                    let msg = Message::Response(Response::err(None, e)).to_value();
                    let mut line = serde_json::to_vec(&msg).unwrap_or_default();
                    line.push(b'\n');
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(1),
                            stream.write_all(&line),
                        )
                        .await;
                        let _ = stream.shutdown().await;
                    });
                }
            }
        }
    }
}
