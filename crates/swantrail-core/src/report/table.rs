//! The report as text: an aligned table for a terminal, CSV for a
//! spreadsheet, JSON for a program.
//!
//! Each prints the same [`Report`]; none computes a figure (that is the
//! reader's job in `report/mod.rs`), so the formats can never disagree.

use std::fmt::Write;

use super::{Gateway, Report, TunnelRow, human_bytes, human_duration};

/// The report as an aligned table: one line of figures per tunnel and an
/// indented line with its dates, end reasons and peer, then the gateways'
/// audit events.
pub fn render_table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "period {} to {} (UTC), {} tunnels",
        r.since.replace('T', " ").trim_end_matches('Z'),
        r.until.replace('T', " ").trim_end_matches('Z'),
        r.tunnels.len()
    );
    let header = [
        "TUNNEL", "HOST", "STATE", "UP", "AVAIL", "OUTAGES", "LONGEST", "REKEYS", "IN", "OUT",
    ];
    let rows: Vec<[String; 10]> = r
        .tunnels
        .iter()
        .map(|t| {
            [
                t.label(),
                t.host.clone(),
                t.state_at_end.clone(),
                human_duration(t.up_s),
                format!("{:.1}%", t.availability_pct),
                t.outages.to_string(),
                human_duration(t.longest_outage_s),
                format!("{}/{}", t.ike_rekeys, t.child_rekeys),
                human_bytes(t.bytes_in),
                human_bytes(t.bytes_out),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            // Names left, figures right, as `show` does.
            if i < 3 {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            }
            s.push_str("  ");
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(str::to_string)));
    for (row, t) in rows.iter().zip(&r.tunnels) {
        let _ = writeln!(out, "{}", line(row));
        let _ = writeln!(out, "    {}", details(t));
    }
    for g in &r.gateways {
        out.push('\n');
        out.push_str(&gateway_text(g));
    }
    let i = &r.input;
    let _ = writeln!(
        out,
        "\nread {} lines: {} events used, {} duplicates dropped, {} unreadable lines skipped",
        i.lines, i.events, i.duplicates, i.unreadable
    );
    out
}

fn details(t: &TunnelRow) -> String {
    let mut parts = vec![format!(
        "seen {} to {}",
        short_time(&t.first_seen),
        short_time(&t.last_seen)
    )];
    if !t.end_reasons.is_empty() {
        let reasons = super::tally(&t.end_reasons);
        parts.push(format!("ended: {}", reasons.join(", ")));
    }
    if !t.outage_causes.is_empty() {
        let causes = super::tally(&t.outage_causes);
        parts.push(format!("down by cause: {}", causes.join(", ")));
    }
    let remote = t.remote();
    if !remote.is_empty() {
        parts.push(format!("remote {}", remote.join(" ")));
    }
    if t.unobserved_s > 0 {
        parts.push(format!("unobserved {}", human_duration(t.unobserved_s)));
    }
    if t.negotiations_failed + t.negotiations_stalled > 0 {
        parts.push(format!(
            "negotiations failed {}, stalled {}",
            t.negotiations_failed, t.negotiations_stalled
        ));
    }
    parts.join("; ")
}

fn short_time(rfc3339: &str) -> String {
    rfc3339.replace('T', " ").trim_end_matches('Z').to_string()
}

fn gateway_text(g: &Gateway) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "GATEWAY {}", g.host);
    let _ = writeln!(
        out,
        "    pluto restarts: {}{}",
        g.pluto_restarts.len(),
        list(g.pluto_restarts.iter().map(|i| short_time(&i.at)))
    );
    let _ = writeln!(
        out,
        "    pluto unreachable: {} times, {} in all{}",
        g.unreachable.len(),
        human_duration(g.unreachable_s),
        list(g.unreachable.iter().map(|u| format!(
            "{} for {}{}",
            short_time(&u.start),
            human_duration(u.duration_s),
            if u.end.is_none() { " (still)" } else { "" }
        )))
    );
    for (what, items) in [
        ("connections added", &g.connections_added),
        ("connections removed", &g.connections_removed),
        ("negotiations stalled", &g.negotiations_stalled),
    ] {
        let _ = writeln!(
            out,
            "    {what}: {}{}",
            items.len(),
            list(items.iter().map(|i| {
                let mut s = format!(
                    "{} {}",
                    short_time(&i.at),
                    i.subject.as_deref().unwrap_or("")
                );
                if let Some(d) = &i.detail {
                    let _ = write!(s, " ({d})");
                }
                s
            }))
        );
    }
    let failed: u64 = g.negotiations_failed.values().sum();
    let reasons = super::tally(&g.negotiations_failed);
    let _ = writeln!(
        out,
        "    negotiations failed: {failed}{}",
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    );
    if g.not_listed > 0 {
        let _ = writeln!(out, "    ({} more not listed)", g.not_listed);
    }
    out
}

/// At most five items after a colon, then how many more.
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return String::new();
    }
    let mut s = format!(": {}", items[..items.len().min(5)].join(", "));
    if items.len() > 5 {
        let _ = write!(s, ", … {} more", items.len() - 5);
    }
    s
}

/// The tunnel rows as CSV (RFC 4180: fields with commas, quotes or line
/// breaks are quoted), figures in plain units for a spreadsheet.
pub fn render_csv(r: &Report) -> String {
    let mut out = String::from(
        "host,connection,instance,peer,remote_ip,remote_id,first_seen,last_seen,state_at_end,\
         up_s,observed_s,availability_pct,up_periods,outages,longest_outage_s,ike_rekeys,\
         child_rekeys,end_reasons,bytes_in,bytes_out,unobserved_s,negotiations_failed,\
         negotiations_stalled,outage_causes\n",
    );
    for t in &r.tunnels {
        let reasons: Vec<String> = t
            .end_reasons
            .iter()
            .map(|(r, n)| format!("{r}={n}"))
            .collect();
        let fields = [
            t.host.clone(),
            t.connection.clone(),
            t.instance.clone().unwrap_or_default(),
            t.peer.clone().unwrap_or_default(),
            t.remote_ip.clone().unwrap_or_default(),
            t.remote_id.clone().unwrap_or_default(),
            t.first_seen.clone(),
            t.last_seen.clone(),
            t.state_at_end.clone(),
            t.up_s.to_string(),
            t.observed_s.to_string(),
            format!("{:.3}", t.availability_pct),
            t.up_periods.to_string(),
            t.outages.to_string(),
            t.longest_outage_s.to_string(),
            t.ike_rekeys.to_string(),
            t.child_rekeys.to_string(),
            reasons.join(";"),
            t.bytes_in.to_string(),
            t.bytes_out.to_string(),
            t.unobserved_s.to_string(),
            t.negotiations_failed.to_string(),
            t.negotiations_stalled.to_string(),
            t.outage_causes
                .iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect::<Vec<_>>()
                .join(";"),
        ];
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

/// The whole report as one pretty JSON document.
pub fn render_json(r: &Report) -> String {
    // A report holds only strings, numbers and maps with string keys.
    serde_json::to_string_pretty(r)
        .unwrap_or_else(|e| format!("{{\"error\":\"report could not be encoded: {e}\"}}"))
}
