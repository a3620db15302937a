//! Reading one status dump from a file or standard input, refusing what is not one.
//!
//! Every command that takes a dump (`parse`, `show`, `diff`, `replay`) reads
//! it through [`read_dump`] or [`parse_dump`], so an operator gets the same
//! one-line error for a missing file, a directory, binary data, text that
//! is not UTF-8 or a file over the size limit, whichever command they
//! typed. The live sources feed what they read to a [`DumpFeed`], which
//! applies the same checks to a stream, so a 100 MB dump is never held as
//! text next to the snapshot it becomes. This module only reads and vets
//! bytes and hands whole lines to the parser: it must never interpret the
//! text itself (that is the parser's job) and never read more than the
//! limit.

use std::fmt;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use crate::listing::ListingBuilder;
use crate::snapshot::{OutputKind, Snapshot};
use crate::snapshot_json::RecordsJson;
use crate::status::LineFeed;

/// One size rule for `--max-bytes` and the config.
pub use crate::toml_config::parse_byte_size;

/// The default `--max-bytes` and `max_bytes` of the live sources: 1 GiB,
/// ten times the `ipsec status` of a 50,000-tunnel gateway (about 2.2 KiB
/// per connection, 110 MB), so that no real gateway is refused, while a
/// runaway writer (`yes`, a log file, `/dev/zero`) is stopped after a few
/// seconds of parsing. Dumps are parsed as they are read, so the limit
/// bounds the time spent, not the memory held.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// How much a reader asks for at a time when it streams a dump.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The longest line a [`DumpFeed`] keeps: of a longer one (never status
/// output) only this much is held, for the diagnostic that says so, and
/// the rest is skipped unread, so that a writer that never ends its line
/// costs no more.
pub use crate::status::MAX_LINE_BYTES;

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
    let file = open_dump(path, &input, max_bytes)?;
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

/// Parse one dump as it is read: `None` or `-` reads standard input.
///
/// The same checks and messages as [`read_dump`] (missing, directory,
/// over `max_bytes`, binary, not UTF-8), but the text is parsed chunk by
/// chunk and never held whole. With `kind`, the output is attributed as
/// [`crate::status::parse_as`] does.
pub fn parse_dump(
    path: Option<&Path>,
    max_bytes: u64,
    kind: Option<OutputKind>,
) -> Result<Snapshot, InputError> {
    if path.is_none() && io::stdin().is_terminal() {
        return Err(InputError::StdinIsTerminal);
    }
    match DumpOrigin::from_arg(path) {
        DumpOrigin::File(p) => parse_file(&p, max_bytes, kind),
        // `from_arg` gives standard input or a file, never a command.
        input => read_into(DumpFeed::new(input, max_bytes), io::stdin().lock())
            .and_then(|feed| feed.finish(kind)),
    }
}

/// [`parse_dump`] for a caller that prints the snapshot's JSON: its
/// connection, SA and trafficstatus records are encoded as they are read
/// ([`DumpFeed::encoding`]), and the snapshot holds the rest.
pub fn encode_dump(
    path: Option<&Path>,
    max_bytes: u64,
) -> Result<(Snapshot, RecordsJson), InputError> {
    if path.is_none() && io::stdin().is_terminal() {
        return Err(InputError::StdinIsTerminal);
    }
    let feed = match DumpOrigin::from_arg(path) {
        DumpOrigin::File(p) => {
            let input = DumpOrigin::File(p.clone());
            let file = open_dump(&p, &input, max_bytes)?;
            read_into(DumpFeed::encoding(input, max_bytes), file)?
        }
        // `from_arg` gives standard input or a file, never a command.
        input => read_into(DumpFeed::encoding(input, max_bytes), io::stdin().lock())?,
    };
    let (snapshot, json) = feed.finish_json(None);
    Ok((snapshot?, json.unwrap_or_default()))
}

/// Parse one dump file as it is read, with the checks of [`read_file`].
pub fn parse_file(
    path: &Path,
    max_bytes: u64,
    kind: Option<OutputKind>,
) -> Result<Snapshot, InputError> {
    let input = DumpOrigin::File(path.to_path_buf());
    let file = open_dump(path, &input, max_bytes)?;
    read_into(DumpFeed::new(input, max_bytes), file)?.finish(kind)
}

/// Open a dump file, refusing a directory and a regular file larger than
/// `max_bytes` before reading a byte (its size is known, unlike a pipe's).
fn open_dump(path: &Path, input: &DumpOrigin, max_bytes: u64) -> Result<std::fs::File, InputError> {
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
        return Err(InputError::IsDirectory {
            input: input.clone(),
        });
    }
    if meta.is_file() && meta.len() > max_bytes {
        return Err(InputError::TooLarge {
            input: input.clone(),
            limit: max_bytes,
        });
    }
    std::fs::File::open(path).map_err(io_err)
}

/// Feed everything `reader` gives to `feed`.
fn read_into(mut feed: DumpFeed, mut reader: impl Read) -> Result<DumpFeed, InputError> {
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(InputError::Io {
                    input: feed.origin,
                    error,
                });
            }
        };
        feed.push(&chunk[..n])?;
    }
    Ok(feed)
}

/// A dump parsed as its bytes arrive, vetted as [`decode_dump`] vets a
/// whole one.
///
/// Push the bytes in chunks of any size; the feed splits them into lines
/// and parses each line as soon as it is complete, keeping only the one
/// line not yet ended, and of that at most [`MAX_LINE_BYTES`]: a longer
/// line is skipped with a diagnostic (its start, and its length), its
/// bytes past that never checked for UTF-8. With the parser keeping only
/// the first few diagnostics, junk of any length costs the feed a
/// constant amount of memory. [`DumpFeed::finish`] gives the snapshot, or the same
/// error [`read_dump`] would have given for these bytes: binary data (a NUL
/// anywhere, or mostly control characters in the first 8 KiB), text that is
/// not UTF-8 (offset and line of the first bad byte), or more than the
/// limit (as soon as it is passed, so the caller can stop reading). A dump
/// cut short inside a line is incomplete, as [`crate::parse`] says.
pub struct DumpFeed {
    origin: DumpOrigin,
    max_bytes: u64,
    lines: LineFeed,
    /// The line begun and not yet ended, at most [`MAX_LINE_BYTES`] of it.
    partial: Vec<u8>,
    /// How many bytes of that line were past [`MAX_LINE_BYTES`] and skipped.
    partial_skipped: u64,
    /// Bytes pushed so far.
    total: u64,
    /// Where `partial` starts in the input, and how many lines came before.
    line_start: u64,
    line_number: usize,
    nul_at: Option<u64>,
    /// Control characters among the first [`SNIFF_BYTES`] bytes.
    control: usize,
    not_utf8: Option<(u64, usize)>,
}

impl DumpFeed {
    /// A feed for the dump from `origin`, refusing more than `max_bytes`.
    pub fn new(origin: DumpOrigin, max_bytes: u64) -> DumpFeed {
        DumpFeed {
            origin,
            max_bytes,
            lines: LineFeed::new(),
            partial: Vec::new(),
            partial_skipped: 0,
            total: 0,
            line_start: 0,
            line_number: 0,
            nul_at: None,
            control: 0,
            not_utf8: None,
        }
    }

    /// The next bytes of the dump. Fails once the dump passes the limit;
    /// the feed must not be used after that.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<(), InputError> {
        let start = self.total;
        self.total += chunk.len() as u64;
        if self.total > self.max_bytes {
            return Err(InputError::TooLarge {
                input: self.origin.clone(),
                limit: self.max_bytes,
            });
        }
        if self.nul_at.is_none() {
            self.nul_at = memchr::memchr(0, chunk).map(|i| start + i as u64);
        }
        if start < SNIFF_BYTES as u64 {
            let sniff = &chunk[..chunk.len().min(SNIFF_BYTES - start as usize)];
            self.control += sniff.iter().filter(|&&b| is_control(b)).count();
        }
        if !self.partial.is_empty() {
            let Some(end) = memchr::memchr(b'\n', chunk) else {
                self.keep_partial(chunk);
                return Ok(());
            };
            self.keep_partial(&chunk[..end]);
            self.end_partial_line();
            chunk = &chunk[end + 1..];
        }
        match memchr::memrchr(b'\n', chunk) {
            Some(end) => {
                self.whole_lines(&chunk[..=end]);
                self.keep_partial(&chunk[end + 1..]);
            }
            None => self.keep_partial(chunk),
        }
        Ok(())
    }

    /// More of the line not yet ended: kept up to [`MAX_LINE_BYTES`],
    /// counted past that.
    fn keep_partial(&mut self, bytes: &[u8]) {
        let kept = bytes.len().min(MAX_LINE_BYTES - self.partial.len());
        self.partial.extend_from_slice(&bytes[..kept]);
        self.partial_skipped += (bytes.len() - kept) as u64;
    }

    /// The line in `partial` has just ended (its `\n` is not in it).
    fn end_partial_line(&mut self) {
        let mut line = std::mem::take(&mut self.partial);
        if self.partial_skipped == 0 {
            line.push(b'\n');
            self.whole_lines(&line);
        } else {
            self.overlong_line(&line, false);
            self.line_start += 1; // its `\n`
        }
        line.clear();
        self.partial = line;
        self.partial_skipped = 0;
    }

    /// A line longer than [`MAX_LINE_BYTES`], of which `start` was kept:
    /// parsed as skipped, its start checked for UTF-8 (a character cut in
    /// two at the end of `start` is fine). `cut_short`: the dump ended in it.
    fn overlong_line(&mut self, start: &[u8], cut_short: bool) {
        if self.not_utf8.is_some() {
            return;
        }
        let length = start.len() as u64 + self.partial_skipped;
        let text = match std::str::from_utf8(start) {
            Ok(text) => text,
            // A character cut in two by the limit: what is before it.
            Err(e) if e.error_len().is_none() => {
                std::str::from_utf8(&start[..e.valid_up_to()]).unwrap_or_default()
            }
            Err(e) => {
                self.not_utf8 = Some((
                    self.line_start + e.valid_up_to() as u64,
                    self.line_number + 1,
                ));
                return;
            }
        };
        self.lines.overlong(text, length, cut_short);
        self.line_number += 1;
        self.line_start += length;
    }

    /// Parse `block`, whole lines that each end in `\n`, unless the dump
    /// is already known not to be text.
    fn whole_lines(&mut self, block: &[u8]) {
        if self.not_utf8.is_some() {
            return;
        }
        let text = match std::str::from_utf8(block) {
            Ok(text) => text,
            Err(e) => {
                let valid = &block[..e.valid_up_to()];
                let before = memchr::memchr_iter(b'\n', valid).count();
                self.not_utf8 = Some((
                    self.line_start + e.valid_up_to() as u64,
                    self.line_number + before + 1,
                ));
                return;
            }
        };
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', text.as_bytes()) {
            self.lines.line(&text[start..end]);
            self.line_number += 1;
            start = end + 1;
        }
        self.line_start += block.len() as u64;
    }

    /// A feed whose SA and connection records go into `builder` as their
    /// lines are read ([`LineFeed::streaming`]): the daemon's way to read
    /// a big gateway's dump without holding its snapshot.
    pub fn streaming(origin: DumpOrigin, max_bytes: u64, builder: ListingBuilder) -> DumpFeed {
        DumpFeed {
            lines: LineFeed::streaming(builder),
            ..DumpFeed::new(origin, max_bytes)
        }
    }

    /// A feed whose SA and connection records are encoded as JSON as
    /// their lines are read ([`LineFeed::encoding`]): `swantrail parse`'s
    /// way to print a big gateway's snapshot without holding it.
    pub fn encoding(origin: DumpOrigin, max_bytes: u64) -> DumpFeed {
        DumpFeed {
            lines: LineFeed::encoding(),
            ..DumpFeed::new(origin, max_bytes)
        }
    }

    /// [`DumpFeed::finish`], with the records of an encoding feed
    /// ([`DumpFeed::encoding`]) as JSON.
    pub fn finish_json(
        self,
        kind: Option<OutputKind>,
    ) -> (Result<Snapshot, InputError>, Option<RecordsJson>) {
        self.finish_with(|lines| lines.finish_json(kind))
    }

    /// The snapshot of the whole dump (attributed to `kind` when given, as
    /// [`crate::status::parse_as`] does), or why these bytes are not one.
    pub fn finish(self, kind: Option<OutputKind>) -> Result<Snapshot, InputError> {
        self.finish_streamed(kind).0
    }

    /// [`DumpFeed::finish`], with the builder of a streaming feed
    /// ([`DumpFeed::streaming`]) whatever the bytes were: its records are
    /// those of the lines read, and the dump's error says not to diff them.
    pub fn finish_streamed(
        self,
        kind: Option<OutputKind>,
    ) -> (Result<Snapshot, InputError>, Option<ListingBuilder>) {
        self.finish_with(|lines| lines.finish_streamed(kind))
    }

    /// The last line, then the snapshot `finish` makes of the lines (with
    /// what else it gives), or why these bytes are not a dump.
    fn finish_with<T>(
        mut self,
        finish: impl FnOnce(LineFeed) -> (Snapshot, T),
    ) -> (Result<Snapshot, InputError>, T) {
        let rest = std::mem::take(&mut self.partial);
        if self.partial_skipped > 0 {
            self.overlong_line(&rest, true);
        } else if self.not_utf8.is_none() {
            match std::str::from_utf8(&rest) {
                Ok(text) => self.lines.cut_short(text),
                Err(e) => {
                    self.not_utf8 = Some((
                        self.line_start + e.valid_up_to() as u64,
                        self.line_number + 1,
                    ))
                }
            }
        }
        let (snapshot, records) = finish(self.lines);
        let vetted = if let Some(offset) = self.nul_at {
            Err(InputError::Binary {
                input: self.origin,
                why: format!("NUL byte at offset {offset}"),
            })
        } else if self.control * 10 > self.total.min(SNIFF_BYTES as u64) as usize {
            let sampled = self.total.min(SNIFF_BYTES as u64) as usize;
            Err(InputError::Binary {
                input: self.origin,
                why: format!(
                    "{} control characters in the first {sampled} bytes",
                    self.control
                ),
            })
        } else if let Some((offset, line)) = self.not_utf8 {
            Err(InputError::NotUtf8 {
                input: self.origin,
                offset: offset as usize,
                line,
            })
        } else {
            Ok(snapshot)
        };
        (vetted, records)
    }
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

/// A byte that text does not hold: a control character other than tab,
/// line ends and form feed, or DEL (ESC counts).
fn is_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f
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
    let control = sample.iter().filter(|&&b| is_control(b)).count();
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
    fn the_default_limit_holds_the_status_of_a_50000_tunnel_gateway_several_times() {
        use crate::synth::{Dialect, status_dump};
        for dialect in [Dialect::V4_10, Dialect::V5_4] {
            let per_5000 = status_dump(5_000, dialect).text.len() as u64;
            assert!(
                per_5000 * 10 * 4 < DEFAULT_MAX_BYTES,
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

    /// Feed `bytes` in pieces of `size` bytes.
    fn fed(bytes: &[u8], size: usize) -> Result<Snapshot, InputError> {
        let mut feed = DumpFeed::new(DumpOrigin::Stdin, DEFAULT_MAX_BYTES);
        for piece in bytes.chunks(size.max(1)) {
            feed.push(piece)?;
        }
        feed.finish(None)
    }

    #[test]
    fn a_dump_fed_in_any_pieces_parses_as_the_whole_text() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lab-4.10/status.txt"
        ))
        .unwrap();
        let whole = crate::parse(&text);
        for size in [1, 2, 7, 100, 4096, text.len()] {
            assert_eq!(
                fed(text.as_bytes(), size).unwrap(),
                whole,
                "pieces of {size}"
            );
        }
        let cut = &text[..text.len() - 10];
        for size in [1, 13, cut.len()] {
            let snap = fed(cut.as_bytes(), size).unwrap();
            assert_eq!(snap, crate::parse(cut), "pieces of {size}");
            assert!(!snap.is_complete());
        }
    }

    #[test]
    fn a_fed_dump_is_refused_as_decode_dump_refuses_it() {
        let cases: [&[u8]; 6] = [
            b"000 ok\n\0rest",
            b"000 ok\nline \xe9two\n",
            b"line one\nline \xe9",
            b"\xe9\n",
            b"\x01\x02a\x1b\x7f",
            b"a\xc3\xa9b\n000 \xff\n\0",
        ];
        for bytes in cases {
            let whole = decode_dump(bytes.to_vec(), DumpOrigin::Stdin).unwrap_err();
            for size in [1, 3, bytes.len()] {
                let err = fed(bytes, size).unwrap_err();
                assert_eq!(err.to_string(), whole.to_string(), "{bytes:?} in {size}");
            }
        }
    }

    #[test]
    fn a_line_longer_than_libreswan_prints_is_one_diagnostic_in_any_pieces() {
        // A status dump with a 200 KiB line of junk in the middle, then
        // the same dump ending inside such a line. The limit falls inside
        // an `é` of it: half a character kept is no UTF-8 error.
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lab-4.10/status.txt"
        ))
        .unwrap();
        let totals = text.find("Total IPsec").unwrap();
        let (head, tail) = text.split_at(text[..totals].rfind('\n').unwrap() + 1);
        let long = format!("junk {}", "é".repeat(100 * 1024));
        let dump = format!("{head}{long}\n{tail}");
        let whole = crate::parse(&dump);
        let line = head.lines().count() + 1;
        assert_eq!(whole.diagnostics.len(), 1, "{:?}", whole.diagnostics);
        assert_eq!(whole.diagnostics[0].line, line);
        assert_eq!(
            whole.diagnostics[0].reason,
            format!(
                "a line of {} bytes, longer than libreswan prints; skipped",
                long.len()
            )
        );
        assert!(whole.diagnostics[0].text.starts_with("junk éé"));
        assert!(whole.is_complete(), "{:?}", whole.incomplete);
        for size in [1, 6, 4096, CHUNK_BYTES, dump.len()] {
            assert_eq!(
                fed(dump.as_bytes(), size).unwrap(),
                whole,
                "pieces of {size}"
            );
        }
        let cut = format!("{head}{long}");
        let whole = crate::parse(&cut);
        assert!(!whole.is_complete());
        for size in [7, 4096, cut.len()] {
            assert_eq!(
                fed(cut.as_bytes(), size).unwrap(),
                whole,
                "pieces of {size}"
            );
        }
    }

    #[test]
    fn a_line_that_never_ends_is_held_to_the_line_limit() {
        let mut feed = DumpFeed::new(DumpOrigin::Stdin, DEFAULT_MAX_BYTES);
        let chunk = vec![b'x'; CHUNK_BYTES];
        for _ in 0..40 {
            feed.push(&chunk).unwrap();
        }
        assert!(
            feed.partial.capacity() <= 2 * MAX_LINE_BYTES,
            "{} bytes held for 10 MiB without a line end",
            feed.partial.capacity()
        );
        let snap = feed.finish(None).unwrap();
        assert_eq!(snap.diagnostics.len(), 1);
        assert!(
            snap.diagnostics[0].reason.contains("10485760 bytes"),
            "{:?}",
            snap.diagnostics
        );
        assert!(!snap.is_complete());
    }

    #[test]
    fn an_overlong_sa_line_leaves_its_sa_unknown() {
        let text = format!("000 #7: \"tun\"{}\n", " x".repeat(MAX_LINE_BYTES));
        let snap = fed(text.as_bytes(), 1000).unwrap();
        let why = snap.incomplete.unwrap_or_default();
        assert!(why.contains("SA #7"), "{why}");
    }

    #[test]
    fn a_fed_dump_stops_at_the_limit() {
        let mut feed = DumpFeed::new(DumpOrigin::Stdin, 10);
        assert!(feed.push(b"0123456789").is_ok());
        let err = feed.push(b"A").unwrap_err();
        assert!(
            matches!(err, InputError::TooLarge { limit: 10, .. }),
            "{err}"
        );
    }

    #[test]
    fn parse_dump_reads_a_file_as_read_dump_does() {
        let f = write_temp(b"000 #1: \"a\":500 STATE_MAIN_I1 (sent MI1);\n");
        let text = read_dump(Some(f.path()), DEFAULT_MAX_BYTES).unwrap();
        let snap = parse_dump(Some(f.path()), DEFAULT_MAX_BYTES, None).unwrap();
        assert_eq!(snap, crate::parse(&text));
        let err = parse_dump(Some(f.path()), 10, None).unwrap_err();
        assert!(matches!(err, InputError::TooLarge { .. }), "{err}");
        let err = parse_dump(Some(Path::new("no/such/dump.txt")), 10, None).unwrap_err();
        assert_eq!(err.to_string(), "no/such/dump.txt: no such file");
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
