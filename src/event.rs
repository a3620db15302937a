//! TODO(event): filled in by its issue.
