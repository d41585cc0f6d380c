//! What a fuzz run found, for people: frames per second, each kind's fate, refusals by reason,
//! and every failure in full.

use std::fmt;
use std::time::Duration;

use super::hostile::Tally;
use super::{Health, Options};

pub struct Report {
    pub seed: u64,
    pub frames: u64,
    pub hostile: usize,
    pub trace: String,
    pub corpus_frames: usize,
    /// From the first hostile frame to the last frame's fate.
    pub elapsed: Duration,
    pub connections: u64,
    pub tally: Tally,
    pub health: Health,
    pub keystrokes: u64,
    /// Characters of the last round's honest document.
    pub honest_text_chars: u64,
    pub rounds: u64,
    /// Documents whose stored state was the same after the restart.
    pub reloaded: usize,
    pub peak_rss_bytes: Option<u64>,
    /// Everything that went wrong; empty for a clean run.
    pub failures: Vec<String>,
}

impl Report {
    pub fn new(options: &Options) -> Report {
        Report {
            seed: options.seed,
            frames: options.frames,
            hostile: options.hostile,
            trace: options.trace.clone(),
            corpus_frames: 0,
            elapsed: Duration::ZERO,
            connections: 0,
            tally: Tally::default(),
            health: Health::default(),
            keystrokes: 0,
            honest_text_chars: 0,
            rounds: 0,
            reloaded: 0,
            peak_rss_bytes: None,
            failures: Vec::new(),
        }
    }

    /// Takes in what one round found.
    pub fn add(&mut self, round: super::RoundOutcome) {
        self.tally.add(round.tally);
        self.keystrokes += round.keystrokes;
        self.honest_text_chars = round.honest_text_chars;
        self.failures.extend(round.failures);
        self.rounds += 1;
    }

    pub fn failed(mut self, failure: String) -> Report {
        self.failures.push(failure);
        self
    }

    /// Turns what the tally and health checks saw into failures.
    pub fn check(&mut self) {
        let sent: u64 = self.tally.kinds.values().map(|(sent, _)| sent).sum();
        if sent < self.frames {
            self.failures.push(format!("only {sent} of {} frames were sent", self.frames));
        }
        if self.tally.unanswered > 0 {
            self.failures.push(format!("{} frames were neither answered nor refused", self.tally.unanswered));
        }
        if self.tally.internal_errors > 0 {
            self.failures.push(format!("{} frames made the server fail (1011)", self.tally.internal_errors));
        }
        self.failures.extend(self.tally.failures.iter().cloned());
        if !self.health.failed.is_empty() {
            self.failures.push(format!("/healthz failed during the run: {:?}", self.health.failed));
        }
    }

    pub fn sent(&self) -> u64 {
        self.tally.kinds.values().map(|(sent, _)| sent).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sent = self.sent();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "fuzz: seed {}, trace {} ({} corpus frames), {} hostile connections at once",
            self.seed, self.trace, self.corpus_frames, self.hostile
        )?;
        writeln!(
            f,
            "fuzz: {sent} frames in {:.1} s: {:.0} frames/s over {} connections",
            secs,
            sent as f64 / secs,
            self.connections
        )?;
        writeln!(f, "| kind | sent | accepted | refused or lost |")?;
        writeln!(f, "| --- | ---: | ---: | ---: |")?;
        for (kind, (sent, accepted)) in &self.tally.kinds {
            writeln!(f, "| {kind} | {sent} | {accepted} | {} |", sent - accepted)?;
        }
        writeln!(f, "refused, by close code and reason:")?;
        let mut refused: Vec<_> = self.tally.refused.iter().collect();
        refused.sort_by(|a, b| b.1.cmp(a.1));
        for (reason, n) in refused {
            writeln!(f, "  {n:>9}  {reason}")?;
        }
        for (reason, n) in &self.tally.lost {
            writeln!(f, "  {n:>9}  lost: {reason}")?;
        }
        writeln!(
            f,
            "fuzz: /healthz answered {} times, slowest {:.0} ms, failed {:?}",
            self.health.answered,
            self.health.slowest.as_secs_f64() * 1000.0,
            self.health.failed
        )?;
        writeln!(
            f,
            "fuzz: {} rounds; honest clients typed {} keystrokes ({} chars in the last round's document); \
             {} documents reloaded unchanged after a restart",
            self.rounds, self.keystrokes, self.honest_text_chars, self.reloaded
        )?;
        if let Some(peak) = self.peak_rss_bytes {
            writeln!(f, "fuzz: peak RSS {:.0} MB (server and clients, one process)", peak as f64 / (1 << 20) as f64)?;
        }
        if self.failures.is_empty() {
            writeln!(f, "fuzz: no failure")
        } else {
            for failure in &self.failures {
                writeln!(f, "FAILURE: {failure}")?;
            }
            writeln!(f, "fuzz: {} failures; replay with seed {}", self.failures.len(), self.seed)
        }
    }
}
