//! What the clients of one run count, shared by all of them.
//!
//! Counters are atomics and the histogram sits behind a std `Mutex` held for one `record`
//! (never across `.await`): at the target load that is ~36,000 short, uncontended locks a second
//! (one runtime thread, see main.rs), and one histogram instead of 10,000 keeps memory flat.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Latencies above this are clamped: a minute is far past any grace period.
const MAX_LATENCY_US: u64 = 60_000_000;
/// Three significant digits: 0.1% resolution, the usual choice for latency percentiles.
const SIGNIFICANT_DIGITS: u8 = 3;

pub struct Stats {
    /// Send timestamps inside edits are microseconds since this instant (one process, one clock).
    base: Instant,
    pub synced: AtomicUsize,
    /// Microseconds from the start of the connect phase to the latest sync, so far.
    last_synced_us: AtomicU64,
    pub failed: AtomicUsize,
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    /// Updates without a stamp, or stamps no writer of the document sent (should stay 0: a
    /// server that invents or mangles updates).
    pub foreign: AtomicU64,
    /// Stamps that were not newer than the last one from their writer at that client: delivered
    /// twice or out of order (should stay 0). Not counted as deliveries.
    pub repeated: AtomicU64,
    /// A writer's own stamps sent back to it (y-websocket echoes every update to its sender;
    /// quire does not). Not deliveries: the writer had it already.
    pub echoes: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
    /// The same, split: deliveries to the clients of the first document (the one `--attack
    /// flood` floods), and to everyone else.
    latency_first_doc_us: Mutex<Histogram<u64>>,
    latency_other_docs_us: Mutex<Histogram<u64>>,
    /// How late writers sent their keystrokes against their schedule: loadgen's own lateness
    /// when the machine is saturated. Latency is measured from the actual send, so this is the
    /// part of the story the latency columns do not tell.
    send_lag_us: Mutex<Histogram<u64>>,
    /// Why clients failed before they were synced, by reason.
    connect_errors: Mutex<BTreeMap<String, u64>>,
    /// Why synced clients lost their connection before the end, by reason.
    disconnects: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Stats {
            base: Instant::now(),
            synced: AtomicUsize::new(0),
            last_synced_us: AtomicU64::new(0),
            failed: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            repeated: AtomicU64::new(0),
            echoes: AtomicU64::new(0),
            latency_us: Mutex::new(histogram.clone()),
            latency_first_doc_us: Mutex::new(histogram.clone()),
            latency_other_docs_us: Mutex::new(histogram.clone()),
            send_lag_us: Mutex::new(histogram),
            connect_errors: Mutex::new(BTreeMap::new()),
            disconnects: Mutex::new(BTreeMap::new()),
        }
    }

    /// The timestamp a writer embeds in an edit.
    pub fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    pub fn record_synced(&self, connect_started: Instant) {
        let us = connect_started.elapsed().as_micros() as u64;
        self.last_synced_us.fetch_max(us, Relaxed);
        self.synced.fetch_add(1, Relaxed);
    }

    /// Time from the start of the connect phase until the last client synced.
    pub fn all_synced_after(&self) -> Duration {
        Duration::from_micros(self.last_synced_us.load(Relaxed))
    }

    /// One edit reached one client: `sent_us` is the stamp its writer embedded, `now_us` when
    /// the frame carrying it was read (one clock reading per frame), at a client of the first
    /// document or another.
    pub fn record_delivery(&self, sent_us: u64, now_us: u64, first_doc: bool) {
        let latency = now_us.saturating_sub(sent_us);
        self.delivered.fetch_add(1, Relaxed);
        lock(&self.latency_us).saturating_record(latency);
        let split = if first_doc { &self.latency_first_doc_us } else { &self.latency_other_docs_us };
        lock(split).saturating_record(latency);
    }

    pub fn record_send_lag(&self, lag: Duration) {
        lock(&self.send_lag_us).saturating_record(lag.as_micros() as u64);
    }

    pub fn record_connect_error(&self, reason: String) {
        self.failed.fetch_add(1, Relaxed);
        *lock(&self.connect_errors).entry(reason).or_default() += 1;
    }

    pub fn record_disconnect(&self, reason: String) {
        *lock(&self.disconnects).entry(reason).or_default() += 1;
    }

    pub fn latency(&self) -> Percentiles {
        summary(&lock(&self.latency_us))
    }

    /// Deliveries at the first document's clients, and at the others'.
    pub fn latency_split(&self) -> (Percentiles, Percentiles) {
        (summary(&lock(&self.latency_first_doc_us)), summary(&lock(&self.latency_other_docs_us)))
    }

    pub fn send_lag(&self) -> Percentiles {
        summary(&lock(&self.send_lag_us))
    }

    pub fn connect_errors(&self) -> BTreeMap<String, u64> {
        lock(&self.connect_errors).clone()
    }

    pub fn disconnects(&self) -> BTreeMap<String, u64> {
        lock(&self.disconnects).clone()
    }
}

fn summary(h: &Histogram<u64>) -> Percentiles {
    Percentiles { p50_us: h.value_at_quantile(0.50), p99_us: h.value_at_quantile(0.99), max_us: h.max() }
}

/// A distribution in microseconds, as the table shows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// A panic while holding one of these locks leaves plain counters behind: still worth reporting.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
