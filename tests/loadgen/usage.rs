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

    /// `pid` and every process below it (PostgreSQL runs a process per connection): CPU of the
    /// living ones and of the children they reaped, so a backend that ended during the run
    /// still counts; peak RSS summed over the living ones, which counts memory they share
    /// (PostgreSQL's shared buffers) once per process.
    pub fn of_tree(pid: u32) -> Option<Usage> {
        let root = stat(pid)?;
        let mut parents: Vec<(u32, u32)> = Vec::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Some(stat) = stat(child) {
                parents.push((child, stat.ppid));
            }
        }
        let mut tree = vec![pid];
        let mut next = 0;
        while next < tree.len() {
            let parent = tree[next];
            tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(child, _)| *child));
            next += 1;
        }
        let mut total = Usage::default();
        for (i, member) in tree.into_iter().enumerate() {
            let Some(stat) = (if i == 0 { Some(root) } else { stat(member) }) else { continue };
            total.cpu_secs += (stat.ticks + stat.reaped_ticks) as f64 / CLOCK_TICKS_PER_SEC;
            total.peak_rss_bytes += Usage::of(member).map_or(0, |u| u.peak_rss_bytes);
        }
        Some(total)
    }
}

#[derive(Clone, Copy)]
struct Stat {
    ppid: u32,
    /// utime + stime.
    ticks: u64,
    /// cutime + cstime: the children it waited for.
    reaped_ticks: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // After the name: state, ppid, ... utime (11), stime (12), cutime (13), cstime (14).
    Some(Stat {
        ppid: field(1)? as u32,
        ticks: field(11)? + field(12)?,
        reaped_ticks: field(13)? + field(14)?,
    })
}
