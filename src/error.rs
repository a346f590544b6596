//! Every public error type, split by who is at fault
//!
//! - [`ProtocolError`]: the peer broke HTTP or RFC 6455. It knows the HTTP status that
//!   answers it ([`ProtocolError::status_hint`]).
//! - [`UsageError`]: the caller misused the API, for example accepting with a subprotocol
//!   the client never offered.
//! - [`ConfigError`]: returned only when building a [`Config`](crate::Config).
//!
//! No error message ever contains bytes from the request: a credential cannot leak
//! through `Display` or `Debug` of an error.

use crate::frame::CloseCode;

/// Any error the state machines return
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The peer broke the protocol
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The caller misused the API
    #[error(transparent)]
    Usage(#[from] UsageError),
}

/// The peer broke HTTP/1.1 or RFC 6455
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The request line is not `METHOD SP request-target SP HTTP/1.x`
    #[error("malformed request line")]
    MalformedRequestLine,
    /// A header line is not `name: value` with a token name and a clean value
    #[error("malformed header line")]
    MalformedHeader,
    /// A line ends in a bare LF or a stray CR
    #[error("line not terminated by CRLF")]
    MalformedLineEnding,
    /// The request line is longer than [`Config::max_line_bytes`](crate::Config::max_line_bytes)
    #[error("request line too long")]
    RequestLineTooLong,
    /// A header line is longer than [`Config::max_line_bytes`](crate::Config::max_line_bytes)
    #[error("header line too long")]
    HeaderLineTooLong,
    /// More header lines than [`Config::max_headers`](crate::Config::max_headers)
    #[error("too many header fields")]
    TooManyHeaders,
    /// The request head is longer than [`Config::max_request_bytes`](crate::Config::max_request_bytes)
    #[error("request head too large")]
    RequestTooLarge,
    /// An HTTP/1.1 request without a `Host` header (RFC 9112 §3.2)
    #[error("missing Host header")]
    MissingHost,
    /// More than one `Host` header (RFC 9112 §3.2)
    #[error("more than one Host header")]
    DuplicateHost,
    /// A WebSocket upgrade with a method other than `GET` (RFC 6455 §4.1)
    #[error("websocket upgrade requires the GET method")]
    MethodNotAllowed,
    /// A WebSocket upgrade over HTTP/1.0 (RFC 6455 §4.1 requires HTTP/1.1 or later)
    #[error("websocket upgrade requires HTTP/1.1")]
    UnsupportedHttpVersion,
    /// A WebSocket upgrade whose target is neither a path (`/chat`) nor an absolute
    /// URI (`http://host/chat`)
    #[error("websocket upgrade target is not a path")]
    InvalidTarget,
    /// A WebSocket upgrade whose `Connection` header lacks the `Upgrade` option
    #[error("Connection header does not contain Upgrade")]
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Key`, or more than one
    #[error("missing or repeated Sec-WebSocket-Key")]
    MissingKey,
    /// `Sec-WebSocket-Key` is not the base64 encoding of 16 bytes (RFC 6455 §4.1)
    #[error("Sec-WebSocket-Key is not base64 of 16 bytes")]
    InvalidKey,
    /// `Sec-WebSocket-Version` is missing or not 13 (RFC 6455 §4.4)
    #[error("unsupported Sec-WebSocket-Version (only 13 is supported)")]
    UnsupportedVersion,
    /// The request head did not arrive before
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout)
    #[error("request not complete in time")]
    HandshakeTimeout,
    /// A WebSocket upgrade that announces a request body (`Content-Length` or
    /// `Transfer-Encoding`); the bytes after the head must be frames
    #[error("websocket upgrade must not carry a request body")]
    UnexpectedBody,

    // Frames and messages (RFC 6455 §5); `close_code` gives the answer.
    /// A frame with opcode 0x3-0x7 or 0xB-0xF
    #[error("reserved opcode")]
    ReservedOpcode,
    /// RSV1, RSV2 or RSV3 set without an extension that defines it
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// A client frame without a mask (RFC 6455 §5.1)
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server frame with a mask (RFC 6455 §5.1)
    #[error("server frame is masked")]
    MaskedFrame,
    /// A close, ping or pong frame without FIN
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A close, ping or pong payload over 125 bytes
    #[error("control frame payload over 125 bytes")]
    ControlFrameTooLong,
    /// A 64-bit payload length with its most significant bit set
    #[error("payload length has its most significant bit set")]
    PayloadLengthOverflow,
    /// A continuation frame with no fragmented message in progress
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished
    #[error("new message before the fragmented one finished")]
    ExpectedContinuation,
    /// A close payload of one byte
    #[error("close payload of one byte")]
    InvalidClosePayload,
    /// A close code that may not appear on the wire (RFC 6455 §7.4)
    #[error("close code not allowed on the wire")]
    InvalidCloseCode,
    /// A text message or close reason that is not UTF-8
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A frame longer than [`Config::max_frame_bytes`](crate::Config::max_frame_bytes)
    #[error("frame over the size limit")]
    FrameTooLarge,
    /// A message longer than [`Config::max_message_bytes`](crate::Config::max_message_bytes),
    /// or a first message longer than
    /// [`Config::max_auth_message_bytes`](crate::Config::max_auth_message_bytes)
    #[error("message over the size limit")]
    MessageTooLarge,
    /// More than
    /// [`Config::max_auth_message_bytes`](crate::Config::max_auth_message_bytes)
    /// arrived while the caller was still checking the first message
    #[error("too much input before authentication finished")]
    TooMuchBeforeAuth,
    /// Keepalive: nothing answered a ping within
    /// [`Keepalive::timeout`](crate::Keepalive::timeout)
    #[error("keepalive ping timeout")]
    KeepaliveTimeout,
}

impl ProtocolError {
    /// The HTTP status that answers this error
    ///
    /// 400 for malformed requests, 405 for a non-GET upgrade, 408 for a request too
    /// slow to arrive, 414 for an over-long
    /// request line, 426 for an unsupported WebSocket version, 431 for oversized headers.
    pub fn status_hint(&self) -> u16 {
        use ProtocolError::*;
        match self {
            MethodNotAllowed => 405,
            HandshakeTimeout => 408,
            RequestLineTooLong => 414,
            UnsupportedVersion => 426,
            HeaderLineTooLong | TooManyHeaders | RequestTooLarge => 431,
            // Malformed requests; frame-level errors happen after the handshake, where
            // no status answers them, but a 400 is right if one ever must.
            _ => 400,
        }
    }

    /// The close code that answers this error (RFC 6455 §7.4.1)
    ///
    /// 1002 for protocol violations, 1007 for invalid UTF-8, 1009 for frames or
    /// messages over a limit, 1008 for too much input before authentication, 1011 for a
    /// keepalive timeout (as Python `websockets`). Handshake
    /// errors never reach a connection; they map to 1002.
    pub fn close_code(&self) -> CloseCode {
        use ProtocolError::*;
        match self {
            InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            FrameTooLarge | MessageTooLarge => CloseCode::MESSAGE_TOO_BIG,
            TooMuchBeforeAuth => CloseCode::POLICY_VIOLATION,
            KeepaliveTimeout => CloseCode::INTERNAL_ERROR,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// The caller misused the API
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The decision accepted with a subprotocol that the client did not offer
    #[error("accepted subprotocol was not offered by the client")]
    SubprotocolNotOffered,
    /// A response header name is not an HTTP token
    #[error("response header name is not an HTTP token")]
    InvalidHeaderName,
    /// A response header value (or challenge realm) holds CR, LF or another control byte
    #[error("response header value contains a control character")]
    InvalidHeaderValue,
    /// The decision set a header that the handshake writes itself
    #[error("response header is managed by the handshake: {0}")]
    ReservedHeader(&'static str),
    /// A rejection status outside 200..=599
    #[error("response status must be in 200..=599, got {0}")]
    InvalidStatus(u16),
    /// Input after the handshake already produced its response
    #[error("the handshake is already finished")]
    HandshakeFinished,
    /// A send after this side sent a close frame or the connection failed
    #[error("the connection is closing or closed; nothing more can be sent")]
    SendAfterClose,
    /// A ping, pong or close payload over 125 bytes (close: code plus reason)
    #[error("control frame payload over 125 bytes")]
    ControlPayloadTooLong,
    /// A close code that may not be sent (1005, 1006, 1015, reserved or unassigned; 1010
    /// by a server)
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A whole message or a fragment of the other kind while a fragmented message is
    /// being sent
    #[error("a fragmented message is being sent; finish it first")]
    MessageInProgress,
    /// A frame head for a vectored write from a client, whose payloads must be masked
    #[error("a client masks its payloads; send them through the queue")]
    MaskRequired,
    /// A frame head for a vectored write while earlier output is still queued
    #[error("drain poll_transmit before writing a frame head")]
    TransmitPending,
    /// A verdict on the first message when none is waiting for one
    #[error("no first message is waiting for a verdict")]
    NotAwaitingAuth,
}

/// A configuration value is out of range
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A limit is zero or above its ceiling
    #[error("{name} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The setting
        name: &'static str,
        /// The smallest value allowed
        min: usize,
        /// The largest value allowed
        max: usize,
        /// The value given
        value: usize,
    },
    /// A timeout or interval of zero: a timer due at once, again and again
    #[error("{name} must be longer than zero")]
    ZeroDuration {
        /// The setting
        name: &'static str,
    },
}
