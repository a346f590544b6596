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
    /// A WebSocket upgrade that announces a request body (`Content-Length` or
    /// `Transfer-Encoding`); the bytes after the head must be frames
    #[error("websocket upgrade must not carry a request body")]
    UnexpectedBody,
}

impl ProtocolError {
    /// The HTTP status that answers this error
    ///
    /// 400 for malformed requests, 405 for a non-GET upgrade, 414 for an over-long
    /// request line, 426 for an unsupported WebSocket version, 431 for oversized headers.
    pub fn status_hint(&self) -> u16 {
        use ProtocolError::*;
        match self {
            MethodNotAllowed => 405,
            RequestLineTooLong => 414,
            UnsupportedVersion => 426,
            HeaderLineTooLong | TooManyHeaders | RequestTooLarge => 431,
            MalformedRequestLine
            | MalformedHeader
            | MalformedLineEnding
            | MissingHost
            | DuplicateHost
            | UnsupportedHttpVersion
            | InvalidTarget
            | MissingConnectionUpgrade
            | MissingKey
            | InvalidKey
            | UnexpectedBody => 400,
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
}
