//! TODO: the file source.
