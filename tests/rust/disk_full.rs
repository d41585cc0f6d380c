//! A full disk: clients are told their changes are not being saved, nothing loops, and writing
//! resumes by itself when space returns, with nothing lost. And crash recovery on a disk too
//! full to copy the store aside says why it cannot start, and changes nothing. On a real
//! size-limited directory (a tmpfs), with the real binary.

use std::time::Duration;

use quire_tests::http::{metric, Api};
use quire_tests::process::{quire_bin, QuireProcess};
use quire_tests::tmpfs::SmallDisk;
use quire_tests::{wait_for_async, Client};

const MB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_edits_politely_and_they_resume_when_space_returns() {
    let bin = quire_bin();
    let disk = SmallDisk::mount("disk-full", 48);
    let data = disk.path().join("data");
    let server = QuireProcess::start(&bin, &data, &["--min-free-disk-mb", "8"]).await;
    let url = server.ws_url("full");
    let writer = Client::connect_synced(&url).await;
    writer.push("before the disk filled. ");
    Client::connect_synced(&url).await.wait_text(&writer.text()).await;

    // Something else fills the disk to just above the reserve.
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![0u8; (disk.free() - 10 * MB) as usize]).unwrap();
    let chunk = "x".repeat(256 * 1024);
    for _ in 0..40 {
        if writer.closed().is_some() {
            break;
        }
        writer.push(&chunk);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, reason) = writer.wait_closed().await;
    assert_eq!(code, 4507, "{reason}");
    assert!(reason.contains("cannot save"), "{reason}");
    // Every way in says so, and changes nothing.
    let api = Api(server.addr);
    let refused = api.put("full", "text/plain", b"replaced").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    let joiner = Client::connect(&url).await;
    assert_eq!(joiner.wait_closed().await.0, 4507);

    // Nothing loops while the disk stays full: the document retries with a growing pause.
    let retries = metric(server.addr, "quire_save_retries_total").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let more = metric(server.addr, "quire_save_retries_total").await - retries;
    assert!(more <= 3.0, "{more} retries in 4 s");

    // Space returns: the document writes what it held, and everyone comes back.
    std::fs::remove_file(&filler).unwrap();
    let typed = writer.text();
    let replica = writer.disconnect();
    wait_for_async(Duration::from_secs(40), "joins to be taken again", || async {
        let probe = Client::connect(&url).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        probe.closed().is_none()
    })
    .await;
    let fresh = Client::connect_synced(&url).await;
    fresh.wait_text(&typed).await;
    let writer = Client::connect_with(&url, replica).await;
    writer.wait_synced().await;
    writer.push(" after.");
    fresh.wait_text(&writer.text()).await;
    assert_eq!(api.put("full", "text/plain", b"replaced").await.status, 204);
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_that_cannot_copy_the_store_aside_says_why_and_changes_nothing() {
    let bin = quire_bin();
    let disk = SmallDisk::mount("recovery-space", 64);
    let data = disk.path().join("data");
    let server = QuireProcess::start(&bin, &data, &["--min-free-disk-mb", "1"]).await;
    let url = server.ws_url("big");
    let writer = Client::connect_synced(&url).await;
    let chunk = "y".repeat(512 * 1024);
    for _ in 0..8 {
        writer.push(&chunk);
    }
    let watcher = Client::connect(&url).await;
    watcher.wait_text(&writer.text()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill9().await;

    // Leave less free space than the store takes.
    let store_bytes: u64 = walk(&data);
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![0u8; (disk.free() - store_bytes / 2) as usize]).unwrap();
    let before = walk_names(&data);
    let (status, stderr) = QuireProcess::start_refused(&bin, &data, &[]).await;
    assert!(!status.success());
    assert!(stderr.contains("recovery first copies the store aside"), "{stderr}");
    assert_eq!(walk_names(&data), before, "the store was changed");

    std::fs::remove_file(&filler).unwrap();
    let server = QuireProcess::start(&bin, &data, &[]).await;
    Client::connect(&server.ws_url("big")).await.wait_text(&writer.text()).await;
    server.kill9().await;
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() { walk(&e.path()) } else { e.metadata().unwrap().len() }
        })
        .sum()
}

fn walk_names(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path(), e.metadata().unwrap().len())
        })
        .collect();
    names.sort();
    names
}
