//! Keeping sled away from a full disk.
//!
//! sled 0.34 does not survive a failed write: after ENOSPC its flushes fail and its threads
//! wedge for good, taking whichever thread called it along. So sled must never see a full
//! disk: the guard refuses writes while the disk has less than a reserve free (the document
//! then stops taking edits and retries), and they go through again once space returns.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::StoreError;

/// How long a reading of the disk's free space is trusted, between writes that stay well
/// within it.
const FREE_SPACE_TTL: Duration = Duration::from_millis(200);

/// Keeps writes away from a nearly full disk. The free space is read
/// at most every [`FREE_SPACE_TTL`], and sooner once the writes since the last reading could
/// have eaten into the reserve.
pub struct DiskGuard {
    dir: PathBuf,
    pub reserve: u64,
    /// When the free space was last read, what it was, and the bytes written since.
    reading: Mutex<Option<(Instant, u64, u64)>>,
}

impl DiskGuard {
    pub fn new(dir: &Path, reserve: u64) -> Self {
        DiskGuard {
            dir: dir.to_path_buf(),
            reserve,
            reading: Mutex::new(None),
        }
    }

    /// Admits a write of about `bytes`, or refuses it while the disk is short of the reserve.
    pub fn admit(&self, bytes: u64) -> Result<(), StoreError> {
        if self.reserve == 0 {
            return Ok(());
        }
        let mut reading = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        let stale = match *reading {
            None => true,
            Some((at, free, written)) => {
                at.elapsed() > FREE_SPACE_TTL || free.saturating_sub(written + bytes) < self.reserve * 2
            }
        };
        if stale {
            let free = fs2::available_space(&self.dir).map_err(StoreError::FreeSpace)?;
            *reading = Some((Instant::now(), free, 0));
        }
        let (at, free, written) = reading.expect("just read");
        let left = free.saturating_sub(written + bytes);
        if left < self.reserve {
            return Err(StoreError::DiskFull {
                available: free.saturating_sub(written),
                reserve: self.reserve,
            });
        }
        *reading = Some((at, free, written + bytes));
        Ok(())
    }
}
