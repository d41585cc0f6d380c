//! What a busy document's history costs after a month: an editing trace from `../shared/traces/`
//! (default automerge-paper, 259,778 keystrokes) typed over the weekdays of 30 days, two 2-hour
//! sessions a day, one keystroke one update; automatic versions as quire's defaults take them
//! (5 minutes after a burst, at least every 30 minutes or 5,000 updates), a named version each
//! Friday evening, thinning after each automatic version as the server does; every version
//! written to a sled store as the server writes it.
//!
//!   cargo run --release -p quire-tests --bin history-month [trace]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use quire::doc::versions::{self, Aged, Schedule};
use quire::store::history::{pack, VersionKind, VersionRecord};
use quire::store::sled::SledStore;
use quire::store::Store;
use quire::Config;
use quire_model::{schema, DocId};
use serde_json::Value;
use tokio::time::Instant;
use yrs::{ReadTxn, StateVector, Text, Transact};

const DAY_MS: u64 = 24 * 3600 * 1000;
const HOUR_MS: u64 = 3600 * 1000;

/// `[pos, deleted, inserted]` patches of a sequential trace, in order.
fn patches(name: &str) -> Vec<(u32, u32, String)> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../shared/traces/{name}.json.gz"));
    let json = Command::new("gzip").arg("-dc").arg(&file).output().expect("gzip -dc the trace");
    assert!(json.status.success(), "cannot read {}", file.display());
    let trace: Value = serde_json::from_slice(&json.stdout).expect("a trace is JSON");
    let mut out = Vec::new();
    for txn in trace["txns"].as_array().unwrap() {
        for patch in txn["patches"].as_array().unwrap() {
            let inserted = patch[2].as_str().unwrap().to_owned();
            assert!(inserted.is_ascii(), "positions count code points: only ASCII traces replay as is");
            out.push((patch[0].as_u64().unwrap() as u32, patch[1].as_u64().unwrap() as u32, inserted));
        }
    }
    out
}

/// The start of every typing session in the month, in ms: weekdays, 09:00 and 14:00.
fn sessions() -> Vec<u64> {
    (0..30).filter(|day| day % 7 < 5).flat_map(|day| [day * DAY_MS + 9 * HOUR_MS, day * DAY_MS + 14 * HOUR_MS]).collect()
}

/// Thins as the server does after each automatic version, at `now_ms`.
async fn thin(store: &SledStore, id: &DocId, kept: &mut Vec<(Aged, u64)>, now_ms: u64, rules: &versions::Thinning) {
    let gone = versions::thin(&kept.iter().map(|(a, _)| *a).collect::<Vec<_>>(), now_ms, rules);
    store.remove_versions(id, &gone).await.unwrap();
    kept.retain(|(a, _)| !gone.contains(&a.id));
}

#[tokio::main]
async fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "automerge-paper".into());
    let patches = patches(&name);
    let config = Config::default();
    let (policy, rules) = (config.version_policy(), config.version_thinning());
    let dir = std::env::temp_dir().join(format!("quire-history-month-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SledStore::open(&dir, 32 << 20).expect("open a sled store");
    let id = DocId::parse("month").unwrap();

    let doc = schema::new_doc();
    let text = doc.get_or_insert_text(schema::CONTENT);
    let sessions = sessions();
    let session_ms = 2 * HOUR_MS;
    let per_session = patches.len().div_ceil(sessions.len());
    // The schedule counts in tokio Instants; the month is mapped onto them from `origin`.
    let origin = Instant::now();
    let at = |ms: u64| origin + Duration::from_millis(ms);
    let mut schedule = Schedule::default();
    let mut kept: Vec<(Aged, u64)> = Vec::new();
    let (mut taken, mut written_bytes) = (0u64, 0u64);

    let mut take = |ms: u64, named: bool, doc: &yrs::Doc, kept: &mut Vec<(Aged, u64)>| {
        let packed = pack(&doc.transact().encode_state_as_update_v2(&StateVector::default())).unwrap();
        let record = VersionRecord {
            id: ms,
            created_ms: ms,
            name: named.then(|| "Friday".to_owned()),
            kind: if named { VersionKind::Manual } else { VersionKind::Auto },
            restored_from: None,
            editors: vec![doc.client_id().get()],
            deletions: Vec::new(),
            size_bytes: packed.len() as u64,
            pos: None,
        };
        taken += 1;
        written_bytes += packed.len() as u64;
        kept.push((Aged { id: ms, created_ms: ms, named }, packed.len() as u64));
        (record, packed)
    };

    let mut next = 0;
    for (n, &start) in sessions.iter().enumerate() {
        let count = per_session.min(patches.len() - next);
        for k in 0..count {
            let now = start + session_ms * k as u64 / count as u64;
            if let Some(due) = schedule.due(&policy) {
                if due <= at(now) {
                    let due_ms = (due - origin).as_millis() as u64;
                    let (record, packed) = take(due_ms, false, &doc, &mut kept);
                    store.put_version(&id, &record, &packed).await.unwrap();
                    schedule.taken();
                    thin(&store, &id, &mut kept, due_ms, &rules).await;
                }
            }
            let (pos, deleted, inserted) = &patches[next];
            let mut txn = doc.transact_mut();
            if *deleted > 0 {
                text.remove_range(&mut txn, *pos, *deleted);
            }
            if !inserted.is_empty() {
                text.insert(&mut txn, *pos, inserted);
            }
            drop(txn);
            schedule.changed(at(now));
            next += 1;
        }
        // The session's last burst settles.
        if let Some(due) = schedule.due(&policy) {
            let due_ms = (due - origin).as_millis() as u64;
            let (record, packed) = take(due_ms, false, &doc, &mut kept);
            store.put_version(&id, &record, &packed).await.unwrap();
            schedule.taken();
            thin(&store, &id, &mut kept, due_ms, &rules).await;
        }
        // Friday afternoon's session ends with a named version.
        if n % 2 == 1 && (start / DAY_MS) % 7 == 4 {
            let ms = start + session_ms + 10 * 60_000;
            let (record, packed) = take(ms, true, &doc, &mut kept);
            store.put_version(&id, &record, &packed).await.unwrap();
        }
    }
    // Thinned as on the last day of the month.
    thin(&store, &id, &mut kept, 30 * DAY_MS, &rules).await;
    store.flush().await.unwrap();
    drop(store);

    let kept_bytes: u64 = kept.iter().map(|(_, size)| size).sum();
    let named = kept.iter().filter(|(a, _)| a.named).count();
    let state = doc.transact().encode_state_as_update_v1(&StateVector::default()).len();
    let du = Command::new("du").arg("-sk").arg(&dir).output().unwrap();
    let du_kb: u64 = String::from_utf8_lossy(&du.stdout).split_whitespace().next().unwrap().parse().unwrap();
    println!("trace {name}: {} keystrokes over {} sessions, final text {} characters", patches.len(), sessions.len(), text.len(&doc.transact()));
    println!("document state (v1): {} KB", state / 1024);
    println!("versions taken: {taken} ({} KB written); kept after thinning: {} ({named} named), {} KB", written_bytes / 1024, kept.len(), kept_bytes / 1024);
    println!("sled directory after the month: {du_kb} KB");
    let _ = std::fs::remove_dir_all(&dir);
}
