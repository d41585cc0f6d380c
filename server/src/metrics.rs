//! What the server counts, exported in Prometheus text format at `/metrics`.
//!
//! Every metric is an atomic inside `prometheus-client`, so recording one never takes a lock
//! on the hot path.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub struct Metrics {
    pub sockets_open: Gauge,
    pub sockets_refused: Counter,
    pub address_refused: Counter,
    pub header_timeouts: Counter,
    pub connections_open: Gauge,
    pub connections_rejected: Counter,
    pub documents_live: Gauge,
    pub converting_bytes: Gauge,
    pub documents_refused: Counter,
    pub updates_received: Counter,
    pub updates_broadcast: Counter,
    pub messages_rejected: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub clients_dropped_slow: Counter,
    pub clients_dropped_fast: Counter,
    pub client_id_conflicts: Counter,
    pub flush_seconds: Histogram,
    pub flush_batch_updates: Histogram,
    pub flush_failures: Counter,
    pub compactions: Counter,
    pub versions_taken: Counter,
    pub version_seconds: Histogram,
    pub documents_not_saving: Counter,
    pub save_retries: Counter,
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics {
            sockets_open: Gauge::default(),
            sockets_refused: Counter::default(),
            address_refused: Counter::default(),
            header_timeouts: Counter::default(),
            connections_open: Gauge::default(),
            connections_rejected: Counter::default(),
            documents_live: Gauge::default(),
            converting_bytes: Gauge::default(),
            documents_refused: Counter::default(),
            updates_received: Counter::default(),
            updates_broadcast: Counter::default(),
            messages_rejected: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            clients_dropped_slow: Counter::default(),
            clients_dropped_fast: Counter::default(),
            client_id_conflicts: Counter::default(),
            // 100 µs .. ~1.6 s: an fsync on a quiet SSD to one on a struggling disk.
            flush_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            // 1 .. 16384 updates per group commit.
            flush_batch_updates: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            flush_failures: Counter::default(),
            compactions: Counter::default(),
            versions_taken: Counter::default(),
            // 1 ms .. ~16 s: a small document's version to a big one's on a busy machine.
            version_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            documents_not_saving: Counter::default(),
            save_retries: Counter::default(),
            registry: Registry::default(),
        };
        m.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "quire_sockets_open",
            "Open sockets of every kind: HTTP, WebSocket, and those still sending their request head",
            self.sockets_open.clone(),
        );
        r.register(
            "quire_sockets_refused",
            "Sockets answered 503 and closed because max_sockets were open",
            self.sockets_refused.clone(),
        );
        r.register(
            "quire_address_refused",
            "Sockets, or requests through a trusted proxy, refused (429) at max_per_address",
            self.address_refused.clone(),
        );
        r.register(
            "quire_header_timeouts",
            "Sockets closed because no request head arrived within header_read_timeout",
            self.header_timeouts.clone(),
        );
        r.register("quire_connections_open", "Open WebSocket connections", self.connections_open.clone());
        r.register(
            "quire_connections_rejected",
            "WebSocket upgrades refused at the connection limit",
            self.connections_rejected.clone(),
        );
        r.register("quire_documents_live", "Documents loaded in memory", self.documents_live.clone());
        r.register(
            "quire_converting_bytes",
            "Bytes of input in conversions under way (imports, exports; at most max_converting_bytes)",
            self.converting_bytes.clone(),
        );
        r.register(
            "quire_documents_refused",
            "Documents not opened because max_live_docs were in memory",
            self.documents_refused.clone(),
        );
        r.register("quire_updates_received", "Document updates received from clients", self.updates_received.clone());
        r.register(
            "quire_updates_broadcast",
            "Document updates queued to clients (one per recipient)",
            self.updates_broadcast.clone(),
        );
        r.register(
            "quire_messages_rejected",
            "Malformed or unappliable messages (their connection was closed)",
            self.messages_rejected.clone(),
        );
        r.register("quire_bytes_in", "WebSocket payload bytes received", self.bytes_in.clone());
        r.register("quire_bytes_out", "WebSocket payload bytes sent", self.bytes_out.clone());
        r.register(
            "quire_clients_dropped_slow",
            "Connections closed because they could not keep up",
            self.clients_dropped_slow.clone(),
        );
        r.register(
            "quire_clients_dropped_fast",
            "Clients closed for sending faster than their rate limit",
            self.clients_dropped_fast.clone(),
        );
        r.register(
            "quire_client_id_conflicts",
            "Connections closed for writing under a client id another live connection uses",
            self.client_id_conflicts.clone(),
        );
        r.register("quire_flush_seconds", "Latency of one durable flush (group commit)", self.flush_seconds.clone());
        r.register(
            "quire_flush_batch_updates",
            "Updates made durable by one flush",
            self.flush_batch_updates.clone(),
        );
        r.register("quire_flush_failures", "Flushes that failed", self.flush_failures.clone());
        r.register("quire_compactions", "Document logs compacted into a snapshot", self.compactions.clone());
        r.register("quire_versions_taken", "Versions written to the store (automatic, named and restores)", self.versions_taken.clone());
        r.register(
            "quire_version_seconds",
            "Taking a version: reading the stored document, encoding, compressing and writing it (off the document task)",
            self.version_seconds.clone(),
        );
        r.register(
            "quire_documents_not_saving",
            "Times a document stopped taking edits because the store refused a write",
            self.documents_not_saving.clone(),
        );
        r.register(
            "quire_save_retries",
            "Attempts to write a document the store had refused",
            self.save_retries.clone(),
        );
        self
    }

    /// The Prometheus text exposition of every metric.
    /// Where a component with metrics of its own (the store) registers them.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
