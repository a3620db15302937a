//! TODO(show): filled in by its issue.
