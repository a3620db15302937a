//! A destination for delivery tests: it refuses every batch until its gate
//! is opened, and records what it accepted. The `Sink` trait is the real
//! seam every sink uses; only the destination is the test's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use swantrail::sink::{Batch, SendError, Sink};

/// See the module comment.
#[derive(Clone, Default)]
pub struct GatedSink {
    /// Whether batches are accepted.
    pub open: Arc<AtomicBool>,
    /// Every line accepted, in order.
    pub received: Arc<Mutex<Vec<String>>>,
}

impl Sink for GatedSink {
    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        if !self.open.load(Ordering::SeqCst) {
            return Err(SendError::Retryable("gate closed".into()));
        }
        let mut received = self.received.lock().unwrap();
        received.extend(batch.lines().map(String::from));
        Ok(())
    }
}
