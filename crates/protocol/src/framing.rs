//! Framing: how messages are cut out of a byte stream.
//!
//! Two framings, chosen per connection from its first non-blank byte ([`Framing::detect`]):
//! - [`Framing::Lines`] (NDJSON): one compact JSON object per line, UTF-8 without BOM, `\n`
//!   or `\r\n`. What the PowerShell module speaks (`StreamReader.ReadLine`, `WriteLine`).
//! - [`Framing::ContentLength`]: LSP-style `Content-Length: N\r\n\r\n` + N bytes of JSON.
//!   What StreamJsonRpc and vscode-jsonrpc speak by default. Other headers
//!   (`Content-Type`) are accepted and ignored.
//!
//! The server answers in the framing the client chose.
//!
//! [`Decoder`] is push-based and does no I/O (feed it whatever a read returned, then take
//! frames), so it works with any runtime and in tests without one. It never holds more than
//! the size cap plus one read: a line longer than the cap is reported as
//! [`FrameError::TooLarge`] and skipped up to its newline; a `Content-Length` over the cap
//! is reported and its body skipped by count. Both leave the connection usable. A
//! `Content-Length` header that cannot be read is [`FrameError::BadHeader`], which is fatal:
//! the stream has lost sync.

use std::fmt;

/// The default cap on one message: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Longest header block accepted in `Content-Length` framing.
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// How a connection's messages are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Newline-delimited JSON.
    Lines,
    /// `Content-Length` headers (LSP base protocol).
    ContentLength,
}

impl Framing {
    /// The framing a stream starting with `byte` uses: `C`/`c` (a header) means
    /// `Content-Length`, anything else lines. Call it on the first byte that is not
    /// whitespace or part of a UTF-8 BOM.
    pub fn detect(byte: u8) -> Framing {
        if byte.eq_ignore_ascii_case(&b'c') {
            Framing::ContentLength
        } else {
            Framing::Lines
        }
    }

    /// One message as bytes to write.
    pub fn encode(self, json: &[u8]) -> Vec<u8> {
        match self {
            Framing::Lines => {
                let mut out = Vec::with_capacity(json.len() + 1);
                out.extend_from_slice(json);
                out.push(b'\n');
                out
            }
            Framing::ContentLength => {
                let mut out = format!("Content-Length: {}\r\n\r\n", json.len()).into_bytes();
                out.extend_from_slice(json);
                out
            }
        }
    }

    /// The name used in `initialize`'s capabilities and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Lines => "ndjson",
            Framing::ContentLength => "content-length",
        }
    }
}

/// A framing failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A message over the cap. `len` is its declared length in `Content-Length` framing,
    /// `None` for a line (its end was not seen yet). The message is skipped.
    TooLarge { len: Option<usize>, max: usize },
    /// A `Content-Length` header block that cannot be read. Fatal.
    BadHeader(String),
}

impl FrameError {
    /// Whether the stream can go on after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::BadHeader(_))
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len: Some(n), max } => {
                write!(
                    f,
                    "message of {n} bytes is over the {max}-byte limit; skipped"
                )
            }
            FrameError::TooLarge { len: None, max } => {
                write!(f, "message is over the {max}-byte limit; skipped")
            }
            FrameError::BadHeader(why) => write!(f, "bad message header: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Cuts frames out of a byte stream. See the module docs.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    framing: Option<Framing>,
    max: usize,
    /// Lines: skipping an oversize line up to its newline.
    skip_line: bool,
    /// Content-Length: bytes of an oversize body still to skip.
    skip_bytes: usize,
    /// Content-Length: the body length once its headers were read.
    pending_len: Option<usize>,
}

impl Decoder {
    /// A decoder with a cap of `max` bytes per message.
    pub fn new(max: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            framing: None,
            max,
            skip_line: false,
            skip_bytes: 0,
            pending_len: None,
        }
    }

    /// The framing, once the first byte has been seen.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Bytes buffered and not yet returned as a frame (for tests and end-of-stream checks).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Add bytes read from the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.skip_bytes > 0 {
            let n = self.skip_bytes.min(data.len());
            self.skip_bytes -= n;
            data = &data[n..];
        }
        if self.skip_line {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.skip_line = false;
                    data = &data[i + 1..];
                }
                None => return,
            }
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, an error, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        if self.framing.is_none() {
            let start = self
                .buf
                .iter()
                .position(|&b| !(b.is_ascii_whitespace() || b == 0xEF || b == 0xBB || b == 0xBF))?;
            self.buf.drain(..start);
            self.framing = Some(Framing::detect(self.buf[0]));
        }
        match self.framing {
            Some(Framing::ContentLength) => self.next_content_length(),
            _ => self.next_line(),
        }
    }

    fn next_line(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        loop {
            match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.len() > self.max {
                        return Some(Err(FrameError::TooLarge {
                            len: Some(line.len()),
                            max: self.max,
                        }));
                    }
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some(Ok(line));
                }
                None if self.buf.len() > self.max => {
                    self.buf = Vec::new();
                    self.skip_line = true;
                    return Some(Err(FrameError::TooLarge {
                        len: None,
                        max: self.max,
                    }));
                }
                None => return None,
            }
        }
    }

    fn next_content_length(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        if self.pending_len.is_none() {
            // Blank lines between messages are tolerated.
            let start = self.buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
            self.buf.drain(..start);
            let end = find(&self.buf, b"\r\n\r\n")
                .map(|i| (i, 4))
                .or_else(|| find(&self.buf, b"\n\n").map(|i| (i, 2)));
            let Some((end, sep)) = end else {
                if self.buf.len() > MAX_HEADER_BYTES {
                    self.buf.clear();
                    return Some(Err(FrameError::BadHeader(
                        "no end of headers within 8 KiB".into(),
                    )));
                }
                return None;
            };
            let header: Vec<u8> = self.buf.drain(..end + sep).collect();
            let len = match content_length(&header[..end]) {
                Ok(n) => n,
                Err(why) => {
                    self.buf.clear();
                    return Some(Err(FrameError::BadHeader(why)));
                }
            };
            if len > self.max {
                let have = self.buf.len().min(len);
                self.buf.drain(..have);
                self.skip_bytes = len - have;
                return Some(Err(FrameError::TooLarge {
                    len: Some(len),
                    max: self.max,
                }));
            }
            self.pending_len = Some(len);
        }
        let len = self.pending_len?;
        if self.buf.len() < len {
            return None;
        }
        self.pending_len = None;
        Some(Ok(self.buf.drain(..len).collect()))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(header: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(header).map_err(|_| "headers are not ASCII".to_string())?;
    let mut len = None;
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line {line:?} has no ':'"))?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            len = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("Content-Length {:?} is not a number", value.trim()))?,
            );
        }
    }
    len.ok_or_else(|| "no Content-Length header".to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frames(d: &mut Decoder) -> Vec<Result<Vec<u8>, FrameError>> {
        std::iter::from_fn(|| d.next_frame()).collect()
    }

    #[test]
    fn lines_with_crlf_blank_lines_and_bom() {
        let mut d = Decoder::new(100);
        d.feed(b"\xEF\xBB\xBF{\"a\":1}\r\n\n{\"b\":2}\n{\"c\"");
        assert_eq!(
            frames(&mut d),
            vec![Ok(b"{\"a\":1}".to_vec()), Ok(b"{\"b\":2}".to_vec())]
        );
        assert_eq!(d.framing(), Some(Framing::Lines));
        d.feed(b":3}\n");
        assert_eq!(frames(&mut d), vec![Ok(b"{\"c\":3}".to_vec())]);
    }

    #[test]
    fn oversize_line_is_skipped_and_the_stream_goes_on() {
        let mut d = Decoder::new(10);
        d.feed(b"{\"x\":\"");
        d.feed(&[b'a'; 50]);
        assert_eq!(
            frames(&mut d),
            vec![Err(FrameError::TooLarge { len: None, max: 10 })]
        );
        d.feed(&[b'a'; 5000]);
        assert!(frames(&mut d).is_empty());
        assert_eq!(d.buffered(), 0);
        d.feed(b"\"}\n{}\n");
        assert_eq!(frames(&mut d), vec![Ok(b"{}".to_vec())]);
    }

    #[test]
    fn content_length_split_anywhere() {
        let msg = Framing::ContentLength.encode(b"{\"id\":1}");
        let mut all = msg.clone();
        all.extend_from_slice(&msg);
        for cut in 0..all.len() {
            let mut d = Decoder::new(100);
            d.feed(&all[..cut]);
            let mut got = frames(&mut d);
            d.feed(&all[cut..]);
            got.extend(frames(&mut d));
            assert_eq!(
                got,
                vec![Ok(b"{\"id\":1}".to_vec()), Ok(b"{\"id\":1}".to_vec())],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn content_length_oversize_body_is_skipped_by_count() {
        let mut d = Decoder::new(10);
        d.feed(b"Content-Length: 30\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n0123456789");
        assert_eq!(
            frames(&mut d),
            vec![Err(FrameError::TooLarge {
                len: Some(30),
                max: 10
            })]
        );
        d.feed(b"01234567890123456789Content-Length: 2\r\n\r\n{}");
        assert_eq!(frames(&mut d), vec![Ok(b"{}".to_vec())]);
    }

    #[test]
    fn bad_header_is_fatal() {
        let mut d = Decoder::new(10);
        d.feed(b"Content-Lengthh 5\r\n\r\n");
        let got = frames(&mut d);
        assert!(matches!(&got[..], [Err(e)] if e.is_fatal()), "{got:?}");
        let mut d = Decoder::new(10);
        d.feed(b"Content-Length: -1\r\n\r\n");
        assert!(matches!(
            d.next_frame(),
            Some(Err(FrameError::BadHeader(_)))
        ));
    }
}
