//! UTF-8 validation of a message that arrives in pieces
//!
//! Each piece is checked as it arrives, so an invalid byte fails the message at once
//! (RFC 6455 §8.1 lets an endpoint fail fast), not after the rest has been buffered.
//! A code point split between pieces is carried over (at most 3 bytes).

use simdutf8::compat::from_utf8;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Utf8Stream {
    carry: [u8; 4],
    len: u8,
}

/// The bytes were not UTF-8 (or the message ended inside a code point)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Stream {
    /// Check the next piece of the message
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        if self.len > 0 {
            let have = usize::from(self.len);
            let want = sequence_len(self.carry[0]);
            let take = (want - have).min(bytes.len());
            self.carry[have..have + take].copy_from_slice(&bytes[..take]);
            self.len += take as u8;
            bytes = &bytes[take..];
            match from_utf8(&self.carry[..usize::from(self.len)]) {
                Ok(_) => self.len = 0,
                // Still a valid prefix, and the piece is used up.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
        }
        // The fast check first; the slower one says where and why it failed.
        if simdutf8::basic::from_utf8(bytes).is_ok() {
            return Ok(());
        }
        match from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                // A valid prefix of a code point ends the piece; at most 3 bytes.
                let tail = &bytes[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// The message ended: no code point may be left open
    pub(crate) fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let open = self.len != 0;
        self.len = 0;
        if open { Err(InvalidUtf8) } else { Ok(()) }
    }
}

/// The length of the sequence a lead byte starts; only called on the first byte of a
/// carried prefix, which the validator has already accepted as a lead byte
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(bytes: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Stream::default();
        let mut at = 0;
        for &cut in cuts {
            v.feed(&bytes[at..cut])?;
            at = cut;
        }
        v.feed(&bytes[at..])?;
        v.finish()
    }

    #[test]
    fn every_split_agrees_with_std() {
        let samples: &[&[u8]] = &[
            "κόσμε".as_bytes(),
            "a€b𝄞c".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xe0\x80",
            b"ok\xc3",
            b"\xc0\xaf",
            b"\x80",
        ];
        for s in samples {
            let expect = core::str::from_utf8(s).is_ok();
            for a in 0..=s.len() {
                for b in a..=s.len() {
                    assert_eq!(pieces(s, &[a, b]).is_ok(), expect, "{s:?} cut {a} {b}");
                }
            }
        }
    }

    #[test]
    fn fails_on_the_first_bad_byte_not_at_the_end() {
        let mut v = Utf8Stream::default();
        assert_eq!(v.feed(b"hello \xce"), Ok(()));
        // 0xF4 0x90 can never start a valid code point: fail without more input.
        let mut w = Utf8Stream::default();
        assert_eq!(w.feed(b"ok\xf4\x90"), Err(InvalidUtf8));
        let mut x = Utf8Stream::default();
        assert_eq!(x.feed(b"\xf4"), Ok(()));
        assert_eq!(x.feed(b"\x90"), Err(InvalidUtf8));
    }
}
