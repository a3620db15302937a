//! Reading audit records from the kernel's audit netlink multicast group.
//!
//! Since Linux 3.16 a process with `CAP_AUDIT_READ` can bind a
//! `NETLINK_AUDIT` socket to the "readlog" group and receive a copy of
//! every record the kernel logs, next to auditd or without it. Nothing is
//! asked of the kernel and nothing is acknowledged: the socket only reads,
//! so it can never block the audit subsystem or pluto. If this reader falls
//! behind, the kernel drops what does not fit in the socket buffer and the
//! next read fails with `ENOBUFS`: that is counted and reported, and the
//! buffer is asked for large from the start.
//!
//! A second, ordinary socket asks the kernel's audit status (`AUDIT_GET`):
//! whether auditing is enabled at all (when it is not, the kernel drops
//! pluto's user messages before anyone sees them) and its own lost counter.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;

/// `NETLINK_AUDIT` (linux/netlink.h).
const NETLINK_AUDIT: libc::c_int = 9;
/// `AUDIT_NLGRP_READLOG` (linux/audit.h): the multicast group of all records.
const AUDIT_NLGRP_READLOG: u32 = 1;
/// `AUDIT_GET` (linux/audit.h): ask for `struct audit_status`.
const AUDIT_GET: u16 = 1000;
/// `NLMSG_ERROR`, the kernel's acknowledgement or error.
const NLMSG_ERROR: u16 = 2;
/// The receive buffer asked for: a burst of 50,000 tunnels rekeying writes
/// about 300 bytes per record.
const RECEIVE_BUFFER: usize = 8 << 20;

/// One record as the socket delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The record type (`CRYPTO_IKE_SA` = 2408, ...).
    pub record_type: u16,
    /// Its text, `audit(SECS.MS:SEQ): ...`.
    pub text: String,
}

/// The kernel's audit status, as far as the reader needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// 0 off, 1 on, 2 locked on. Off means pluto's records never exist.
    pub enabled: u32,
    /// Records the kernel itself lost (backlog full, rate limit).
    pub lost: u32,
    /// Records waiting for auditd.
    pub backlog: u32,
}

/// A socket bound to the readlog group.
pub struct Reader {
    fd: AsyncFd<OwnedFd>,
    buf: Vec<u8>,
    /// Reads that failed with `ENOBUFS`: the kernel dropped records for us.
    pub overruns: u64,
}

fn netlink_socket(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before it is owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | flags,
            NETLINK_AUDIT,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new, valid descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: RawFd, groups: u32) -> io::Result<()> {
    // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = groups;
    // SAFETY: addr is a valid sockaddr_nl for the length given.
    let rc = unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_receive_buffer(fd: RawFd, bytes: usize) {
    let size = bytes as libc::c_int;
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt with a c_int value of the right size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the capped one will do.
        if rc == 0 {
            return;
        }
    }
}

/// The netlink messages in one datagram: (type, payload).
fn messages(datagram: &[u8]) -> Vec<(u16, &[u8])> {
    const HEADER: usize = 16;
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= HEADER {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        if len < HEADER || len > rest.len() {
            // Audit multicast messages often carry a length without the
            // header; the payload then runs to the end of the datagram.
            out.push((kind, &rest[HEADER..]));
            break;
        }
        out.push((kind, &rest[HEADER..len]));
        let aligned = (len + 3) & !3;
        rest = rest.get(aligned..).unwrap_or(&[]);
    }
    out
}

impl Reader {
    /// Binds to the readlog group. Fails with the OS error (`EPERM` without
    /// `CAP_AUDIT_READ`, `EPROTONOSUPPORT` on a kernel without audit).
    pub fn open() -> io::Result<Reader> {
        let fd = netlink_socket(libc::SOCK_NONBLOCK)?;
        set_receive_buffer(fd.as_raw_fd(), RECEIVE_BUFFER);
        bind(fd.as_raw_fd(), AUDIT_NLGRP_READLOG)?;
        // SAFETY: an OwnedFd stays open and returns the same descriptor
        // until it is dropped, which is when the AsyncFd is.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(Reader {
            fd,
            buf: vec![0; 64 * 1024],
            overruns: 0,
        })
    }

    /// The next records, as soon as the kernel has any. An overrun is
    /// counted in `overruns` and reading goes on.
    pub async fn next(&mut self) -> io::Result<Vec<RawRecord>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let fd = guard.get_inner().as_raw_fd();
            // SAFETY: recv into our own buffer of the given length.
            let n = unsafe { libc::recv(fd, self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => {
                        guard.clear_ready();
                        continue;
                    }
                    Some(libc::ENOBUFS) => {
                        self.overruns += 1;
                        continue;
                    }
                    Some(libc::EINTR) => continue,
                    _ => return Err(e),
                }
            }
            let datagram = &self.buf[..n as usize];
            let records: Vec<RawRecord> = messages(datagram)
                .into_iter()
                .filter(|(kind, _)| *kind >= 1100)
                .map(|(record_type, payload)| {
                    let end = payload
                        .iter()
                        .position(|b| *b == 0)
                        .unwrap_or(payload.len());
                    RawRecord {
                        record_type,
                        text: String::from_utf8_lossy(&payload[..end]).into_owned(),
                    }
                })
                .collect();
            if !records.is_empty() {
                return Ok(records);
            }
        }
    }
}

/// Asks the kernel for its audit status (blocking, a few microseconds).
pub fn status() -> io::Result<Status> {
    let fd = netlink_socket(0)?;
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: setsockopt with a timeval of the right size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let mut request = [0u8; 16];
    request[0..4].copy_from_slice(&16u32.to_ne_bytes());
    request[4..6].copy_from_slice(&AUDIT_GET.to_ne_bytes());
    // NLM_F_REQUEST | NLM_F_ACK
    request[6..8].copy_from_slice(&0x5u16.to_ne_bytes());
    request[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // SAFETY: send of a buffer we own, to the kernel (default address).
    let sent = unsafe { libc::send(fd.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 8192];
    for _ in 0..4 {
        // SAFETY: recv into our own buffer.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (kind, payload) in messages(&buf[..n as usize]) {
            let word = |i: usize| {
                payload
                    .get(i * 4..i * 4 + 4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            };
            match kind {
                AUDIT_GET => {
                    // struct audit_status: mask, enabled, failure, pid,
                    // rate_limit, backlog_limit, lost, backlog, ...
                    if let (Some(enabled), Some(lost), Some(backlog)) = (word(1), word(6), word(7))
                    {
                        return Ok(Status {
                            enabled,
                            lost,
                            backlog,
                        });
                    }
                    return Err(io::Error::other("a short audit status from the kernel"));
                }
                NLMSG_ERROR => {
                    let code = word(0).map_or(0, |c| c as i32);
                    if code < 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                }
                _ => {}
            }
        }
    }
    Err(io::Error::other("the kernel did not send its audit status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_aligned_and_header_less_lengths() {
        let mut datagram = Vec::new();
        for (kind, text) in [(2408u16, "abc"), (2409, "defgh")] {
            let len = 16 + text.len();
            datagram.extend_from_slice(&(len as u32).to_ne_bytes());
            datagram.extend_from_slice(&kind.to_ne_bytes());
            datagram.extend_from_slice(&[0; 10]);
            datagram.extend_from_slice(text.as_bytes());
            while datagram.len() % 4 != 0 {
                datagram.push(0);
            }
        }
        let got = messages(&datagram);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (2408, &b"abc"[..]));
        assert_eq!(got[1], (2409, &b"defgh"[..]));
        // A length that leaves out the header: the payload runs to the end.
        let mut short = Vec::new();
        short.extend_from_slice(&3u32.to_ne_bytes());
        short.extend_from_slice(&2408u16.to_ne_bytes());
        short.extend_from_slice(&[0; 10]);
        short.extend_from_slice(b"xyz");
        assert_eq!(messages(&short), vec![(2408, &b"xyz"[..])]);
        assert!(messages(&[1, 2, 3]).is_empty());
    }
}
