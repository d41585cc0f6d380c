//! When a document takes its automatic versions, and which of them it keeps as they age. Pure:
//! times in, decisions out (the document task owns the clock).
//!
//! A version is taken when a burst of editing settles (`settle` after its last change: a
//! session's end), and during a long one at least every `max_interval` or `max_updates`, so
//! that a day of work leaves a list a person can read rather than an entry per keystroke.
//!
//! As they age, automatic versions are thinned: every one of the last `keep_all_for`, then the
//! newest of each hour until `hourly_for`, then the newest of each day. Named versions are kept
//! until someone deletes them; so is the newest version, whatever its age.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

/// When automatic versions are taken (see [`Config`](crate::Config)).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub settle: Duration,
    pub max_interval: Duration,
    pub max_updates: u64,
}

/// Which automatic versions are kept as they age (see [`Config`](crate::Config)).
#[derive(Debug, Clone, Copy)]
pub struct Thinning {
    pub keep_all_for: Duration,
    pub hourly_for: Duration,
}

/// The changes since the last version, as the document task counts them.
#[derive(Debug, Default, Clone)]
pub struct Schedule {
    first: Option<Instant>,
    last: Option<Instant>,
    updates: u64,
}

impl Schedule {
    /// An update was applied at `now`.
    pub fn changed(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.updates += 1;
    }

    /// Whether anything changed since the last version.
    pub fn is_dirty(&self) -> bool {
        self.first.is_some()
    }

    /// When the next automatic version is due; `None` while nothing changed.
    pub fn due(&self, policy: &Policy) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        if self.updates >= policy.max_updates {
            return Some(last);
        }
        Some((last + policy.settle).min(first + policy.max_interval))
    }

    /// A version is being taken now: what came before is in it.
    pub fn taken(&mut self) {
        *self = Schedule::default();
    }
}

/// A version as thinning sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aged {
    pub id: u64,
    pub created_ms: u64,
    pub named: bool,
}

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The ids of the versions to drop at `now_ms`.
pub fn thin(versions: &[Aged], now_ms: u64, rules: &Thinning) -> Vec<u64> {
    let keep_all_ms = rules.keep_all_for.as_millis() as u64;
    let hourly_ms = rules.hourly_for.as_millis() as u64;
    let mut newest_first: Vec<&Aged> = versions.iter().collect();
    newest_first.sort_by_key(|v| std::cmp::Reverse(v.id));
    // Buckets already holding a kept version: (bucket length, bucket number).
    let mut taken: HashSet<(u64, u64)> = HashSet::new();
    let mut drop = Vec::new();
    for (n, version) in newest_first.into_iter().enumerate() {
        let age = now_ms.saturating_sub(version.created_ms);
        if version.named || age < keep_all_ms {
            continue;
        }
        let width = if age < hourly_ms { HOUR_MS } else { DAY_MS };
        // The first seen (the newest) in its hour or day stays: the state the hour ended with.
        // The newest version of all stays in any case (and holds its bucket).
        if !taken.insert((width, version.created_ms / width)) && n > 0 {
            drop.push(version.id);
        }
    }
    drop
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        settle: Duration::from_secs(300),
        max_interval: Duration::from_secs(1800),
        max_updates: 1000,
    };

    #[test]
    fn a_burst_is_versioned_when_it_settles_and_a_long_one_every_interval() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut schedule = Schedule::default();
        assert_eq!(schedule.due(&POLICY), None, "nothing changed");
        // Typing for a minute: due five minutes after the last keystroke.
        for s in 0..60 {
            schedule.changed(at(s));
        }
        assert_eq!(schedule.due(&POLICY), Some(at(59 + 300)));
        // Typing on, a keystroke every ten seconds for an hour: never settles, so the interval
        // since the first change says when.
        for s in (60..3600).step_by(10) {
            schedule.changed(at(s));
        }
        assert_eq!(schedule.due(&POLICY), Some(at(1800)));
        schedule.taken();
        assert!(!schedule.is_dirty());
        assert_eq!(schedule.due(&POLICY), None);
        // A flood of updates is versioned at once.
        for _ in 0..1000 {
            schedule.changed(at(4000));
        }
        assert_eq!(schedule.due(&POLICY), Some(at(4000)));
    }

    const RULES: Thinning = Thinning {
        keep_all_for: Duration::from_secs(24 * 3600),
        hourly_for: Duration::from_secs(30 * 24 * 3600),
    };

    fn auto(created_ms: u64) -> Aged {
        Aged { id: created_ms, created_ms, named: false }
    }

    #[test]
    fn thinning_keeps_a_day_of_everything_then_hours_then_days_and_every_name() {
        let now = 400 * DAY_MS;
        let minute = 60_000;
        let mut versions = Vec::new();
        // Every 10 minutes for the last 40 days: 5,760 versions.
        for n in 0..(40 * 24 * 6) {
            versions.push(auto(now - n * 10 * minute - 1));
        }
        // A named one among the old ones.
        let named = Aged { id: now - 35 * DAY_MS + 5 * minute, created_ms: now - 35 * DAY_MS + 5 * minute, named: true };
        versions.push(named);
        let dropped: HashSet<u64> = thin(&versions, now, &RULES).into_iter().collect();
        let kept: Vec<&Aged> = versions.iter().filter(|v| !dropped.contains(&v.id)).collect();

        let age = |v: &Aged| now - v.created_ms;
        let recent = kept.iter().filter(|v| age(v) < DAY_MS).count();
        assert_eq!(recent, 24 * 6, "the last day: all");
        let hourly: Vec<_> = kept.iter().filter(|v| (DAY_MS..30 * DAY_MS).contains(&age(v))).collect();
        assert_eq!(hourly.len(), 29 * 24, "then one an hour");
        let mut hours: Vec<u64> = hourly.iter().map(|v| v.created_ms / HOUR_MS).collect();
        hours.dedup();
        assert_eq!(hours.len(), hourly.len(), "one in each hour");
        let daily: Vec<_> = kept.iter().filter(|v| age(v) >= 30 * DAY_MS && !v.named).collect();
        // Ages 30 days to just under 40 (the oldest was taken 40 days less 10 minutes ago): the
        // ten calendar days 360 to 369.
        assert_eq!(daily.len(), 10, "then one a day");
        // The newest of each bucket is the one kept: the state the hour or day ended with.
        for v in &hourly {
            let bucket = v.created_ms / HOUR_MS;
            assert!(versions.iter().all(|o| o.created_ms / HOUR_MS != bucket || o.created_ms <= v.created_ms || age(o) < DAY_MS));
        }
        assert!(kept.contains(&&named), "named versions stay");
        // Thinning again changes nothing.
        let again: Vec<Aged> = kept.into_iter().copied().collect();
        assert!(thin(&again, now, &RULES).is_empty());
    }

    #[test]
    fn the_newest_version_stays_however_old() {
        let now = 400 * DAY_MS;
        let versions = [auto(10 * DAY_MS), auto(10 * DAY_MS + 1), auto(10 * DAY_MS + 2)];
        assert_eq!(thin(&versions, now, &RULES), vec![10 * DAY_MS + 1, 10 * DAY_MS]);
    }
}
