//! Where a big gateway's memory goes, stage by stage: the live heap bytes
//! of a parsed snapshot, of the tracker after it, and the size of its
//! checkpoint, for a synthetic series at 1 % churn (`scripts/scale.sh`
//! measures the whole daemon; this names the parts). Dev-only, like
//! `synth`.
//!
//! ```text
//! footprint TUNNELS [status|traffic]
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use swantrail::listing::{ListingBuilder, ListingMeta};
use swantrail::synth::{Churn, Dialect, Output, Series};
use swantrail::track::journal::Saved;
use swantrail::track::{Tracker, TrackerConfig};

/// The system allocator, counting the bytes live at any moment.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tunnels: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let traffic = args.get(1).is_some_and(|a| a == "traffic");
    let mut series = Series::new(tunnels, Churn::even(0.01));
    let texts = |series: &Series| -> Vec<String> {
        if traffic {
            vec![
                series
                    .gateway()
                    .dump(Dialect::V5_4, Output::ShowStates)
                    .text,
                series
                    .gateway()
                    .dump(Dialect::V5_4, Output::TrafficStatus)
                    .text,
            ]
        } else {
            vec![series.gateway().dump(Dialect::V5_4, Output::Status).text]
        }
    };
    let parse = |texts: &[String], at: i64| {
        let mut snap = swantrail::snapshot::Snapshot::default();
        for t in texts {
            snap.merge(swantrail::status::parse(t));
        }
        snap.taken_at = Some(at);
        snap
    };
    // What the daemon builds instead of the snapshot: the listing, its
    // records taken as the parser reads them.
    let stream = |texts: &[String], at: i64| {
        let mut builder = ListingBuilder::new();
        let mut merged = swantrail::snapshot::Snapshot::default();
        for t in texts {
            let mut feed = swantrail::status::LineFeed::streaming(builder);
            feed.text(t);
            let (snap, b) = feed.finish_streamed(None);
            builder = b.unwrap_or_default();
            merged.merge(snap);
        }
        let mut listing = builder.finish(ListingMeta::of(&merged));
        listing.taken_at = Some(at);
        listing
    };
    let mut tracker = Tracker::new(TrackerConfig::new("gw"));
    let mut saved = Saved::default();
    for step in 0..3 {
        let t = texts(&series);
        let bytes: usize = t.iter().map(String::len).sum();
        let before = live();
        let snap = parse(&t, 1_800_000_000 + step * 10);
        let snap_bytes = live() - before;
        drop(snap);
        let before = live();
        PEAK.store(before, Ordering::Relaxed);
        let listing = stream(&t, 1_800_000_000 + step * 10);
        let listing_bytes = live() - before;
        let listing_peak = PEAK.load(Ordering::Relaxed) - before;
        drop(t);
        let before = live();
        let events = tracker.observe_listing(&listing);
        let grew = live() as isize - before as isize;
        drop(listing);
        // As the daemon saves: whole after the inventory, a journal line
        // after each later poll (which takes the tracker's marks).
        if step == 0 {
            saved = Saved::of(&mut tracker);
        } else if let Ok(delta) = saved.delta(&mut tracker) {
            saved.accept(delta);
        }
        let before = live();
        let copy = saved.clone();
        let saved_bytes = live() - before;
        drop(copy);
        let before_clone = live();
        let copy = tracker.clone();
        let clone_bytes = live() - before_clone;
        drop(copy);
        let json = serde_json::to_vec(&tracker).map(|v| v.len()).unwrap_or(0);
        println!(
            "step {step}: dump {} | snapshot {} | listing {} (peak {} while read) | events {} | tracker grew {:.1} MB, clone {} | journal fingerprints {} | checkpoint JSON {}",
            mb(bytes),
            mb(snap_bytes),
            mb(listing_bytes),
            mb(listing_peak),
            events.len(),
            grew as f64 / 1e6,
            mb(clone_bytes),
            mb(saved_bytes),
            mb(json)
        );
        series.advance();
    }
    println!("live at end {} (tracker and series)", mb(live()));
}
