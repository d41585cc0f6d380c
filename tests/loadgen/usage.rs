//! CPU time and peak memory of a process, read from /proc (Linux only, like the benchmark).

/// The Linux USER_HZ that /proc/PID/stat counts CPU time in: 100 on every mainstream kernel
/// (it is fixed at build time and not exported to userspace except through sysconf).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User plus system time, all threads, since the process started.
    pub cpu_secs: f64,
    /// VmHWM: the peak resident set size.
    pub peak_rss_bytes: u64,
}

impl Usage {
    /// None once the process is gone (it exited, or /proc is not there).
    pub fn of(pid: u32) -> Option<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // Fields 14 and 15 of the line (utime, stime) are the 12th and 13th after the name.
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let hwm_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(Usage { cpu_secs: ticks as f64 / CLOCK_TICKS_PER_SEC, peak_rss_bytes: hwm_kb * 1024 })
    }

    pub fn of_self() -> Option<Usage> {
        Usage::of(std::process::id())
    }
}
