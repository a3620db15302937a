//! A durable, append-only queue of NDJSON events on disk, one per sink.
//!
//! Layout of a spool directory:
//!
//! * `<offset>.seg` — segment files holding events, one JSON object per line.
//!   The name is the logical offset of the segment's first byte (20 digits), so
//!   offsets keep growing across segments and restarts;
//! * `acked` — the logical offset up to which the sink has acknowledged events,
//!   in two checksummed slots written in turn, one `pwrite` and one
//!   `fdatasync` per save (`super::ack`; the decimal text of earlier
//!   versions is still read). The file is made (or converted) when the
//!   spool opens, so that every later save writes in place and needs no
//!   free block: a spool that filled the disk can still save the offset
//!   that lets it delete what was delivered;
//! * `quarantine` — lines found damaged (not a complete JSON value), moved
//!   aside before the acknowledged offset passes them, each after a header
//!   naming its segment, offset and length, for an operator to inspect.
//!
//! An append writes whole lines and fsyncs before it returns, so everything the
//! pipeline was told is spooled survives a crash. A crash during an append can
//! leave a torn tail at the end of the newest segment: a last line without its
//! `\n`, or lines holding the zeros a filesystem leaves where it extended the
//! file. `open` cuts that tail and nothing else, since it can only belong to
//! the append that never returned. A damaged line anywhere else (in an older
//! segment, or followed by good lines) is disk damage or a hand edit: it is
//! quarantined when a batch reaches it, and every line after it is delivered.
//! A line put into an older segment makes it longer than the offsets its
//! name leaves it: `open` renames the segments after it to follow on, so
//! that no byte of theirs is skipped.
//! An event that was spooled but not acknowledged is read again after a
//! restart: duplicates are possible, losses are not.
//!
//! Space is given back as the sink acknowledges: fully acknowledged older
//! segments are deleted, and once the newest segment is acknowledged to its
//! end, a new empty one is started and the old one deleted, so a spool whose
//! sink has caught up holds no delivered events (a state disk that filled
//! while a sink was down frees itself once the sink delivers).
//!
//! This type is synchronous and does blocking I/O; callers in async code run it
//! on a blocking thread. It must never return a line that is not a complete
//! JSON value, never delete an unacknowledged event except through
//! `drop_oldest`, which the caller counts and logs, and never delete a
//! damaged line before the quarantine file holds it durably.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::ack::{AckFile, Saved};

/// Why a spool operation failed: which file, doing what, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("spool {}: cannot {action}: {error}", path.display())]
pub struct SpoolError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What was being done ("create directory", "fsync", ...).
    pub action: &'static str,
    /// The OS error (in the message, so not a separate cause).
    pub error: io::Error,
}

fn fail(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> SpoolError {
    let path = path.to_path_buf();
    move |error| SpoolError {
        path,
        action,
        error,
    }
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u64,
    len: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// Events read from the spool, not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledBatch {
    /// The events, each line ending in `\n`; lines that were not valid JSON are left out.
    pub ndjson: String,
    /// How many events are in `ndjson`.
    pub events: u64,
    /// Lines found damaged (disk damage, a hand edit) and left out: they are
    /// in the quarantine file ([`Spool::quarantine_path`]) before the batch
    /// is returned, so acknowledging the batch loses none of their bytes.
    pub corrupt: u64,
    /// Where the batch starts (the acknowledged offset when it was read).
    pub start: u64,
    /// The offset to acknowledge once the batch is delivered.
    pub end: u64,
    /// Events wait behind the batch: it stopped at `max_events` or
    /// `max_bytes`, so it is as large as it may be and waiting for more
    /// events to fill it would be pointless.
    pub more_waiting: bool,
}

/// What `open` found and repaired, for the caller to log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from the end of the newest segment (a torn append: a last
    /// line without its `\n`, or lines holding zeros).
    pub truncated_bytes: u64,
    /// The `acked` file could not be parsed: everything still on disk is
    /// delivered again (duplicates, never losses).
    pub unreadable_ack: bool,
    /// Segments renamed because the one before had grown into their offsets
    /// (a line put into it by hand): otherwise the bytes of the overlap
    /// would be skipped.
    pub realigned_segments: u64,
}

/// One sink's spool.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    segment_bytes: u64,
    segments: Vec<Segment>,
    active: File,
    acked: u64,
    /// Where `acked` is saved.
    ack_file: AckFile,
    pending_events: u64,
    recovery: Recovery,
    /// Set while the acknowledged offset could not be saved (the error).
    unsaved_ack: Option<String>,
    /// Set while delivered segments could not be deleted or the newest
    /// one not rolled (the error); tried again at every acknowledgement.
    unreclaimed: Option<String>,
    /// Where damaged lines are moved aside.
    quarantine: Quarantine,
    /// Damaged lines before this offset are in the quarantine file already:
    /// a batch read again (its delivery failed) does not copy them twice.
    quarantined_below: u64,
    /// Where this process's own appends start. Lines from there on are the
    /// encoder's output, one JSON object per line by construction, and are
    /// only checked for framing when read; lines before it come from an
    /// earlier run (older segments are not checked at open) and are parsed
    /// in full, since disk damage there is what the check is for. Parsing
    /// every line again cost a fifth of the HTTP sink's CPU.
    checked_below: u64,
}

impl Spool {
    /// Open (or create) the spool in `dir`, repairing a torn tail left by a crash.
    /// New segments are started once the newest one holds `segment_bytes`.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<Spool, SpoolError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(fail(dir, "create directory"))?;
        let tmp = dir.join("acked.tmp");
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(fail(&tmp, "remove"))?;
        }
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(fail(dir, "list directory"))? {
            let entry = entry.map_err(fail(dir, "list directory"))?;
            let name = entry.file_name();
            let Some(start) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let len = entry.metadata().map_err(fail(&path, "stat"))?.len();
            segments.push(Segment { start, len });
        }
        segments.sort_by_key(|s| s.start);
        let mut recovery = Recovery::default();
        let (mut ack_file, saved) = AckFile::read(dir)?;
        let acked = match saved {
            Saved::Offset(offset) => Some(offset),
            Saved::Missing => None,
            Saved::Unreadable => {
                recovery.unreadable_ack = true;
                None
            }
        };
        let starts = realign(dir, &mut segments)?;
        let moved = starts.iter().filter(|(old, new)| old != new).count();
        recovery.realigned_segments = moved as u64;
        // Renamed first, saved after: a crash in between sends events again
        // rather than skipping any.
        let acked = match acked {
            Some(offset) if moved > 0 => {
                let shifted = shift_offset(&starts, offset);
                if shifted != offset {
                    ack_file.save(shifted)?;
                }
                Some(shifted)
            }
            acked => acked,
        };
        let first = segments.first().map_or(0, |s| s.start);
        let mut acked = acked.unwrap_or(first).max(first);
        if segments.is_empty() {
            segments.push(Segment {
                start: acked,
                len: 0,
            });
            create_segment(dir, acked)?;
        } else if let Some(last) = segments.last_mut() {
            let path = segment_path(dir, last.start);
            // Lines before the acknowledged offset were delivered whole: a
            // tear can only be after them.
            let from = acked.clamp(last.start, last.end()) - last.start;
            let valid = torn_tail_start(&path, from)?;
            if valid < last.len {
                recovery.truncated_bytes = last.len - valid;
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(fail(&path, "open"))?;
                file.set_len(valid).map_err(fail(&path, "truncate"))?;
                file.sync_all().map_err(fail(&path, "fsync"))?;
                last.len = valid;
            }
        }
        let end = segments.last().map_or(acked, Segment::end);
        acked = acked.min(end);
        let active_start = segments.last().map_or(acked, |s| s.start);
        let active_path = segment_path(dir, active_start);
        let active = OpenOptions::new()
            .append(true)
            .open(&active_path)
            .map_err(fail(&active_path, "open"))?;
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            segment_bytes,
            segments,
            active,
            acked,
            ack_file,
            pending_events: 0,
            recovery,
            unsaved_ack: None,
            unreclaimed: None,
            quarantine: Quarantine::new(dir),
            quarantined_below: acked,
            checked_below: end,
        };
        spool.pending_events = spool.count_lines(acked, end)?;
        // Made now, while there is room: the slots are then written in
        // place, so a spool that filled the disk can still save the
        // offset that lets it delete what its sink delivered.
        if !spool.ack_file.is_slotted() {
            if let Err(e) = spool.write_acked(acked) {
                spool.unsaved_ack = Some(e.to_string());
            }
        }
        spool.reclaim();
        Ok(spool)
    }

    /// What `open` had to repair.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Events not yet acknowledged.
    pub fn pending_events(&self) -> u64 {
        self.pending_events
    }

    /// Bytes not yet acknowledged.
    pub fn pending_bytes(&self) -> u64 {
        self.end() - self.acked
    }

    /// The acknowledged offset.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    fn end(&self) -> u64 {
        self.segments.last().map_or(self.acked, Segment::end)
    }

    /// Append NDJSON (whole lines, each ending in `\n`) holding `events` events,
    /// and fsync before returning.
    pub fn append(&mut self, ndjson: &[u8], events: u64) -> Result<(), SpoolError> {
        if ndjson.is_empty() {
            return Ok(());
        }
        let roll = self
            .segments
            .last()
            .is_none_or(|s| s.len >= self.segment_bytes);
        if roll {
            let start = self.end();
            self.active = create_segment(&self.dir, start)?;
            self.segments.push(Segment { start, len: 0 });
        }
        let Some(active) = self.segments.last_mut() else {
            unreachable!("a segment was just ensured");
        };
        let path = segment_path(&self.dir, active.start);
        let written = self
            .active
            .write_all(ndjson)
            .and_then(|()| self.active.sync_data());
        if let Err(e) = written {
            // Cut a partial write so the next append does not glue onto it.
            let _ = self.active.set_len(active.len);
            return Err(fail(&path, "append")(e));
        }
        active.len += ndjson.len() as u64;
        self.pending_events += events;
        Ok(())
    }

    /// Read up to `max_events` events and about `max_bytes` bytes (at least one
    /// event) starting at the acknowledged offset; `None` when nothing is pending.
    /// Damaged lines met on the way are left out of the batch and copied to
    /// the quarantine file (fsynced) before it is returned.
    pub fn read_batch(
        &mut self,
        max_events: usize,
        max_bytes: u64,
    ) -> Result<Option<SpooledBatch>, SpoolError> {
        let start = self.acked;
        let mut batch = SpooledBatch {
            ndjson: String::new(),
            events: 0,
            corrupt: 0,
            start,
            end: start,
            more_waiting: false,
        };
        for segment in self.segments.iter().filter(|s| s.end() > start) {
            if batch.events as usize >= max_events || batch.ndjson.len() as u64 >= max_bytes {
                break;
            }
            let from = batch.end.max(segment.start);
            let budget = max_bytes.saturating_sub(batch.ndjson.len() as u64).max(1);
            let path = segment_path(&self.dir, segment.start);
            let mut file = File::open(&path).map_err(fail(&path, "open"))?;
            let available = segment.end() - from;
            let mut buf = Vec::with_capacity(budget.min(available) as usize);
            file.seek(SeekFrom::Start(from - segment.start))
                .map_err(fail(&path, "seek"))?;
            (&mut file)
                .take(budget.min(available))
                .read_to_end(&mut buf)
                .map_err(fail(&path, "read"))?;
            // Where the first line ends when it is damage that cannot be
            // read whole: longer than `MAX_LINE_BYTES` (from an earlier
            // run; this process's own lines were in memory as one append),
            // or the rest of a segment that lost its last `\n`.
            let mut damaged_end = None;
            if batch.end == start && !buf.contains(&b'\n') {
                let (end, newline) = line_end(&mut file, &path, *segment, from + buf.len() as u64)?;
                let len = end - from;
                if !newline || (from < self.checked_below && len > MAX_LINE_BYTES) {
                    damaged_end = Some(end);
                } else if len > buf.len() as u64 {
                    // A single line larger than the budget still goes, alone.
                    buf.clear();
                    buf.reserve_exact(len as usize);
                    file.seek(SeekFrom::Start(from - segment.start))
                        .map_err(fail(&path, "seek"))?;
                    (&mut file)
                        .take(len)
                        .read_to_end(&mut buf)
                        .map_err(fail(&path, "read"))?;
                }
            }
            let (cut, lines) = line_cut(&buf, max_events - batch.events as usize);
            if cut == 0 {
                // Moved aside in pieces, never held in memory.
                if let Some(end) = damaged_end {
                    if from >= self.quarantined_below {
                        self.quarantine
                            .copy(&mut file, &path, *segment, from, end)?;
                    }
                    batch.corrupt += 1;
                    batch.end = end;
                }
                break;
            }
            buf.truncate(cut);
            // This process's own appends, the usual case, go in whole: one
            // UTF-8 check and no copy, rather than line by line.
            if from >= self.checked_below && !has_blank_line(&buf) {
                match String::from_utf8(std::mem::take(&mut buf)) {
                    Ok(text) => {
                        if batch.ndjson.is_empty() {
                            batch.ndjson = text;
                        } else {
                            batch.ndjson.push_str(&text);
                        }
                        batch.events += lines;
                    }
                    // Not UTF-8 somewhere: line by line below finds where.
                    Err(e) => buf = e.into_bytes(),
                }
            }
            let mut offset = from;
            for line in buf.split_inclusive(|&b| b == b'\n') {
                let text = if offset >= self.checked_below {
                    framed_line(line)
                } else {
                    complete_json_line(line)
                };
                match text {
                    Some(text) => {
                        batch.ndjson.push_str(text);
                        batch.events += 1;
                    }
                    None => {
                        if offset >= self.quarantined_below {
                            self.quarantine.write(*segment, offset, line)?;
                        }
                        batch.corrupt += 1;
                    }
                }
                offset += line.len() as u64;
            }
            let consumed = cut as u64;
            batch.end = from + consumed;
            if consumed < available {
                break;
            }
        }
        self.quarantine.sync()?;
        self.quarantined_below = self.quarantined_below.max(batch.end);
        batch.more_waiting = batch.end < self.end();
        Ok((batch.end > start).then_some(batch))
    }

    /// The file damaged lines are moved to (it exists once one was).
    pub fn quarantine_path(&self) -> &Path {
        &self.quarantine.path
    }

    /// Acknowledge everything before `end` (a batch's `end`), durably, and delete
    /// the segments that are now fully delivered. Returns how many events left
    /// the pending count.
    pub fn ack(&mut self, end: u64) -> Result<u64, SpoolError> {
        self.ack_counted(end, None)
    }

    /// [`Spool::ack`] of a batch from [`Spool::read_batch`] that started at
    /// `start` and spans `lines` lines (its events and its corrupt lines):
    /// they need not be read and counted again, unless the acknowledged
    /// offset moved since the batch was read (a drop-oldest).
    pub fn ack_batch(&mut self, start: u64, end: u64, lines: u64) -> Result<u64, SpoolError> {
        let known = (start == self.acked && end <= self.end()).then_some(lines);
        self.ack_counted(end, known)
    }

    fn ack_counted(&mut self, end: u64, lines: Option<u64>) -> Result<u64, SpoolError> {
        let end = end.min(self.end());
        if end <= self.acked {
            return Ok(0);
        }
        let events = match lines {
            Some(lines) => lines,
            None => self.count_lines(self.acked, end)?,
        };
        // Acknowledged in memory even when the offset cannot be saved (a
        // full disk): the events are delivered, and sending them again and
        // again would flood the destination with duplicates. Only a crash
        // before the next successful save repeats them.
        self.acked = end;
        self.pending_events = self.pending_events.saturating_sub(events);
        match self.write_acked(end) {
            Ok(()) => {
                self.unsaved_ack = None;
                self.reclaim();
            }
            Err(e) => self.unsaved_ack = Some(e.to_string()),
        }
        Ok(events)
    }

    /// Why the acknowledged offset in memory is not on disk yet, while it is not.
    pub fn unsaved_ack(&self) -> Option<&str> {
        self.unsaved_ack.as_deref()
    }

    /// Why delivered events still take disk space, while they do (deleting
    /// a segment or starting a new one failed; tried again at every
    /// acknowledgement).
    pub fn unreclaimed(&self) -> Option<&str> {
        self.unreclaimed.as_deref()
    }

    /// Make room for `bytes` more bytes by acknowledging the oldest events
    /// unsent; returns how many events were dropped.
    pub fn drop_oldest(&mut self, bytes: u64) -> Result<u64, SpoolError> {
        let target = self.acked.saturating_add(bytes).min(self.end());
        let mut end = self.acked;
        'segments: for segment in self.segments.iter().filter(|s| s.end() > self.acked) {
            let from = end.max(segment.start);
            let path = segment_path(&self.dir, segment.start);
            let mut file = File::open(&path).map_err(fail(&path, "open"))?;
            file.seek(SeekFrom::Start(from - segment.start))
                .map_err(fail(&path, "seek"))?;
            let mut reader = file.take(segment.end() - from);
            let mut buf = vec![0; CHUNK_BYTES];
            let mut at = from;
            loop {
                let n = reader.read(&mut buf).map_err(fail(&path, "read"))?;
                if n == 0 {
                    end = segment.end();
                    break;
                }
                for newline in memchr::memchr_iter(b'\n', &buf[..n]) {
                    end = at + newline as u64 + 1;
                    if end >= target {
                        break 'segments;
                    }
                }
                at += n as u64;
            }
        }
        self.ack(end)
    }

    fn count_lines(&self, from: u64, to: u64) -> Result<u64, SpoolError> {
        let mut count = 0;
        for segment in &self.segments {
            let lo = from.max(segment.start);
            let hi = to.min(segment.end());
            if lo >= hi {
                continue;
            }
            let path = segment_path(&self.dir, segment.start);
            let mut file = File::open(&path).map_err(fail(&path, "open"))?;
            file.seek(SeekFrom::Start(lo - segment.start))
                .map_err(fail(&path, "seek"))?;
            let mut reader = file.take(hi - lo);
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = reader.read(&mut buf).map_err(fail(&path, "read"))?;
                if n == 0 {
                    break;
                }
                count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
            }
        }
        Ok(count)
    }

    fn write_acked(&mut self, offset: u64) -> Result<(), SpoolError> {
        self.ack_file.save(offset)
    }

    /// Give back the space of what is acknowledged; a failure is kept for
    /// [`Spool::unreclaimed`] and the next acknowledgement tries again.
    fn reclaim(&mut self) {
        self.unreclaimed = self.delete_delivered().err().map(|e| e.to_string());
    }

    /// Start a new, empty segment once the newest is acknowledged to its end,
    /// then delete every segment wholly before the acknowledged offset.
    ///
    /// Only called once the offset is saved, and in this order, so that a
    /// crash at any step leaves a directory `open` reads right: before the
    /// new segment exists, the newest is acknowledged to its end (and is
    /// rolled at open); with both, the old one is wholly acknowledged (and
    /// deleted at open); and a spool without segments starts one at the
    /// acknowledged offset. Neither step needs free blocks (a new empty file
    /// takes only an inode), so this works on a full disk and is what frees it.
    fn delete_delivered(&mut self) -> Result<(), SpoolError> {
        let rolled = self
            .segments
            .last()
            .filter(|s| s.len > 0 && s.end() <= self.acked)
            .map(Segment::end);
        if let Some(start) = rolled {
            self.active = create_segment(&self.dir, start)?;
            self.segments.push(Segment { start, len: 0 });
        }
        while self.segments.len() > 1 && self.segments[0].end() <= self.acked {
            let path = segment_path(&self.dir, self.segments[0].start);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(fail(&path, "remove")(e)),
            }
            self.segments.remove(0);
        }
        Ok(())
    }
}

/// The quarantine file of one spool: damaged lines, each after a header
/// line that says where it was, so that an operator can find, read and
/// replay them (`--- <segment> offset <byte in segment> length <bytes> ---`,
/// then the bytes as they were, then a `\n` if they did not end in one).
#[derive(Debug)]
struct Quarantine {
    path: PathBuf,
    /// Open while lines are written to it, until [`Quarantine::sync`]; the
    /// file is rarely written, so it is not held open in between.
    file: Option<File>,
}

impl Quarantine {
    fn new(dir: &Path) -> Quarantine {
        Quarantine {
            path: dir.join(QUARANTINE_FILE),
            file: None,
        }
    }

    fn open(&mut self) -> Result<&mut File, SpoolError> {
        let file = match self.file.take() {
            Some(file) => file,
            None => OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .open(&self.path)
                .map_err(fail(&self.path, "open"))?,
        };
        Ok(self.file.insert(file))
    }

    fn header(&mut self, segment: Segment, offset: u64, len: u64) -> Result<(), SpoolError> {
        let header = format!(
            "--- {} offset {} length {len} ---\n",
            segment_name(segment.start),
            offset - segment.start
        );
        let path = self.path.clone();
        self.open()?
            .write_all(header.as_bytes())
            .map_err(fail(&path, "append"))
    }

    /// Move aside one damaged line read at `offset`.
    fn write(&mut self, segment: Segment, offset: u64, line: &[u8]) -> Result<(), SpoolError> {
        self.header(segment, offset, line.len() as u64)?;
        let path = self.path.clone();
        let file = self.open()?;
        file.write_all(line).map_err(fail(&path, "append"))?;
        if !line.ends_with(b"\n") {
            file.write_all(b"\n").map_err(fail(&path, "append"))?;
        }
        Ok(())
    }

    /// Move aside the damaged line from `from` to `to` in the segment's
    /// `source`, a piece at a time, however long it is.
    fn copy(
        &mut self,
        source: &mut File,
        source_path: &Path,
        segment: Segment,
        from: u64,
        to: u64,
    ) -> Result<(), SpoolError> {
        self.header(segment, from, to - from)?;
        source
            .seek(SeekFrom::Start(from - segment.start))
            .map_err(fail(source_path, "seek"))?;
        let mut reader = source.take(to - from);
        let mut buf = vec![0; CHUNK_BYTES];
        let mut last = b'\n';
        let path = self.path.clone();
        let file = self.open()?;
        loop {
            let n = reader.read(&mut buf).map_err(fail(source_path, "read"))?;
            let Some(&end) = buf[..n].last() else {
                break;
            };
            last = end;
            file.write_all(&buf[..n]).map_err(fail(&path, "append"))?;
        }
        if last != b'\n' {
            file.write_all(b"\n").map_err(fail(&path, "append"))?;
        }
        Ok(())
    }

    /// Make what was written durable (and the file's name, if it is new)
    /// before the lines may leave the spool.
    fn sync(&mut self) -> Result<(), SpoolError> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        file.sync_all().map_err(fail(&self.path, "fsync"))?;
        match self.path.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }
}

/// Where the line holding offset `from` of `segment` ends, and whether it
/// ends in a `\n` (after it) or at the end of the segment without one.
fn line_end(
    file: &mut File,
    path: &Path,
    segment: Segment,
    from: u64,
) -> Result<(u64, bool), SpoolError> {
    file.seek(SeekFrom::Start(from - segment.start))
        .map_err(fail(path, "seek"))?;
    let mut reader = file.take(segment.end() - from);
    let mut buf = vec![0; CHUNK_BYTES];
    let mut at = from;
    loop {
        let n = reader.read(&mut buf).map_err(fail(path, "read"))?;
        if n == 0 {
            return Ok((segment.end(), false));
        }
        if let Some(newline) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok((at + newline as u64 + 1, true));
        }
        at += n as u64;
    }
}

/// The quarantine file's name in the spool directory.
const QUARANTINE_FILE: &str = "quarantine";

/// The longest line read whole from an earlier run's part of the spool:
/// past it a line is damage (or a hand edit) and goes to the quarantine
/// file in pieces, so that memory stays bounded whatever is on the disk.
/// Far above any event: a `tunnel-down` of the lab captures is about 1 KiB.
const MAX_LINE_BYTES: u64 = 16 << 20;

/// Reads that only look for line ends go this much at a time.
const CHUNK_BYTES: usize = 64 * 1024;

fn segment_name(start: u64) -> String {
    format!("{start:020}.seg")
}

/// Rename the segments that an older one has grown into (a line put into
/// a stopped daemon's spool by hand makes a segment longer than the offsets
/// its name leaves it), newest first so that no name is taken twice, each
/// to where the one before now ends. Returns `(old start, new start)` of
/// every segment, oldest first.
fn realign(dir: &Path, segments: &mut [Segment]) -> Result<Vec<(u64, u64)>, SpoolError> {
    let mut moved = Vec::new();
    let mut end: Option<u64> = None;
    for (index, segment) in segments.iter().enumerate() {
        let start = end.map_or(segment.start, |e| e.max(segment.start));
        if start != segment.start {
            moved.push((index, start));
        }
        end = Some(start + segment.len);
    }
    for &(index, start) in moved.iter().rev() {
        let from = segment_path(dir, segments[index].start);
        let to = segment_path(dir, start);
        if to.exists() {
            return Err(fail(&to, "rename a segment over")(io::Error::from(
                io::ErrorKind::AlreadyExists,
            )));
        }
        fs::rename(&from, &to).map_err(fail(&from, "rename"))?;
    }
    if !moved.is_empty() {
        sync_dir(dir)?;
    }
    let mut starts: Vec<(u64, u64)> = segments.iter().map(|s| (s.start, s.start)).collect();
    for (index, start) in moved {
        starts[index].1 = start;
        segments[index].start = start;
    }
    Ok(starts)
}

/// Where `offset`, taken before [`realign`] moved the `starts` of the
/// segments, is now: it belonged to the segment with the highest old start
/// at or below it (before the edit, that segment ended where the next began).
fn shift_offset(starts: &[(u64, u64)], offset: u64) -> u64 {
    match starts.iter().rev().find(|(old, _)| *old <= offset) {
        Some((old, new)) => offset + (new - old),
        None => offset,
    }
}

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(segment_name(start))
}

fn create_segment(dir: &Path, start: u64) -> Result<File, SpoolError> {
    let path = segment_path(dir, start);
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(&path)
        .map_err(fail(&path, "create"))?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail(dir, "fsync directory"))
}

/// The line (with its `\n`) as text if it is one complete JSON value.
fn complete_json_line(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?;
    let body = text.strip_suffix('\n')?;
    if body.trim().is_empty() {
        return None;
    }
    serde_json::from_str::<serde::de::IgnoredAny>(body).ok()?;
    Some(text)
}

/// Where the complete lines of `buf` end, at most `room` of them, and how
/// many there are.
fn line_cut(buf: &[u8], room: usize) -> (usize, u64) {
    let mut cut = 0;
    let mut lines = 0;
    for newline in memchr::memchr_iter(b'\n', buf).take(room) {
        cut = newline + 1;
        lines += 1;
    }
    (cut, lines)
}

/// Whether whole lines hold a blank one (a lone `\n`), which
/// [`framed_line`] refuses.
fn has_blank_line(lines: &[u8]) -> bool {
    lines.first() == Some(&b'\n') || memchr::memmem::find(lines, b"\n\n").is_some()
}

/// The line (with its `\n`) as text if it is UTF-8 and not blank: the check
/// for lines this process appended itself.
fn framed_line(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?;
    (text.len() > 1).then_some(text)
}

/// Where the torn tail of the newest segment starts (its length when it
/// has none), looking from byte `from` on: the trailing run of lines that
/// hold a zero byte or lack their `\n`. A torn append leaves exactly that:
/// its last line cut short, or zeros where the filesystem extended the file
/// but never wrote the data, which run into the next `\n`. Any other damaged
/// line, and a zeroed one with a good line after it, is no tear: it stays
/// for `read_batch` to quarantine, so the lines after it are delivered.
fn torn_tail_start(path: &Path, from: u64) -> Result<u64, SpoolError> {
    let mut file = File::open(path).map_err(fail(path, "open"))?;
    file.seek(SeekFrom::Start(from))
        .map_err(fail(path, "seek"))?;
    let mut buf = vec![0; CHUNK_BYTES];
    let (mut at, mut line_start) = (from, from);
    let mut zeroed = false;
    let mut tail = None;
    loop {
        let n = file.read(&mut buf).map_err(fail(path, "read"))?;
        if n == 0 {
            break;
        }
        let mut piece_start = 0;
        for newline in memchr::memchr_iter(b'\n', &buf[..n]) {
            zeroed |= memchr::memchr(0, &buf[piece_start..newline]).is_some();
            if zeroed {
                tail.get_or_insert(line_start);
            } else {
                tail = None;
            }
            zeroed = false;
            piece_start = newline + 1;
            line_start = at + piece_start as u64;
        }
        zeroed |= memchr::memchr(0, &buf[piece_start..n]).is_some();
        at += n as u64;
    }
    if line_start < at {
        // The last line has no `\n`.
        tail.get_or_insert(line_start);
    }
    Ok(tail.unwrap_or(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: std::ops::Range<u32>) -> String {
        n.map(|i| format!("{{\"n\":{i}}}\n")).collect()
    }

    fn numbers(batch: &SpooledBatch) -> Vec<u32> {
        batch
            .ndjson
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                    .as_u64()
                    .unwrap() as u32
            })
            .collect()
    }

    #[test]
    fn appended_events_are_read_back_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..3).as_bytes(), 3).unwrap();
        spool.append(lines(3..5).as_bytes(), 2).unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.pending_events(), 5);
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![0, 1, 2, 3, 4]);
        assert_eq!(batch.events, 5);
    }

    #[test]
    fn unacknowledged_batch_is_read_again_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..10).as_bytes(), 10).unwrap();
        let first = spool.read_batch(4, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&first), vec![0, 1, 2, 3]);
        assert_eq!(spool.ack(first.end).unwrap(), 4);
        let second = spool.read_batch(4, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&second), vec![4, 5, 6, 7]);
        drop(spool); // crash: the second batch was sent but never acknowledged
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.pending_events(), 6);
        let again = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&again), vec![4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn torn_tail_is_cut_on_open_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..2).as_bytes(), 2).unwrap();
        drop(spool);
        let segment = segment_path(dir.path(), 0);
        let intact = fs::metadata(&segment).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(b"{\"n\":2}\n{\"n\":3,\"tr").unwrap();
        drop(file);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.recovery().truncated_bytes, 10);
        assert_eq!(fs::metadata(&segment).unwrap().len(), intact + 8);
        assert_eq!(spool.pending_events(), 3);
        spool.append(lines(4..5).as_bytes(), 1).unwrap();
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![0, 1, 2, 4]);
    }

    #[test]
    fn unreadable_ack_file_redelivers_everything_rather_than_losing_anything() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..4).as_bytes(), 4).unwrap();
        let batch = spool.read_batch(2, 1 << 20).unwrap().unwrap();
        spool.ack(batch.end).unwrap();
        drop(spool);
        fs::write(dir.path().join("acked"), "garbage").unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(spool.recovery().unreadable_ack);
        let again = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&again), vec![0, 1, 2, 3]);
    }

    #[test]
    fn zero_filled_tail_with_a_later_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..2).as_bytes(), 2).unwrap();
        drop(spool);
        let segment = segment_path(dir.path(), 0);
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(b"\0\0\0\0\0\0{\"n\":3}\n").unwrap();
        drop(file);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![0, 1]);
        assert_eq!(spool.pending_events(), 2);
    }

    #[test]
    fn delivered_segments_are_deleted_and_offsets_survive_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 40).unwrap();
        for i in 0..6 {
            spool.append(lines(i * 5..i * 5 + 5).as_bytes(), 5).unwrap();
        }
        let segments = |d: &Path| {
            fs::read_dir(d)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "seg")
                })
                .count()
        };
        assert_eq!(segments(dir.path()), 6);
        let batch = spool.read_batch(12, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), (0..12).collect::<Vec<_>>());
        spool.ack(batch.end).unwrap();
        assert_eq!(segments(dir.path()), 4);
        let rest = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        spool.ack(rest.end).unwrap();
        assert_eq!(segments(dir.path()), 1);
        assert_eq!(spool.pending_events(), 0);
        assert!(spool.read_batch(100, 1 << 20).unwrap().is_none());
        drop(spool);
        let mut spool = Spool::open(dir.path(), 40).unwrap();
        assert_eq!(spool.pending_bytes(), 0);
        spool.append(lines(30..31).as_bytes(), 1).unwrap();
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![30]);
    }

    #[test]
    fn batches_respect_the_byte_budget_but_take_one_oversized_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..10).as_bytes(), 10).unwrap();
        let batch = spool.read_batch(100, 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![0, 1]);
        assert!(batch.more_waiting, "stopped by the byte budget");
        let tiny = spool.read_batch(100, 3).unwrap().unwrap();
        assert_eq!(numbers(&tiny), vec![0]);
        let counted = spool.read_batch(4, 1 << 20).unwrap().unwrap();
        assert!(counted.more_waiting, "stopped by the event count");
        let all = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(all.events, 10);
        assert!(!all.more_waiting);
    }

    #[test]
    fn an_ack_that_cannot_be_saved_still_moves_on_and_is_saved_later() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..4).as_bytes(), 4).unwrap();
        let first = spool.read_batch(2, 1 << 20).unwrap().unwrap();
        // The file gone, and a directory where the temporary file that
        // makes it again goes: its creation fails.
        fs::remove_file(dir.path().join("acked")).unwrap();
        fs::create_dir(dir.path().join("acked.tmp")).unwrap();
        assert_eq!(spool.ack(first.end).unwrap(), 2);
        assert!(spool.unsaved_ack().is_some());
        let next = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(
            numbers(&next),
            vec![2, 3],
            "the delivered batch is not resent"
        );
        fs::remove_dir(dir.path().join("acked.tmp")).unwrap();
        spool.ack(next.end).unwrap();
        assert!(spool.unsaved_ack().is_none());
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.pending_events(), 0);
    }

    #[test]
    fn an_ack_lost_with_its_file_is_saved_again_once_the_file_can_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..6).as_bytes(), 6).unwrap();
        let first = spool.read_batch(2, 1 << 20).unwrap().unwrap();
        spool.ack(first.end).unwrap();
        assert!(spool.unsaved_ack().is_none());
        // A directory where the slots are: the in-place write cannot open it.
        let acked = dir.path().join("acked");
        fs::remove_file(&acked).unwrap();
        fs::create_dir(&acked).unwrap();
        let second = spool.read_batch(2, 1 << 20).unwrap().unwrap();
        assert_eq!(spool.ack(second.end).unwrap(), 2);
        assert!(spool.unsaved_ack().is_some());
        fs::remove_dir(&acked).unwrap();
        let third = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&third), vec![4, 5]);
        spool.ack(third.end).unwrap();
        assert!(spool.unsaved_ack().is_none());
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.pending_events(), 0);
    }

    #[test]
    fn a_crash_after_the_sink_wrote_but_before_the_ack_sends_the_batch_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..9).as_bytes(), 9).unwrap();
        let mut destination = Vec::new();
        let first = spool.read_batch(3, 1 << 20).unwrap().unwrap();
        destination.extend(numbers(&first));
        spool.ack(first.end).unwrap();
        let second = spool.read_batch(3, 1 << 20).unwrap().unwrap();
        destination.extend(numbers(&second));
        drop(spool); // crash: the sink has the second batch, the spool's ack does not
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let rest = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        destination.extend(numbers(&rest));
        spool.ack(rest.end).unwrap();
        assert_eq!(destination, [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn an_ack_torn_by_a_crash_sends_its_batch_again_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        // Two events stay pending: a save torn by a crash never returned,
        // so the segment it was about cannot have been rolled away.
        spool.append(lines(0..8).as_bytes(), 8).unwrap();
        for _ in 0..3 {
            let batch = spool.read_batch(2, 1 << 20).unwrap().unwrap();
            spool.ack(batch.end).unwrap();
        }
        assert_eq!(spool.pending_events(), 2);
        drop(spool);
        // The open made the file with its first slot, the first save wrote
        // the other one, the second the first again, and the third (of the
        // offset after event 5) the second: a crash tore it.
        let acked = dir.path().join("acked");
        let mut slots = fs::read(&acked).unwrap();
        slots[512 + 8..512 + 20].fill(0);
        fs::write(&acked, &slots).unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(!spool.recovery().unreadable_ack);
        let again = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&again), vec![4, 5, 6, 7]);
    }

    #[test]
    fn an_ack_file_of_an_older_version_is_read_and_converted_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..6).as_bytes(), 6).unwrap();
        drop(spool);
        // What an older version left: the offset of event 2 as text.
        fs::write(dir.path().join("acked"), "16\n").unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.pending_events(), 4);
        let batch = spool.read_batch(2, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![2, 3]);
        spool.ack(batch.end).unwrap();
        assert_eq!(fs::metadata(dir.path().join("acked")).unwrap().len(), 1024);
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let rest = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&rest), vec![4, 5]);
    }

    #[test]
    fn a_bad_line_among_this_processs_own_appends_is_skipped_not_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool
            .append(b"{\"n\":0}\n\xff\xfe\n{\"n\":2}\n", 3)
            .unwrap();
        spool.append(b"{\"n\":3}\n\n{\"n\":5}\n", 3).unwrap();
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![0, 2, 3, 5]);
        assert_eq!((batch.events, batch.corrupt), (4, 2));
        let counted = spool.read_batch(2, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&counted), vec![0]);
        assert_eq!((counted.events, counted.corrupt), (1, 1));
    }

    #[test]
    fn drop_oldest_frees_whole_events_from_the_front() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..10).as_bytes(), 10).unwrap();
        let dropped = spool.drop_oldest(17).unwrap();
        assert_eq!(dropped, 3);
        assert_eq!(spool.pending_events(), 7);
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), (3..10).collect::<Vec<_>>());
    }

    #[test]
    fn corrupt_line_in_an_older_segment_is_skipped_not_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 10).unwrap();
        spool.append(lines(0..2).as_bytes(), 2).unwrap();
        spool.append(lines(2..3).as_bytes(), 1).unwrap();
        drop(spool);
        let first = segment_path(dir.path(), 0);
        fs::write(&first, b"{\"n\":0}\n{\"n\":1 \n").unwrap();
        let mut spool = Spool::open(dir.path(), 10).unwrap();
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![0, 2]);
        assert_eq!(batch.corrupt, 1);
        assert_eq!(
            quarantined(dir.path()),
            b"--- 00000000000000000000.seg offset 8 length 8 ---\n{\"n\":1 \n"
        );
    }

    /// The quarantine file's bytes (empty when there is none).
    fn quarantined(dir: &Path) -> Vec<u8> {
        fs::read(dir.join(QUARANTINE_FILE)).unwrap_or_default()
    }

    fn seg_files(dir: &Path) -> Vec<(String, u64)> {
        let mut found: Vec<(String, u64)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, e.metadata().unwrap().len())
            })
            .collect();
        found.sort();
        found
    }

    /// A spool of `events` lines written by an earlier run, with `garbage`
    /// put in after line `after`, as an operator's editor or a bad disk would.
    fn spool_with_garbage(events: u32, after: usize, garbage: &[u8]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        spool
            .append(lines(0..events).as_bytes(), u64::from(events))
            .unwrap();
        drop(spool);
        let segment = segment_path(dir.path(), 0);
        let text = fs::read(&segment).unwrap();
        let at: usize = text
            .split_inclusive(|&b| b == b'\n')
            .take(after)
            .map(<[u8]>::len)
            .sum();
        let mut edited = text[..at].to_vec();
        edited.extend_from_slice(garbage);
        edited.extend_from_slice(&text[at..]);
        fs::write(&segment, edited).unwrap();
        dir
    }

    /// Read and acknowledge everything: the numbers delivered and the
    /// damaged lines left out.
    fn drain(spool: &mut Spool) -> (Vec<u32>, u64) {
        let (mut delivered, mut corrupt) = (Vec::new(), 0);
        while let Some(batch) = spool.read_batch(100, 1 << 20).unwrap() {
            delivered.extend(numbers(&batch));
            corrupt += batch.corrupt;
            spool
                .ack_batch(batch.start, batch.end, batch.events + batch.corrupt)
                .unwrap();
        }
        (delivered, corrupt)
    }

    #[test]
    fn a_garbage_line_in_the_newest_segment_is_quarantined_and_every_line_after_it_delivered() {
        let dir = spool_with_garbage(99, 5, b"this is not json\n");
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(spool.recovery().truncated_bytes, 0, "no torn tail");
        assert_eq!(spool.pending_events(), 100, "99 events and the bad line");
        // A batch read twice (its delivery failed) quarantines its line once.
        let first = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!((first.events, first.corrupt), (99, 1));
        let again = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(again, first);
        let (delivered, corrupt) = drain(&mut spool);
        assert_eq!(delivered, (0..99).collect::<Vec<_>>());
        assert_eq!(corrupt, 1);
        assert_eq!(spool.pending_events(), 0);
        assert_eq!(
            quarantined(dir.path()),
            b"--- 00000000000000000000.seg offset 40 length 17 ---\nthis is not json\n"
        );
    }

    #[test]
    fn binary_garbage_with_zeros_amid_good_lines_is_quarantined_not_cut_as_a_tear() {
        let garbage = b"\x00\x01\xff\xfe\x00\x00PK\x03\x04\x00\n";
        let dir = spool_with_garbage(20, 5, garbage);
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(spool.recovery().truncated_bytes, 0);
        let (delivered, corrupt) = drain(&mut spool);
        assert_eq!(delivered, (0..20).collect::<Vec<_>>());
        assert_eq!(corrupt, 1);
        let quarantine = quarantined(dir.path());
        assert!(quarantine.ends_with(garbage), "{quarantine:?}");
    }

    #[test]
    fn a_line_longer_than_any_event_is_quarantined_in_pieces_and_the_rest_delivered() {
        let mut huge = vec![b'x'; MAX_LINE_BYTES as usize + 3 * CHUNK_BYTES + 7];
        huge.push(b'\n');
        let dir = spool_with_garbage(10, 5, &huge);
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let first = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!((numbers(&first), first.corrupt), ((0..5).collect(), 0));
        spool.ack(first.end).unwrap();
        let long = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!((long.events, long.corrupt), (0, 1));
        assert!(long.ndjson.is_empty());
        assert_eq!(long.end - long.start, huge.len() as u64);
        spool.ack(long.end).unwrap();
        let (rest, _) = drain(&mut spool);
        assert_eq!(rest, (5..10).collect::<Vec<_>>());
        let header = format!(
            "--- 00000000000000000000.seg offset 40 length {} ---\n",
            huge.len()
        );
        let quarantine = quarantined(dir.path());
        assert_eq!(quarantine.len(), header.len() + huge.len());
        assert!(quarantine.starts_with(header.as_bytes()));
        assert!(quarantine.ends_with(&huge));
    }

    #[test]
    fn an_older_segment_that_lost_its_last_newline_is_quarantined_not_a_dead_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 10).unwrap();
        spool.append(lines(0..2).as_bytes(), 2).unwrap();
        spool.append(lines(2..4).as_bytes(), 2).unwrap();
        drop(spool);
        let first = segment_path(dir.path(), 0);
        fs::write(&first, b"{\"n\":0}\n{\"n\":1}X").unwrap();
        let mut spool = Spool::open(dir.path(), 10).unwrap();
        let (delivered, corrupt) = drain(&mut spool);
        assert_eq!(delivered, vec![0, 2, 3]);
        assert_eq!(corrupt, 1);
        assert_eq!(
            quarantined(dir.path()),
            b"--- 00000000000000000000.seg offset 8 length 8 ---\n{\"n\":1}X\n"
        );
    }

    #[test]
    fn only_the_trailing_torn_lines_are_cut_and_damage_before_them_is_quarantined() {
        let dir = spool_with_garbage(6, 2, b"garbage\n");
        let segment = segment_path(dir.path(), 0);
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        // A torn append: a zeroed block running into a line, then a cut line.
        file.write_all(b"\0\0\0\0\"n\":7}\n{\"n\":8,").unwrap();
        drop(file);
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(spool.recovery().truncated_bytes, 18);
        let (delivered, corrupt) = drain(&mut spool);
        assert_eq!(delivered, (0..6).collect::<Vec<_>>());
        assert_eq!(corrupt, 1);
        assert!(quarantined(dir.path()).ends_with(b"length 8 ---\ngarbage\n"));
    }

    #[test]
    fn a_line_put_into_an_older_segment_renames_the_later_ones_and_skips_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 40).unwrap();
        for i in 0..3 {
            spool.append(lines(i * 5..i * 5 + 5).as_bytes(), 5).unwrap();
        }
        let first = spool.read_batch(1, 1 << 20).unwrap().unwrap();
        spool.ack(first.end).unwrap();
        drop(spool);
        let garbage = b"inserted by hand\n";
        let segment = segment_path(dir.path(), 0);
        let text = fs::read(&segment).unwrap();
        fs::write(&segment, [&text[..24], garbage, &text[24..]].concat()).unwrap();
        let mut spool = Spool::open(dir.path(), 40).unwrap();
        assert_eq!(spool.recovery().realigned_segments, 2);
        let shifted = [
            (segment_name(0), 57),
            (segment_name(57), 40),
            (segment_name(97), 45),
        ];
        assert_eq!(seg_files(dir.path()), shifted);
        let (delivered, corrupt) = drain(&mut spool);
        assert_eq!(delivered, (1..15).collect::<Vec<_>>());
        assert_eq!(corrupt, 1);
    }

    #[test]
    fn an_acknowledged_offset_in_a_renamed_segment_moves_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 40).unwrap();
        for i in 0..3 {
            spool.append(lines(i * 5..i * 5 + 5).as_bytes(), 5).unwrap();
        }
        let middle = fs::read(segment_path(dir.path(), 40)).unwrap();
        let batch = spool.read_batch(12, 1 << 20).unwrap().unwrap();
        spool.ack(batch.end).unwrap();
        assert_eq!(spool.acked(), 98);
        drop(spool);
        // A crash before the delivered segment was deleted, and a line put
        // into it by hand.
        let edited = [&middle[..8], b"by hand\n".as_slice(), &middle[8..]].concat();
        fs::write(segment_path(dir.path(), 40), edited).unwrap();
        let mut spool = Spool::open(dir.path(), 40).unwrap();
        assert_eq!(spool.recovery().realigned_segments, 1);
        assert_eq!(spool.acked(), 106);
        assert_eq!(drain(&mut spool), (vec![12, 13, 14], 0));
        drop(spool);
        // The moved offset was saved: nothing is sent again.
        let mut spool = Spool::open(dir.path(), 40).unwrap();
        assert_eq!(drain(&mut spool), (vec![], 0));
    }

    #[test]
    fn the_ack_slots_are_made_at_open_so_that_a_full_disk_can_still_save_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(spool.unsaved_ack().is_none());
        assert!(spool.ack_file.is_slotted());
        assert_eq!(fs::metadata(dir.path().join("acked")).unwrap().len(), 1024);
        drop(spool);
        fs::write(dir.path().join("acked"), "0\n").unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(
            spool.ack_file.is_slotted(),
            "an older version's file is converted"
        );
        assert_eq!(fs::metadata(dir.path().join("acked")).unwrap().len(), 1024);
    }

    #[test]
    fn a_newest_segment_delivered_to_its_end_is_rolled_and_its_space_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..10).as_bytes(), 10).unwrap();
        let end = spool.end();
        let part = spool.read_batch(4, 1 << 20).unwrap().unwrap();
        spool.ack(part.end).unwrap();
        assert_eq!(
            seg_files(dir.path()),
            [(segment_name(0), end)],
            "half delivered"
        );
        let rest = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        spool.ack(rest.end).unwrap();
        assert_eq!(seg_files(dir.path()), [(segment_name(end), 0)]);
        assert!(spool.unreclaimed().is_none());
        assert!(spool.read_batch(100, 1 << 20).unwrap().is_none());
        spool.append(lines(10..12).as_bytes(), 2).unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.pending_events(), 2);
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![10, 11]);
        assert_eq!(batch.start, end, "offsets go on across the roll");
    }

    /// The three steps of a roll are: save the acknowledged offset, create
    /// the new segment, delete the old one. Whatever a crash left of them,
    /// the spool opens with nothing pending, nothing delivered twice, the
    /// delivered segment gone, and appends going on.
    #[test]
    fn a_crash_at_any_step_of_a_roll_opens_with_nothing_lost_or_repeated() {
        for step in ["offset saved", "new segment created", "old segment deleted"] {
            let dir = tempfile::tempdir().unwrap();
            let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
            spool.append(lines(0..4).as_bytes(), 4).unwrap();
            let old = segment_path(dir.path(), 0);
            let delivered = fs::read(&old).unwrap();
            let end = spool.end();
            let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
            spool.ack(batch.end).unwrap();
            drop(spool);
            let new = segment_path(dir.path(), end);
            match step {
                "offset saved" => {
                    fs::remove_file(&new).unwrap();
                    fs::write(&old, &delivered).unwrap();
                }
                "new segment created" => fs::write(&old, &delivered).unwrap(),
                _ => {}
            }
            let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(spool.pending_events(), 0, "{step}");
            assert!(spool.read_batch(100, 1 << 20).unwrap().is_none(), "{step}");
            assert_eq!(seg_files(dir.path()), [(segment_name(end), 0)], "{step}");
            spool.append(lines(4..6).as_bytes(), 2).unwrap();
            let next = spool.read_batch(100, 1 << 20).unwrap().unwrap();
            assert_eq!(numbers(&next), vec![4, 5], "{step}");
        }
    }

    #[test]
    fn no_segment_is_rolled_or_deleted_while_the_offset_is_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..4).as_bytes(), 4).unwrap();
        let end = spool.end();
        // A directory where the slots are: the save fails.
        fs::remove_file(dir.path().join("acked")).unwrap();
        fs::create_dir(dir.path().join("acked")).unwrap();
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        spool.ack(batch.end).unwrap();
        assert!(spool.unsaved_ack().is_some());
        assert_eq!(seg_files(dir.path()), [(segment_name(0), end)]);
        drop(spool);
        // The crash came before the save: everything is sent again.
        fs::remove_dir(dir.path().join("acked")).unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(drain(&mut spool).0, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_roll_that_fails_is_reported_and_done_at_a_later_acknowledgement() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(lines(0..2).as_bytes(), 2).unwrap();
        let end = spool.end();
        // A directory where the new segment goes: creating it fails.
        fs::create_dir(segment_path(dir.path(), end)).unwrap();
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(spool.ack(batch.end).unwrap(), 2, "delivered all the same");
        assert!(spool.unreclaimed().is_some());
        assert!(spool.unsaved_ack().is_none());
        fs::remove_dir(segment_path(dir.path(), end)).unwrap();
        spool.append(lines(2..3).as_bytes(), 1).unwrap();
        let batch = spool.read_batch(100, 1 << 20).unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![2]);
        spool.ack(batch.end).unwrap();
        assert!(spool.unreclaimed().is_none());
        assert_eq!(seg_files(dir.path()), [(segment_name(spool.end()), 0)]);
    }
}
