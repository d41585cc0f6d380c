//! Opening the sled store: one quire per directory, and recovery after a crash that leaves
//! the directory as the crash left it if it fails.
//!
//! Opening after a crash runs sled's recovery, which rewrites files (it truncates torn
//! writes) and can fail or panic half-way. So after an unclean shutdown (no clean-shutdown
//! marker) the directory is copied aside first; if the open fails, the copy is put back and
//! the directory is exactly as the crash left it, for an operator (or a fixed quire) to try
//! again. After a clean shutdown there is nothing to recover and no copy is made. The copy
//! needs as much free space as the store takes: without it, opening says so and changes
//! nothing.

use std::fs::File;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Written after the last flush of a clean shutdown; missing at start means a crash.
pub const CLEAN_MARKER: &str = "quire-clean-shutdown";
/// Locked by the process that has the store open.
pub const LOCK_FILE: &str = "quire.lock";

/// Why the store did not open. Nothing in the directory was changed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("not a directory")]
    NotADirectory,
    #[error("the directory is not empty and holds no quire store (no sled `conf` file)")]
    Foreign,
    #[error("another quire is using this store")]
    Locked,
    #[error("cannot {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{backup} holds a copy from an interrupted recovery: compare it with the store, keep the \
         right one, remove the other and start again"
    )]
    InterruptedRecovery { backup: PathBuf },
    #[error(
        "the last shutdown was not clean, and recovery first copies the store aside: that needs \
         {needed} bytes free on its disk, which has {free}. Free some space (or move the store \
         to a bigger disk) and start again"
    )]
    NoRoomForRecovery { needed: u64, free: u64 },
    #[error("sled cannot open the store")]
    Sled(#[source] sled::Error),
    #[error("the store was written by a later quire (layout {found}; this one reads up to {supported})")]
    NewerLayout { found: u64, supported: u64 },
    #[error("the store's layout records are damaged")]
    BadLayout,
    #[error("cannot make the documents list again from the documents' metadata")]
    ListIndex(#[source] super::list::RebuildError),
    #[error("sled panicked while opening: the store may be damaged")]
    SledPanicked,
    #[error("recovery failed, and putting the pre-recovery copy back failed too ({restore}); the copy is at {backup}")]
    RestoreFailed {
        backup: PathBuf,
        restore: io::Error,
        #[source]
        cause: Box<OpenError>,
    },
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OpenError + 'a {
    move |source| OpenError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `dir` is a quire store (or empty, or missing: it is created) and takes its
/// lock; then, if the last shutdown was not clean, copies it aside, to put back should sled's
/// recovery fail. `open_sled` opens sled on the directory.
/// `open_sled` is told whether the last shutdown was unclean (what it repairs then).
pub fn open<T>(dir: &Path, open_sled: impl FnOnce(&Path, File, bool) -> Result<T, OpenError>) -> Result<T, OpenError> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err(OpenError::NotADirectory);
        }
        let mut entries = std::fs::read_dir(dir).map_err(io_error("read", dir))?;
        let empty = entries.all(|e| e.is_ok_and(|e| e.file_name() == LOCK_FILE));
        if !empty && !dir.join("conf").is_file() {
            return Err(OpenError::Foreign);
        }
    }
    // One quire per store: lock before looking at the marker, let alone copying anything.
    // A second instance must never mistake a running store for a crashed one.
    let lock_path = dir.join(LOCK_FILE);
    let lock_existed = lock_path.exists();
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error("create", &lock_path))?;
    if lock.try_lock().is_err() {
        return Err(OpenError::Locked);
    }
    let opened = open_locked(dir, lock, open_sled);
    if opened.is_err() && !lock_existed {
        let _ = std::fs::remove_file(&lock_path);
    }
    opened
}

/// The part of [`open`] that runs holding the store's lock.
fn open_locked<T>(dir: &Path, lock: File, open_sled: impl FnOnce(&Path, File, bool) -> Result<T, OpenError>) -> Result<T, OpenError> {
    // Canonical, so that `--data .` cannot put the copy inside the store itself.
    let dir = dir.canonicalize().map_err(io_error("resolve", dir))?;
    let backup = recovery_backup_path(&dir);
    if backup.exists() {
        return Err(OpenError::InterruptedRecovery { backup });
    }
    let only_lock = std::fs::read_dir(&dir)
        .map_err(io_error("read", &dir))?
        .all(|e| e.is_ok_and(|e| e.file_name() == LOCK_FILE));
    let crashed = !only_lock && !dir.join(CLEAN_MARKER).exists();
    if crashed {
        tracing::warn!(dir = %dir.display(), "the last shutdown was not clean: recovering");
        let needed = dir_size(&dir).map_err(io_error("measure", &dir))?;
        let free = fs2::available_space(&dir).map_err(io_error("read the free space of", &dir))?;
        if free < needed {
            return Err(OpenError::NoRoomForRecovery { needed, free });
        }
        if let Err(source) = copy_dir(&dir, &backup) {
            let _ = std::fs::remove_dir_all(&backup);
            return Err(OpenError::Io {
                what: "copy the store aside before recovery to",
                path: backup,
                source,
            });
        }
    }
    match open_sled(&dir, lock, crashed) {
        Ok(store) => {
            if crashed {
                let _ = std::fs::remove_dir_all(&backup);
            }
            // From now on a crash must be noticed at the next start.
            let _ = std::fs::remove_file(dir.join(CLEAN_MARKER));
            Ok(store)
        }
        Err(cause) if crashed => match restore(&dir, &backup) {
            // The directory is back exactly as the crash left it.
            Ok(()) => Err(cause),
            Err(restore) => Err(OpenError::RestoreFailed {
                backup,
                restore,
                cause: Box::new(cause),
            }),
        },
        Err(cause) => Err(cause),
    }
}

/// Opens sled itself, its panics on a damaged store turned into an error.
pub fn sled_db(dir: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, OpenError> {
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_capacity_bytes)
        .flush_every_ms(None);
    catch_unwind(AssertUnwindSafe(|| config.open()))
        .map_err(|_| OpenError::SledPanicked)?
        .map_err(OpenError::Sled)
}

/// A clean close: after the last flush, the marker that says no recovery is needed.
pub fn mark_clean(dir: &Path) {
    let _ = std::fs::write(dir.join(CLEAN_MARKER), b"");
}

pub fn recovery_backup_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "store".into());
    name.push(".recovery");
    dir.with_file_name(name)
}

/// Puts the pre-recovery copy back: everything but the lock file is replaced by the copy.
fn restore(dir: &Path, backup: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == LOCK_FILE {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    for entry in std::fs::read_dir(backup)? {
        let entry = entry?;
        if entry.file_name() != LOCK_FILE {
            std::fs::rename(entry.path(), dir.join(entry.file_name()))?;
        }
    }
    std::fs::remove_dir_all(backup)
}

/// Bytes the files under `dir` take.
fn dir_size(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() {
            dir_size(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
