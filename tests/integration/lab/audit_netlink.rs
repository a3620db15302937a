//! The audit netlink reader against the running kernel: records sent the
//! way libaudit sends pluto's (an `AUDIT_CRYPTO_*` user message whose text
//! the kernel wraps in `pid=… msg='…'` and stamps) arrive on the readlog
//! group and parse into the serial, the op and the kernel's own time.
//!
//! Needs root (`CAP_AUDIT_READ` to listen, `CAP_AUDIT_WRITE` to send, and
//! `CAP_AUDIT_CONTROL` to enable auditing for the test if it is off: with
//! auditing off the kernel drops user messages, pluto's included, so the
//! daemon must say so). Without root the test says why it checked nothing.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use swantrail::audit::netlink::{Reader, status};
use swantrail::audit::record::{CRYPTO_IKE_SA, CRYPTO_IPSEC_SA, Op, SaKind, from_netlink};

/// Sends one netlink audit message (request with ack) and waits for the ack.
fn send(kind: u16, payload: &[u8]) -> std::io::Result<()> {
    // SAFETY: socket(2), checked before it is owned.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 9) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut message = Vec::new();
    message.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    message.extend_from_slice(&kind.to_ne_bytes());
    message.extend_from_slice(&0x5u16.to_ne_bytes());
    message.extend_from_slice(&1u32.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(payload);
    // SAFETY: send/recv of buffers we own.
    unsafe {
        if libc::send(fd.as_raw_fd(), message.as_ptr().cast(), message.len(), 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ack = [0u8; 256];
        let n = libc::recv(fd.as_raw_fd(), ack.as_mut_ptr().cast(), ack.len(), 0);
        if n >= 20 {
            let code = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
            if code < 0 {
                return Err(std::io::Error::from_raw_os_error(-code));
            }
        }
    }
    Ok(())
}

/// Sets the kernel's audit `enabled` flag (AUDIT_SET with the enabled mask).
fn set_enabled(on: bool) -> std::io::Result<()> {
    let mut status = [0u8; 36];
    status[0..4].copy_from_slice(&1u32.to_ne_bytes());
    status[4..8].copy_from_slice(&u32::from(on).to_ne_bytes());
    send(1001, &status)
}

/// Restores auditing to off when the test turned it on.
struct Restore(bool);
impl Drop for Restore {
    fn drop(&mut self) {
        if self.0 {
            let _ = set_enabled(false);
        }
    }
}

fn pluto_text(op: &str, kind: SaKind, serial: u64, res: &str) -> String {
    match kind {
        SaKind::Ike => format!(
            "op={op} direction=initiator conn-name=\"west-east\" connstate={serial} ike-version=2.0 auth=RSA_SIG cipher=aes_gcm_16 ksize=256 integ=none prf=sha512 pfs=DH19  raddr=192.0.2.2 exe=\"/usr/libexec/ipsec/pluto\" hostname=? addr=192.0.2.1 terminal=? res={res}"
        ),
        SaKind::Child => format!(
            "op={op} conn-name=\"west-east\" connstate={serial}, satype=ipsec-esp samode=tunnel cipher=AES_GCM_16 ksize=256 integ=NONE in-spi=1(0x00000001) out-spi=2(0x00000002) in-ipcomp=0(0x00000000) out-ipcomp=0(0x00000000) raddr=192.0.2.2 exe=\"/usr/libexec/ipsec/pluto\" hostname=? addr=192.0.2.1 terminal=? res={res}"
        ),
    }
}

#[tokio::test]
async fn pluto_records_arrive_on_the_readlog_group_with_the_kernel_time() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("audit_netlink: not root, so no audit socket can be opened: nothing checked");
        return;
    }
    // A container without the audit capabilities, or a kernel without
    // audit, cannot run this at all: said, not failed.
    let before = match status() {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT)
            ) =>
        {
            eprintln!("audit_netlink: the kernel refuses the audit socket ({e}): nothing checked");
            return;
        }
        Err(e) => panic!("the kernel does not answer AUDIT_GET: {e}"),
    };
    let _restore = Restore(before.enabled == 0);
    if before.enabled == 0 {
        set_enabled(true).expect("enable auditing for the test");
    }
    assert_ne!(status().unwrap().enabled, 0, "auditing is on for the test");
    let mut reader = Reader::open().expect("bind the readlog group as root");
    // A unique serial per run, so records of an earlier run are not taken for ours.
    let base = u64::from(std::process::id()) * 1000;
    let sent = [
        (
            CRYPTO_IKE_SA,
            SaKind::Ike,
            "start",
            base + 1,
            "success",
            Op::Established,
        ),
        (
            CRYPTO_IPSEC_SA,
            SaKind::Child,
            "start",
            base + 2,
            "success",
            Op::Established,
        ),
        (
            CRYPTO_IPSEC_SA,
            SaKind::Child,
            "start",
            base + 3,
            "failed",
            Op::Failed,
        ),
        (
            CRYPTO_IPSEC_SA,
            SaKind::Child,
            "destroy",
            base + 2,
            "success",
            Op::Destroyed,
        ),
        (
            CRYPTO_IKE_SA,
            SaKind::Ike,
            "destroy",
            base + 1,
            "success",
            Op::Destroyed,
        ),
    ];
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    for (kind, sa, op, serial, res, _) in &sent {
        // libaudit sends the text with its NUL, which the kernel counts off.
        let text = format!("{}\0", pluto_text(op, *sa, *serial, res));
        send(*kind, text.as_bytes()).expect("send a user message");
    }
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < sent.len() {
        let batch = tokio::time::timeout_at(deadline, reader.next())
            .await
            .expect("the records arrive within 10 s")
            .expect("read the socket");
        for raw in batch {
            if let Some(record) =
                from_netlink(raw.record_type, &raw.text).expect("a well-formed record")
            {
                if record.serial / 1000 == base / 1000 {
                    got.push(record);
                }
            }
        }
    }
    for (record, (_, sa, _, serial, _, op)) in got.iter().zip(&sent) {
        assert_eq!((record.kind, record.serial, record.op), (*sa, *serial, *op));
        assert_eq!(record.connection, "west-east");
        assert_eq!(
            record.pid,
            Some(std::process::id()),
            "the kernel's pid of the sender"
        );
        let at = Duration::from_millis(record.unix_ms as u64);
        let skew = at.abs_diff(started);
        assert!(
            skew < Duration::from_secs(2),
            "kernel time {at:?} vs sent {started:?}"
        );
    }
    assert!(
        got.windows(2).all(|w| w[0].seq < w[1].seq),
        "kernel serials increase"
    );
    assert_eq!(reader.overruns, 0);
}
