//! TODO(daemon): filled in by its issue.
