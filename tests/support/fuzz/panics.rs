//! Panics on the server's threads, recorded by a panic hook.
//!
//! The server isolates yrs with `catch_unwind`, so a panic there is answered (1011) and would
//! otherwise go unseen; one anywhere else ends a task silently. Either is a finding: the hook
//! sees both. Threads are told apart by name: the fuzz driver runs the server on a runtime of
//! its own whose threads are named [`SERVER_THREADS`], and the clients on [`CLIENT_THREADS`].

use std::sync::{Mutex, Once};

pub const SERVER_THREADS: &str = "quire-server";
pub const CLIENT_THREADS: &str = "fuzz-client";

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Installs the hook, once per process; the hook before it still runs (and prints).
pub fn watch() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if name.starts_with(SERVER_THREADS) || name.starts_with(CLIENT_THREADS) {
                let location = info.location().map(|l| l.to_string()).unwrap_or_default();
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let mut panics = PANICS.lock().unwrap_or_else(|p| p.into_inner());
                panics.push(format!("{name}: {message} at {location}"));
            }
            previous(info);
        }));
    });
}

/// The panics recorded since the last call.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *PANICS.lock().unwrap_or_else(|p| p.into_inner()))
}
