//! TODO: the replay source.
