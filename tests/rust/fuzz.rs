//! The fuzzer's short run (the long one is `cargo xtask bench fuzz`): hostile frames made from a
//! real trace, beside honest clients typing it. Fails on any panic on the server's threads, any
//! frame the server neither answers nor refuses, a failed `/healthz`, honest replicas that do
//! not converge with the server, or a document that reloads differently after a restart.

use quire_tests::fuzz::{self, Options};

#[test]
fn hostile_frames_leave_the_server_answering_and_honest_clients_converged() {
    let seed = match std::env::var("QUIRE_FUZZ_SEED") {
        Ok(seed) => seed.parse().expect("QUIRE_FUZZ_SEED is a number"),
        Err(_) => fastrand::u64(..),
    };
    eprintln!("fuzz: seed {seed} (QUIRE_FUZZ_SEED={seed} replays its frames)");
    let report = fuzz::run(&Options::short(seed));
    eprintln!("{report}");
    assert!(report.failures.is_empty(), "{report}");
}
