//! pluto's Linux audit records: exact times for every SA start, failure and
//! end, including the SAs that live and die between two polls.
//!
//! [`record`] reads one record from any place the kernel puts it (netlink,
//! auditd's log, journald); [`netlink`] reads them live from the kernel's
//! audit multicast group; [`logfile`] follows auditd's log across
//! rotations. Fusing them with the snapshots is the tracker's
//! job; this module only turns bytes into [`record::PlutoRecord`]s.

pub mod logfile;
pub mod netlink;
pub mod record;
