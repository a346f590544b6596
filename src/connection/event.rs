//! What the peer sent, lent from the receive side or taken as an owned value

use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use core::ops::Deref;

use crate::auth::Secret;
use crate::frame::CloseCode;

/// What the peer sent; borrows the [`Receiver`](super::Receiver) until its next call,
/// and nothing else, so the [`Sender`](super::Sender) can answer meanwhile
#[non_exhaustive]
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole text message, UTF-8 checked
    Text(Text<'a>),
    /// A whole binary message
    Binary(Payload<'a>),
    /// A ping; already answered when [`Config::auto_pong`](crate::Config::auto_pong)
    /// is on (the default)
    Ping(&'a [u8]),
    /// A pong
    Pong(&'a [u8]),
    /// The peer closed; the echo is queued unless this side closed first. The code is
    /// `None` when the close frame carried none.
    Close {
        /// The status code, if any
        code: Option<CloseCode>,
        /// The reason, possibly empty
        reason: &'a str,
    },
    /// In [streaming](crate::Config::streaming) mode: a piece of a text message as it
    /// arrived. The message's UTF-8 is checked piece by piece, but a piece may end
    /// inside a code point, so it is handed out as bytes.
    TextChunk {
        /// The bytes of this piece
        data: &'a [u8],
        /// The first piece of the message
        first: bool,
        /// The last piece of the message
        fin: bool,
    },
    /// In [streaming](crate::Config::streaming) mode: a piece of a binary message
    BinaryChunk {
        /// The bytes of this piece
        data: &'a [u8],
        /// The first piece of the message
        first: bool,
        /// The last piece of the message
        fin: bool,
    },
    /// With first-message authentication: the first message, to check, then answer
    /// with [`Sender::accept_auth`](super::Sender::accept_auth) or
    /// [`Sender::reject_auth`](super::Sender::reject_auth). `Debug` does not show it.
    AuthMessage {
        /// The message
        message: Secret<'a>,
        /// Whether it was a text message (then it is UTF-8)
        text: bool,
    },
}

/// A received message's bytes: lent where they arrived, or the buffer a message in
/// several frames was assembled in, which [`into_vec`](Self::into_vec) takes without a
/// copy
pub struct Payload<'a>(Held<'a>);

enum Held<'a> {
    /// In the input buffer, where the frame arrived.
    InPlace(&'a [u8]),
    /// The buffer the frames' payloads were gathered in; taking it leaves it empty.
    Assembled(&'a mut Vec<u8>),
}

impl<'a> Payload<'a> {
    pub(super) fn in_place(bytes: &'a [u8]) -> Self {
        Payload(Held::InPlace(bytes))
    }

    pub(super) fn assembled(buf: &'a mut Vec<u8>) -> Self {
        Payload(Held::Assembled(buf))
    }

    /// The bytes
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Held::InPlace(b) => b,
            Held::Assembled(v) => v,
        }
    }

    /// The bytes, for as long as they are lent
    pub(super) fn into_ref(self) -> &'a [u8] {
        match self.0 {
            Held::InPlace(b) => b,
            Held::Assembled(v) => v,
        }
    }

    /// The bytes as an owned vector: the assembled buffer itself, or a copy of bytes
    /// that arrived in one frame (they live in the input buffer, which other frames
    /// share)
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Held::InPlace(b) => b.to_vec(),
            Held::Assembled(v) => core::mem::take(v),
        }
    }

    /// The bytes as [`Bytes`], with [`into_vec`](Self::into_vec)'s copies
    pub fn into_bytes(self) -> Bytes {
        Bytes::from(self.into_vec())
    }
}

impl Deref for Payload<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Payload<'_> {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Payload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes().fmt(f)
    }
}

impl PartialEq for Payload<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Payload<'_> {}

impl PartialEq<[u8]> for Payload<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

/// A received text message: bytes known to be UTF-8
///
/// They were checked as they arrived (RFC 6455 §8.1), piece by piece when the message
/// came in pieces. [`as_bytes`](Self::as_bytes) costs nothing; [`as_str`](Self::as_str)
/// is free when the message was checked in one piece, and otherwise checks it once
/// more (safe code can only make a `&str` by checking), so a caller that forwards the
/// bytes never pays for a second check.
pub struct Text<'a>(TextHeld<'a>);

enum TextHeld<'a> {
    /// Checked whole: the `&str` is at hand.
    Str(&'a str),
    /// Checked piece by piece.
    Checked(Payload<'a>),
}

impl<'a> Text<'a> {
    pub(super) fn from_str(text: &'a str) -> Self {
        Text(TextHeld::Str(text))
    }

    /// `payload` MUST have been checked to be UTF-8.
    pub(super) fn checked(payload: Payload<'a>) -> Self {
        Text(TextHeld::Checked(payload))
    }

    /// The UTF-8 bytes
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            TextHeld::Str(s) => s.as_bytes(),
            TextHeld::Checked(p) => p.as_bytes(),
        }
    }

    /// The text (see the type's docs for what it costs)
    pub fn as_str(&self) -> &str {
        match &self.0 {
            TextHeld::Str(s) => s,
            TextHeld::Checked(p) => match simdutf8::basic::from_utf8(p) {
                Ok(s) => s,
                Err(_) => unreachable!("text is checked as it arrives"),
            },
        }
    }

    /// Its length in bytes
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the message is empty
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// The text as an owned `String`: the assembled buffer itself (checked once more
    /// on the way, see [`as_str`](Self::as_str)), or a copy of a message that arrived
    /// in one frame
    pub fn into_string(self) -> String {
        match self.0 {
            TextHeld::Str(s) => String::from(s),
            TextHeld::Checked(p) => match String::from_utf8(p.into_vec()) {
                Ok(s) => s,
                Err(_) => unreachable!("text is checked as it arrives"),
            },
        }
    }

    /// The UTF-8 bytes as [`Bytes`], without a check; copied as
    /// [`Payload::into_vec`] copies
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            TextHeld::Str(s) => Bytes::copy_from_slice(s.as_bytes()),
            TextHeld::Checked(p) => p.into_bytes(),
        }
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_str().fmt(f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_str().fmt(f)
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Text<'_> {}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
