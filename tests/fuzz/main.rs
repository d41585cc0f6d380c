//! The fuzzer's long run: `cargo xtask bench fuzz [flags]`, or
//! `cargo run --release -p quire-tests --bin fuzz -- --frames 10000000 --seed N`.
//!
//! What it does and checks is in `tests/support/fuzz/`; this is its command line. Exits 1 if
//! the run found anything, with every failure and the seed that replays its frames.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use quire_tests::fuzz::{self, Options, StoreKind};

/// Hostile frames made from a real editing trace, against an in-process quire, beside honest
/// clients typing the trace.
#[derive(Debug, Parser)]
#[command(name = "fuzz")]
struct Args {
    /// Hostile frames to send.
    #[arg(long, env = "FUZZ_FRAMES", default_value_t = 10_000_000)]
    frames: u64,
    /// Frames per round: each round's honest clients and hostile frames use fresh documents.
    #[arg(long, env = "FUZZ_ROUND", default_value_t = 100_000)]
    round: u64,
    /// The first round's number: `--first-round 9 --frames 100000` sends round 9 of a run with
    /// the same seed again (its frames; their order depends on timing).
    #[arg(long, env = "FUZZ_FIRST_ROUND", default_value_t = 0)]
    first_round: u64,
    /// Seed of the mutators; random if unset (printed either way).
    #[arg(long, env = "FUZZ_SEED")]
    seed: Option<u64>,
    /// A sequential trace in ../shared/traces/.
    #[arg(long, env = "FUZZ_TRACE", default_value = "automerge-paper")]
    trace: String,
    /// Keystrokes of the trace the corpus is made of.
    #[arg(long, env = "FUZZ_CORPUS", default_value_t = 5_000)]
    corpus: usize,
    /// Hostile connections at once.
    #[arg(long, env = "FUZZ_HOSTILE", default_value_t = 64)]
    hostile: usize,
    /// Documents only hostile connections join (half of them join the honest one).
    #[arg(long, env = "FUZZ_DOCS", default_value_t = 8)]
    docs: usize,
    /// Honest clients typing the trace.
    #[arg(long, env = "FUZZ_HONEST", default_value_t = 3)]
    honest: usize,
    /// Milliseconds between the honest clients' keystrokes.
    #[arg(long, env = "FUZZ_PACE_MS", default_value_t = 10)]
    pace_ms: u64,
    #[arg(long, env = "FUZZ_STORE", value_enum, default_value_t = Store::Sled)]
    store: Store,
    /// Print every frame and its fate on stderr (tab-separated: `frame`, document, kind, fate,
    /// hex), to find the frame behind a failure: with `--hostile 1` they are in the server's order.
    #[arg(long, env = "FUZZ_DUMP")]
    dump: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Store {
    Sled,
    Memory,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = Options {
        frames: args.frames,
        round_frames: args.round,
        first_round: args.first_round,
        seed: args.seed.unwrap_or_else(|| fastrand::u64(..)),
        trace: args.trace,
        corpus_patches: args.corpus,
        hostile: args.hostile.max(1),
        hostile_docs: args.docs,
        honest: args.honest.max(1),
        pace: Duration::from_millis(args.pace_ms.max(1)),
        store: match args.store {
            Store::Sled => StoreKind::Sled,
            Store::Memory => StoreKind::Memory,
        },
        dump: args.dump,
    };
    eprintln!(
        "fuzz: {} frames, seed {}, {} hostile connections, {} honest clients",
        options.frames, options.seed, options.hostile, options.honest
    );
    let report = fuzz::run(&options);
    print!("{report}");
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
