//! TODO(track): filled in by its issue.
