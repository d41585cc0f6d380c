//! The client side of RFC 6455, just what loadgen needs, straight on the TCP stream.
//!
//! Why not tokio-tungstenite: at 36,000 frames a second its layers (the `Read`/`Write` compat
//! shim with its two atomic wakers, a fresh `Bytes` per frame, zeroing the free read buffer
//! before every read) were about a quarter of loadgen's user-space CPU in a perf profile; without
//! them loadgen went from 0.16 to 0.11 cores at 3,000 clients, and from 27 to 12 MB. Here a
//! frame is parsed in place in one small buffer and handed out as a slice. The handshake keys
//! come from tungstenite, so the upgrade is checked the way every other test tool checks it.
//!
//! What servers may send and is handled: binary and text messages (text is skipped), fragmented
//! messages, pings (handed to the caller, which answers with a pong), pongs (skipped), close
//! (an error carrying the code and reason). No extension is offered, so no frame may have an RSV
//! bit set, and a server must never mask: both are refused.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};

/// The first allocation of a socket's buffer: an update with one stamp is about 50 bytes, so
/// this holds several queued frames. A bigger frame grows the buffer (it stays grown).
const BUFFER: usize = 512;
/// The longest HTTP response head accepted in the handshake; servers send a few hundred bytes.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;
/// The biggest message accepted: quire's own default `--max-message-bytes`. Nothing near it is
/// sent in a benchmark; it only bounds what a broken length field can make us allocate.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
/// A frame header's longest form: 2 bytes, then a 64-bit length (server frames carry no mask).
const MAX_HEADER: usize = 10;
/// Close code 1000, "normal closure".
const NORMAL_CLOSURE: [u8; 2] = 1000u16.to_be_bytes();

/// What `Socket::next` hands out. The slice borrows the socket until the next call.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    Binary(&'a [u8]),
    /// Answer with `Socket::pong`, from code that is not raced against anything (a pong cut
    /// off by a `select!` would corrupt the stream).
    Ping(&'a [u8]),
}

pub struct Socket<S> {
    stream: S,
    /// Unread bytes are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented message so far: whether it is binary, and its payload.
    fragments: Option<(bool, Vec<u8>)>,
    /// The last message that was assembled from fragments, lent out by `next`.
    assembled: Vec<u8>,
    /// Client frames are masked (RFC 6455 5.3); the key only has to differ frame to frame.
    mask_keys: fastrand::Rng,
}

/// One frame header, parsed.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

/// Where a message's payload is: a range of the buffer, or the assembled fragments.
enum Payload {
    Buffer(std::ops::Range<usize>),
    Assembled,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    /// Runs the opening handshake for `path` on `host` (as the Host header) over `stream`.
    pub async fn handshake(mut stream: S, host: &str, path: &str) -> Result<Self, String> {
        let key = generate_key();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        let mut socket = Socket {
            stream,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
            fragments: None,
            assembled: Vec::new(),
            mask_keys: fastrand::Rng::new(),
        };
        let head_len = loop {
            if let Some(at) = socket.buf[..socket.end].windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if socket.end >= MAX_RESPONSE_HEAD {
                return Err(format!("no end of the response head in {MAX_RESPONSE_HEAD} bytes"));
            }
            socket.fill(socket.end + 1).await?;
        };
        let head = String::from_utf8_lossy(&socket.buf[..head_len]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or_default();
        if status.split_whitespace().nth(1) != Some("101") {
            return Err(format!("refused: {status}"));
        }
        let accept = lines.find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case("sec-websocket-accept").then(|| value.trim())
        });
        if accept != Some(derive_accept_key(key.as_bytes()).as_str()) {
            return Err(format!("bad Sec-WebSocket-Accept: {accept:?}"));
        }
        // Whatever followed the head (the server's first frames) stays in the buffer.
        socket.start = head_len;
        Ok(socket)
    }

    /// The next binary message or ping. Cancel-safe: the only await is a read whose bytes are
    /// stored before the next one, so a `select!` may drop this future at any time.
    pub async fn next(&mut self) -> Result<Incoming<'_>, String> {
        let (opcode, payload) = loop {
            let Some(header) = parse_header(&self.buf[self.start..self.end])? else {
                self.fill(MAX_HEADER).await?;
                continue;
            };
            let total = header.header_len + header.payload_len;
            if self.end - self.start < total {
                self.fill(total).await?;
                continue;
            }
            let range = self.start + header.header_len..self.start + total;
            self.start += total;
            match header.opcode {
                PING => break (PING, Payload::Buffer(range)),
                PONG => continue,
                CLOSE => return Err(close_reason(&self.buf[range])),
                TEXT | BINARY if self.fragments.is_some() => {
                    return Err("a new message inside a fragmented one".to_owned())
                }
                TEXT | BINARY if !header.fin => {
                    self.fragments = Some((header.opcode == BINARY, self.buf[range].to_vec()));
                }
                BINARY => break (BINARY, Payload::Buffer(range)),
                TEXT => continue, // not part of the y-websocket protocol
                CONTINUATION => {
                    let Some((binary, mut data)) = self.fragments.take() else {
                        return Err("a continuation frame outside a fragmented message".to_owned());
                    };
                    data.extend_from_slice(&self.buf[range]);
                    if data.len() > MAX_MESSAGE {
                        return Err(format!("a message over {MAX_MESSAGE} bytes"));
                    }
                    if !header.fin {
                        self.fragments = Some((binary, data));
                    } else if binary {
                        self.assembled = data;
                        break (BINARY, Payload::Assembled);
                    }
                }
                other => return Err(format!("unknown opcode {other:#x}")),
            }
        };
        let bytes = match payload {
            Payload::Buffer(range) => &self.buf[range],
            Payload::Assembled => &self.assembled[..],
        };
        Ok(if opcode == PING { Incoming::Ping(bytes) } else { Incoming::Binary(bytes) })
    }

    pub async fn send(&mut self, payload: &[u8]) -> Result<(), String> {
        self.send_frame(BINARY, payload).await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), String> {
        self.send_frame(PONG, payload).await
    }

    /// Sends a close frame (1000, normal closure) without waiting for the server's.
    pub async fn close(&mut self) -> Result<(), String> {
        self.send_frame(CLOSE, &NORMAL_CLOSURE).await
    }

    /// One masked, unfragmented frame, in one write.
    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), String> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = self.mask_keys.u32(..).to_be_bytes();
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        self.stream.write_all(&frame).await.map_err(|e| format!("websocket write: {e}"))
    }

    /// Reads once (whatever is there), after making room for `want` unread bytes: moves the
    /// unread bytes to the front when the end is in the way, grows only when that is not enough.
    async fn fill(&mut self, want: usize) -> Result<(), String> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if self.start + want > self.buf.len() || self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            // Never read into an empty slice: a read of 0 bytes means the peer is gone.
            let want = want.max(self.end + 1);
            if want > self.buf.len() {
                self.buf.resize(want.next_power_of_two(), 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await.map_err(|e| format!("websocket read: {e}"))?;
        if n == 0 {
            return Err("connection ended without a close frame".to_owned());
        }
        self.end += n;
        Ok(())
    }
}

/// The header at the start of `bytes`, or None if it is not all there yet.
fn parse_header(bytes: &[u8]) -> Result<Option<Header>, String> {
    let [b0, b1, ..] = *bytes else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err("a frame with RSV bits set (no extension was negotiated)".to_owned());
    }
    if b1 & 0x80 != 0 {
        return Err("a masked frame from the server".to_owned());
    }
    let (header_len, payload_len) = match b1 & 0x7f {
        126 => match bytes.get(2..4) {
            Some(len) => (4, u64::from(u16::from_be_bytes([len[0], len[1]]))),
            None => return Ok(None),
        },
        127 => match bytes.get(2..10) {
            Some(len) => (10, u64::from_be_bytes(len.try_into().expect("8 bytes"))),
            None => return Ok(None),
        },
        n => (2, u64::from(n)),
    };
    let payload_len = usize::try_from(payload_len)
        .ok()
        .filter(|&n| n <= MAX_MESSAGE)
        .ok_or_else(|| format!("a frame of {payload_len} bytes, over {MAX_MESSAGE}"))?;
    Ok(Some(Header { fin: b0 & 0x80 != 0, opcode: b0 & 0x0f, header_len, payload_len }))
}

fn close_reason(payload: &[u8]) -> String {
    match payload {
        [hi, lo, reason @ ..] => {
            format!("closed by server: {} {}", u16::from_be_bytes([*hi, *lo]), String::from_utf8_lossy(reason))
        }
        _ => "closed by server".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, DuplexStream};

    /// A server frame: unmasked.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n @ 126..=0xFFFF => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// A client socket whose handshake has been answered, and the server's end of the pipe.
    async fn connected(after_head: &[u8]) -> (Socket<DuplexStream>, DuplexStream) {
        let (client, mut server) = duplex(1 << 20);
        let server_side = async {
            let mut request = vec![0; 4096];
            let n = server.read(&mut request).await.unwrap();
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            let key = request
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .expect("a key")
                .trim()
                .to_owned();
            let mut response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
                 sec-websocket-accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            )
            .into_bytes();
            response.extend_from_slice(after_head);
            server.write_all(&response).await.unwrap();
        };
        let (socket, ()) = tokio::join!(Socket::handshake(client, "h", "/ws/d"), server_side);
        (socket.unwrap(), server)
    }

    #[tokio::test]
    async fn frames_after_the_head_and_across_reads_come_out_whole() {
        let big = vec![7u8; 70_000]; // 64-bit length, and bigger than the buffer
        let (mut socket, mut server) = connected(&frame(true, BINARY, b"first")).await;
        assert_eq!(socket.next().await.unwrap(), Incoming::Binary(b"first"));

        let mut bytes = frame(true, TEXT, b"skipped");
        bytes.extend(frame(true, PONG, b""));
        bytes.extend(frame(true, BINARY, &big));
        bytes.extend(frame(false, BINARY, b"frag"));
        bytes.extend(frame(true, PING, b"p")); // control frames may come between fragments
        bytes.extend(frame(false, CONTINUATION, b"men"));
        bytes.extend(frame(true, CONTINUATION, b"ted"));
        bytes.extend(frame(true, BINARY, &[1; 300])); // 16-bit length
        bytes.extend(frame(true, CLOSE, &[0x0f, 0xa0, b'b', b'y', b'e']));
        // One byte at a time: every partial header and payload must wait for more.
        let feeder = async {
            for b in bytes {
                server.write_all(&[b]).await.unwrap();
                tokio::task::yield_now().await;
            }
        };
        let reader = async {
            assert_eq!(socket.next().await.unwrap(), Incoming::Binary(&big[..]));
            assert_eq!(socket.next().await.unwrap(), Incoming::Ping(b"p"));
            assert_eq!(socket.next().await.unwrap(), Incoming::Binary(b"fragmented"));
            assert_eq!(socket.next().await.unwrap(), Incoming::Binary(&[1; 300]));
            assert_eq!(socket.next().await.unwrap_err(), "closed by server: 4000 bye");
        };
        tokio::join!(feeder, reader);
    }

    #[tokio::test]
    async fn client_frames_are_masked_and_decode_to_the_payload() {
        let (mut socket, mut server) = connected(b"").await;
        for len in [3, 200, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            socket.send(&payload).await.unwrap();
            let mut head = [0; 2];
            server.read_exact(&mut head).await.unwrap();
            assert_eq!(head[0], 0x80 | BINARY);
            assert_eq!(head[1] & 0x80, 0x80, "masked");
            let n = match head[1] & 0x7f {
                126 => server.read_u16().await.unwrap() as usize,
                127 => server.read_u64().await.unwrap() as usize,
                n => n as usize,
            };
            let mut mask = [0; 4];
            server.read_exact(&mut mask).await.unwrap();
            let mut body = vec![0; n];
            server.read_exact(&mut body).await.unwrap();
            body.iter_mut().zip(mask.iter().cycle()).for_each(|(b, m)| *b ^= m);
            assert_eq!(body, payload);
        }
    }

    #[tokio::test]
    async fn a_refused_upgrade_and_a_masked_server_frame_are_errors() {
        let (client, mut server) = duplex(4096);
        let refuse = server.write_all(b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\r\n");
        let (socket, _) = tokio::join!(Socket::handshake(client, "h", "/"), refuse);
        assert_eq!(socket.err().unwrap(), "refused: HTTP/1.1 503 Service Unavailable");

        let (mut socket, _server) = connected(&[0x82, 0x81, 0, 0, 0, 0, 1]).await;
        assert!(socket.next().await.is_err());
    }
}
