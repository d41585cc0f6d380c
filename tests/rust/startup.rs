//! `quire serve` refuses to start on a store it cannot open, says why, and touches nothing.

use std::path::{Path, PathBuf};
use std::process::Output;

use quire_tests::process::quire_bin;
use quire_tests::TempDir;

fn serve(bin: &Path, data: &Path) -> Output {
    std::process::Command::new(bin)
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "error")
        .output()
        .expect("run quire")
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_stops_the_start_and_is_left_untouched() {
    let bin = quire_bin();
    let dir = TempDir::new("startup");
    std::fs::create_dir_all(dir.path()).unwrap();

    // A file where the store should be.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"precious").unwrap();
    let out = serve(&bin, &file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot open the store") && stderr.contains("not a directory"), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");

    // A directory of someone else's files.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.tex"), b"\\section{}").unwrap();
    let out = serve(&bin, &foreign);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no quire store"));
    assert_eq!(files(&foreign), vec![(foreign.join("thesis.tex"), b"\\section{}".to_vec())]);

    // A real store, damaged after a crash: recovery fails, and the bytes stay as they were.
    let store = dir.path().join("store");
    {
        use quire::store::{sled::SledStore, Store};
        let s = SledStore::open(&store, 1 << 20).unwrap();
        s.append(&"d".parse().unwrap(), b"update").await.unwrap();
    }
    std::fs::remove_file(store.join("quire-clean-shutdown")).unwrap();
    std::fs::write(store.join("conf"), b"segment_size: banana\n").unwrap();
    let before = files(&store);
    let out = serve(&bin, &store);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("quire cannot start on"), "{stderr}");
    assert_eq!(files(&store), before, "the damaged store was modified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_quire_on_a_store_in_use_is_refused_and_the_first_keeps_its_data() {
    use quire_tests::process::QuireProcess;
    use quire_tests::Client;
    let bin = quire_bin();
    let dir = TempDir::new("second");
    let first = QuireProcess::start(&bin, dir.path(), &[]).await;
    let writer = Client::connect_synced(&first.ws_url("busy")).await;
    writer.push("the first server's edit");
    Client::connect(&first.ws_url("busy")).await.wait_text("the first server's edit").await;

    let out = serve(&bin, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("another quire is using this store"), "{stderr}");
    assert!(!dir.path().with_file_name(format!(
        "{}.recovery",
        dir.path().file_name().unwrap().to_string_lossy()
    ))
    .exists());

    // The first server never noticed, and its data survives its restart.
    writer.push(" and more");
    Client::connect(&first.ws_url("busy")).await.wait_text("the first server's edit and more").await;
    assert!(first.terminate().await.success());
    let again = QuireProcess::start(&bin, dir.path(), &[]).await;
    Client::connect(&again.ws_url("busy")).await.wait_text("the first server's edit and more").await;
    again.kill9().await;
}
