//! A hostile connection: sends one mutated frame, then a sync step 1 that every server answers
//! in order, and learns the frame's fate from what comes back: the answer (the frame was taken
//! whole) or a close frame (refused, and why). A refused connection is opened again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use quire_model::protocol::{self, Inbound};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::sync::{Message, SyncMessage};
use yrs::StateVector;

use super::corpus::Corpus;
use super::mutate::{Mutant, Mutator};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a frame's fate may take: the longest wait the server may impose is a client-id
/// probe (3 s by default) behind a durable flush. Past this the server stopped answering.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Failures kept whole (with the frame's bytes) for the report.
const KEPT: usize = 20;

/// What the workers share.
pub struct Shared {
    pub corpus: Arc<Corpus>,
    pub addr: std::net::SocketAddr,
    /// Documents the hostile connections join, each time one at random.
    pub docs: Vec<String>,
    pub seed: u64,
    pub frames: u64,
    /// Frames taken so far, over all workers.
    pub taken: AtomicU64,
    pub progress: Arc<super::Progress>,
    pub max_message_bytes: usize,
    /// Print every frame and its fate on stderr (`frame`, document, kind, fate, hex; tab-separated).
    pub dump: bool,
    pub tally: Mutex<Tally>,
}

#[derive(Default)]
pub struct Tally {
    /// kind → (sent, accepted).
    pub kinds: BTreeMap<&'static str, (u64, u64)>,
    /// "code reason" → frames refused so.
    pub refused: BTreeMap<String, u64>,
    /// Connections that ended without a close frame, or could not open.
    pub lost: BTreeMap<String, u64>,
    /// Frames the server neither answered nor refused in time, and frames that made it fail
    /// (1011): kind, code/reason and the frame, in hex.
    pub failures: Vec<String>,
    pub internal_errors: u64,
    pub unanswered: u64,
    /// Document → `impostor` frames it took (see `rust/neighbours.rs`).
    pub impostors: BTreeMap<String, u64>,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        for (kind, (sent, accepted)) in other.kinds {
            let mine = self.kinds.entry(kind).or_default();
            mine.0 += sent;
            mine.1 += accepted;
        }
        for (reason, n) in other.refused {
            *self.refused.entry(reason).or_default() += n;
        }
        for (reason, n) in other.lost {
            *self.lost.entry(reason).or_default() += n;
        }
        self.failures.extend(other.failures);
        self.failures.truncate(KEPT);
        self.internal_errors += other.internal_errors;
        self.unanswered += other.unanswered;
        for (doc, n) in other.impostors {
            *self.impostors.entry(doc).or_default() += n;
        }
    }
}

enum Fate {
    Accepted,
    Refused(u16, String),
    Lost(String),
    Unanswered,
}

/// Sends hostile frames until `shared.frames` have been taken.
pub async fn run(worker: u64, shared: Arc<Shared>) {
    // One stream per worker; the golden-ratio multiplier spreads neighbouring workers apart.
    let seed = shared.seed ^ worker.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut mutator = Mutator::new(&shared.corpus, seed, shared.max_message_bytes);
    let mut pick = fastrand::Rng::with_seed(seed.rotate_left(17));
    'connections: loop {
        let doc = &shared.docs[pick.usize(..shared.docs.len())];
        let Some((mut socket, server_sv)) = open(&shared, doc).await else {
            if shared.taken.load(Relaxed) >= shared.frames {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.progress.connections.fetch_add(1, Relaxed);
        let probe = probe(&server_sv);
        loop {
            if shared.taken.fetch_add(1, Relaxed) >= shared.frames {
                let _ = socket.close(None).await;
                return;
            }
            shared.progress.sent.fetch_add(1, Relaxed);
            let mutant = mutator.next(&server_sv);
            let fate = send(&mut socket, &mutant, &probe).await;
            let ended = !matches!(fate, Fate::Accepted);
            record(&shared, &mutant, doc, fate);
            if ended {
                continue 'connections;
            }
        }
    }
}

/// Connects and reads the server's sync step 1 (its state vector).
async fn open(shared: &Shared, doc: &str) -> Option<(Socket, StateVector)> {
    let url = format!("ws://{}/ws/{doc}", shared.addr);
    let opened = tokio::time::timeout(ANSWER_TIMEOUT, async {
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.map_err(|e| e.to_string())?;
        while let Some(frame) = socket.next().await {
            if let Ok(WsMessage::Binary(bytes)) = frame {
                if let Ok(messages) = protocol::decode_frame(&bytes) {
                    for message in messages {
                        if let Message::Sync(SyncMessage::SyncStep1(sv)) = message {
                            return Ok((socket, sv));
                        }
                    }
                }
            }
        }
        Err("closed before its sync step 1".to_owned())
    })
    .await;
    match opened {
        Ok(Ok(opened)) => Some(opened),
        Ok(Err(error)) => {
            *shared.tally.lock().unwrap().lost.entry(format!("connect: {error}")).or_default() += 1;
            None
        }
        Err(_) => {
            *shared.tally.lock().unwrap().lost.entry("connect: timed out".into()).or_default() += 1;
            None
        }
    }
}

/// A sync step 1 claiming far more than the server has: its answer is small (no items, the
/// delete set) whatever the document holds.
fn probe(server: &StateVector) -> Vec<u8> {
    let ahead = server.iter().map(|(&client, &clock)| (client, clock.saturating_add(1 << 30))).collect();
    protocol::encode(&Message::Sync(SyncMessage::SyncStep1(StateVector::new(ahead))))
}

/// How many sync step 1s the server will answer for `frame`: as many as it holds if the server
/// reads it at all (reading is all or nothing, and the same function on both ends).
fn questions(mutant: &Mutant) -> usize {
    if mutant.text {
        return 0;
    }
    match protocol::decode_inbound(&mutant.bytes) {
        Ok(messages) => messages.iter().filter(|m| matches!(m, Inbound::StateVector(_))).count(),
        Err(_) => 0,
    }
}

async fn send(socket: &mut Socket, mutant: &Mutant, probe: &[u8]) -> Fate {
    let frame = if mutant.text {
        WsMessage::Text(String::from_utf8_lossy(&mutant.bytes).into_owned().into())
    } else {
        WsMessage::Binary(mutant.bytes.clone().into())
    };
    let expected = questions(mutant) + 1;
    let exchange = async {
        // A send may fail because the server closed already: its close frame is still read.
        let _ = socket.send(frame).await;
        let _ = socket.send(WsMessage::Binary(probe.to_vec().into())).await;
        let mut answers = 0;
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(WsMessage::Binary(bytes)) if bytes.starts_with(&[0, 1]) => {
                    answers += 1;
                    if answers == expected {
                        return Fate::Accepted;
                    }
                }
                Ok(WsMessage::Close(Some(close))) => return Fate::Refused(close.code.into(), close.reason.to_string()),
                Ok(WsMessage::Close(None)) => return Fate::Refused(1005, String::new()),
                Ok(_) => {}
                Err(error) => return Fate::Lost(error.to_string()),
            }
        }
        Fate::Lost("ended without a close frame".into())
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange).await.unwrap_or(Fate::Unanswered)
}

fn record(shared: &Shared, mutant: &Mutant, doc: &str, fate: Fate) {
    if shared.dump {
        let fate = match &fate {
            Fate::Accepted => "accepted".to_owned(),
            Fate::Refused(code, reason) => format!("{code} {reason}"),
            Fate::Lost(error) => error.clone(),
            Fate::Unanswered => "unanswered".into(),
        };
        eprintln!("frame\t{doc}\t{}\t{fate}\t{}", mutant.kind, hex(&mutant.bytes));
    }
    let mut tally = shared.tally.lock().unwrap();
    let kind = tally.kinds.entry(mutant.kind).or_default();
    kind.0 += 1;
    match fate {
        Fate::Accepted => {
            kind.1 += 1;
            if mutant.kind == "impostor" {
                *tally.impostors.entry(doc.to_owned()).or_default() += 1;
            }
        }
        Fate::Refused(code, reason) => {
            if code == 1011 {
                tally.internal_errors += 1;
                keep(&mut tally, format!("{doc}: {} frame closed with 1011 {reason}: {}", mutant.kind, hex(&mutant.bytes)));
            }
            *tally.refused.entry(format!("{code} {}", normalize(&reason))).or_default() += 1;
        }
        Fate::Lost(error) => *tally.lost.entry(normalize(&error)).or_default() += 1,
        Fate::Unanswered => {
            tally.unanswered += 1;
            keep(&mut tally, format!("{doc}: {} frame neither answered nor refused in {ANSWER_TIMEOUT:?}: {}", mutant.kind, hex(&mutant.bytes)));
        }
    }
}

fn keep(tally: &mut Tally, failure: String) {
    if tally.failures.len() < KEPT {
        tally.failures.push(failure);
    }
}

/// A reason without the numbers in it, and cut short, so that refusals group by cause (the
/// server cuts reasons at 123 bytes, wherever that falls).
fn normalize(reason: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in reason.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out.chars().take(90).collect()
}

/// At most 4 KiB of a frame, in hex.
pub fn hex(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(4096).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 4096 {
        format!("{shown}… ({} bytes)", bytes.len())
    } else {
        shown
    }
}

