//! The wire format of RFC 6455 §5: frame headers, masking and close payloads
//!
//! Pure functions over bytes, usable without the [connection](crate::connection):
//!
//! ```
//! use wsgate::frame::{apply_mask, FrameHeader, OpCode};
//!
//! // A masked client text frame "Hi", as on the wire
//! let key = [1, 2, 3, 4];
//! let mut wire = Vec::new();
//! FrameHeader::new(true, OpCode::Text, Some(key), 2).write(&mut wire);
//! let start = wire.len();
//! wire.extend_from_slice(b"Hi");
//! apply_mask(&mut wire[start..], key, 0);
//!
//! let (header, len) = FrameHeader::parse(&wire).unwrap().expect("complete header");
//! assert_eq!((header.opcode, header.payload_len, header.mask), (OpCode::Text, 2, Some(key)));
//! let payload = &mut wire[len..];
//! apply_mask(payload, key, 0);
//! assert_eq!(payload, b"Hi");
//! ```

mod close;
mod mask;

pub use close::{CloseCode, parse_close_payload};
pub use mask::apply_mask;
pub(crate) use mask::{copy_unmasked, extend_unmasked, mask_short};

use alloc::vec::Vec;

use crate::error::ProtocolError;

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask key
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame (RFC 6455 §5.5)
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (RFC 6455 §5.2); the reserved ones are refused when parsing
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: a later fragment of a message
    Continuation,
    /// `0x1`: the first frame of a text message
    Text,
    /// `0x2`: the first frame of a binary message
    Binary,
    /// `0x8`
    Close,
    /// `0x9`
    Ping,
    /// `0xA`
    Pong,
}

impl OpCode {
    /// The opcode for the low four bits of the first header byte; `None` for the
    /// reserved values 0x3-0x7 and 0xB-0xF
    pub fn from_u8(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// The four bits on the wire
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Close, ping and pong
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A frame header (RFC 6455 §5.2)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The final fragment of a message
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the three low bits (`0b100` is RSV1); nonzero only with an
    /// extension, which this crate does not negotiate
    pub rsv: u8,
    /// What the payload is
    pub opcode: OpCode,
    /// The masking key; clients mask every frame, servers none
    pub mask: Option<[u8; 4]>,
    /// Payload bytes following the header; at most 2^63 - 1
    pub payload_len: u64,
}

impl FrameHeader {
    /// A header without RSV bits
    pub fn new(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, payload_len: u64) -> Self {
        Self {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len,
        }
    }

    /// Parse a header from the start of `buf`
    ///
    /// Returns `Ok(None)` when `buf` holds only part of the header (at most
    /// [`MAX_HEADER_LEN`] bytes are ever needed), else the header and its length.
    ///
    /// # Errors
    /// - [`ProtocolError::ReservedOpcode`] for opcodes 0x3-0x7, 0xB-0xF
    /// - [`ProtocolError::FragmentedControlFrame`] for a control frame without FIN
    /// - [`ProtocolError::ControlFrameTooLong`] for a control payload over 125 bytes
    /// - [`ProtocolError::PayloadLengthOverflow`] for a 64-bit length with its top bit set
    ///
    /// RSV bits and the presence of a mask are reported, not judged: which ones are
    /// allowed depends on the role and the extensions, which the connection knows.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode)?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            // Decided by the 7-bit length alone, before any extended length arrives.
            if b1 & 0x7F > MAX_CONTROL_PAYLOAD as u8 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
        }
        let (payload_len, mut at) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(bytes) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(bytes);
                    let len = u64::from_be_bytes(be);
                    if len >> 63 != 0 {
                        return Err(ProtocolError::PayloadLengthOverflow);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            match buf.get(at..at + 4) {
                Some(&[a, b, c, d]) => {
                    at += 4;
                    Some([a, b, c, d])
                }
                _ => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some((
            Self {
                fin,
                rsv: (b0 >> 4) & 0b111,
                opcode,
                mask,
                payload_len,
            },
            at,
        )))
    }

    /// The number of bytes [`FrameHeader::write`] produces
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encode into a fixed buffer; returns it and the number of bytes used
    ///
    /// The length uses the shortest form (RFC 6455 §5.2). A `payload_len` of 2^63 or
    /// more is truncated to 63 bits; no payload that large can exist in memory.
    #[inline]
    pub fn encode(&self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut head = [0u8; MAX_HEADER_LEN];
        head[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = match self.payload_len {
            n @ 0..=125 => {
                head[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xFFFF => {
                head[1] = mask_bit | 126;
                head[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                head[1] = mask_bit | 127;
                head[2..10].copy_from_slice(&(n & (u64::MAX >> 1)).to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            head[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        (head, at)
    }

    /// Append the encoded header to `out`
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>) {
        if self.mask.is_none() && self.payload_len <= MAX_CONTROL_PAYLOAD as u64 {
            // Two bytes, written directly: small server frames are a per-frame hot path.
            let b0 = (u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | self.opcode.as_u8();
            out.extend_from_slice(&[b0, self.payload_len as u8]);
            return;
        }
        let (head, len) = self.encode();
        // A copy of fixed length compiles to a few moves; a variable one is a call.
        let end = out.len() + len;
        out.extend_from_slice(&head);
        out.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_parse() {
        // RFC 6455 §5.7: unmasked "Hello", masked "Hello", 256-byte and 64 KiB binary
        let cases: &[(&[u8], FrameHeader, usize)] = &[
            (
                &[0x81, 0x05],
                FrameHeader::new(true, OpCode::Text, None, 5),
                2,
            ),
            (
                &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d],
                FrameHeader::new(true, OpCode::Text, Some([0x37, 0xfa, 0x21, 0x3d]), 5),
                6,
            ),
            (
                &[0x01, 0x03],
                FrameHeader::new(false, OpCode::Text, None, 3),
                2,
            ),
            (
                &[0x80, 0x02],
                FrameHeader::new(true, OpCode::Continuation, None, 2),
                2,
            ),
            (
                &[0x82, 0x7E, 0x01, 0x00],
                FrameHeader::new(true, OpCode::Binary, None, 256),
                4,
            ),
            (
                &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0],
                FrameHeader::new(true, OpCode::Binary, None, 65536),
                10,
            ),
        ];
        for (wire, header, len) in cases {
            assert_eq!(FrameHeader::parse(wire), Ok(Some((*header, *len))));
            for cut in 0..wire.len() {
                assert_eq!(
                    FrameHeader::parse(&wire[..cut]),
                    Ok(None),
                    "{wire:?} cut {cut}"
                );
            }
            let (head, n) = header.encode();
            assert_eq!(&head[..n], *wire);
            assert_eq!(header.encoded_len(), n);
        }
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            FrameHeader::parse(&[0x83, 0x00]),
            Err(ProtocolError::ReservedOpcode)
        );
        assert_eq!(
            FrameHeader::parse(&[0x8B, 0x00]),
            Err(ProtocolError::ReservedOpcode)
        );
        assert_eq!(
            FrameHeader::parse(&[0x09, 0x00]),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::parse(&[0x89, 0x7E]),
            Err(ProtocolError::ControlFrameTooLong)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7F, 0x80]),
            Ok(None),
            "the length is judged once all 8 bytes are here"
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::PayloadLengthOverflow)
        );
        let (h, _) = FrameHeader::parse(&[0xF2, 0x00]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b111);
    }
}
