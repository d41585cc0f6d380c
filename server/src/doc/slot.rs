//! The map of live document tasks, and the handle with which a task takes itself out of it.
//!
//! The map's lock (std `Mutex`, never held across `.await`) guards only the map. A task is
//! put in under it when spawned, so two first opens of one document cannot start two tasks;
//! it removes itself under the same lock, and only when its queue is empty, so a caller either
//! reaches the old task or finds it gone and starts a new one, which loads only after the old
//! task's last write (it writes before it retires).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use quire_model::DocId;
use tokio::sync::mpsc;

use super::handle::{Command, DocHandle};

struct Entry {
    handle: DocHandle,
    generation: u64,
}

#[derive(Default)]
pub(super) struct Slots {
    map: Mutex<HashMap<DocId, Entry>>,
    next_generation: AtomicU64,
}

/// What a new task needs to start: its place in the map and its queue.
pub(super) struct Spawn {
    pub slot: Slot,
    pub rx: mpsc::Receiver<Command>,
}

impl Slots {
    fn map(&self) -> MutexGuard<'_, HashMap<DocId, Entry>> {
        // The map stays consistent even if a holder panicked: every critical section is a
        // single insert, get or remove.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live task for `id`; if there is none, `spawn` starts one (under the lock) with a
    /// queue of `queue.0` commands and `queue.1` bytes, unless `max_live` tasks are live
    /// already (`None`).
    pub fn get_or_spawn(
        self: &Arc<Self>,
        id: &DocId,
        queue: (usize, usize),
        max_live: usize,
        spawn: impl FnOnce(Spawn),
    ) -> Option<DocHandle> {
        let mut map = self.map();
        if let Some(entry) = map.get(id) {
            if !entry.handle.is_closed() {
                return Some(entry.handle.clone());
            }
        }
        if map.len() >= max_live {
            return None;
        }
        let (tx, rx) = mpsc::channel(queue.0);
        let handle = DocHandle::new(tx, queue.1);
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            slots: self.clone(),
            id: id.clone(),
            generation,
        };
        spawn(Spawn { slot, rx });
        let entry = Entry {
            handle: handle.clone(),
            generation,
        };
        map.insert(id.clone(), entry);
        Some(handle)
    }

    /// The live task for `id`, if there is one.
    pub fn get(&self, id: &DocId) -> Option<DocHandle> {
        self.map()
            .get(id)
            .filter(|entry| !entry.handle.is_closed())
            .map(|entry| entry.handle.clone())
    }

}

/// A task's own place in the map.
pub(super) struct Slot {
    slots: Arc<Slots>,
    id: DocId,
    generation: u64,
}

impl Slot {
    pub fn id(&self) -> &DocId {
        &self.id
    }

    /// Leaves the map and closes the queue, unless the queue still holds work. Returns whether
    /// it retired; if so, the caller must drain what is left in `rx`.
    pub fn retire_if_idle(&self, rx: &mut mpsc::Receiver<Command>) -> bool {
        let mut map = self.slots.map();
        if !rx.is_empty() {
            return false;
        }
        self.remove(&mut map, rx);
        true
    }

    /// Leaves the map and closes the queue now; the caller must drain what is left in `rx`.
    pub fn retire_now(&self, rx: &mut mpsc::Receiver<Command>) {
        let mut map = self.slots.map();
        self.remove(&mut map, rx);
    }

    fn remove(&self, map: &mut HashMap<DocId, Entry>, rx: &mut mpsc::Receiver<Command>) {
        // A newer task may hold the id already (ours was found closed): leave it alone.
        if map.get(&self.id).is_some_and(|e| e.generation == self.generation) {
            map.remove(&self.id);
        }
        rx.close();
    }
}
