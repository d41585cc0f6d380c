//! Who gets a socket: the socket budget (`max_sockets`) and the per-address cap
//! (`max_per_address`), and the ticket that holds both for as long as the socket is open.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::client::AddressKey;
use crate::metrics::Metrics;

/// Why a socket or a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_sockets` are open.
    Budget,
    /// Its client address holds `max_per_address` already.
    Address,
}

/// Open sockets (or forwarded requests) per client address.
pub struct PerAddress {
    max: usize,
    /// std Mutex, not tokio: held for one map operation, never across `.await`. Only addresses
    /// with something open are in the map, so it is as big as the number of open sockets.
    open: Mutex<HashMap<AddressKey, usize>>,
}

impl PerAddress {
    /// `max` 0 means no cap.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerAddress {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// One more for `key`, or `None` if it holds `max` already.
    pub fn take(self: &Arc<Self>, key: AddressKey) -> Option<AddressSlot> {
        if self.max == 0 {
            return Some(AddressSlot { owner: None, key });
        }
        let mut open = self.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            owner: Some(self.clone()),
            key,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, usize>> {
        // The map stays consistent whatever panicked while it was held (one increment or
        // decrement at a time).
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One of an address's `max_per_address`, given back when dropped.
pub struct AddressSlot {
    owner: Option<Arc<PerAddress>>,
    key: AddressKey,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some(owner) = &self.owner {
            let mut open = owner.lock();
            if let Some(count) = open.get_mut(&self.key) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&self.key);
                }
            }
        }
    }
}

/// Lets sockets in, or says why not.
pub struct Admission {
    sockets: Arc<Semaphore>,
    pub per_address: Arc<PerAddress>,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(max_sockets: usize, max_per_address: usize, metrics: Arc<Metrics>) -> Self {
        Admission {
            sockets: Arc::new(Semaphore::new(max_sockets)),
            per_address: PerAddress::new(max_per_address),
            metrics,
        }
    }

    /// A ticket for one more socket from `key` (`None`: a trusted proxy, whose sockets carry
    /// many clients and are capped per forwarded client instead), or why not.
    pub fn admit(&self, key: Option<AddressKey>) -> Result<Ticket, Refused> {
        // The address first: a client over its own cap learns that (429), whatever the budget.
        let address = match key {
            Some(key) => match self.per_address.take(key) {
                Some(slot) => Some(slot),
                None => {
                    self.metrics.address_refused.inc();
                    return Err(Refused::Address);
                }
            },
            None => None,
        };
        let Ok(socket) = self.sockets.clone().try_acquire_owned() else {
            self.metrics.sockets_refused.inc();
            return Err(Refused::Budget);
        };
        self.metrics.sockets_open.inc();
        Ok(Ticket {
            _socket: socket,
            _address: address,
            metrics: self.metrics.clone(),
        })
    }
}

/// A socket's place in the budget and in its address's cap, for as long as it is open.
pub struct Ticket {
    _socket: OwnedSemaphorePermit,
    _address: Option<AddressSlot>,
    metrics: Arc<Metrics>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.metrics.sockets_open.dec();
    }
}

/// A socket with its ticket. The ticket travels with the socket rather than with the task
/// that serves HTTP on it: when a request upgrades to a WebSocket, hyper hands the socket
/// itself to the WebSocket's task and the HTTP task ends, and the socket must still count.
/// It is given back when the socket is closed, whoever closes it.
pub struct Admitted {
    stream: TcpStream,
    _ticket: Ticket,
}

impl Admitted {
    pub fn new(stream: TcpStream, ticket: Ticket) -> Self {
        Admitted { stream, _ticket: ticket }
    }
}

// Plain delegation; `TcpStream` is `Unpin`, so no pin projection is needed.
impl AsyncRead for Admitted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> AddressKey {
        AddressKey::of(text.parse().unwrap())
    }

    #[test]
    fn the_cap_counts_per_address_and_frees_on_drop() {
        let admission = Admission::new(3, 2, Arc::new(Metrics::new()));
        let a1 = admission.admit(Some(key("192.0.2.1"))).unwrap();
        let a2 = admission.admit(Some(key("192.0.2.1"))).unwrap();
        assert_eq!(admission.admit(Some(key("192.0.2.1"))).err(), Some(Refused::Address));
        // Another address is not affected by the first one's cap, only by the budget.
        let b1 = admission.admit(Some(key("192.0.2.2"))).unwrap();
        assert_eq!(admission.admit(Some(key("192.0.2.2"))).err(), Some(Refused::Budget));
        assert_eq!(admission.admit(None).err(), Some(Refused::Budget));
        drop(a1);
        let a3 = admission.admit(Some(key("192.0.2.1"))).unwrap();
        drop((a2, a3, b1));
        assert!(admission.per_address.lock().is_empty(), "no entry outlives its sockets");
        // A trusted proxy's sockets are only counted in the budget.
        let proxied: Vec<_> = (0..3).map(|_| admission.admit(None).unwrap()).collect();
        assert_eq!(proxied.len(), 3);
    }

    #[test]
    fn zero_means_no_cap() {
        let per_address = PerAddress::new(0);
        let slots: Vec<_> = (0..10).map(|_| per_address.take(key("192.0.2.1")).unwrap()).collect();
        assert_eq!(slots.len(), 10);
        assert!(per_address.lock().is_empty());
    }
}
