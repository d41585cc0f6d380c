//! What one connection may send: token buckets for bytes and for messages.
//!
//! A bucket holds up to its burst and refills at its rate; each frame takes its size from the
//! byte bucket and one from the message bucket, so a flood cannot reach the document and push
//! everyone else's outbox over its limit:
//! - more messages than the message bucket holds is a flood no person makes: the sender is
//!   closed (4429);
//! - bytes beyond the bucket are paid for by waiting: the connection is read no further until
//!   the bucket covers them (its own next messages wait, nobody else's), unless that wait would
//!   be longer than [`MAX_WAIT`], and then it is closed too.
//!
//! The byte burst is about one outbox (what a peer may have queued), so a burst cannot drop a
//! peer that keeps up. One message bigger than that (a big paste, an offline backlog, up to
//! `max_message_bytes`) still passes a full bucket and leaves it in debt, as the outbox lets one
//! oversized frame into an empty queue; the typing after it waits a little.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::Config;

/// The longest a frame may wait for its bytes: a 16 MiB paste followed by typing waits about
/// 12 s at 1 MiB/s; two of them back to back is a flood.
pub const MAX_WAIT: Duration = Duration::from_secs(15);

struct Bucket {
    tokens: f64,
    burst: f64,
    per_sec: f64,
}

impl Bucket {
    fn new(per_sec: u64, burst: u64) -> Self {
        Bucket {
            tokens: burst as f64,
            burst: burst as f64,
            per_sec: (per_sec as f64).max(1.0),
        }
    }

    fn refill(&mut self, secs: f64) {
        self.tokens = (self.tokens + secs * self.per_sec).min(self.burst);
    }

    /// How long until `amount` can be taken (zero: now; a full bucket lets any one amount go).
    fn wait_for(&self, amount: f64) -> Duration {
        if self.tokens >= amount || self.tokens >= self.burst {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((amount - self.tokens) / self.per_sec)
        }
    }
}

/// What to do with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Now,
    /// After this long (its bytes are already taken).
    After(Duration),
    /// Close the connection: it floods.
    Flood,
}

pub struct RateLimit {
    bytes: Bucket,
    messages: Bucket,
    last: Instant,
}

impl RateLimit {
    pub fn new(config: &Config, now: Instant) -> Self {
        RateLimit {
            bytes: Bucket::new(config.rate_bytes_per_sec, config.rate_burst_bytes),
            messages: Bucket::new(config.rate_messages_per_sec, config.rate_burst_messages),
            last: now,
        }
    }

    /// Takes one frame of `len` bytes arriving at `now`.
    pub fn admit(&mut self, len: usize, now: Instant) -> Verdict {
        let secs = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.bytes.refill(secs);
        self.messages.refill(secs);
        let len = len as f64;
        if self.messages.tokens < 1.0 {
            return Verdict::Flood;
        }
        let wait = self.bytes.wait_for(len);
        if wait > MAX_WAIT {
            return Verdict::Flood;
        }
        self.messages.tokens -= 1.0;
        self.bytes.tokens -= len;
        if wait.is_zero() {
            Verdict::Now
        } else {
            Verdict::After(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(now: Instant) -> RateLimit {
        let config = Config {
            rate_bytes_per_sec: 100,
            rate_burst_bytes: 1000,
            rate_messages_per_sec: 10,
            rate_burst_messages: 20,
            ..Config::default()
        };
        RateLimit::new(&config, now)
    }

    #[test]
    fn a_burst_passes_then_bytes_wait_for_the_rate() {
        let start = Instant::now();
        let mut rate = limit(start);
        assert_eq!(rate.admit(1000, start), Verdict::Now, "the whole byte burst at once");
        assert_eq!(rate.admit(100, start), Verdict::After(Duration::from_secs(1)));
        // Read again only after that second: then it is paid for.
        assert_eq!(rate.admit(100, start + Duration::from_secs(2)), Verdict::Now);
    }

    #[test]
    fn one_message_bigger_than_the_burst_passes_a_full_bucket_and_is_paid_back() {
        let start = Instant::now();
        let mut rate = limit(start);
        assert_eq!(rate.admit(2000, start), Verdict::Now, "a full bucket takes one big message");
        assert_eq!(rate.admit(10, start), Verdict::After(Duration::from_secs_f64(10.1)), "1000 bytes of debt at 100/s");
        assert_eq!(rate.admit(2000, start), Verdict::Flood, "another big one would wait too long");
    }

    #[test]
    fn a_flood_of_messages_is_closed() {
        let start = Instant::now();
        let mut rate = limit(start);
        for _ in 0..20 {
            assert_eq!(rate.admit(1, start), Verdict::Now);
        }
        assert_eq!(rate.admit(1, start), Verdict::Flood, "21 messages at once");
    }

    #[test]
    fn sending_at_the_rate_goes_on_forever() {
        let start = Instant::now();
        let mut rate = limit(start);
        for i in 1..10_000u64 {
            assert_eq!(rate.admit(10, start + Duration::from_millis(100 * i)), Verdict::Now, "message {i}");
        }
    }
}
