//! The end of a benchmark: one table for people, one JSON file for tools.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::args::Load;
use crate::external::ClusterFigures;
use crate::histogram::Histogram;
use crate::run::Figures;

/// One row per server that was measured, or why it was not.
pub enum Outcome {
    Measured(Box<Figures>),
    Failed { server: &'static str, error: String },
}

pub fn print_table(outcomes: &[Outcome]) {
    let header = ["server", "clients synced in", "delivered/expected", "p50", "p99", "max", "CPU s", "peak MB"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for outcome in outcomes {
        rows.push(match outcome {
            Outcome::Measured(f) => vec![
                f.label(),
                synced_in(f),
                format!("{}/{} ({:.2}%)", f.delivered, f.expected, percent(f.delivered, f.expected)),
                ms(f.latency.p50_us),
                ms(f.latency.p99_us),
                ms(f.latency.max_us),
                f.server_usage.map_or("?".into(), |u| format!("{:.1}", u.cpu_secs)),
                f.server_usage.map_or("?".into(), |u| format!("{:.0}", mb(u.peak_rss_bytes))),
            ],
            Outcome::Failed { server, .. } => {
                let mut row = vec![server.to_string(), "did not run".to_owned()];
                row.resize(header.len(), "-".to_owned());
                row
            }
        });
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            println!("|-{}-|", rule.join("-|-"));
        }
    }

    // With attacks in the table, every row says how the first document (the flooded one) fared.
    let attacks = outcomes.iter().any(|o| matches!(o, Outcome::Measured(f) if f.attacked));
    // Everything that is not a clean run, spelled out under the table.
    for outcome in outcomes {
        match outcome {
            Outcome::Failed { server, error } => println!("{server}: did not run: {error}"),
            Outcome::Measured(f) => {
                let server = f.label();
                println!(
                    "{}: sent {} updates, late against schedule p50 {} p99 {} max {}",
                    server,
                    f.sent,
                    ms(f.send_lag.p50_us),
                    ms(f.send_lag.p99_us),
                    ms(f.send_lag.max_us),
                );
                println!(
                    "{}:   during typing+grace ({:.0} s): server CPU {}, loadgen CPU {}; \
                     loadgen CPU over the whole run {}, peak {} MB",
                    server,
                    f.typing_and_grace.as_secs_f64(),
                    cores(f.server_cpu_typing, f.typing_and_grace),
                    cores(f.loadgen_cpu_typing, f.typing_and_grace),
                    f.loadgen_cpu.map_or("?".into(), |s| format!("{s:.1} s")),
                    f.loadgen_peak_rss_bytes.map_or("?".into(), |b| format!("{:.0}", mb(b))),
                );
                if let Some(h) = &f.half_open {
                    println!(
                        "{}:   {} half-open sockets held: {} unfinished heads sent, {} closed by the server, \
                         {} connects failed",
                        server, h.held, h.opened, h.closed_by_server, h.connect_errors
                    );
                }
                for (reason, n) in &f.connect_errors {
                    println!("{}:   connection error x{n}: {reason}", server);
                }
                for (reason, n) in &f.disconnects {
                    println!("{}:   disconnected after sync x{n}: {reason}", server);
                }
                if attacks {
                    let (first, other) = (&f.latency_first_doc, &f.latency_other_docs);
                    println!(
                        "{server}:   delivery on the first document (the flooded one) p50 {} p99 {} max {}; \
                         on the others p50 {} p99 {} max {}",
                        ms(first.p50_us),
                        ms(first.p99_us),
                        ms(first.max_us),
                        ms(other.p50_us),
                        ms(other.p99_us),
                        ms(other.max_us)
                    );
                }
                if f.foreign > 0 {
                    let flooders = if f.attacked { " (the flooders' among them)" } else { "" };
                    println!("{server}:   {} updates or stamps were not sent by loadgen's writers{flooders}", f.foreign);
                }
                if f.repeated > 0 {
                    println!("{}:   {} updates arrived twice or out of order (not counted)", server, f.repeated);
                }
                if f.echoes > 0 {
                    println!("{}:   {} updates were echoed back to their writer (not counted)", server, f.echoes);
                }
                for (attacker, tally) in &f.attacks {
                    println!(
                        "{server}:   attack {attacker}: {} attempts, {:.1} MB sent",
                        tally.attempts,
                        mb(tally.bytes)
                    );
                    for (outcome, n) in &tally.outcomes {
                        println!("{server}:     x{n} {outcome}");
                    }
                }
                if let Some(exit) = &f.server_exit {
                    println!("{}:   the server exited during the run: {exit}", server);
                }
                if let Some(cluster) = &f.cluster {
                    print_cluster(&server, f, cluster);
                }
            }
        }
    }
}

/// Each process's cost, and per update: quire's CPU, Redis's append and CPU, PostgreSQL's folds,
/// the stream lag between processes; then whether the replicas agree.
fn print_cluster(server: &str, f: &Figures, cluster: &ClusterFigures) {
    let span = f.typing_and_grace;
    for p in &cluster.processes {
        println!(
            "{server}:   {}: CPU {}, peak {} MB",
            p.name,
            cores(p.cpu_secs, span),
            p.peak_rss_bytes.map_or("?".into(), |b| format!("{:.0}", mb(b)))
        );
    }
    let cpu = |name: &str| cluster.processes.iter().find(|p| p.name == name).and_then(|p| p.cpu_secs);
    let quire_cpu: Option<f64> = cluster.processes.iter().filter(|p| p.quire).map(|p| p.cpu_secs).sum();
    let per = |secs: Option<f64>, n: u64| match secs {
        Some(s) if n > 0 => format!("{:.0} µs", s * 1e6 / n as f64),
        _ => "?".into(),
    };
    println!(
        "{server}:   quire CPU per update accepted {}, per update delivered {}",
        per(quire_cpu, f.sent),
        per(quire_cpu, f.delivered)
    );
    if let Some(append) = &cluster.append {
        println!(
            "{server}:   Redis append ({} appends): p50 {} p99 {} mean {}; Redis CPU per update accepted {}",
            append.count,
            secs(append.quantile(0.5)),
            secs(append.quantile(0.99)),
            secs(append.mean()),
            per(cpu("redis"), f.sent)
        );
    }
    if let Some(fold) = &cluster.fold {
        println!(
            "{server}:   PostgreSQL fold ({} folds): p50 {} p99 {} mean {}; PostgreSQL CPU per fold {}, per update accepted {}",
            fold.count,
            secs(fold.quantile(0.5)),
            secs(fold.quantile(0.99)),
            secs(fold.mean()),
            per(cpu("postgres"), fold.count),
            per(cpu("postgres"), f.sent)
        );
    }
    if let Some(lag) = &cluster.lag {
        println!(
            "{server}:   stream lag ({} entries read from other processes): p50 {} p99 {} mean {}",
            lag.count,
            secs(lag.quantile(0.5)),
            secs(lag.quantile(0.99)),
            secs(lag.mean())
        );
    }
    if cpu("haproxy").is_some() {
        println!("{server}:   HAProxy CPU per update delivered {}", per(cpu("haproxy"), f.delivered));
    }
    let r = &cluster.replicas;
    let agreed = r.agreed_after.map_or("never, within the wait".into(), |d| format!("{:.1} s after the grace period", d.as_secs_f64()));
    println!(
        "{server}:   replicas: {}/{} documents the same on {} quire processes ({agreed})",
        r.same, r.docs, r.processes
    );
    for (reason, n) in &r.errors {
        println!("{server}:     x{n} reading a document: {reason}");
    }
}

/// A duration from a histogram, in ms; "about": the buckets double.
fn secs(value: Option<f64>) -> String {
    value.map_or("-".into(), |s| format!("{:.2} ms", s * 1000.0))
}

pub fn write_json(path: &Path, load: &Load, quire_args: &[String], outcomes: &[Outcome]) -> anyhow::Result<()> {
    let servers: Vec<_> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Failed { server, error } => json!({ "server": server, "error": error }),
            Outcome::Measured(f) => json!({
                "server": f.server,
                "connections": f.connections,
                "synced": f.synced,
                "synced_in_secs": f.synced_in.as_secs_f64(),
                "connect_errors": f.connect_errors,
                "disconnects": f.disconnects,
                "sent": f.sent,
                "expected": f.expected,
                "delivered": f.delivered,
                "foreign": f.foreign,
                "repeated": f.repeated,
                "echoes": f.echoes,
                "latency_us": { "p50": f.latency.p50_us, "p99": f.latency.p99_us, "max": f.latency.max_us },
                "latency_first_doc_us": { "p50": f.latency_first_doc.p50_us, "p99": f.latency_first_doc.p99_us, "max": f.latency_first_doc.max_us },
                "latency_other_docs_us": { "p50": f.latency_other_docs.p50_us, "p99": f.latency_other_docs.p99_us, "max": f.latency_other_docs.max_us },
                "send_lag_us": { "p50": f.send_lag.p50_us, "p99": f.send_lag.p99_us, "max": f.send_lag.max_us },
                "server_cpu_secs": f.server_usage.map(|u| u.cpu_secs),
                "server_cpu_typing_secs": f.server_cpu_typing,
                "server_peak_rss_bytes": f.server_usage.map(|u| u.peak_rss_bytes),
                "server_exit": f.server_exit,
                "typing_and_grace_secs": f.typing_and_grace.as_secs_f64(),
                "loadgen_cpu_secs": f.loadgen_cpu,
                "loadgen_cpu_typing_secs": f.loadgen_cpu_typing,
                "loadgen_peak_rss_bytes": f.loadgen_peak_rss_bytes,
                "attacked": f.attacked,
                "attacks": f.attacks.iter().map(|(name, t)| (name.to_string(), json!({
                    "attempts": t.attempts,
                    "bytes": t.bytes,
                    "outcomes": t.outcomes,
                }))).collect::<serde_json::Map<_, _>>(),
                "cluster": f.cluster.as_ref().map(|c| json!({
                    "processes": c.processes.iter().map(|p| json!({
                        "name": p.name,
                        "quire": p.quire,
                        "cpu_typing_secs": p.cpu_secs,
                        "peak_rss_bytes": p.peak_rss_bytes,
                    })).collect::<Vec<_>>(),
                    "append_secs": c.append.as_ref().map(summary),
                    "fold_secs": c.fold.as_ref().map(summary),
                    "stream_lag_secs": c.lag.as_ref().map(summary),
                    "replicas": {
                        "docs": c.replicas.docs,
                        "same": c.replicas.same,
                        "processes": c.replicas.processes,
                        "agreed_after_secs": c.replicas.agreed_after.map(|d| d.as_secs_f64()),
                        "errors": c.replicas.errors,
                    },
                })),
                "half_open": f.half_open.as_ref().map(|h| json!({
                    "held": h.held,
                    "opened": h.opened,
                    "closed_by_server": h.closed_by_server,
                    "connect_errors": h.connect_errors,
                })),
            }),
        })
        .collect();
    let doc = json!({
        "load": {
            "docs": load.docs,
            "writers_per_doc": load.writers,
            "watchers_per_doc": load.watchers,
            "connections": load.connections(),
            "updates_per_sec_per_writer": 1.0 / load.period.as_secs_f64(),
            "duration_secs": load.duration.as_secs_f64(),
            "grace_secs": load.grace.as_secs_f64(),
            "seed": load.seed,
        },
        "quire_args": quire_args,
        "servers": servers,
    });
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn summary(h: &Histogram) -> serde_json::Value {
    json!({ "count": h.count, "sum": h.sum, "p50": h.quantile(0.5), "p99": h.quantile(0.99) })
}

fn synced_in(f: &Figures) -> String {
    let secs = format!("{:.2} s", f.synced_in.as_secs_f64());
    if f.synced == f.connections {
        secs
    } else {
        format!("{}/{} in {secs}", f.synced, f.connections)
    }
}

/// CPU seconds over a span, and the cores that is on average.
fn cores(cpu_secs: Option<f64>, span: std::time::Duration) -> String {
    match cpu_secs {
        Some(s) if span.as_secs_f64() > 0.0 => format!("{s:.1} s ({:.2} cores)", s / span.as_secs_f64()),
        Some(s) => format!("{s:.1} s"),
        None => "?".into(),
    }
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
