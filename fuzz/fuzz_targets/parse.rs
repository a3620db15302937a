//! Fuzz target: `swantrail::parse` on any bytes, decoded lossily as the
//! property tests do. A panic, or a diagnostic pointing past the input, is
//! a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let snapshot = swantrail::parse(&text);
    let lines = text.split('\n').count();
    for d in &snapshot.diagnostics {
        assert!(
            d.line >= 1 && d.line <= lines,
            "diagnostic line {} of {lines}",
            d.line
        );
    }
    for s in &snapshot.states {
        assert!(
            s.line >= 1 && s.line <= lines,
            "state line {} of {lines}",
            s.line
        );
    }
});
