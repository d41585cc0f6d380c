//! A Prometheus histogram read from a server's `/metrics` text: what happened between two
//! readings, and its quantiles.

/// Cumulative bucket counts by upper bound, as the exposition format writes them.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// Histogram `name` in `text` (`name_bucket{le="…"}`, `name_sum`, `name_count`); None if
    /// the server has no such metric.
    pub fn parse(text: &str, name: &str) -> Option<Histogram> {
        let bucket = format!("{name}_bucket{{le=\"");
        let (sum, count) = (format!("{name}_sum "), format!("{name}_count "));
        let mut histogram = Histogram::default();
        let mut found = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&bucket) {
                let (le, value) = rest.split_once("\"}")?;
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                histogram.buckets.push((le, value.trim().parse::<f64>().ok()? as u64));
                found = true;
            } else if let Some(value) = line.strip_prefix(&sum) {
                histogram.sum = value.trim().parse().ok()?;
            } else if let Some(value) = line.strip_prefix(&count) {
                histogram.count = value.trim().parse::<f64>().ok()? as u64;
            }
        }
        found.then_some(histogram)
    }

    /// What was observed after `before` (a reading of the same histogram) up to this one.
    pub fn since(&self, before: &Histogram) -> Histogram {
        Histogram {
            buckets: self
                .buckets
                .iter()
                .zip(before.buckets.iter().map(|b| b.1).chain(std::iter::repeat(0)))
                .map(|(&(le, n), was)| (le, n.saturating_sub(was)))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count.saturating_sub(before.count),
        }
    }

    /// Adds `other` (the same buckets: the same metric of another process).
    pub fn add(&mut self, other: &Histogram) {
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
        } else {
            for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
                mine.1 += theirs.1;
            }
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// Quantile `q` (0..1) in seconds, interpolated linearly inside its bucket: only as exact
    /// as the buckets (quire's double from 0.1 ms), so say "about". None with no observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let target = q * self.count as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for &(le, cumulative) in &self.buckets {
            if cumulative as f64 >= target && cumulative > below {
                if le.is_infinite() {
                    return Some(lower);
                }
                let share = (target - below as f64) / (cumulative - below) as f64;
                return Some(lower + (le - lower) * share.clamp(0.0, 1.0));
            }
            (lower, below) = (le, cumulative);
        }
        Some(lower)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE quire_x_seconds histogram
quire_x_seconds_sum 0.35
quire_x_seconds_count 4
quire_x_seconds_bucket{le="0.1"} 2
quire_x_seconds_bucket{le="0.2"} 4
quire_x_seconds_bucket{le="+Inf"} 4
"#;

    #[test]
    fn reads_interpolates_and_subtracts() {
        let h = Histogram::parse(TEXT, "quire_x_seconds").unwrap();
        assert_eq!((h.count, h.buckets.len()), (4, 3));
        assert_eq!(h.quantile(0.5), Some(0.1));
        assert!((h.quantile(0.75).unwrap() - 0.15).abs() < 1e-9);
        let none = h.since(&h);
        assert_eq!((none.count, none.quantile(0.5)), (0, None));
        assert!(Histogram::parse(TEXT, "quire_y_seconds").is_none());
    }
}
