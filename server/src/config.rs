//! Every limit and interval of the server, in one place.

use std::path::PathBuf;
use std::time::Duration;

use crate::listen::Cidr;

/// Server configuration. `Config::default()` is what `quire serve` runs with unless told otherwise.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the sled store lives.
    pub data_dir: PathBuf,
    /// The built web app (`cargo xtask web` writes `web/dist`), served at `/` and `/d/{doc}`.
    /// If it is missing the server still serves the API and sync, and says so at startup.
    pub web_dir: PathBuf,
    /// Where people reach this server (`https://docs.example.com`), for the share links it
    /// hands out; without it, the host each request was sent to.
    pub public_url: Option<String>,
    /// Origins besides the server's own whose pages may use the owner's browser session (an
    /// app that embeds quire's pages on another host).
    pub allowed_origins: Vec<String>,
    /// A second address that serves `/metrics` (and `/healthz`) without credentials, for
    /// monitoring on an internal network; on the main address `/metrics` is the owner's.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Writes stop (documents take no edits, clients keep theirs and retry) while the store's
    /// disk has less than this free, and resume once it has: sled must never meet a full disk.
    /// Room for sled's own log segments and a few largest messages.
    pub min_free_disk_bytes: u64,
    /// sled's page cache. Its own default is 1 GiB, far more than a document server on a small
    /// machine should hold; the working set is the live documents, which are in memory anyway.
    pub cache_capacity_bytes: u64,

    /// Largest WebSocket message accepted; a bigger one closes that connection (1009).
    pub max_message_bytes: usize,
    /// Bytes a connection may have queued for sending before it is dropped as too slow.
    /// 4 MiB holds a large document's initial sync plus a backlog of live updates.
    pub outbox_bytes: usize,
    /// Messages a connection may have queued, whatever their size.
    pub outbox_messages: usize,
    /// tungstenite's read buffer per socket. Its default, 128 KiB, would cost 1.3 GB at 10k
    /// sockets. An update frame is typically under 200 bytes, and once a frame's header is read
    /// tungstenite reserves the frame's full length anyway, so big frames do not crawl in.
    /// 4 KiB → 1 KiB took the 10k-connection benchmark's peak from 155 MB to 127 MB.
    pub socket_read_buffer: usize,
    /// tungstenite's write buffer per socket before a flush is forced (each frame is flushed
    /// at once by the writer anyway, so this only sizes the buffer).
    pub socket_write_buffer: usize,
    /// How often the server pings each client.
    pub ping_interval: Duration,
    /// A client that sends nothing (not even a pong) for this long is disconnected.
    pub idle_connection_timeout: Duration,
    /// How long a close frame may take to go out before the socket is simply dropped.
    pub close_timeout: Duration,
    /// Connections the kernel holds for `accept` (see [`listen::bind`](crate::listen::bind)).
    pub listen_backlog: u32,
    /// Most WebSocket connections at once; past it the upgrade is answered 503 + Retry-After.
    /// A part of `max_sockets` (each WebSocket is a socket too): keep it below, so that the
    /// rest stays free for the API, `/healthz`, `/metrics`, and for the 503 itself.
    pub max_connections: usize,
    /// Most open sockets at once, of every kind: HTTP requests, idle keep-alive connections,
    /// WebSockets, and sockets still sending their request head. Past it a new socket is
    /// answered 503 + Retry-After and closed (see `listen`).
    pub max_sockets: usize,
    /// Most sockets one client address may hold open; past it a new one is answered 429 +
    /// Retry-After and closed. Through a trusted proxy, it counts the requests and WebSockets
    /// of each forwarded client address instead (the proxy's own sockets are not capped). An
    /// IPv6 client counts by its /64. 0 = no cap.
    pub max_per_address: usize,
    /// How long a client may take to send a request's head (request line and headers), counted
    /// from when the server starts waiting for it; also how long an idle keep-alive connection
    /// is kept. Past it the socket is closed: a client that sends its headers a byte a minute
    /// would otherwise hold its socket forever.
    pub header_read_timeout: Duration,
    /// How long a request body may take before it must have arrived at `body_min_rate`: it
    /// gets this, plus a second for every `body_min_rate` bytes it delivers. Past it the request
    /// is answered 408 and its socket closed (see `http::pace`).
    pub body_read_timeout: Duration,
    /// Bytes per second a request body must keep up after `body_read_timeout`.
    pub body_min_rate: u64,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDR blocks of the reverse
    /// proxies in front of quire). Empty: the header is ignored, the peer is the client.
    pub trusted_proxies: Vec<Cidr>,
    /// How long in-flight HTTP requests get to finish once shutdown begins.
    pub shutdown_grace: Duration,

    /// Most documents in memory at once; opening one more is refused (503 + Retry-After)
    /// until an idle one unloads. A live document costs its content plus ~10 KB; 50,000 idle
    /// ones fit in a few hundred MB.
    pub max_live_docs: usize,
    /// Threads for work whose cost grows with its input (big updates, compactions, loads), so
    /// it never holds a runtime thread; as many again for conversions (imports, exports),
    /// which take seconds and must not hold up a document's own work. One per core but one
    /// (at least one): heavy work never has every core while editors wait for theirs.
    pub heavy_workers: usize,
    /// Commands a document task may have queued.
    pub doc_channel_capacity: usize,
    /// Bytes of client messages a document task may have queued; a connection whose message
    /// does not fit waits (its socket is read no further) until the task catches up. At
    /// least `max_message_bytes`, or the largest message could never be queued.
    pub doc_queue_bytes: usize,
    /// Largest document, as stored (snapshot and log); an edit that would make it bigger is
    /// refused (close 4413, HTTP 413). 64 MiB is ~30 million characters of plain text, far
    /// beyond any document people write together, and what a browser can still hold.
    pub max_doc_bytes: u64,
    /// Largest presence state (one client's awareness JSON): a name, a colour and a caret
    /// take ~300 bytes; more is someone filling everyone's memory and bandwidth.
    pub max_presence_bytes: usize,
    /// What one connection may send, sustained and in a burst: bytes per second...
    pub rate_bytes_per_sec: u64,
    pub rate_burst_bytes: u64,
    /// ...and messages per second. Typing with presence is ~30 messages/s at most; a burst
    /// covers reconnecting with a backlog. Past these a sender waits, or is closed (4429) if it
    /// floods (see ws/rate.rs): one flooder must not starve everyone else on the document.
    pub rate_messages_per_sec: u64,
    pub rate_burst_messages: u64,
    /// When a connection writes under a client id another open connection announced, that one
    /// is asked a question it always answers; if no answer comes within this, it is taken
    /// for dead (the same client reconnected before its old socket timed out) and replaced.
    pub client_id_probe: Duration,
    /// A document with no connections for this long is written out and dropped from memory.
    pub idle_unload: Duration,
    /// Compact a document's log into one snapshot after this many appended updates...
    pub compact_after_updates: u64,
    /// ...or once the log holds more bytes than both this and the last snapshot. Tying it to
    /// the snapshot keeps the cost amortised (a big document is rewritten only after as many
    /// bytes of edits) and loading proportional to the document's size, not its history.
    pub compact_after_bytes: u64,
    /// Extra wait before each group-commit flush, to gather more updates per fsync.
    /// 0 = flush as soon as the previous flush ends.
    pub flush_delay: Duration,

    /// An automatic version is taken this long after the last change of a burst of editing...
    pub version_settle: Duration,
    /// ...and, while editing goes on, at least this long after the first change since the
    /// last version...
    pub version_max_interval: Duration,
    /// ...or once this many updates came in since it, whichever is first.
    pub version_max_updates: u64,
    /// Every automatic version younger than this is kept...
    pub versions_keep_all: Duration,
    /// ...then the newest of each hour until this age, then the newest of each day. Named
    /// versions are kept until someone deletes them.
    pub versions_hourly: Duration,
    /// Named versions a document may have: each keeps a whole state and is never thinned.
    pub max_named_versions: usize,
    /// Bytes of input being converted at once (imports, exports of text formats), server-wide.
    /// A conversion takes memory in proportion to its input (a 16 MiB Markdown import peaks
    /// at 1.2-1.5 GB), so this, not the number of cores, bounds what conversions take: 32 MiB
    /// is two imports at the body limit at a time. A bigger input waits for room.
    pub max_converting_bytes: u64,
}

impl Config {
    pub fn version_policy(&self) -> crate::doc::versions::Policy {
        crate::doc::versions::Policy {
            settle: self.version_settle,
            max_interval: self.version_max_interval,
            max_updates: self.version_max_updates.max(1),
        }
    }

    pub fn version_thinning(&self) -> crate::doc::versions::Thinning {
        crate::doc::versions::Thinning {
            keep_all_for: self.versions_keep_all,
            hourly_for: self.versions_hourly,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./quire-data"),
            web_dir: PathBuf::from("./web/dist"),
            public_url: None,
            allowed_origins: Vec::new(),
            metrics_addr: None,
            cache_capacity_bytes: 32 * 1024 * 1024,
            min_free_disk_bytes: 128 * 1024 * 1024,
            max_message_bytes: 16 * 1024 * 1024,
            outbox_bytes: 4 * 1024 * 1024,
            outbox_messages: 4096,
            socket_read_buffer: 1024,
            socket_write_buffer: 1024,
            // y-websocket's own server pings every 30 s; clients give up after 30 s of silence
            // and renew awareness every 15 s, so 15 s keeps proxies and NATs from idling us out.
            ping_interval: Duration::from_secs(15),
            idle_connection_timeout: Duration::from_secs(45),
            close_timeout: Duration::from_secs(1),
            // Linux's own cap (net.core.somaxconn) since 5.4. At 128, tokio's default, 5,000
            // half-open sockets opened 200 at a time took 9 s to connect (2,335 SYNs dropped and
            // retried after 1 s), and every real client connecting meanwhile waited as long; a
            // crowd of y-websocket clients reconnecting after a restart is the same burst.
            listen_backlog: 4096,
            // The soft file limit here is 20,000; leave room for the store and HTTP clients.
            max_connections: 16_000,
            // The WebSockets plus 2,000 for API requests, keep-alive connections and sockets
            // still sending their head, still under the 20,000 file limit: the last 2,000
            // descriptors are sled's files, the refusals themselves (a refused socket is open
            // for the moment it takes to answer it) and the runtime's own.
            max_sockets: 18_000,
            // A company behind one NAT: 1,000 people with four documents open each stay under
            // it; one address alone still cannot take more than 4,000 of the 18,000 sockets.
            // Larger crowds behind one address (carrier-grade NAT, a campus) need a higher cap
            // or a trusted proxy that forwards their addresses.
            max_per_address: 4_000,
            // A request head is under a kilobyte: on a slow mobile link it arrives within a
            // few round trips; 10 s leaves room for retransmissions (RTO 1 s, 2 s, 4 s) and
            // keeps a silent socket for a tenth of what nginx would (client_header_timeout
            // 60 s). Idle keep-alive connections close after it too (Apache: 5 s).
            header_read_timeout: Duration::from_secs(10),
            // Apache's mod_reqtimeout defaults (body=20,MinRate=500): a 16 MiB import may take
            // nine hours at 500 B/s; a body that stalls holds its socket for 20 s at most.
            body_read_timeout: Duration::from_secs(20),
            body_min_rate: 500,
            trusted_proxies: Vec::new(),
            shutdown_grace: Duration::from_secs(10),
            max_live_docs: 50_000,
            heavy_workers: std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
            doc_channel_capacity: 1024,
            doc_queue_bytes: 64 * 1024 * 1024,
            max_doc_bytes: 64 * 1024 * 1024,
            max_presence_bytes: 8 * 1024,
            // Far more than typing sustained; a burst of one outbox, so that a burst cannot drop
            // a peer that keeps up (see ws/rate.rs for the one bigger message it lets through).
            rate_bytes_per_sec: 1024 * 1024,
            rate_burst_bytes: 4 * 1024 * 1024,
            rate_messages_per_sec: 100,
            // Ten seconds' worth.
            rate_burst_messages: 1000,
            // Several round trips of a slow mobile link.
            client_id_probe: Duration::from_secs(3),
            idle_unload: Duration::from_secs(30),
            compact_after_updates: 1000,
            // Small documents fold every few hundred keystrokes: a thousand live documents then
            // keep at most ~16 MB of log between them.
            compact_after_bytes: 16 * 1024,
            flush_delay: Duration::ZERO,
            // A pause to think is shorter than five minutes; a session's end, longer. Versions
            // then mark the sessions, as Google Docs' do.
            version_settle: Duration::from_secs(5 * 60),
            // A long session still leaves a version every half hour: a morning of writing is
            // a handful of entries, each small enough to read as a change.
            version_max_interval: Duration::from_secs(30 * 60),
            // A flood of updates (a script, a bulk import in pieces) is versioned at once:
            // typing sends 3-5 updates a second, so people reach the interval first.
            version_max_updates: 5_000,
            // A day of everything, a month of hours, then days (see doc/versions.rs).
            versions_keep_all: Duration::from_secs(24 * 3600),
            versions_hourly: Duration::from_secs(30 * 24 * 3600),
            // Google Docs' limit: a person naming versions by hand stays far below it.
            max_named_versions: 40,
            max_converting_bytes: 32 * 1024 * 1024,
        }
    }
}
