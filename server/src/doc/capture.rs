//! Taking a version without pausing the document: a job of its own, off the document task.
//!
//! Encoding a big document takes a while (a 5 MB document: a few hundred ms for the encoding
//! and the compression), and the document task must keep serving edits meanwhile. So the job
//! does not read the live `Doc` (a read transaction held on another thread would block the
//! task's next write): it reads the document from the store, which holds everything the task
//! applied (every update is appended before it is sent on), rebuilds it on the blocking pool,
//! encodes and compresses it there, and writes the version. The task only learns the outcome.
//! The version is the stored state when the job read it: the moment it was asked for, or a few
//! edits later.

use std::sync::Arc;

use quire_model::DocId;
use tokio::sync::oneshot;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector, Transact, Update};

use super::context::DocContext;
use super::storage::rebuild;
use crate::error::DocError;
use crate::store::history::{pack, unpack, Deletions, VersionKind, VersionRecord};
use crate::store::Seq;

/// How many ids a job tries when another process took the one it picked (the same
/// millisecond): each retry takes the next.
const ID_ATTEMPTS: u64 = 16;

/// What the task knows of the newest version when it starts a job.
#[derive(Debug, Clone)]
pub struct Latest {
    pub id: u64,
    pub pos: Option<String>,
}

/// A version to take.
pub struct Capture {
    pub doc: DocId,
    pub id: u64,
    pub created_ms: u64,
    pub kind: VersionKind,
    pub name: Option<String>,
    pub restored_from: Option<u64>,
    /// Deletions since the version before, by sender.
    pub deletions: Vec<Deletions>,
    /// The newest version, and the state vector of its state if the task knows it (else the
    /// job reads it from that state).
    pub latest: Option<Latest>,
    pub baseline: Option<StateVector>,
}

/// What came of a job.
pub enum Captured {
    /// Written.
    Taken { record: VersionRecord, state: StateVector },
    /// Not taken, nothing written: another process claimed this automatic version, or a
    /// version of exactly the stored state exists. The deletions go back to the task.
    Skipped(Vec<Deletions>),
}

/// Runs `capture` as a job of its own; its outcome arrives on the receiver.
pub fn spawn(capture: Capture, context: Arc<DocContext>) -> oneshot::Receiver<Result<Captured, (DocError, Vec<Deletions>)>> {
    let (tx, rx) = oneshot::channel();
    let tracker = context.shared.tracker.clone();
    tracker.spawn(async move {
        let deletions = capture.deletions.clone();
        let outcome = run(capture, &context).await.map_err(|error| (error, deletions));
        let _ = tx.send(outcome);
    });
    rx
}

async fn run(capture: Capture, context: &DocContext) -> Result<Captured, DocError> {
    let started = std::time::Instant::now();
    let store = &context.store;
    let automatic = capture.kind == VersionKind::Auto;
    let Some(stored) = store.load(&capture.doc).await? else {
        return Ok(Captured::Skipped(capture.deletions));
    };
    let pos = stored.last_seq.map(|Seq(n)| n.to_string());
    // The newest version as stored, which in a cluster another process may have taken since
    // the task last heard (a restore there, or a named version).
    let newest = store.versions(&capture.doc, 0, 1).await?.versions.into_iter().next();
    let newer = newest.filter(|n| capture.latest.as_ref().is_none_or(|l| n.id > l.id));
    let mut latest = capture.latest.clone();
    let mut baseline = capture.baseline.clone();
    if let Some(newer) = newer {
        // Its state is what this version's editors are told from.
        latest = Some(Latest { id: newer.id, pos: newer.pos });
        baseline = None;
    }
    if automatic && latest.as_ref().is_some_and(|l| l.pos.is_some() && l.pos == pos) {
        return Ok(Captured::Skipped(capture.deletions));
    }
    // Claimed by the state it holds: every process holding the document settles on the same
    // stored state, and one of them takes it; a later state is a later claim.
    if automatic && !store.claim_version(&capture.doc, stored.last_seq).await? {
        return Ok(Captured::Skipped(capture.deletions));
    }
    // The state to tell this version's editors by, when the task does not know it.
    let previous = match (&baseline, &latest) {
        (None, Some(latest)) => store.version_state(&capture.doc, latest.id).await?,
        _ => None,
    };
    let limit = (context.shared.config.max_doc_bytes as usize).saturating_mul(2);
    // Ids increase: after any version taken elsewhere meanwhile.
    let id = capture.id.max(latest.as_ref().map_or(0, |l| l.id + 1));
    let (packed, state, baseline) = context
        .shared
        .off_runtime(move || -> Result<_, DocError> {
            let doc = rebuild(&stored).map_err(DocError::Stored)?;
            let txn = doc.transact();
            let state = txn.state_vector();
            // What it has integrated: a state stored by an earlier quire may also hold what
            // waited for missing changes, which yrs's v2 encoding panicked merging in.
            let packed = pack(&txn.encode_diff_v2(&StateVector::default()))?;
            let baseline = match (baseline, previous) {
                (Some(known), _) => known,
                // A whole state's blocks all start at clock 0: its update's state vector is
                // the state's.
                (None, Some(previous)) => Update::decode_v2(&unpack(&previous, limit)?)
                    .map(|update| update.state_vector())
                    .unwrap_or_default(),
                (None, None) => StateVector::default(),
            };
            Ok((packed, state, baseline))
        })
        .await??;
    let mut editors: Vec<u64> = state
        .iter()
        .filter(|(client, clock)| **clock > baseline.get(client))
        .map(|(client, _)| client.get())
        .chain(capture.deletions.iter().map(|d| d.client))
        .collect();
    editors.sort_unstable();
    editors.dedup();
    let mut record = VersionRecord {
        id,
        created_ms: capture.created_ms,
        name: capture.name,
        kind: capture.kind,
        restored_from: capture.restored_from,
        editors,
        deletions: capture.deletions,
        size_bytes: packed.len() as u64,
        pos,
    };
    for _ in 0..ID_ATTEMPTS {
        if store.put_version(&capture.doc, &record, &packed).await? {
            context.shared.metrics.versions_taken.inc();
            context.shared.metrics.version_seconds.observe(started.elapsed().as_secs_f64());
            return Ok(Captured::Taken { record, state });
        }
        record.id += 1;
    }
    Err(DocError::Busy)
}
