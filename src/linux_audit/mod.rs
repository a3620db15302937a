//! pluto's Linux audit records: exact times for every SA start, failure and
//! end, including the SAs that live and die between two polls.
//!
//! "Linux audit" is the kernel's audit subsystem (auditd, `CRYPTO_IKE_SA`
//! records), not the audit trail swantrail writes: the two are kept apart
//! in every name.
//!
//! [`record`] (the core's `linux_audit`, re-exported) reads one record from
//! any place the kernel puts it (netlink, auditd's log, journald);
//! [`netlink`] reads them live from the kernel's audit multicast group;
//! [`logfile`] follows auditd's log across rotations. Fusing them with the
//! snapshots is the tracker's job; this module only reads the records and
//! turns their bytes into [`record::PlutoRecord`]s.

pub mod logfile;
pub mod netlink;
pub use swantrail_core::linux_audit as record;
