//! TODO(sink): filled in by its issue.
