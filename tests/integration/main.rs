//! The integration tests, in one binary: one link of tokio, reqwest, hyper
//! and rustls for all of them instead of one per file, and one support
//! module (`support/`) for the daemon, the receivers and the replays.
//!
//! Tests here run in parallel threads of one process, so a test must never
//! touch process-wide state (environment variables, the current directory,
//! the global allocator or log subscriber, fixed ports or paths): each one
//! takes its own temporary directory and port 0. The few tests that must
//! set such state are their own `[[test]]` targets beside this one (see
//! Cargo.toml).

mod support;

/// The crates' module graph: no import cycle spans two top-level modules.
mod structure;

/// Reading `ipsec status` and its kin: dialects, the dump reader, hostile input, the event encoder.
mod parse {
    mod corpus_conformance;
    mod dialects;
    mod dump_reader;
    mod event_encoding;
    mod incomplete;
    mod parse_props;
    mod synth_parses;
}

/// The tracker over real dump series: lifecycles, rekeys, checkpoints, the three views that must agree.
mod track {
    mod checkpoint_fixture;
    mod listing;
    mod three_views;
    mod track_corpus;
    mod track_gateway;
    mod track_lab;
    mod track_lifecycle;
    mod track_second_child;
    mod track_snapshot_misses;
}

/// `swantrail run` as an operator runs it: the real binary, real files, real signals.
mod daemon {
    mod daemon_audit;
    mod daemon_in_process;
    mod daemon_pluto_log;
    mod daemon_reconfigure;
    mod footprint;
    mod full_disk;
    mod hostile;
    mod metrics;
    mod run;
}

/// Delivery through the spool to the file, HTTP and syslog sinks and their real receivers.
mod sinks {
    mod delivery;
    mod http_config;
    mod http_dead_letters;
    mod http_nginx;
    mod http_secrets;
    mod http_sink;
    mod kafka;
    mod sink_contract;
    mod spool_recovery;
    mod syslog_receivers;
    mod syslog_reconnect;
    mod tls_policy;
}

/// The other subcommands and the configuration, through the real binary.
mod cli {
    mod config;
    mod man_completions;
    mod ocsf_encoding;
    mod parse_show;
    mod replay_cli;
}

/// `swantrail report` and the documented examples of every event.
mod report {
    mod events_doc;
    mod figures;
    mod report_browser;
}

/// The bundled real libreswan lab runs, checked against pluto's own logs and audit records.
mod lab {
    mod audit_fusion;
    mod audit_lab_bundle;
    mod audit_netlink;
    mod ci_labs;
    mod e2e_lab;
    mod lab_52;
    mod lab_audit_log;
    mod lab_gateway;
    mod lab_pluto_log;
    mod pluto_log_fused;
}
