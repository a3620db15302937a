//! The connection list (`"c"[1]: payload`), the totals line and the
//! brief-status counters.
//!
//! The connection list is an open key/value soup whose keys change from
//! version to version; only the fields a tracker needs are read, and a
//! line whose payload is not understood is still a connection line.

use crate::snapshot::{Connection, IkeVersion, Totals};

use super::lexical::{Positions2, Word, conn_name_ref, number, trim_end, trim_start};

/// A connection-list line split into its connection and payload.
pub struct ConnLine<'a> {
    /// Base name, borrowed from the line (most lines repeat the name of the
    /// line before, so it is copied only when the connection changes).
    pub name: &'a str,
    /// Instance serials.
    pub instances: Vec<u64>,
    /// The payload after `: `, with its leading spaces.
    pub payload: &'a str,
}

/// `"c"[1]: payload`, or `None`.
pub fn conn_line(text: &str) -> Option<ConnLine<'_>> {
    let (name, instances, rest) = conn_name_ref(text)?;
    let payload = rest.strip_prefix(':')?;
    if !payload.starts_with(' ') && !payload.is_empty() {
        return None;
    }
    Some(ConnLine {
        name,
        instances,
        payload,
    })
}

/// Fill `conn` from one payload line of its group.
pub fn apply(conn: &mut Connection, payload: &str) {
    let first_line = payload.starts_with(' ') && !payload.starts_with("  ");
    if first_line && conn.topology.is_none() {
        topology(conn, payload.trim());
        return;
    }
    if !may_say_something(payload.as_bytes()) {
        return;
    }
    // One pass over the bytes finds each item's end (`;`) and the end of
    // its key (its first `": "`): most lines hold only keys nobody reads,
    // and a search per item would cost more than the item.
    let b = payload.as_bytes();
    let mut start = 0;
    let mut key_end = None;
    for i in Positions2::new(b, b';', b':') {
        if b[i] == b';' {
            apply_item(conn, payload, start, i, key_end);
            start = i + 1;
            key_end = None;
        } else if key_end.is_none() && b.get(i + 1) == Some(&b' ') {
            key_end = Some(i);
        }
    }
    apply_item(conn, payload, start, b.len(), key_end);
}

/// Whether a payload line (not the first) can hold anything [`apply`]
/// reads: a `key: ` whose key ends as one of the keys read ends
/// (`... SA`, `routing`, `policy`, `conn serial`, `... newest`), or a bare
/// `IKEv` item.
///
/// Nineteen lines in twenty of a connection list hold neither (timers,
/// auth, updown, marks...): this one pass over their colons and capital
/// `I`s, eight bytes at a time, lets them skip the item-by-item reading.
/// It may say yes for a line that says nothing; never no for one that does.
fn may_say_something(b: &[u8]) -> bool {
    const KEY_ENDS: [&[u8]; 5] = [b"SA", b"routing", b"policy", b"serial", b"newest"];
    Positions2::new(b, b':', b'I').any(|i| {
        if b[i] == b'I' {
            return b[i..].starts_with(b"IKEv");
        }
        // The last two letters of a key read, before looking for the whole.
        let before = match b.get(i.wrapping_sub(2)..i) {
            Some(&[x, y]) => [x, y],
            _ => return false,
        };
        b.get(i + 1) == Some(&b' ')
            && matches!(&before, b"SA" | b"ng" | b"cy" | b"al" | b"st")
            && KEY_ENDS.iter().any(|k| b[..i].ends_with(k))
    })
}

/// The item `payload[start..end]`, whose first `": "` (if any) is at
/// `key_end`: read as `key: value` once trimmed, or as a bare item.
#[inline]
fn apply_item(
    conn: &mut Connection,
    payload: &str,
    start: usize,
    end: usize,
    key_end: Option<usize>,
) {
    if let Some(k) = key_end {
        // Trimmed, the item keeps its `": "` only if something follows it.
        let value = trim_end(&payload[k + 2..end]);
        if !value.is_empty() {
            // Every key `apply_pair` reads ends in one of these letters
            // (`SA`, `routing`, `policy`, `conn serial`, `newest`): the
            // others are passed over without being compared.
            if k > start && matches!(payload.as_bytes()[k - 1], b'A' | b'g' | b'y' | b'l' | b't') {
                apply_pair(conn, trim_start(&payload[start..k]), value);
            }
            return;
        }
    }
    let item = trim_start(&payload[start..end]);
    if item.starts_with("IKEv") {
        let item = trim_end(item);
        if item.starts_with("IKEv1") && item.contains('+') {
            conn.ike_version = Some(IkeVersion::V1);
        } else if item.starts_with("IKEv2") && item.contains('+') {
            conn.ike_version = Some(IkeVersion::V2);
        }
    }
}

/// One `key: value` item of the connection list.
fn apply_pair(conn: &mut Connection, key: &str, value: &str) {
    let serial_of = |v: &str| {
        v.trim()
            .trim_start_matches('#')
            .parse::<u64>()
            .ok()
            .filter(|&n| n != 0)
    };
    match key {
        "newest ISAKMP SA" | "established ISAKMP SA" => {
            conn.newest_ike = serial_of(value).or(conn.newest_ike);
            conn.ike_version = Some(IkeVersion::V1);
        }
        "newest IKE SA" | "established IKE SA" => {
            conn.newest_ike = serial_of(value).or(conn.newest_ike);
            conn.ike_version.get_or_insert(IkeVersion::V2);
        }
        "newest IPsec SA" | "established IPsec SA" | "established Child SA" => {
            conn.newest_child = serial_of(value).or(conn.newest_child);
        }
        "routing" => conn.routing = Some(value.trim().to_string()),
        "policy" => {
            if value.contains("IKEv1") {
                conn.ike_version = Some(IkeVersion::V1);
            } else if value.contains("IKEv2") {
                conn.ike_version = Some(IkeVersion::V2);
            }
        }
        "conn serial" => {
            let v = value
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .trim_start_matches('$');
            conn.conn_serial = number(v).ok().map(|(_, n)| n);
        }
        k if k.ends_with(" algorithm newest") => {
            if k.starts_with("IKE") {
                conn.ike_algorithm = Some(value.trim().to_string());
                if k == "IKEv2 algorithm newest" {
                    conn.ike_version = Some(IkeVersion::V2);
                }
            } else {
                conn.child_algorithm = Some(value.trim().to_string());
            }
        }
        _ => {}
    }
}

/// The first line: `LEFT===LHOST[id]...RHOST[id]===RIGHT; routing; eroute owner: #N`.
fn topology(conn: &mut Connection, text: &str) {
    static ITEM_END: Word = Word::new("; ");
    static ENDS: Word = Word::new("...");
    static CLIENT: Word = Word::new("===");
    let (topo, rest) = match ITEM_END.split_once(text) {
        Some((topo, rest)) => (topo, Some(rest)),
        None => (text, None),
    };
    let topo = topo.trim_end_matches(';');
    conn.topology = Some(topo.to_string());
    if let Some(rest) = rest {
        let routing = ITEM_END.split_once(rest).map_or(rest, |(r, _)| r);
        conn.routing = Some(routing.trim_end_matches(';').to_string());
    }
    if let Some((left, right)) = ENDS.split_once(topo) {
        let (lclient, lhost) = match CLIENT.split_once(left) {
            Some((c, h)) => (Some(c), h),
            None => (None, left),
        };
        let (rhost, rclient) = match CLIENT.split_once(right) {
            Some((h, c)) => (h, Some(c)),
            None => (right, None),
        };
        conn.local_subnet = lclient.map(str::to_string);
        conn.remote_subnet = rclient.map(str::to_string);
        conn.local_host = host_address(lhost);
        conn.remote_host = host_address(rhost);
    }
}

/// The address part of a topology host: `192.0.2.1<192.0.2.1>[@west]`,
/// `[2001:db8::1]:4500`, `%any`.
fn host_address(host: &str) -> Option<String> {
    let addr = if let Some(b) = host.strip_prefix('[') {
        b.split(']').next().unwrap_or("")
    } else {
        host.split(['<', '[', ':']).next().unwrap_or("")
    };
    let addr = if addr.contains(':') || !host.starts_with('[') && host.matches(':').count() > 1 {
        // Unbracketed IPv6: everything up to `<` or `[`.
        host.split(['<', '[']).next().unwrap_or("")
    } else {
        addr
    };
    (!addr.is_empty()).then(|| addr.to_string())
}

/// `Total IPsec connections: loaded N, [routed R, ]active M`.
pub fn total_line(text: &str, totals: &mut Totals) -> bool {
    let Some(rest) = text
        .strip_prefix("Total IPsec connections: ")
        .or_else(|| text.strip_prefix("# Total IPsec connections: "))
    else {
        return false;
    };
    for part in rest.split(", ") {
        let Some((key, value)) = part.trim().split_once(' ') else {
            return false;
        };
        let Ok(n) = value.trim().parse::<u64>() else {
            return false;
        };
        match key {
            "loaded" => totals.loaded = Some(n),
            "routed" => totals.routed = Some(n),
            "active" => totals.active = Some(n),
            _ => return false,
        }
    }
    true
}

/// `IKE SAs: total(5), half-open(2), ...` and `IPsec SAs: ...`, read by name.
pub fn brief_counts(text: &str) -> Option<(bool, Vec<(String, u64)>)> {
    let (ike, rest) = if let Some(r) = text.strip_prefix("IKE SAs: ") {
        (true, r)
    } else {
        (false, text.strip_prefix("IPsec SAs: ")?)
    };
    let mut counts = Vec::new();
    for part in rest.split(", ") {
        let (name, n) = part.trim().strip_suffix(')')?.split_once('(')?;
        counts.push((name.to_string(), n.parse().ok()?));
    }
    Some((ike, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_of_a_v4_first_line() {
        let mut c = Connection::default();
        apply(
            &mut c,
            " 198.51.100.0/28===192.0.2.1[@west-v2]...192.0.2.2[@east-v2]===198.51.100.128/28; erouted; eroute owner: #21",
        );
        assert_eq!(c.local_subnet.as_deref(), Some("198.51.100.0/28"));
        assert_eq!(c.local_host.as_deref(), Some("192.0.2.1"));
        assert_eq!(c.remote_host.as_deref(), Some("192.0.2.2"));
        assert_eq!(c.remote_subnet.as_deref(), Some("198.51.100.128/28"));
        assert_eq!(c.routing.as_deref(), Some("erouted"));
    }

    #[test]
    fn newest_serials_of_every_epoch() {
        let mut c = Connection::default();
        apply(
            &mut c,
            "   newest ISAKMP SA: #30; newest IPsec SA: #34; conn serial: $2;",
        );
        assert_eq!(
            (c.newest_ike, c.newest_child, c.conn_serial),
            (Some(30), Some(34), Some(2))
        );
        assert_eq!(c.ike_version, Some(IkeVersion::V1));
        let mut c = Connection::default();
        apply(
            &mut c,
            "   routing: routed-tunnel; owner: Child SA #27; established IKE SA: #25; established Child SA: #27;",
        );
        assert_eq!((c.newest_ike, c.newest_child), (Some(25), Some(27)));
        assert_eq!(c.routing.as_deref(), Some("routed-tunnel"));
    }

    #[test]
    fn totals_with_and_without_routed() {
        let mut t = Totals::default();
        assert!(total_line(
            "Total IPsec connections: loaded 7, routed 6, active 5",
            &mut t
        ));
        assert_eq!((t.loaded, t.routed, t.active), (Some(7), Some(6), Some(5)));
        assert!(!total_line("Total IPsec connections: loaded x", &mut t));
    }
}
