//! Folding a document's stream into its snapshot: one process at a time, under a lease.
//!
//! The lease is a Redis key that expires, so a process that dies holding it does not block the
//! document forever; and so a process that was merely paused (a long GC-free stall is still a
//! stall: swapping, a stopped VM) may wake up believing it still holds it. Each lease therefore
//! takes a fencing token, the next value of the document's counter, and both writes of a fold
//! check it: PostgreSQL keeps a snapshot only over one with an older token, and the stream is
//! trimmed only while no newer token was taken. A fold reads where the stored snapshot is and
//! writes only past it; the token is what makes that read still true at the write.

use std::time::Duration;

use quire_model::DocId;

use super::conn::Conn;
use super::postgres::Postgres;
use super::stream::{self, Keys};
use crate::store::{Seq, StoreError};

/// Takes the lease if it is free, and a token with it (nil if another process holds it).
const ACQUIRE: &str = "
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    local fence = redis.call('INCR', KEYS[2])
    redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
    return fence
end
return false";

/// Trims the stream up to the folded position, unless a newer token was taken meanwhile.
const TRIM: &str = "
if tonumber(redis.call('GET', KEYS[1])) ~= tonumber(ARGV[1]) then return 0 end
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
return 1";

/// Gives the lease back if it is still ours.
const RELEASE: &str = "
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// What became of a fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    /// The snapshot is stored (and the stream trimmed up to it, unless a newer lease holder
    /// took over meanwhile: then it trims).
    Written,
    /// The stored snapshot already covers this position: nothing to do.
    Behind,
    /// A newer lease holder wrote while this one worked (its lease expired): nothing was
    /// written.
    Fenced,
}

/// A fold in progress: the lease is held, and the stored snapshot was older than `upto`.
pub struct Fold {
    doc: DocId,
    keys: Keys,
    /// The lease key's value: ours, as long as it holds this.
    holder: String,
    fence: i64,
    upto: Seq,
}

impl Fold {
    /// Takes the lease of `doc` and checks that a snapshot covering `upto` is news. `None`:
    /// another process is folding, or the stored snapshot is at least as recent.
    pub async fn begin(
        conn: &Conn,
        pg: &Postgres,
        process: &str,
        doc: &DocId,
        upto: Seq,
        ttl: Duration,
    ) -> Result<Option<Fold>, StoreError> {
        let keys = Keys::of(doc);
        let fence: Option<i64> = conn
            .cmd(
                redis::cmd("EVAL")
                    .arg(ACQUIRE)
                    .arg(2)
                    .arg(&keys.lease)
                    .arg(&keys.fence)
                    .arg(process)
                    .arg(ttl.as_millis() as u64),
            )
            .await?;
        let Some(fence) = fence else { return Ok(None) };
        let fold = Fold {
            doc: doc.clone(),
            holder: format!("{process}:{fence}"),
            keys,
            fence,
            upto,
        };
        match pg.stream_pos(doc).await {
            Ok(Some(stored)) if stored >= upto => {
                fold.release(conn).await;
                Ok(None)
            }
            Ok(_) => Ok(Some(fold)),
            Err(error) => {
                fold.release(conn).await;
                Err(error)
            }
        }
    }

    pub fn fence(&self) -> i64 {
        self.fence
    }

    /// Writes `snapshot` (the state covering the stream up to `upto`), trims the stream, and
    /// gives the lease back.
    pub async fn write(self, conn: &Conn, pg: &Postgres, snapshot: &[u8]) -> Result<Folded, StoreError> {
        let result = self.write_fenced(conn, pg, snapshot).await;
        self.release(conn).await;
        result
    }

    async fn write_fenced(&self, conn: &Conn, pg: &Postgres, snapshot: &[u8]) -> Result<Folded, StoreError> {
        if !pg.write_snapshot(&self.doc, snapshot, self.upto, self.fence).await? {
            return Ok(Folded::Fenced);
        }
        // Everything up to `upto` is in the database: drop it from the stream (MINID keeps
        // entries at or after its argument, so the next id after `upto`).
        let next = Seq(self.upto.0 + 1);
        let trimmed: i64 = conn
            .cmd(
                redis::cmd("EVAL")
                    .arg(TRIM)
                    .arg(3)
                    .arg(&self.keys.fence)
                    .arg(&self.keys.log)
                    .arg(&self.keys.trimmed)
                    .arg(self.fence)
                    .arg(stream::id(next))
                    .arg(stream::id(self.upto)),
            )
            .await?;
        if trimmed == 0 {
            // A newer lease holder took over after our write: it trims as far as it folds.
            tracing::debug!(doc = %self.doc, "stream left for a newer lease holder to trim");
        }
        Ok(Folded::Written)
    }

    async fn release(&self, conn: &Conn) {
        let released = conn
            .cmd::<i64>(redis::cmd("EVAL").arg(RELEASE).arg(1).arg(&self.keys.lease).arg(&self.holder))
            .await;
        if let Err(error) = released {
            // It expires by itself.
            tracing::debug!(doc = %self.doc, %error, "could not give the fold lease back");
        }
    }
}
