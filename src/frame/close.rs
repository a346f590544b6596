//! Close frames (RFC 6455 §5.5.1, §7.4): status codes and the payload

use crate::error::ProtocolError;

/// A close status code (RFC 6455 §7.4)
///
/// Any `u16` can be held; [`CloseCode::is_valid_on_wire`] says whether a peer may send
/// it. `Display` shows the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigated away)
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a kind of data the endpoint cannot accept
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present; never sent on the wire
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection dropped without a close frame; never sent on the wire
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a text message or close reason was not valid UTF-8
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: the message violates the endpoint's policy (failed authentication)
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a frame or message is over the endpoint's limit
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: (client) the server did not negotiate a required extension
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server hit an unexpected condition
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway got a bad response upstream
    pub const BAD_GATEWAY: Self = Self(1014);

    /// Whether a peer may put this code in a close frame
    ///
    /// Valid: 1000-1003, 1007-1014 (IANA registry), 3000-4999 (registered and
    /// private). Invalid: 0-999, 1004 (reserved), 1005, 1006 and 1015 (never on the
    /// wire), unassigned 1016-2999, and 5000 and above.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl core::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

/// Parse and check a close frame's payload
///
/// Empty is allowed (no status, `Ok(None)`); otherwise two bytes of code valid on the
/// wire followed by a UTF-8 reason.
///
/// # Errors
/// [`ProtocolError::InvalidClosePayload`] for a 1-byte payload,
/// [`ProtocolError::InvalidCloseCode`] for a code not valid on the wire,
/// [`ProtocolError::InvalidUtf8`] for a reason that is not UTF-8.
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<(CloseCode, &str)>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode);
            }
            let reason = core::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some((code, reason)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_follows_section_7_4() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1011, 1012, 1014, 3000, 4999,
        ];
        let invalid = [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for code in valid {
            assert!(CloseCode(code).is_valid_on_wire(), "{code}");
        }
        for code in invalid {
            assert!(!CloseCode(code).is_valid_on_wire(), "{code}");
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(parse_close_payload(b""), Ok(None));
        assert_eq!(
            parse_close_payload(&[0x03]),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8, b'b', b'y', b'e']),
            Ok(Some((CloseCode::NORMAL, "bye")))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xED]),
            Err(ProtocolError::InvalidCloseCode)
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8, 0xFF]),
            Err(ProtocolError::InvalidUtf8)
        );
    }
}
