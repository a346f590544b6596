//! The connection's input buffer: received bytes, and room written over in place
//!
//! A `Vec<u8>` whose length is the end of the data must grow element by element, and
//! code that grows a `Vec` keeps its length up to date as it goes, which costs a fused
//! copy-and-unmask loop about a quarter of its speed. Here the data ends at `end`, and
//! the vector's bytes past `end` are room that earlier input already initialized (it
//! was consumed and moved out of the way): new input is stored there, as into any
//! slice. Only room never used before is grown into. The room is never zeroed: it holds
//! consumed input, which is as much the caller's as the bytes it replaces.

use alloc::collections::TryReserveError;
use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};

use crate::frame::{copy_unmasked, extend_unmasked};

/// Received bytes; derefs to the data, `bytes[..end]`
#[derive(Default)]
pub(super) struct InputBuf {
    bytes: Vec<u8>,
    end: usize,
}

impl InputBuf {
    /// Bytes held, data and room, initialized or not
    #[inline]
    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Make room for at least `additional` bytes after the data
    pub(super) fn reserve(&mut self, additional: usize) {
        if let Some(grow) = self.growth(additional) {
            self.bytes.reserve(grow);
        }
    }

    /// [`reserve`](Self::reserve), or an error where the allocator refuses
    pub(super) fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
        match self.growth(additional) {
            Some(grow) => self.bytes.try_reserve(grow),
            None => Ok(()),
        }
    }

    /// How much `bytes` must grow past its length for `additional` bytes of data
    fn growth(&self, additional: usize) -> Option<usize> {
        let need = self.end.saturating_add(additional);
        (need > self.bytes.len()).then(|| need - self.bytes.len())
    }

    /// Append `src`
    pub(super) fn extend_from_slice(&mut self, src: &[u8]) {
        self.append(
            src,
            |room, part, _| room.copy_from_slice(part),
            |bytes, part, _| bytes.extend_from_slice(part),
        );
    }

    /// Append `src` unmasked, where `src` starts `offset` bytes into the payload
    pub(super) fn extend_unmasked(&mut self, src: &[u8], key: [u8; 4], offset: usize) {
        self.append(
            src,
            |room, part, at| copy_unmasked(room, part, key, offset + at),
            |bytes, part, at| extend_unmasked(bytes, part, key, offset + at),
        );
    }

    /// Append `src`: what fits the initialized room goes in by `store`, the rest by
    /// `grow`; each is told where in `src` its part starts, and is called only with
    /// a part that is not empty
    #[inline(always)]
    fn append(
        &mut self,
        src: &[u8],
        store: impl FnOnce(&mut [u8], &[u8], usize),
        grow: impl FnOnce(&mut Vec<u8>, &[u8], usize),
    ) {
        let fits = (self.bytes.len() - self.end).min(src.len());
        let (now, rest) = src.split_at(fits);
        if fits > 0 {
            store(&mut self.bytes[self.end..self.end + fits], now, 0);
        }
        if !rest.is_empty() {
            grow(&mut self.bytes, rest, fits);
        }
        self.end += src.len();
    }

    /// The `n` bytes of room after the data, initialized: for a read to land in,
    /// then [`commit`](Self::commit)
    pub(super) fn spare(&mut self, n: usize) -> &mut [u8] {
        let need = self.end.saturating_add(n);
        if self.bytes.len() < need {
            // Zeroed once; consumed input refills it later without zeroing.
            self.bytes.resize(need, 0);
        }
        &mut self.bytes[self.end..need]
    }

    /// `n` bytes were written at the start of the room [`spare`](Self::spare) lent
    pub(super) fn commit(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.bytes.len());
        self.end += n;
    }

    /// Remove the first `n` bytes of data: the rest moves to the front
    pub(super) fn drop_front(&mut self, n: usize) {
        self.bytes.copy_within(n..self.end, 0);
        self.end -= n;
    }

    /// Remove all data; the room stays
    pub(super) fn clear(&mut self) {
        self.end = 0;
    }
}

impl Deref for InputBuf {
    type Target = [u8];

    #[inline(always)]
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.end]
    }
}

impl DerefMut for InputBuf {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn room_left_by_consumed_bytes_is_reused_without_losing_data() {
        let mut buf = InputBuf::default();
        buf.extend_from_slice(b"0123456789");
        buf.drop_front(6);
        assert_eq!(&*buf, b"6789");
        // Six bytes of room are initialized; this input fills them and grows past.
        buf.extend_from_slice(b"abcdefgh");
        assert_eq!(&*buf, b"6789abcdefgh");
        buf.clear();
        assert!(buf.is_empty());
        buf.extend_unmasked(&[1 ^ 9, 2 ^ 8, 3 ^ 7, 4 ^ 6, 5 ^ 9], [9, 8, 7, 6], 0);
        assert_eq!(&*buf, &[1, 2, 3, 4, 5]);
    }

    #[test]
    fn unmasking_across_the_initialized_room_keeps_the_key_phase() {
        let key = [0x11, 0x22, 0x33, 0x44];
        let plain: Vec<u8> = (0..700u32).map(|i| (i * 7) as u8).collect();
        let mut masked = plain.clone();
        crate::frame::apply_mask(&mut masked, key, 0);
        for room in [0, 1, 3, 64, 299, 700, 900] {
            let mut buf = InputBuf::default();
            buf.extend_from_slice(&vec![0xAA; room]);
            buf.clear();
            // The first 3 bytes go in unmasked at offset 0, the rest at offset 3.
            buf.extend_unmasked(&masked[..3], key, 0);
            buf.extend_unmasked(&masked[3..], key, 3);
            assert_eq!(&*buf, &plain[..], "room {room}");
        }
    }

    #[test]
    fn reserve_counts_from_the_end_of_the_data() {
        let mut buf = InputBuf::default();
        buf.extend_from_slice(&[0; 100]);
        buf.drop_front(90);
        buf.reserve(50);
        assert!(buf.capacity() >= 100);
        assert_eq!(buf.growth(80), None);
        assert_eq!(buf.growth(95), Some(5));
    }
}
