//! The document task's side of version history: when to take a version, the versions asked
//! for, what a finished one changes, thinning, names.
//!
//! Versions are taken by jobs off the task ([`capture`]), one at a time, in the order they
//! were wanted: an automatic one when the [schedule](Schedule) says so, a named one or a
//! restore when the API asks. The task stays free meanwhile; it learns each outcome through
//! [`LiveDoc::version_taken`]. What it keeps in memory is small: the newest version's record,
//! the state vector of its state when known (the next version's editors are the clients whose
//! clocks moved past it), and the deletions noted since (see `attribution`).

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use tokio::time::Instant;
use yrs::{ReadTxn, StateVector, Transact};

use super::LiveDoc;
use crate::doc::attribution::decode_deletions;
use crate::doc::capture::{self, Capture, Captured, Latest};
use crate::doc::handle::Reply;
use crate::doc::versions::{self, Aged, Schedule};
use crate::error::DocError;
use crate::store::history::{Author, Deletions, VersionKind, VersionRecord};

/// What a restore answers: whether it changed anything, and the version it took after.
#[derive(Debug, Clone)]
pub struct Restored {
    pub changed: bool,
    pub version: Option<VersionRecord>,
}

/// A version wanted and not yet taken.
pub(super) enum Want {
    /// An automatic version (taken at `created_ms` if given: a document's first, from before).
    Auto { created_ms: Option<u64> },
    Named { name: String, reply: Reply<VersionRecord> },
    /// Restore a version: an edit, then the version after it (see `restore.rs`).
    Restore { from: u64, by: Option<Author>, reply: Reply<Restored> },
    /// The version after a restore's edit.
    AfterRestore { from: u64, reply: Reply<Restored> },
}

pub(super) type Outcome = Result<Captured, (DocError, Vec<Deletions>)>;

pub(super) struct Running {
    outcome: oneshot::Receiver<Outcome>,
    want: Want,
}

#[derive(Default)]
pub struct History {
    schedule: Schedule,
    latest: Option<VersionRecord>,
    /// The state vector of the newest version's state, when known.
    baseline: Option<StateVector>,
    queue: VecDeque<Want>,
    pub(super) running: Option<Running>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn pos_of(seq: Option<crate::store::Seq>) -> Option<String> {
    seq.map(|s| s.0.to_string())
}

impl LiveDoc {
    /// Reads what the store has of the history: whether the document changed since its newest
    /// version, or has none yet (then its first is taken at once, dated by its metadata).
    pub async fn load_history(&mut self) {
        let page = match self.context.store.versions(&self.id, 0, 1).await {
            Ok(page) => page,
            Err(error) => {
                // Unknown: take nothing automatically rather than a duplicate of each version.
                tracing::warn!(doc = %self.id, error = %crate::error::chain(&error), "cannot read the version history");
                return;
            }
        };
        let history = &mut self.history;
        history.latest = page.versions.into_iter().next();
        let pos = pos_of(self.storage.last_seq());
        match &history.latest {
            Some(latest) if latest.pos.is_some() && latest.pos == pos => {
                history.baseline = Some(self.awareness.doc().transact().state_vector());
            }
            Some(_) => history.schedule.changed(Instant::now()),
            None if self.storage.exists() && self.storage.size_bytes() > 0 => {
                let created_ms = self.storage.meta().map(|m| m.updated_ms);
                history.queue.push_back(Want::Auto { created_ms });
            }
            None => {}
        }
    }

    /// An edit was applied (by anyone, here or in another process).
    pub(super) fn history_changed(&mut self) {
        self.history.schedule.changed(Instant::now());
    }

    /// When the next automatic version is due, unless one is being taken.
    pub fn version_due(&self) -> Option<Instant> {
        if self.history.running.is_some() || !self.history.queue.is_empty() {
            return None;
        }
        self.history.schedule.due(&self.context.shared.config.version_policy())
    }

    /// The automatic version is due: take it.
    pub async fn version_timer(&mut self) {
        self.history.queue.push_back(Want::Auto { created_ms: None });
        self.pump_history().await;
    }

    /// Starts the next wanted version if none is being taken. A restore runs its edit here.
    pub async fn pump_history(&mut self) {
        while self.history.running.is_none() && !self.storage.is_unsaved() {
            let Some(want) = self.history.queue.pop_front() else { return };
            match want {
                Want::Restore { from, by, reply } => self.restore(from, by, reply).await,
                want => self.start_capture(want),
            }
        }
    }

    /// A version job's outcome; pending while none runs.
    async fn version_taken(&mut self) -> Outcome {
        outcome_of(self.history.running.as_mut()).await
    }

    /// What a finished job changes: the newest version, the next baseline, thinning; and the
    /// answer to whoever asked for it.
    pub async fn version_done(&mut self, outcome: Outcome) {
        let Some(Running { want, .. }) = self.history.running.take() else { return };
        let taken = match outcome {
            Ok(Captured::Taken { record, state }) => {
                self.history.latest = Some(record.clone());
                self.history.baseline = Some(state);
                Ok(Some(record))
            }
            Ok(Captured::Skipped(deletions)) => {
                self.attribution.put_back(deletions);
                Ok(None)
            }
            Err((error, deletions)) => {
                tracing::error!(doc = %self.id, error = %crate::error::chain(&error), "taking a version failed");
                self.attribution.put_back(deletions);
                // Changes since stay to be versioned.
                self.history.schedule.changed(Instant::now());
                Err(error)
            }
        };
        match (want, taken) {
            (Want::Auto { .. }, Ok(Some(_))) => self.thin().await,
            (Want::Auto { .. }, _) => {}
            (Want::Named { reply, .. }, result) => {
                let _ = reply.send(result.and_then(|taken| taken.ok_or(DocError::Busy)));
            }
            (Want::AfterRestore { reply, .. }, result) => {
                let _ = reply.send(result.map(|version| Restored { changed: true, version }));
            }
            (Want::Restore { .. }, _) => {}
        }
        self.pump_history().await;
    }

    /// Before the task unloads: every wanted version taken, and one of the changes since the
    /// last (the burst has settled: nobody is connected).
    pub async fn settle_history(&mut self) {
        if self.history.schedule.is_dirty() && self.history.queue.is_empty() {
            self.history.queue.push_back(Want::Auto { created_ms: None });
        }
        loop {
            self.pump_history().await;
            if self.history.running.is_none() {
                return;
            }
            let outcome = self.version_taken().await;
            self.version_done(outcome).await;
        }
    }

    /// Waits for the version being taken, if one is, and forgets those wanted (before the
    /// document is deleted: no version may land after its deletion).
    pub async fn stop_versions(&mut self) {
        self.history.queue.clear();
        while self.history.running.is_some() {
            let outcome = self.version_taken().await;
            self.version_done(outcome).await;
        }
    }

    /// A named version of the document as it is now. If nothing changed since the newest
    /// version, that version takes the name instead, whatever it was called (one state, one
    /// entry: naming twice renames, as in Google Docs).
    pub async fn name_current(&mut self, name: String, reply: Reply<VersionRecord>) {
        let idle = self.history.running.is_none() && self.history.queue.is_empty() && !self.history.schedule.is_dirty();
        match self.history.latest.clone() {
            Some(mut latest) if idle => {
                if latest.name.is_none() {
                    if let Err(error) = self.room_for_a_name().await {
                        let _ = reply.send(Err(error));
                        return;
                    }
                }
                latest.name = Some(name);
                let renamed = self.context.store.update_version(&self.id, &latest).await;
                let _ = reply.send(match renamed {
                    Ok(true) => {
                        self.history.latest = Some(latest.clone());
                        Ok(latest)
                    }
                    Ok(false) => Err(DocError::NoSuchVersion),
                    Err(error) => Err(error.into()),
                });
            }
            _ => {
                if let Err(error) = self.room_for_a_name().await {
                    let _ = reply.send(Err(error));
                    return;
                }
                self.history.queue.push_back(Want::Named { name, reply });
                self.pump_history().await;
            }
        }
    }

    /// Whether one more version may be named: each keeps a whole state and is never thinned,
    /// so without a limit an editor could grow the store without end by naming after every
    /// keystroke. (A name asked for while another is being taken may pass it by one.)
    async fn room_for_a_name(&self) -> Result<(), DocError> {
        let limit = self.context.shared.config.max_named_versions;
        let all = self.context.store.versions(&self.id, 0, usize::MAX).await?.versions;
        if all.iter().filter(|v| v.name.is_some()).count() >= limit {
            return Err(DocError::TooManyNamedVersions { limit });
        }
        Ok(())
    }

    /// Names a version (`None`: takes its name away, so it is thinned as automatic ones are).
    pub async fn rename_version(&mut self, id: u64, name: Option<String>) -> Result<VersionRecord, DocError> {
        let mut record = self.version_record(id).await?;
        if record.name.is_none() && name.is_some() {
            self.room_for_a_name().await?;
        }
        record.name = name;
        if !self.context.store.update_version(&self.id, &record).await? {
            return Err(DocError::NoSuchVersion);
        }
        if self.history.latest.as_ref().is_some_and(|l| l.id == id) {
            self.history.latest = Some(record.clone());
        }
        Ok(record)
    }

    /// Deletes a version; its changes count toward the next newer one from then on.
    pub async fn delete_version(&mut self, id: u64) -> Result<(), DocError> {
        let all = self.context.store.versions(&self.id, 0, usize::MAX).await?.versions;
        if !all.iter().any(|v| v.id == id) {
            return Err(DocError::NoSuchVersion);
        }
        self.drop_versions(all, &[id]).await?;
        if self.history.latest.as_ref().is_some_and(|l| l.id == id) {
            self.history.latest = self.context.store.versions(&self.id, 0, 1).await?.versions.into_iter().next();
            self.history.baseline = None;
        }
        Ok(())
    }

    async fn version_record(&self, id: u64) -> Result<VersionRecord, DocError> {
        let all = self.context.store.versions(&self.id, 0, usize::MAX).await?;
        all.versions.into_iter().find(|v| v.id == id).ok_or(DocError::NoSuchVersion)
    }

    /// Thins the automatic versions (see [`versions::thin`]).
    async fn thin(&mut self) {
        let thinned = async {
            let all = self.context.store.versions(&self.id, 0, usize::MAX).await?.versions;
            let aged: Vec<Aged> =
                all.iter().map(|v| Aged { id: v.id, created_ms: v.created_ms, named: v.is_named() }).collect();
            let drop = versions::thin(&aged, now_ms(), &self.context.shared.config.version_thinning());
            if !drop.is_empty() {
                self.drop_versions(all, &drop).await?;
            }
            Ok::<_, DocError>(())
        };
        if let Err(error) = thinned.await {
            tracing::warn!(doc = %self.id, error = %crate::error::chain(&error), "thinning versions failed");
        }
    }

    /// Removes versions `drop` of `all`, merging each one's editors and deletions into the next
    /// newer version that stays: its changes are that version's from now on.
    async fn drop_versions(&self, mut all: Vec<VersionRecord>, drop: &[u64]) -> Result<(), DocError> {
        all.sort_by_key(|v| v.id);
        let mut changed: Vec<usize> = Vec::new();
        let mut carried: Option<(Vec<u64>, Vec<Deletions>)> = None;
        for (n, version) in all.iter_mut().enumerate() {
            if drop.contains(&version.id) {
                let (editors, deletions) = carried.get_or_insert_with(Default::default);
                editors.extend(version.editors.iter().copied());
                deletions.extend(version.deletions.iter().cloned());
            } else if let Some((editors, deletions)) = carried.take() {
                version.editors.extend(editors);
                version.editors.sort_unstable();
                version.editors.dedup();
                version.deletions = merge_deletions(std::mem::take(&mut version.deletions), deletions);
                changed.push(n);
            }
        }
        for n in changed {
            self.context.store.update_version(&self.id, &all[n]).await?;
        }
        self.context.store.remove_versions(&self.id, drop).await?;
        Ok(())
    }

    fn start_capture(&mut self, want: Want) {
        let (kind, name, restored_from, created_ms) = match &want {
            Want::Auto { created_ms } => (VersionKind::Auto, None, None, *created_ms),
            Want::Named { name, .. } => (VersionKind::Manual, Some(name.clone()), None, None),
            Want::AfterRestore { from, .. } => (VersionKind::Restore, None, Some(*from), None),
            Want::Restore { .. } => unreachable!("a restore is an edit, run by pump_history"),
        };
        self.history.schedule.taken();
        let outcome = capture::spawn(self.capture(kind, name, restored_from, created_ms), self.context.clone());
        self.history.running = Some(Running { outcome, want });
    }

    /// The job for a version taken now (or dated `created_ms`).
    pub(super) fn capture(
        &mut self,
        kind: VersionKind,
        name: Option<String>,
        restored_from: Option<u64>,
        created_ms: Option<u64>,
    ) -> Capture {
        let latest = self.history.latest.as_ref();
        let now = now_ms();
        // Ids increase: a version dated in the past (a document's first) still comes after.
        let id = latest.map_or(now, |l| now.max(l.id + 1));
        Capture {
            doc: self.id.clone(),
            id,
            created_ms: created_ms.unwrap_or(now).min(now),
            kind,
            name,
            restored_from,
            deletions: self.attribution.take_deletions(),
            latest: latest.map(|l| Latest { id: l.id, pos: l.pos.clone() }),
            baseline: self.history.baseline.clone(),
        }
    }

    /// Takes a version now and waits for it (before a restore's edit).
    pub(super) async fn capture_now(&mut self, kind: VersionKind) -> Result<(), DocError> {
        self.history.schedule.taken();
        let job = self.capture(kind, None, None, None);
        let outcome = capture::spawn(job, self.context.clone()).await.unwrap_or_else(|_| Err((DocError::Gone, Vec::new())));
        match outcome {
            Ok(Captured::Taken { record, state }) => {
                self.history.latest = Some(record);
                self.history.baseline = Some(state);
                Ok(())
            }
            Ok(Captured::Skipped(deletions)) => {
                self.attribution.put_back(deletions);
                Ok(())
            }
            Err((error, deletions)) => {
                self.attribution.put_back(deletions);
                Err(error)
            }
        }
    }

    /// Whether anything changed since the newest version (or there is none).
    pub(super) fn unversioned(&self) -> bool {
        self.history.schedule.is_dirty() || self.history.latest.is_none()
    }

    /// After a restore's edit: the version of its result, answering the restore.
    pub(super) fn want_after_restore(&mut self, from: u64, reply: Reply<Restored>) {
        self.history.queue.push_front(Want::AfterRestore { from, reply });
    }

    /// Asks for a restore (run in turn with the versions already wanted).
    pub async fn want_restore(&mut self, from: u64, by: Option<Author>, reply: Reply<Restored>) {
        self.history.queue.push_back(Want::Restore { from, by, reply });
        self.pump_history().await;
    }
}

/// The outcome of the job `running`; pending if there is none.
pub(super) async fn outcome_of(running: Option<&mut Running>) -> Outcome {
    match running {
        // A job that ended without a word (it panicked) took nothing.
        Some(running) => (&mut running.outcome).await.unwrap_or_else(|_| Err((DocError::Gone, Vec::new()))),
        None => std::future::pending().await,
    }
}

/// Two lists of deletions as one, a client's sets merged.
fn merge_deletions(a: Vec<Deletions>, b: Vec<Deletions>) -> Vec<Deletions> {
    let mut attribution = crate::doc::attribution::Attribution::default();
    for (client, ids) in decode_deletions(&a).into_iter().chain(decode_deletions(&b)) {
        attribution.deleted(client, &ids);
    }
    attribution.take_deletions()
}
