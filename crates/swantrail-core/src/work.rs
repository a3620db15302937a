//! A count of the records the tracker, `show` and the daemon's gauges
//! visit, for the tests that show their work grows linearly with the
//! gateway without timing anything.
//!
//! It counts only with the dev-only `synth` feature; in the shipped binary
//! [`count`] compiles to nothing. It must never decide anything: it is read
//! by tests, not by the code it counts.

#[cfg(feature = "synth")]
thread_local! {
    static VISITED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Count `n` records visited on this thread.
#[inline(always)]
pub fn count(n: u64) {
    #[cfg(feature = "synth")]
    VISITED.with(|v| v.set(v.get() + n));
    #[cfg(not(feature = "synth"))]
    let _ = n;
}

/// Records visited on this thread so far (always 0 without `synth`).
pub fn visited() -> u64 {
    #[cfg(feature = "synth")]
    return VISITED.with(|v| v.get());
    #[cfg(not(feature = "synth"))]
    0
}
