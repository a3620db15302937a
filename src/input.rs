//! Reading one status dump from a file or standard input, refusing what is not one.
//!
//! Every command that takes a dump (`parse`, `show`, `diff`, `replay`) reads
//! it through [`read_dump`], so an operator gets the same one-line error for
//! a missing file, a directory, binary data, text that is not UTF-8 or a
//! file over the size limit, whichever command they typed. This module
//! only reads and vets bytes: it must never interpret the text (that is the
//! parser's job) and never read more than the limit into memory.

use std::fmt;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

/// One size rule for `--max-bytes` and the config.
pub use crate::config::parse_byte_size;

/// The default `--max-bytes` and `max_bytes` of the live sources: room for
/// the `ipsec status` of a 50,000-tunnel gateway (about 2.5 KiB per
/// connection), low enough that a wrong file cannot exhaust memory.
pub const DEFAULT_MAX_BYTES: u64 = 160 * 1024 * 1024;

/// How many leading bytes are looked at to tell binary data from text.
const SNIFF_BYTES: usize = 8192;

/// Where a dump comes from, as the error messages name it; not to be
/// confused with the `source` module, which produces snapshots for the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpOrigin {
    /// Standard input (`-` or no file argument).
    Stdin,
    /// A file path as the operator typed it.
    File(PathBuf),
    /// The output of a command the daemon ran, as configured.
    Command(String),
}

impl DumpOrigin {
    /// The input an optional path argument means: none or `-` is stdin.
    pub fn from_arg(path: Option<&Path>) -> DumpOrigin {
        match path {
            None => DumpOrigin::Stdin,
            Some(p) if p.as_os_str() == "-" => DumpOrigin::Stdin,
            Some(p) => DumpOrigin::File(p.to_path_buf()),
        }
    }
}

impl fmt::Display for DumpOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpOrigin::Stdin => f.write_str("standard input"),
            DumpOrigin::File(p) => write!(f, "{}", p.display()),
            DumpOrigin::Command(c) => write!(f, "output of `{c}`"),
        }
    }
}

/// Why a dump could not be read; every variant prints as one line naming the input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file does not exist.
    #[error("{input}: no such file")]
    NotFound {
        /// The file.
        input: DumpOrigin,
    },
    /// The path names a directory; `replay` takes directories, these commands do not.
    #[error("{input}: is a directory, not a status dump")]
    IsDirectory {
        /// The directory.
        input: DumpOrigin,
    },
    /// Any other I/O failure (permissions, device errors).
    #[error("{input}: cannot read: {error}")]
    Io {
        /// The file or stdin.
        input: DumpOrigin,
        /// The operating system's error.
        error: io::Error,
    },
    /// More bytes than `--max-bytes`.
    #[error("{input}: larger than the limit of {limit} bytes (raise it with --max-bytes)")]
    TooLarge {
        /// The file or stdin.
        input: DumpOrigin,
        /// The limit in bytes.
        limit: u64,
    },
    /// NUL bytes or mostly control characters: not text at all.
    #[error("{input}: binary data ({why}), not a libreswan status dump")]
    Binary {
        /// The file or stdin.
        input: DumpOrigin,
        /// What gave it away, e.g. `NUL byte at offset 12`.
        why: String,
    },
    /// No file was given and stdin is a terminal: reading it would just hang.
    #[error(
        "no dump given and standard input is a terminal: name a file, pipe `ipsec status` in, or use `-` to type one"
    )]
    StdinIsTerminal,
    /// Text in another encoding, or corrupted.
    #[error("{input}: not UTF-8: invalid byte at offset {offset} (line {line})")]
    NotUtf8 {
        /// The file or stdin.
        input: DumpOrigin,
        /// 0-based byte offset of the first invalid byte.
        offset: usize,
        /// 1-based line of that byte.
        line: usize,
    },
}

/// Read a whole dump as text: `None` or `-` reads standard input.
///
/// Fails with one clear line when the input is missing, a directory, larger
/// than `max_bytes`, binary, or not UTF-8. An empty input is fine: pluto
/// prints nothing at all when there is nothing to list. `None` with a
/// terminal on stdin fails at once instead of waiting for typing; an
/// explicit `-` reads the terminal.
pub fn read_dump(path: Option<&Path>, max_bytes: u64) -> Result<String, InputError> {
    if path.is_none() && io::stdin().is_terminal() {
        return Err(InputError::StdinIsTerminal);
    }
    let input = DumpOrigin::from_arg(path);
    let bytes = match &input {
        // `from_arg` gives standard input or a file, never a command.
        DumpOrigin::Stdin | DumpOrigin::Command(_) => {
            read_limited(io::stdin().lock(), &input, max_bytes)?
        }
        DumpOrigin::File(p) => return read_file(p, max_bytes),
    };
    decode_dump(bytes, input)
}

/// Read one dump file as text, with the checks and messages of [`read_dump`]
/// (for `replay` and `diff`, whose paths are always files, even one named `-`).
pub fn read_file(path: &Path, max_bytes: u64) -> Result<String, InputError> {
    let input = DumpOrigin::File(path.to_path_buf());
    let io_err = |error: io::Error| match error.kind() {
        io::ErrorKind::NotFound => InputError::NotFound {
            input: input.clone(),
        },
        _ => InputError::Io {
            input: input.clone(),
            error,
        },
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if meta.is_dir() {
        return Err(InputError::IsDirectory { input });
    }
    // A regular file's size is known: refuse it before reading a byte.
    if meta.is_file() && meta.len() > max_bytes {
        return Err(InputError::TooLarge {
            input,
            limit: max_bytes,
        });
    }
    let file = std::fs::File::open(path).map_err(io_err)?;
    let bytes = read_limited(file, &input, max_bytes)?;
    decode_dump(bytes, input)
}

/// Vet bytes already in memory the way [`read_dump`] does (binary, UTF-8).
///
/// Sources that get their bytes elsewhere (a command's stdout, a watched
/// file) use this so their errors read the same.
pub fn decode_dump(bytes: Vec<u8>, input: DumpOrigin) -> Result<String, InputError> {
    if let Some(why) = binary_evidence(&bytes) {
        return Err(InputError::Binary { input, why });
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        InputError::NotUtf8 {
            input,
            offset,
            line,
        }
    })
}

/// Read at most `max_bytes` (plus one, to notice that there is more).
fn read_limited(
    reader: impl Read,
    input: &DumpOrigin,
    max_bytes: u64,
) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| InputError::Io {
            input: input.clone(),
            error,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(InputError::TooLarge {
            input: input.clone(),
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

/// Why these bytes look binary, if they do.
///
/// A NUL byte anywhere is conclusive: libreswan never prints one. Otherwise
/// the first few KiB must not be more than a tenth control characters
/// (tabs, line ends and form feeds do not count; ESC does, so a coloured
/// terminal capture with many escapes may be refused, which is rare).
fn binary_evidence(bytes: &[u8]) -> Option<String> {
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Some(format!("NUL byte at offset {offset}"));
    }
    let sample = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let control = sample
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f)
        .count();
    if control * 10 > sample.len() {
        return Some(format!(
            "{control} control characters in the first {} bytes",
            sample.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_holds_the_status_of_a_50000_tunnel_gateway() {
        use crate::synth::{Dialect, status_dump};
        for dialect in [Dialect::V4_10, Dialect::V5_4] {
            let per_5000 = status_dump(5_000, dialect).text.len() as u64;
            assert!(
                per_5000 * 10 < DEFAULT_MAX_BYTES,
                "{per_5000} bytes per 5,000"
            );
        }
    }

    fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    }

    #[test]
    fn reads_a_text_file_whole() {
        let f = write_temp(b"000 #1: \"a\":500 STATE_MAIN_I1 (sent MI1);\n");
        let text = read_dump(Some(f.path()), DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(text, "000 #1: \"a\":500 STATE_MAIN_I1 (sent MI1);\n");
    }

    #[test]
    fn empty_file_is_an_empty_dump() {
        let f = write_temp(b"");
        assert_eq!(read_dump(Some(f.path()), DEFAULT_MAX_BYTES).unwrap(), "");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_dump(Some(Path::new("no/such/dump.txt")), 10).unwrap_err();
        assert_eq!(err.to_string(), "no/such/dump.txt: no such file");
    }

    #[test]
    fn directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_dump(Some(dir.path()), 10).unwrap_err();
        assert!(matches!(err, InputError::IsDirectory { .. }), "{err}");
    }

    #[test]
    fn file_over_the_limit_is_refused_with_the_limit() {
        let f = write_temp(b"0123456789A");
        let err = read_dump(Some(f.path()), 10).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("larger than the limit of 10 bytes (raise it with --max-bytes)"),
            "{err}"
        );
        assert_eq!(read_dump(Some(f.path()), 11).unwrap(), "0123456789A");
    }

    #[test]
    fn stream_over_the_limit_is_refused() {
        let err = read_limited(&b"0123456789A"[..], &DumpOrigin::Stdin, 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "standard input: larger than the limit of 10 bytes (raise it with --max-bytes)"
        );
    }

    #[test]
    fn nul_byte_means_binary_with_its_offset() {
        let err = decode_dump(b"000 ok\n\0rest".to_vec(), DumpOrigin::Stdin).unwrap_err();
        assert_eq!(
            err.to_string(),
            "standard input: binary data (NUL byte at offset 7), not a libreswan status dump"
        );
    }

    #[test]
    fn mostly_control_characters_means_binary() {
        let err = decode_dump(vec![0x01, 0x02, b'a', 0x1b, 0x7f], DumpOrigin::Stdin).unwrap_err();
        assert!(matches!(err, InputError::Binary { .. }), "{err}");
    }

    #[test]
    fn tabs_and_crlf_are_text() {
        let text = decode_dump(b"a\tb\r\nc\r\n".to_vec(), DumpOrigin::Stdin).unwrap();
        assert_eq!(text, "a\tb\r\nc\r\n");
    }

    #[test]
    fn invalid_utf8_reports_offset_and_line() {
        let err = decode_dump(
            b"line one\nline \xe9two\n".to_vec(),
            DumpOrigin::File("d.txt".into()),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.txt: not UTF-8: invalid byte at offset 14 (line 2)"
        );
    }

    #[test]
    fn dash_means_stdin() {
        assert_eq!(
            DumpOrigin::from_arg(Some(Path::new("-"))),
            DumpOrigin::Stdin
        );
        assert_eq!(DumpOrigin::from_arg(None), DumpOrigin::Stdin);
        assert_eq!(
            DumpOrigin::from_arg(Some(Path::new("x"))),
            DumpOrigin::File("x".into())
        );
    }

    #[test]
    fn byte_sizes_take_binary_suffixes() {
        assert_eq!(parse_byte_size("65536"), Ok(65536));
        assert_eq!(parse_byte_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_byte_size("64M"), Ok(64 << 20));
        assert_eq!(parse_byte_size("1 GiB"), Ok(1 << 30));
        assert!(parse_byte_size("lots").is_err());
        assert!(parse_byte_size("3 parsecs").is_err());
        assert!(parse_byte_size("99999999999999G").is_err());
    }
}
