//! The tracker and `show` do work linear in the size of the gateway: twice
//! the tunnels, at most about twice the records visited and the memory
//! allocations. Counted, not timed, so a loaded machine cannot make it flaky.
//!
//! The counts come from the dev-only work counter (`swantrail::work`, on
//! with the `synth` feature the tests build with) and from a counting
//! global allocator. The quadratic code this guards against (a scan of all
//! SAs or all connections per SA) grew the counts fourfold per doubling.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use swantrail::snapshot::Snapshot;
use swantrail::synth::{Churn, Dialect, Output, Series};
use swantrail::track::{Tracker, TrackerConfig};

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed straight to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Records visited and allocations made by `f`.
fn cost<T>(f: impl FnOnce() -> T) -> (u64, u64, T) {
    let (work, allocs) = (
        swantrail::work::visited(),
        ALLOCATIONS.load(Ordering::Relaxed),
    );
    let out = f();
    (
        swantrail::work::visited() - work,
        ALLOCATIONS.load(Ordering::Relaxed) - allocs,
        out,
    )
}

fn snapshot(series: &Series, at: i64) -> Snapshot {
    let text = series.gateway().dump(Dialect::V5_4, Output::Status).text;
    let mut snap = swantrail::parse(&text);
    snap.taken_at = Some(at);
    snap
}

/// Polls at 1 % churn whose costs are summed as the steady observe.
const STEADY_POLLS: i64 = 4;

/// The costs at one size: (inventory observe, steady observe at 1 % churn, show).
fn costs(tunnels: usize) -> [(u64, u64); 3] {
    let mut series = Series::new(tunnels, Churn::even(0.01));
    let mut tracker = Tracker::new(TrackerConfig::new("gw"));
    let first = snapshot(&series, 1_795_100_000);
    let (w0, a0, events) = cost(|| tracker.observe(&first));
    assert!(events.len() > tunnels, "{} events", events.len());
    // Several polls at 1 % churn: one poll of 1,000 tunnels changes ten,
    // too few for their mix of rekeys, new tunnels and deletions to cost
    // the same twice; four of them are summed.
    let (mut w1, mut a1) = (0, 0);
    let mut second = first;
    for step in 1..=STEADY_POLLS {
        series.advance();
        second = snapshot(&series, 1_795_100_000 + 10 * step);
        let (w, a, events) = cost(|| tracker.observe(&second));
        assert!(!events.is_empty());
        (w1, a1) = (w1 + w, a1 + a);
    }
    let (w2, a2, table) = cost(|| swantrail::show::tunnel_table(&second));
    assert_eq!(table.tunnels.len(), series.gateway().tunnels_up());
    [(w0, a0), (w1, a1), (w2, a2)]
}

#[test]
fn observe_and_show_work_grows_linearly_with_the_tunnels() {
    // Counting only works with the generator's feature; make sure it is on.
    let (work, _, _) =
        cost(|| swantrail::show::tunnel_table(&snapshot(&Series::new(10, Churn::even(0.0)), 0)));
    assert!(
        work > 0,
        "the work counter is off: build with the synth feature"
    );

    let sizes = [2_000, 4_000, 8_000];
    let measured: Vec<[(u64, u64); 3]> = sizes.iter().map(|&n| costs(n)).collect();
    let names = ["first observe (inventory)", "observe at 1% churn", "show"];
    for pair in measured.windows(2) {
        for (i, name) in names.iter().enumerate() {
            let (small, big) = (pair[0][i], pair[1][i]);
            let work = big.0 as f64 / small.0 as f64;
            let allocs = big.1 as f64 / small.1 as f64;
            assert!(
                work <= 2.3,
                "{name}: records visited grew {work:.2}x per doubling ({} -> {})",
                small.0,
                big.0
            );
            assert!(
                allocs <= 2.3,
                "{name}: allocations grew {allocs:.2}x per doubling ({} -> {})",
                small.1,
                big.1
            );
        }
    }
}
