//! The spool's acknowledged offset on disk: two checksummed slots, written
//! in turn, in a file whose size never changes.
//!
//! The offset moves after every delivered batch, so saving it is on the
//! path of every batch. Replacing a file (temporary file, fsync, rename,
//! directory fsync) cost as much as the batch's own fsync; here a save is
//! one 32-byte `pwrite` into the slot that does not hold the newest value,
//! and one `fdatasync` of a file whose size and blocks stay the same (so no
//! metadata to commit). A slot is `magic | sequence | offset | crc32`;
//! reading takes the valid slot with the higher sequence. A write torn by a
//! crash spoils at most the slot it was writing (its own 512-byte sector),
//! and the other still holds the previous offset: the batch after it is
//! delivered again, which the at-least-once contract allows (same
//! `event.id`), and nothing is lost, because an offset is only written once
//! the sink has the batch.
//!
//! The file keeps the name `acked`. Earlier versions wrote the offset there
//! as decimal text, replaced atomically; that is still read, and the first
//! save after an upgrade turns the file into slots by one atomic
//! replacement, so a crash during the upgrade leaves either format whole.
//! This module must never write a slot over the one holding the newest
//! valid offset.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::spool::SpoolError;

/// The file's name in the spool directory.
pub(crate) const FILE_NAME: &str = "acked";

/// Size of the slots file: two 512-byte sectors, one slot at the start of
/// each, so a torn sector never touches the other slot.
const FILE_BYTES: usize = 1024;
const SLOT_STRIDE: usize = 512;
const SLOT_BYTES: usize = 32;
const MAGIC: &[u8; 8] = b"swtack\x00\x01";

/// What the file held when the spool opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Saved {
    /// No file: nothing was ever acknowledged.
    Missing,
    /// Neither slot (nor older text) could be read: everything on disk is
    /// delivered again.
    Unreadable,
    /// The newest offset saved.
    Offset(u64),
}

/// The open state of the `acked` file of one spool.
#[derive(Debug)]
pub(crate) struct AckFile {
    path: PathBuf,
    /// The sequence of the newest valid slot (0 when there is none).
    sequence: u64,
    /// The slot the next save writes: never the one holding `sequence`.
    next_slot: usize,
    /// The file on disk is the slots file (and not missing, the old text
    /// format or cut short), so a save may write one slot in place.
    slotted: bool,
}

impl AckFile {
    /// Read the acknowledged offset saved in `dir` (either format).
    pub(crate) fn read(dir: &Path) -> Result<(AckFile, Saved), SpoolError> {
        let path = dir.join(FILE_NAME);
        let mut ack = AckFile {
            path,
            sequence: 0,
            next_slot: 0,
            slotted: false,
        };
        let bytes = match fs::read(&ack.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((ack, Saved::Missing)),
            Err(e) => {
                return Err(SpoolError {
                    path: ack.path,
                    action: "read",
                    error: e,
                });
            }
        };
        if bytes.len() != FILE_BYTES {
            // The text an older version wrote ("123\n"); never 1024 bytes long.
            let text = std::str::from_utf8(&bytes).ok();
            let saved = text
                .and_then(|t| t.trim().parse::<u64>().ok())
                .map_or(Saved::Unreadable, Saved::Offset);
            return Ok((ack, saved));
        }
        ack.slotted = true;
        let best = (0..2)
            .filter_map(|slot| {
                let at = slot * SLOT_STRIDE;
                decode(&bytes[at..at + SLOT_BYTES])
                    .map(|(sequence, offset)| (sequence, slot, offset))
            })
            .max();
        let Some((sequence, slot, offset)) = best else {
            return Ok((ack, Saved::Unreadable));
        };
        ack.sequence = sequence;
        ack.next_slot = 1 - slot;
        Ok((ack, Saved::Offset(offset)))
    }

    /// Whether the file on disk is the slots file, so that a save writes in
    /// place and needs no free block (the first save of a spool, or the
    /// first after an upgrade, replaces the whole file).
    pub(crate) fn is_slotted(&self) -> bool {
        self.slotted
    }

    /// Save `offset` durably: one slot written and fdatasync'ed, or, the
    /// first time (no file yet, or the old text format), the whole file
    /// replaced atomically. On failure the newest slot on disk is untouched
    /// and the next save writes the same slot again.
    pub(crate) fn save(&mut self, offset: u64) -> Result<(), SpoolError> {
        let sequence = self.sequence + 1;
        let slot = encode(sequence, offset);
        if self.slotted {
            let opened = OpenOptions::new().write(true).open(&self.path);
            match opened {
                Ok(file) => {
                    file.write_all_at(&slot, (self.next_slot * SLOT_STRIDE) as u64)
                        .and_then(|()| file.sync_data())
                        .map_err(|error| SpoolError {
                            path: self.path.clone(),
                            action: "write",
                            error,
                        })?;
                    self.sequence = sequence;
                    self.next_slot = 1 - self.next_slot;
                    return Ok(());
                }
                // Removed behind our back: made again below.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(SpoolError {
                        path: self.path.clone(),
                        action: "open",
                        error,
                    });
                }
            }
        }
        let mut image = vec![0u8; FILE_BYTES];
        image[..SLOT_BYTES].copy_from_slice(&slot);
        crate::atomic::replace(&self.path, &image).map_err(|e| SpoolError {
            path: e.path,
            action: e.action,
            error: e.error,
        })?;
        self.slotted = true;
        self.sequence = sequence;
        self.next_slot = 1;
        Ok(())
    }
}

fn encode(sequence: u64, offset: u64) -> [u8; SLOT_BYTES] {
    let mut slot = [0u8; SLOT_BYTES];
    slot[..8].copy_from_slice(MAGIC);
    slot[8..16].copy_from_slice(&sequence.to_le_bytes());
    slot[16..24].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&slot[..24]);
    slot[24..28].copy_from_slice(&crc.to_le_bytes());
    slot
}

/// `(sequence, offset)` of a slot whose magic and checksum are right.
fn decode(slot: &[u8]) -> Option<(u64, u64)> {
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(slot.get(at..at + 8)?.try_into().ok()?))
    };
    let crc = u32::from_le_bytes(slot.get(24..28)?.try_into().ok()?);
    let valid = slot.get(..8)? == MAGIC && crc32fast::hash(slot.get(..24)?) == crc;
    valid.then_some((word(8)?, word(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(dir: &Path) -> Saved {
        AckFile::read(dir).unwrap().1
    }

    #[test]
    fn saves_alternate_slots_and_the_newest_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ack, first) = AckFile::read(dir.path()).unwrap();
        assert_eq!(first, Saved::Missing);
        for offset in [10, 20, 30] {
            ack.save(offset).unwrap();
            assert_eq!(saved(dir.path()), Saved::Offset(offset));
        }
        let bytes = fs::read(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(bytes.len(), FILE_BYTES);
        assert_eq!(decode(&bytes[..SLOT_BYTES]), Some((3, 30)));
        assert_eq!(
            decode(&bytes[SLOT_STRIDE..SLOT_STRIDE + SLOT_BYTES]),
            Some((2, 20))
        );
        // A reopened file goes on writing over the older slot.
        let (mut ack, _) = AckFile::read(dir.path()).unwrap();
        ack.save(40).unwrap();
        let bytes = fs::read(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(decode(&bytes[..SLOT_BYTES]), Some((3, 30)));
        assert_eq!(
            decode(&bytes[SLOT_STRIDE..SLOT_STRIDE + SLOT_BYTES]),
            Some((4, 40))
        );
    }

    #[test]
    fn the_higher_sequence_wins_whichever_slot_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut image = vec![0u8; FILE_BYTES];
        image[..SLOT_BYTES].copy_from_slice(&encode(9, 900));
        image[SLOT_STRIDE..SLOT_STRIDE + SLOT_BYTES].copy_from_slice(&encode(8, 800));
        fs::write(dir.path().join(FILE_NAME), &image).unwrap();
        assert_eq!(saved(dir.path()), Saved::Offset(900));
        image[SLOT_STRIDE..SLOT_STRIDE + SLOT_BYTES].copy_from_slice(&encode(10, 1000));
        fs::write(dir.path().join(FILE_NAME), &image).unwrap();
        assert_eq!(saved(dir.path()), Saved::Offset(1000));
    }

    #[test]
    fn a_torn_newest_slot_leaves_the_previous_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ack, _) = AckFile::read(dir.path()).unwrap();
        ack.save(100).unwrap();
        ack.save(200).unwrap();
        // The save of 200 went to slot 1: tear it half-way.
        let path = dir.path().join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes[SLOT_STRIDE + 20..SLOT_STRIDE + SLOT_BYTES].fill(0xff);
        fs::write(&path, &bytes).unwrap();
        let (mut ack, found) = AckFile::read(dir.path()).unwrap();
        assert_eq!(found, Saved::Offset(100));
        // The next save goes over the torn slot, never over the good one.
        ack.save(300).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(decode(&bytes[..SLOT_BYTES]), Some((1, 100)));
        assert_eq!(saved(dir.path()), Saved::Offset(300));
    }

    #[test]
    fn garbage_in_both_slots_or_a_short_file_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, vec![0x5a; FILE_BYTES]).unwrap();
        assert_eq!(saved(dir.path()), Saved::Unreadable);
        let mut image = vec![0u8; FILE_BYTES];
        image[..SLOT_BYTES].copy_from_slice(&encode(1, 5));
        fs::write(&path, &image[..300]).unwrap();
        assert_eq!(saved(dir.path()), Saved::Unreadable);
        fs::write(&path, b"garbage").unwrap();
        assert_eq!(saved(dir.path()), Saved::Unreadable);
    }

    #[test]
    fn the_old_text_file_is_read_and_replaced_by_slots_at_the_first_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, "4242\n").unwrap();
        let (mut ack, found) = AckFile::read(dir.path()).unwrap();
        assert_eq!(found, Saved::Offset(4242));
        ack.save(5000).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), FILE_BYTES as u64);
        assert!(!dir.path().join("acked.tmp").exists());
        assert_eq!(saved(dir.path()), Saved::Offset(5000));
    }

    #[test]
    fn a_file_removed_behind_our_back_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ack, _) = AckFile::read(dir.path()).unwrap();
        ack.save(1).unwrap();
        fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        ack.save(2).unwrap();
        assert_eq!(saved(dir.path()), Saved::Offset(2));
    }
}
