//! TODO: the command source.
