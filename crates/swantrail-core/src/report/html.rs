//! The report as one self-contained HTML page: the figures table and a
//! timeline per tunnel, for an auditor who has a browser and nothing else.
//!
//! Everything is inline (CSS, SVG, a few lines of script), and a Content
//! Security Policy forbids the page any network request, so the file can be
//! mailed or archived and opened offline. The page is complete without
//! JavaScript: the script only adds the filter box. Times are UTC and say
//! so. This module only formats a [`Report`]; it computes no figure.

use std::fmt::Write;

use super::{Report, TunnelRow, human_bytes, human_duration};

/// Width of the timeline's coordinate system; the SVGs scale to the page.
const WIDTH: f64 = 1000.0;

/// The page's style: compact rows so 100 tunnels fit a screen, sticky
/// headers so 10,000 stay readable while scrolling.
const STYLE: &str = "
body{font:13px/1.35 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fff}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}
.scroll{max-height:80vh;overflow:auto;border:1px solid #ccc}
table{border-collapse:collapse;width:100%}
#timeline{table-layout:fixed}
th,td{padding:2px 6px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
thead th{position:sticky;top:0;background:#f4f4f4;z-index:1}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr[hidden]{display:none}
#timeline th{overflow:hidden;text-overflow:ellipsis;font-weight:normal}
#timeline thead th:first-child{width:14em}
#timeline td{width:auto;padding:1px 6px}
#timeline svg{display:block;width:100%;height:14px}
#timeline tr.gateway th{font-weight:bold}
.axis{position:relative;height:1.3em}
.axis span{position:absolute;transform:translateX(-50%);font-size:11px;color:#555}
.legend span{display:inline-block;margin-right:1.2em}
.legend i{display:inline-block;width:1.4em;height:.8em;margin-right:.3em;vertical-align:middle}
.up{fill:#3a9a4a}.rekey{stroke:#0b3d91;stroke-width:1.5}
.gap-deleted{fill:#d9534f}.gap-expired{fill:#f0ad4e}.gap-replaced{fill:#e6d84a}
.gap-pluto-restart{fill:#8e5ea2}.gap-unknown{fill:#aaa}.not-up{fill:#e4e4e4}
.unreachable{fill:#777}.restart{stroke:#8e5ea2;stroke-width:3}
.state-up{color:#2a7a3a}.state-down{color:#b52b27}.state-never-up{color:#777}
";

/// Only filters rows; the page is whole without it.
const SCRIPT: &str = "
(function(){
var box=document.getElementById('filter-box'),input=document.getElementById('filter');
box.hidden=false;
input.addEventListener('input',function(){
var q=input.value.toLowerCase();
document.querySelectorAll('tr[data-search]').forEach(function(tr){
tr.hidden=q!==''&&tr.getAttribute('data-search').indexOf(q)<0;});
});
})();
";

/// The report as a complete HTML document.
pub fn render_html(r: &Report) -> String {
    let mut out = String::with_capacity(4096 + r.tunnels.len() * 1536);
    let span = (r.until_s - r.since_s).max(1) as f64;
    let x = |t: i64| (t.clamp(r.since_s, r.until_s) - r.since_s) as f64 / span * WIDTH;
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n",
    );
    // An icon of its own, so the browser does not go looking for one.
    out.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>swantrail report {} to {}</title>",
        esc(&utc(&r.since)),
        esc(&utc(&r.until))
    );
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    out.push_str("<h1>Tunnel report</h1>\n");
    let _ = writeln!(
        out,
        "<p id=\"period\">Period <time datetime=\"{}\">{}</time> to <time datetime=\"{}\">{}</time> \
         (all times UTC) &middot; {} tunnels on {} gateway(s) &middot; {} events read, {} duplicates \
         dropped, {} unreadable lines skipped</p>",
        esc(&r.since),
        esc(&utc(&r.since)),
        esc(&r.until),
        esc(&utc(&r.until)),
        r.tunnels.len(),
        r.gateways.len(),
        r.input.events,
        r.input.duplicates,
        r.input.unreadable
    );
    out.push_str(
        "<p id=\"filter-box\" hidden><label>Filter tunnels <input id=\"filter\" type=\"search\" \
         placeholder=\"name, gateway or peer\"></label></p>\n",
    );

    out.push_str("<h2>Timeline</h2>\n<p class=\"legend\">");
    for (class, what) in [
        ("up", "up"),
        ("rekey", "rekey"),
        ("gap-deleted", "down: deleted"),
        ("gap-expired", "down: expired"),
        ("gap-replaced", "down: replaced"),
        ("gap-pluto-restart", "down: pluto restart"),
        ("not-up", "seen, never up"),
        ("unreachable", "pluto unreachable"),
        ("restart", "pluto restart"),
    ] {
        let fill = if class == "rekey" || class == "restart" {
            format!(
                "<svg width=\"20\" height=\"10\"><line class=\"{class}\" x1=\"10\" y1=\"0\" x2=\"10\" y2=\"10\"/></svg>"
            )
        } else {
            format!(
                "<svg width=\"20\" height=\"10\"><rect class=\"{class}\" width=\"20\" height=\"10\"/></svg>"
            )
        };
        let _ = write!(out, "<span>{fill} {what}</span>");
    }
    out.push_str("</p>\n<div class=\"scroll\">\n<table id=\"timeline\">\n<thead><tr><th>tunnel</th><th><div class=\"axis\">");
    for (t, label) in ticks(r.since_s, r.until_s) {
        let _ = write!(
            out,
            "<span style=\"left:{:.2}%\">{}</span>",
            x(t) / WIDTH * 100.0,
            esc(&label)
        );
    }
    out.push_str("</div></th></tr></thead>\n<tbody>\n");
    // Each gateway's band directly above its own tunnels: the rows are read
    // top to bottom, and a restart in the band explains the gaps below it.
    // Both lists are ordered by host, so one pass pairs them.
    let mut tunnels = r.tunnels.iter().peekable();
    for g in &r.gateways {
        while let Some(t) = tunnels.next_if(|t| t.host < g.host) {
            timeline_row(&mut out, t, r, &x);
        }
        let _ = write!(
            out,
            "<tr class=\"gateway\" data-host=\"{h}\" data-search=\"{s}\"><th title=\"gateway {h}: pluto restarts and unreachable periods\">{h}</th><td>{}",
            svg_open(),
            h = esc(&g.host),
            s = esc(&g.host.to_lowercase()),
        );
        for u in &g.unreachable {
            let (a, b) = (x(u.start_s()), x(u.end_s().unwrap_or(r.until_s)));
            let _ = write!(
                out,
                "<rect class=\"unreachable\" x=\"{a:.2}\" y=\"2\" width=\"{:.2}\" height=\"10\"><title>pluto unreachable from {} for {}</title></rect>",
                (b - a).max(1.0),
                esc(&utc(&u.start)),
                human_duration(u.duration_s)
            );
        }
        for p in &g.pluto_restarts {
            let a = x(p.at_s());
            let _ = write!(
                out,
                "<line class=\"restart\" vector-effect=\"non-scaling-stroke\" x1=\"{a:.2}\" y1=\"0\" x2=\"{a:.2}\" y2=\"14\"><title>pluto restarted {}</title></line>",
                esc(&utc(&p.at))
            );
        }
        out.push_str("</svg></td></tr>\n");
        while let Some(t) = tunnels.next_if(|t| t.host == g.host) {
            timeline_row(&mut out, t, r, &x);
        }
    }
    for t in tunnels {
        timeline_row(&mut out, t, r, &x);
    }
    out.push_str("</tbody>\n</table>\n</div>\n");

    figures_table(&mut out, r);
    gateway_lists(&mut out, r);
    let _ = writeln!(out, "<script>{SCRIPT}</script>\n</body>\n</html>");
    out
}

fn svg_open() -> &'static str {
    "<svg viewBox=\"0 0 1000 14\" preserveAspectRatio=\"none\" role=\"img\">"
}

fn timeline_row(out: &mut String, t: &TunnelRow, r: &Report, x: &dyn Fn(i64) -> f64) {
    let label = t.label();
    let _ = write!(
        out,
        "<tr class=\"tl\" data-tunnel=\"{}\" data-host=\"{}\" data-search=\"{}\"><th title=\"{}\">{}</th><td>{}",
        esc(&label),
        esc(&t.host),
        esc(&search_text(t)),
        esc(&format!("{} on {}", label, t.host)),
        esc(&label),
        svg_open()
    );
    let first = r
        .since_s
        .max(super::parse_rfc3339(&t.first_seen).unwrap_or(r.since_s));
    let mut cursor = first;
    let mut gap_class = "not-up".to_string();
    let mut gap_title = "seen, not up".to_string();
    let gap = |out: &mut String, from: i64, to: i64, class: &str, title: &str| {
        // A tunnel that went down and was back by the next poll still gets
        // a visible mark: the outage happened, only its length is unknown.
        if to > from || (to == from && class != "not-up") {
            let (a, b) = (x(from), x(to));
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{a:.2}\" y=\"3\" width=\"{:.2}\" height=\"8\"><title>{} from {} for {}</title></rect>",
                (b - a).max(2.0),
                esc(title),
                esc(&utc(&crate::event::rfc3339(from))),
                human_duration(to - from)
            );
        }
    };
    for p in &t.timeline.up {
        let start = p.start.max(r.since_s);
        gap(out, cursor, start, &gap_class, &gap_title);
        let end = p.end.unwrap_or(r.until_s);
        let (a, b) = (x(start), x(end));
        let _ = write!(
            out,
            "<rect class=\"up\" x=\"{a:.2}\" y=\"1\" width=\"{:.2}\" height=\"12\"><title>up from {} for {}{}</title></rect>",
            (b - a).max(0.5),
            esc(&utc(&crate::event::rfc3339(p.start))),
            human_duration(end - p.start),
            p.end_reason
                .as_deref()
                .map_or(String::new(), |why| format!(", ended: {}", esc(why)))
        );
        cursor = end;
        let reason = p.end_reason.as_deref().unwrap_or("unknown");
        gap_class = format!("gap-{}", css_reason(reason));
        gap_title = format!("down ({reason})");
    }
    if t.state_at_end != "up" {
        gap(out, cursor, r.until_s, &gap_class, &gap_title);
    }
    for &k in &t.timeline.rekeys {
        let a = x(k);
        let _ = write!(
            out,
            "<line class=\"rekey\" vector-effect=\"non-scaling-stroke\" x1=\"{a:.2}\" y1=\"0\" x2=\"{a:.2}\" y2=\"14\"><title>rekey {}</title></line>",
            esc(&utc(&crate::event::rfc3339(k)))
        );
    }
    if t.timeline.not_drawn > 0 {
        let _ = write!(
            out,
            "<title>{} more periods and rekeys not drawn</title>",
            t.timeline.not_drawn
        );
    }
    out.push_str("</svg></td></tr>\n");
}

fn figures_table(out: &mut String, r: &Report) {
    out.push_str("<h2>Tunnels</h2>\n<div class=\"scroll\">\n<table id=\"tunnels\">\n<thead><tr>");
    for h in [
        "tunnel",
        "gateway",
        "remote",
        "state at end",
        "first seen (UTC)",
        "last seen (UTC)",
        "up",
        "availability",
        "outages",
        "longest",
        "rekeys IKE / Child",
        "end reasons",
        "in",
        "out",
        "unobserved",
    ] {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for t in &r.tunnels {
        let remote = t.remote();
        let reasons = super::tally(&t.end_reasons);
        let _ = writeln!(
            out,
            "<tr data-tunnel=\"{l}\" data-host=\"{h}\" data-search=\"{s}\"><td>{l}</td><td>{h}</td><td>{}</td>\
             <td class=\"state-{st}\">{st}</td><td>{}</td><td>{}</td><td class=\"n\" data-s=\"{}\">{}</td>\
             <td class=\"n\">{:.1}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{} / {}</td>\
             <td>{}</td><td class=\"n\" data-bytes=\"{}\">{}</td><td class=\"n\" data-bytes=\"{}\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&remote.join(" ")),
            esc(&utc(&t.first_seen)),
            esc(&utc(&t.last_seen)),
            t.up_s,
            human_duration(t.up_s),
            t.availability_pct,
            t.outages,
            human_duration(t.longest_outage_s),
            t.ike_rekeys,
            t.child_rekeys,
            esc(&reasons_and_causes(&reasons, &t.outage_causes)),
            t.bytes_in,
            human_bytes(t.bytes_in),
            t.bytes_out,
            human_bytes(t.bytes_out),
            human_duration(t.unobserved_s),
            l = esc(&t.label()),
            h = esc(&t.host),
            s = esc(&search_text(t)),
            st = esc(&t.state_at_end),
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

fn gateway_lists(out: &mut String, r: &Report) {
    out.push_str("<h2>Gateway events</h2>\n");
    for g in &r.gateways {
        let _ = writeln!(
            out,
            "<h3 data-gateway=\"{h}\">{h}</h3>\n<ul>",
            h = esc(&g.host)
        );
        let times = |items: &[super::Incident]| -> String {
            items
                .iter()
                .map(|i| {
                    let mut s = utc(&i.at);
                    if let Some(sub) = &i.subject {
                        let _ = write!(s, " {sub}");
                    }
                    if let Some(d) = &i.detail {
                        let _ = write!(s, " ({d})");
                    }
                    esc(&s)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "<li>pluto restarts: {} {}</li>",
            g.pluto_restarts.len(),
            times(&g.pluto_restarts)
        );
        let outages: Vec<String> = g
            .unreachable
            .iter()
            .map(|u| {
                esc(&format!(
                    "{} for {}{}{}",
                    utc(&u.start),
                    human_duration(u.duration_s),
                    if u.end.is_none() {
                        " (still at the end)"
                    } else {
                        ""
                    },
                    u.reason
                        .as_deref()
                        .map_or(String::new(), |w| format!(": {w}"))
                ))
            })
            .collect();
        let _ = writeln!(
            out,
            "<li>pluto unreachable: {} times, {} in all {}</li>",
            g.unreachable.len(),
            human_duration(g.unreachable_s),
            outages.join(", ")
        );
        for (what, items) in [
            ("connections added", &g.connections_added),
            ("connections removed", &g.connections_removed),
            ("negotiations stalled", &g.negotiations_stalled),
        ] {
            let _ = writeln!(out, "<li>{what}: {} {}</li>", items.len(), times(items));
        }
        let failed = super::tally(&g.negotiations_failed);
        let _ = writeln!(
            out,
            "<li>negotiations failed: {} {}</li>",
            g.negotiations_failed.values().sum::<u64>(),
            esc(&failed.join(", "))
        );
        if g.not_listed > 0 {
            let _ = writeln!(out, "<li>{} more not listed</li>", g.not_listed);
        }
        out.push_str("</ul>\n");
    }
}

fn search_text(t: &TunnelRow) -> String {
    [
        Some(t.label()),
        Some(t.host.clone()),
        t.peer.clone(),
        t.remote_ip.clone(),
        t.remote_id.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
    .to_lowercase()
}

/// A reason as a CSS class suffix: the known ones, else `unknown`.
fn css_reason(reason: &str) -> &'static str {
    match reason {
        "deleted" => "deleted",
        "expired" => "expired",
        "replaced" => "replaced",
        "pluto-restart" => "pluto-restart",
        _ => "unknown",
    }
}

/// RFC 3339 as `2026-11-28 09:21:02 UTC`.
fn utc(rfc3339: &str) -> String {
    format!("{} UTC", rfc3339.replace('T', " ").trim_end_matches('Z'))
}

/// Axis ticks: the coarsest round step that gives at least four ticks,
/// labelled with as much of the date as the step needs.
fn ticks(since: i64, until: i64) -> Vec<(i64, String)> {
    const STEPS: [i64; 12] = [
        10,
        30,
        60,
        300,
        900,
        3600,
        3 * 3600,
        6 * 3600,
        86_400,
        7 * 86_400,
        30 * 86_400,
        365 * 86_400,
    ];
    let span = (until - since).max(1);
    let step = STEPS
        .iter()
        .rev()
        .copied()
        .find(|s| span / s >= 4)
        .unwrap_or(STEPS[0]);
    let mut out = Vec::new();
    let mut t = since.div_euclid(step) * step;
    if t < since {
        t += step;
    }
    while t <= until && out.len() < 16 {
        let full = crate::event::rfc3339(t);
        let label = if step < 60 {
            full[11..19].to_string()
        } else if step < 86_400 {
            format!("{} {}", &full[5..10], &full[11..16])
        } else {
            full[..10].to_string()
        };
        out.push((t, label));
        t += step;
    }
    out
}

/// Escapes text for HTML content and double-quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The end reasons cell: the reasons, and when pluto's log was fused the
/// causes of the outages in its words after them.
fn reasons_and_causes(
    reasons: &[String],
    causes: &std::collections::BTreeMap<String, u64>,
) -> String {
    let mut cell = reasons.join(", ");
    if !causes.is_empty() {
        cell.push_str(" (by cause: ");
        cell.push_str(&super::tally(causes).join(", "));
        cell.push(')');
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralises_markup_in_names() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn ticks_are_round_utc_times_inside_the_period() {
        let t = ticks(1795857662, 1795857957);
        assert!(t.len() >= 4);
        assert!(t.iter().all(|(s, _)| *s >= 1795857662 && *s <= 1795857957));
        assert_eq!(t[0].1, "11-28 09:22");
    }
}
