use super::*;

fn id(s: &str) -> DocId {
    DocId::parse(s).unwrap()
}

#[tokio::test]
async fn log_compaction_and_isolation_between_ids() {
    let dir = tempdir();
    let store = SledStore::open(&dir, 1 << 20).unwrap();
    let (a, ab) = (id("a"), id("a.b"));
    let s1 = store.append(&a, b"one").await.unwrap();
    let s2 = store.append(&a, b"two").await.unwrap();
    store.append(&ab, b"other").await.unwrap();
    assert!(s2 > s1);
    let loaded = store.load(&a).await.unwrap().unwrap();
    assert_eq!(loaded.updates, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!((loaded.last_seq, loaded.log_entries), (Some(s2), 2));

    store.compact(&a, b"snap", s1).await.unwrap();
    let s3 = store.append(&a, b"three").await.unwrap();
    let loaded = store.load(&a).await.unwrap().unwrap();
    assert_eq!(loaded.updates, vec![b"snap".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    assert_eq!((loaded.last_seq, loaded.log_entries), (Some(s3), 2));

    let meta = DocMeta { title: "A".into(), created_ms: 1, updated_ms: 2, size_bytes: 3 };
    store.put_meta(&a, &meta).await.unwrap();
    store.put_meta(&ab, &meta).await.unwrap();
    assert_eq!(store.meta(&a).await.unwrap(), Some(meta.clone()));
    assert_eq!(store.list(0, 10).await.unwrap().total, 2);
    store.delete(&a, &[]).await.unwrap();
    assert_eq!(store.load(&a).await.unwrap(), None);
    assert_eq!(store.meta(&a).await.unwrap(), None);
    assert_eq!(store.list(0, 10).await.unwrap(), Page { docs: vec![(ab.clone(), meta)], total: 1 });
    assert_eq!(store.load(&ab).await.unwrap().unwrap().updates, vec![b"other".to_vec()]);
    store.flush().await.unwrap();
    drop(store);

    // Reopened, sequence numbers keep increasing.
    let store = SledStore::open(&dir, 1 << 20).unwrap();
    assert!(store.append(&ab, b"x").await.unwrap() > s3);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_list_is_paged_newest_first_and_follows_every_change() {
    let dir = tempdir();
    let store = SledStore::open(&dir, 1 << 20).unwrap();
    let meta = |updated_ms| DocMeta { title: String::new(), created_ms: 1, updated_ms, size_bytes: 0 };
    for (doc, updated) in [("a", 30), ("b", 10), ("c", 20), ("d", 20)] {
        store.put_meta(&id(doc), &meta(updated)).await.unwrap();
    }
    let ids = |page: Page| page.docs.into_iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(store.list(0, 10).await.unwrap()), ["a", "c", "d", "b"], "newest first, ties by id");
    assert_eq!(ids(store.list(1, 2).await.unwrap()), ["c", "d"]);
    // A change moves the document; a deletion takes it out; the count follows.
    store.put_meta(&id("b"), &meta(40)).await.unwrap();
    store.delete(&id("c"), &[]).await.unwrap();
    let page = store.list(0, 10).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(ids(page), ["b", "a", "d"]);
    drop(store);
    let store = SledStore::open(&dir, 1 << 20).unwrap();
    assert_eq!(ids(store.list(0, 10).await.unwrap()), ["b", "a", "d"], "after reopening");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_deleted_documents_state_stays_stale_for_the_next_one_with_its_id() {
    use yrs::updates::encoder::Encode;
    let dir = tempdir();
    let store = SledStore::open(&dir, 1 << 20).unwrap();
    let doc = id("again");
    let mut first = yrs::StateVector::default();
    first.set_max(yrs::ClientID::new(7), 12);
    store.append(&doc, b"x").await.unwrap();
    store.delete(&doc, &first.encode_v1()).await.unwrap();
    assert!(store.deleted(&doc).await.unwrap());
    assert_eq!(store.stale(&doc).await.unwrap(), None, "nothing is stale while it is deleted");
    store.undelete(&doc).await.unwrap();
    assert_eq!(store.stale(&doc).await.unwrap(), Some(first.encode_v1()));
    // Deleted again: the tombstone keeps both incarnations' states.
    let mut second = yrs::StateVector::default();
    second.set_max(yrs::ClientID::new(8), 3);
    store.delete(&doc, &second.encode_v1()).await.unwrap();
    store.undelete(&doc).await.unwrap();
    let mut both = first.clone();
    both.merge(second);
    assert_eq!(store.stale(&doc).await.unwrap(), Some(both.encode_v1()));
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn refuses_a_foreign_directory_and_leaves_it_alone() {
    let dir = tempdir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let err = SledStore::open(&dir, 1 << 20).err().expect("must refuse");
    assert!(crate::error::chain(&err).contains("no quire store"), "{err}");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec!["notes.txt"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_failed_recovery_puts_the_directory_back_as_the_crash_left_it() {
    let dir = tempdir();
    {
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        store.append(&id("a"), b"one").await.unwrap();
    }
    // A crash (no clean marker) that also damaged sled's configuration.
    std::fs::remove_file(dir.join(open::CLEAN_MARKER)).unwrap();
    std::fs::write(dir.join("conf"), b"segment_size: banana\n").unwrap();
    let before = snapshot_files(&dir);
    let err = SledStore::open(&dir, 1 << 20).err().expect("a damaged store must not open");
    assert!(err.to_string().contains("cannot open the store"), "{err}");
    assert_eq!(snapshot_files(&dir), before, "the directory was changed");
    assert!(!open::recovery_backup_path(&dir.canonicalize().unwrap()).exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_clean_close_leaves_the_marker_and_a_crash_does_not() {
    let dir = tempdir();
    let store = SledStore::open(&dir, 1 << 20).unwrap();
    assert!(!dir.join(open::CLEAN_MARKER).exists(), "an open store is not clean");
    drop(store);
    assert!(dir.join(open::CLEAN_MARKER).exists());
    // Recovery after a crash (the kill -9 itself is in the black-box crash test) works,
    // keeps the data and removes its copy.
    {
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        store.append(&id("a"), b"kept").await.unwrap();
    }
    std::fs::remove_file(dir.join(open::CLEAN_MARKER)).unwrap();
    let store = SledStore::open(&dir, 1 << 20).unwrap();
    assert_eq!(store.load(&id("a")).await.unwrap().unwrap().updates, vec![b"kept".to_vec()]);
    assert!(!open::recovery_backup_path(&dir.canonicalize().unwrap()).exists(), "the recovery copy must be removed");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_second_instance_is_refused_and_changes_nothing() {
    let dir = tempdir();
    let first = SledStore::open(&dir, 1 << 20).unwrap();
    first.append(&id("a"), b"live").await.unwrap();
    first.flush().await.unwrap();
    let before = snapshot_files(&dir);
    let err = SledStore::open(&dir, 1 << 20).err().expect("the store is in use");
    assert!(crate::error::chain(&err).contains("another quire is using this store"), "{err}");
    assert_eq!(snapshot_files(&dir), before);
    assert!(!open::recovery_backup_path(&dir.canonicalize().unwrap()).exists());
    assert_eq!(first.load(&id("a")).await.unwrap().unwrap().updates, vec![b"live".to_vec()]);
    drop(first);
    std::fs::remove_dir_all(dir).unwrap();
}

fn snapshot_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(snapshot_files(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}

pub(super) fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "quire-sled-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}
