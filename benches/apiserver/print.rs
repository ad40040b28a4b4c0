//! The markdown tables the run prints.

use super::*;

pub(crate) fn ms(value: f64) -> String {
    format!("{value:.2}")
}

pub(crate) fn print_unary(rows: &[Row], sizes: &Sizes, clean: &mut bool) {
    println!(
        "## Unary: {} ops each, {} concurrent clients, spread over the 3 members\n",
        sizes.ops, sizes.clients
    );
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "workload",
        "ok",
        "errors",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "CPU µs/op",
        "API / raw",
    ]);
    for row in rows {
        let r = &row.report;
        *clean &= r.errors == 0;
        table.add_row([
            row.label.clone(),
            r.ok.to_string(),
            r.errors.to_string(),
            format!("{:.0}", r.ops_per_second),
            ms(r.latency_ms.p50),
            ms(r.latency_ms.p99),
            ms(r.latency_ms.slowest),
            format!("{:.0}", row.cpu * 1e6 / r.ok.max(1) as f64),
            row.ratio.clone(),
        ]);
    }
    println!("{table}");
    println!(
        "\nCPU µs/op is the whole process's CPU time (servers and client) over the run's \
         successful operations: steadier than ops/s on a shared machine."
    );
    print_errors(rows.iter().map(|r| &r.report));
}

pub(crate) fn print_errors<'a>(reports: impl IntoIterator<Item = &'a Report>) {
    for report in reports {
        for (message, count) in &report.error_messages {
            println!("- {}: {count}× {message}", report.workload);
        }
    }
}

pub(crate) fn print_watch(run: &WatchRun, sizes: &Sizes, clean: &mut bool) {
    let r = &run.events;
    let c = &run.check;
    println!(
        "\n## Watch: {} watchers (fieldSelector spec.nodeName=node-<i>, over HTTP/1.1, one \
         connection each), {} updates at {}/s\n",
        sizes.watchers, sizes.watch_writes, sizes.watch_rate
    );
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "events ok",
        "p50 ms",
        "p99 ms",
        "max ms",
        "from sent: p50 / p99 / max ms",
        "before ack",
        "writes acked",
        "write errors",
        "missing",
        "duplicates",
        "foreign",
        "out of order",
    ]);
    table.add_row([
        r.ok.to_string(),
        ms(r.latency_ms.p50),
        ms(r.latency_ms.p99),
        ms(r.latency_ms.slowest),
        format!(
            "{} / {} / {}",
            ms(run.from_sent.latency_ms.p50),
            ms(run.from_sent.latency_ms.p99),
            ms(run.from_sent.latency_ms.slowest)
        ),
        run.before_ack.to_string(),
        c.puts_acked.to_string(),
        run.write_errors.to_string(),
        c.missing.to_string(),
        c.duplicates.to_string(),
        run.foreign.to_string(),
        c.out_of_order.to_string(),
    ]);
    println!("{table}");
    println!(
        "\nLatency runs from an update's answer to its event's arrival at the watcher of its \
         node (0 when the event came first: \"before ack\" counts those); \"from sent\" runs \
         from the moment the update was sent. Setup: {} watched pods created in {:.2} s; {} lists and watches opened in {:.2} s; \
         updates sent over {:.2} s ({:.0}/s achieved).",
        sizes.watchers,
        run.pods_setup.as_secs_f64(),
        sizes.watchers,
        run.watch_setup.as_secs_f64(),
        run.writing.as_secs_f64(),
        c.puts_acked as f64 / run.writing.as_secs_f64().max(1e-9),
    );
    let [unwatched, watched] = &run.update_latency;
    println!(
        "The same updates before anyone watched, then with {} watchers: CPU of the whole process \
         per update {:.2} ms, then {:.2} ms; update latency (sent to answered) p50 / p99 / max \
         {} / {} / {} ms, then {} / {} / {} ms.",
        sizes.watchers,
        run.cpu_unwatched * 1000.0 / sizes.watch_writes.max(1) as f64,
        run.cpu_watched * 1000.0 / sizes.watch_writes.max(1) as f64,
        ms(unwatched.latency_ms.p50),
        ms(unwatched.latency_ms.p99),
        ms(unwatched.latency_ms.slowest),
        ms(watched.latency_ms.p50),
        ms(watched.latency_ms.p99),
        ms(watched.latency_ms.slowest),
    );
    *clean &= r.errors == 0;
    print_errors([r]);
}

pub(crate) fn print_lists(run: &ListRun, clean: &mut bool) {
    println!(
        "\n## List of {} pods (one namespace, one client)\n",
        run.pods
    );
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "list",
        "median ms",
        "min ms",
        "to 1st byte, median ms",
        "items",
        "pages",
        "MiB received",
        "RSS after 1st, MiB",
    ]);
    for row in &run.rows {
        let median = |times: &[Duration]| {
            let mut times = times.to_vec();
            times.sort();
            times.get(times.len() / 2).copied().unwrap_or_default()
        };
        let min = row.times.iter().min().copied().unwrap_or_default();
        table.add_row([
            row.label.clone(),
            ms(median(&row.times).as_secs_f64() * 1000.0),
            ms(min.as_secs_f64() * 1000.0),
            ms(median(&row.first_bytes).as_secs_f64() * 1000.0),
            row.items.to_string(),
            row.pages.to_string(),
            format!("{:.1}", row.bytes as f64 / 1_048_576.0),
            format!("{:.0}", row.rss_after as f64 / 1024.0),
        ]);
    }
    println!("{table}");
    println!(
        "\nRSS (VmRSS) is the whole process: the 3 members, their API servers and this \
         client. {:.0} MiB before the lists, {:.0} MiB after them, peak {:.0} MiB {} (VmHWM). \
         Filling the namespace: {} creates at {:.0}/s.",
        run.rss_before as f64 / 1024.0,
        run.rss_after as f64 / 1024.0,
        run.rss_peak as f64 / 1024.0,
        if run.peak_reset {
            "during them"
        } else {
            "over the whole run"
        },
        run.fill.ok,
        run.fill.ops_per_second
    );
    if let Some((json, value)) = run.footprint {
        println!(
            "One pod as served is {json} B of JSON and about {:.1} KiB as a serde_json::Value \
             ({:.0}x), the form the watch cache keeps every object in.",
            value / 1024.0,
            value / json as f64
        );
    }
    *clean &= run.fill.errors == 0;
    print_errors([&run.fill]);
    for row in &run.rows {
        if let Some(error) = &row.error {
            *clean = false;
            println!("- {}: {error}", row.label);
        }
    }
}
