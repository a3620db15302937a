//! This machine's host name, the default `observer.hostname` of every event.
//!
//! The daemon and the `diff`/`replay` commands must agree on it, or the
//! same change would get different `event.id`s depending on who saw it.
//! This module only asks the kernel; it must never guess from the network.

/// This machine's name (gethostname(2)), or `localhost` when it has none.
pub fn system_hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `len` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..end]) {
        Ok(name) if !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}
