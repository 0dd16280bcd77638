//! Windows transport: `\\.\pipe\NAME` through `interprocess`, created as the first instance
//! (a second server on the name fails), rejecting remote clients (interprocess's default:
//! `PIPE_REJECT_REMOTE_CLIENTS`), with a DACL that lets only SYSTEM and the current user in.
//!
//! The current user's SID comes from `whoami /user` (no `unsafe` token calls in this
//! workspace); without it the server refuses to start rather than open a pipe to everyone.

use std::io;

use interprocess::local_socket::tokio::{prelude::*, Listener, Stream};
use interprocess::local_socket::{GenericNamespaced, ListenerOptions};
use interprocess::os::windows::local_socket::ListenerOptionsExt;
use interprocess::os::windows::security_descriptor::SecurityDescriptor;

#[derive(Debug)]
pub struct PipeTransport {
    listener: Listener,
}

fn current_user_sid() -> io::Result<String> {
    let out = std::process::Command::new("whoami")
        .args(["/user", "/fo", "csv", "/nh"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .map(|f| f.trim().trim_matches('"').to_string())
        .find(|f| f.starts_with("S-1-"))
        .ok_or_else(|| io::Error::other("cannot read the current user's SID from `whoami /user`"))
}

pub(crate) fn bind(pipe: &str) -> io::Result<PipeTransport> {
    let sid = current_user_sid()?;
    // Protected DACL: full access for SYSTEM and this user, nobody else.
    let sddl = format!("D:P(A;;GA;;;SY)(A;;GA;;;{sid})");
    let wide =
        widestring::U16CString::from_str(&sddl).map_err(|e| io::Error::other(e.to_string()))?;
    let sd = SecurityDescriptor::deserialize(&wide)?;
    let name = pipe.to_ns_name::<GenericNamespaced>()?;
    let listener = ListenerOptions::new()
        .name(name)
        .security_descriptor(sd)
        .create_tokio()?;
    Ok(PipeTransport { listener })
}

impl crate::listen::Accept for PipeTransport {
    type Conn = Stream;
    async fn accept(&mut self) -> io::Result<Stream> {
        self.listener.accept().await
    }
}
