//! Messages after the `101`: bytes in, events out; messages in, bytes out (RFC 6455 §5-7)
//!
//! A [`ServerConnection`] is a state machine over the bytes the caller reads from the
//! socket. The caller drives it in a loop:
//!
//! 1. [`handle_input`](ServerConnection::handle_input) with the bytes read (any split);
//! 2. [`poll_event`](ServerConnection::poll_event) until it returns `Ok(None)`: text,
//!    binary, ping, pong and close events, each borrowing the connection's buffer;
//! 3. [`poll_transmit`](ServerConnection::poll_transmit) and write what it gives to the
//!    socket: pongs, the close echo, and whatever the caller sent;
//! 4. once [`is_closed`](ServerConnection::is_closed) and the output is written, close
//!    the socket.
//!
//! After any call that changes the connection, drain `poll_event` and then
//! `poll_transmit` before waiting on the socket again.
//!
//! ```
//! use wsgate::connection::{Event, ServerConnection};
//! use wsgate::frame::{apply_mask, FrameHeader, OpCode};
//! use wsgate::Config;
//!
//! let mut conn = ServerConnection::new("alice", &Config::default());
//! // A client's masked text frame "hi", as read from the socket
//! let mut wire = Vec::new();
//! FrameHeader::new(true, OpCode::Text, Some([7, 7, 7, 7]), 2).write(&mut wire);
//! wire.extend_from_slice(&[b'h' ^ 7, b'i' ^ 7]);
//!
//! conn.handle_input(&wire).unwrap();
//! let mut echo = String::new();
//! while let Some(event) = conn.poll_event().unwrap() {
//!     if let Event::Text(text) = event {
//!         echo.push_str(text);
//!     }
//! }
//! conn.send_text(&echo).unwrap();
//! let mut out = Vec::new();
//! conn.poll_transmit(&mut out);
//! assert_eq!(out, b"\x81\x02hi"); // server frames are not masked
//! assert_eq!(*conn.data(), "alice");
//! ```
//!
//! # Errors and closing
//!
//! When the peer breaks the protocol, the connection queues a close frame with the
//! matching code (1002, 1007, 1009; see [`ProtocolError::close_code`]), and
//! `poll_event` returns the [`ProtocolError`], then the same error on every later call.
//! Messages completed before the error are delivered first. A received close is
//! echoed; then [`is_closed`](ServerConnection::is_closed) is true.
//!
//! # First-message authentication
//!
//! Browsers that cannot send a credential in the handshake send it as the first
//! message. A connection made with
//! [`require_first_message_auth`](ServerConnection::require_first_message_auth)
//! delivers that message as [`Event::AuthMessage`] (at most
//! [`Config::max_auth_message_bytes`]) and nothing else until the caller calls
//! [`accept_auth`](ServerConnection::accept_auth); everything that arrives meanwhile
//! waits (up to the same cap; more closes with 1008), nothing is lost. Pings are
//! answered meanwhile but not handed out. [`reject_auth`](ServerConnection::reject_auth) and
//! [`handle_auth_timeout`](ServerConnection::handle_auth_timeout) (the caller's timer:
//! the crate reads no clock) close with 1008.

mod input;
mod utf8;

use crate::auth::Secret;
use crate::config::Config;
use crate::error::{Error, ProtocolError, UsageError};
use crate::frame::{
    CloseCode, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, apply_mask, mask_short,
    parse_close_payload,
};
use crate::handshake::Accepted;
use alloc::string::ToString;
use alloc::vec::Vec;
use input::InputBuf;
use utf8::Utf8Stream;

/// Text or binary
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1)
    Text,
    /// Binary (opcode 0x2)
    Binary,
}

impl MessageKind {
    fn opcode(self) -> OpCode {
        match self {
            Self::Text => OpCode::Text,
            Self::Binary => OpCode::Binary,
        }
    }
}

/// What the peer sent; borrows the connection until the next call that changes it
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole text message, UTF-8 checked
    Text(&'a str),
    /// A whole binary message
    Binary(&'a [u8]),
    /// A ping; already answered when [`Config::auto_pong`] is on (the default)
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
    /// In [streaming](Config::streaming) mode: a piece of a text message as it
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
    /// In [streaming](Config::streaming) mode: a piece of a binary message
    BinaryChunk {
        /// The bytes of this piece
        data: &'a [u8],
        /// The first piece of the message
        first: bool,
        /// The last piece of the message
        fin: bool,
    },
    /// With first-message authentication: the first message, to check, then answer
    /// with [`ServerConnection::accept_auth`] or [`ServerConnection::reject_auth`].
    /// `Debug` does not show it.
    AuthMessage {
        /// The message
        message: Secret<'a>,
        /// Whether it was a text message (then it is UTF-8)
        text: bool,
    },
}

/// An encoded frame header to write before a payload the caller writes itself (a
/// vectored write), from [`ServerConnection::frame_head`]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl FrameHead {
    /// The header bytes
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for FrameHead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("FrameHead").field(&self.as_bytes()).finish()
    }
}

/// The server side of an open WebSocket connection
///
/// Holds the caller's data `U` (what the handshake decision learned) for its whole
/// life. Holds no buffer while idle: input is buffered only until its events are
/// polled, output only until it is drained. See the [module docs](self).
pub struct ServerConnection<U> {
    data: U,
    recv: Recv,
    core: Core,
}

/// Received bytes and the message being assembled; events borrow from here
struct Recv {
    /// Received bytes; `buf[pos..]` is not yet consumed.
    buf: InputBuf,
    pos: usize,
    /// The payload of a message that arrived in pieces.
    msg: Vec<u8>,
    /// `msg` was handed out; empty it on the next call.
    msg_delivered: bool,
    message: Option<InMessage>,
    /// How far `handle_input` has followed the frames in `buf`.
    walk: Walk,
    /// A one-frame message waiting in `buf` for the rest of its payload: how many
    /// payload bytes were seen, and (for text) their UTF-8 state.
    waiting: Option<(usize, Utf8Stream)>,
    /// The capacity `buf` had when it was last released.
    last_capacity: usize,
    /// Bytes copied in, moved, parsed, unmasked or validated: a work measure.
    touched: u64,
}

/// The payloads of large data frames are unmasked as they are copied in, one pass over
/// the bytes instead of two; the key in the buffered header is then zeroed, so that
/// decoding finds a frame that means the same and needs no unmasking. Small frames are
/// buffered as they come and decoded lazily: following them would cost more than it
/// saves.
#[derive(Debug, Clone, Copy)]
enum Walk {
    /// Input is buffered as it comes.
    Off,
    /// `buf[at..]` holds the beginning of the next frame header, if anything.
    Header { at: usize },
    /// The next `remaining` input bytes are payload, `offset` bytes into the frame.
    Payload {
        key: [u8; 4],
        offset: usize,
        remaining: u64,
    },
}

/// The least room a large frame waiting in the input buffer reserves beyond itself
/// (four 64 KiB reads), so that the frames after it seldom need moving to the front;
/// also as much as a new burst is given at once of what the last one grew to.
const MIN_ROOM_AFTER_WAITING: usize = 256 << 10;

/// The input buffer's room for a frame of `total` bytes (header included) and what
/// follows it: the frame, and as much again or [`MIN_ROOM_AFTER_WAITING`]
fn room_for(total: usize) -> usize {
    total.saturating_add(total.max(MIN_ROOM_AFTER_WAITING))
}

/// A burst's first input reserves room for the large frame it starts up to this many
/// times its own length (see [`Recv::ingest`]): a 64 KiB read makes room for a 1 MiB
/// frame at once; a header alone gets no more than any burst, whatever it claims.
const BURST_RESERVE_FACTOR: usize = 32;

/// The smallest data frame payload worth unmasking on the way in.
const WALK_MIN_PAYLOAD: u64 = 512;

/// A message whose frames are arriving
struct InMessage {
    kind: MessageKind,
    /// Payload bytes so far, all frames.
    len: u64,
    utf8: Utf8Stream,
    /// The data frame whose payload is arriving, if its header has been read.
    frame: Option<InFrame>,
    /// No piece of the message handed out yet (streaming).
    first_piece: bool,
}

#[derive(Clone, Copy)]
struct InFrame {
    remaining: u64,
    mask: Option<[u8; 4]>,
    /// Payload bytes of this frame already consumed: the phase of the mask.
    offset: usize,
    fin: bool,
}

/// Everything but the received bytes: state, limits, output
struct Core {
    tx: Vec<u8>,
    phase: Phase,
    auth: Auth,
    /// The kind of the fragmented message being sent, if one is open.
    sending: Option<MessageKind>,
    limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// This side sent a close and waits for the peer's.
    CloseSent,
    /// Both closes were exchanged, or this side closed for a policy reason.
    Closed,
    Failed(ProtocolError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Done,
    /// The first message has not arrived.
    Awaiting,
    /// The first message was handed out; the caller has not decided.
    Deciding,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_frame: u64,
    max_message: u64,
    max_auth: u64,
    /// The largest payload [`ServerConnection::small_message`] may take: within both
    /// size limits.
    max_small: u64,
    auto_pong: bool,
    streaming: bool,
}

/// What decoding a data frame header leads to
enum Next {
    Event(Ready),
    /// The frame's payload is consumed as it arrives: go on decoding.
    Again,
    /// The frame stays in the buffer until all of it is here.
    Wait,
}

/// Where an event's bytes are
#[derive(Debug, Clone, Copy)]
enum Ready {
    /// A whole message in `buf[start..end]`, or in `msg` when `range` is `None`
    Message {
        kind: MessageKind,
        range: Option<(usize, usize)>,
        auth: bool,
    },
    Chunk {
        kind: MessageKind,
        start: usize,
        end: usize,
        first: bool,
        fin: bool,
    },
    Ping(usize, usize),
    Pong(usize, usize),
    Close {
        code: Option<CloseCode>,
        start: usize,
        end: usize,
    },
}

const AUTH_FAILED_REASON: &str = "authentication failed";

impl<U> ServerConnection<U> {
    /// A connection whose handshake is done, carrying the caller's `data`
    pub fn new(data: U, config: &Config) -> Self {
        Self {
            data,
            recv: Recv {
                buf: InputBuf::default(),
                pos: 0,
                msg: Vec::new(),
                msg_delivered: false,
                message: None,
                walk: Walk::Header { at: 0 },
                waiting: None,
                last_capacity: 0,
                touched: 0,
            },
            core: Core {
                tx: Vec::new(),
                phase: Phase::Open,
                auth: Auth::Done,
                sending: None,
                limits: Limits {
                    max_frame: config.max_frame_bytes() as u64,
                    max_message: config.max_message_bytes() as u64,
                    max_auth: config.max_auth_message_bytes() as u64,
                    max_small: config.max_frame_bytes().min(config.max_message_bytes()) as u64,
                    auto_pong: config.auto_pong(),
                    streaming: config.streaming(),
                },
            },
        }
    }

    /// The connection for an accepted handshake: its data, and the bytes that came
    /// after the request (taken over without a copy)
    pub fn from_accepted(accepted: Accepted<U>, config: &Config) -> Self {
        let (data, leftover) = accepted.into_parts();
        let mut conn = Self::new(data, config);
        conn.recv.ingest(&leftover);
        conn
    }

    /// Require first-message authentication: the first message is handed out as
    /// [`Event::AuthMessage`] and nothing else is delivered until
    /// [`accept_auth`](Self::accept_auth)
    ///
    /// Call before polling any event. The caller SHOULD also arm a timer and call
    /// [`handle_auth_timeout`](Self::handle_auth_timeout) when it fires.
    pub fn require_first_message_auth(mut self) -> Self {
        self.core.auth = Auth::Awaiting;
        self
    }

    /// The caller's data
    pub fn data(&self) -> &U {
        &self.data
    }

    /// The caller's data, mutably (for example to record who authenticated by the
    /// first message)
    pub fn data_mut(&mut self) -> &mut U {
        &mut self.data
    }

    /// The caller's data, ending the connection
    pub fn into_data(self) -> U {
        self.data
    }

    /// Feed bytes read from the socket, in any split
    ///
    /// Only buffers them; [`poll_event`](Self::poll_event) decodes. Bytes after the
    /// close handshake are ignored.
    ///
    /// # Errors
    /// The sticky [`ProtocolError`] once the connection failed, or
    /// [`ProtocolError::TooMuchBeforeAuth`] when more than
    /// [`Config::max_auth_message_bytes`] wait behind a first message the caller has
    /// not decided on (a caller that stops reading the socket while it decides leaves
    /// such bytes to TCP instead).
    pub fn handle_input(&mut self, input: &[u8]) -> Result<(), Error> {
        match self.core.phase {
            Phase::Failed(e) => return Err(e.into()),
            Phase::Closed => return Ok(()),
            Phase::Open | Phase::CloseSent => {}
        }
        let r = &mut self.recv;
        // Drop what was consumed, unless the input fits after it: then moving the
        // rest to the front can wait until the buffer is full, and is paid once per
        // buffer rather than once per input. (A large frame waiting for its end is
        // moved sooner, when it starts: see `start_data_frame`.)
        if r.pos > 0 && (r.pos == r.buf.len() || r.buf.capacity() - r.buf.len() < input.len()) {
            r.drop_consumed();
        }
        if r.buf.is_empty() {
            r.resume_walk();
        }
        r.ingest(input);
        if self.core.auth == Auth::Deciding
            && (r.buf.len() - r.pos) as u64 > self.core.limits.max_auth
        {
            self.drop_input();
            return Err(self.core.fail(ProtocolError::TooMuchBeforeAuth));
        }
        Ok(())
    }

    /// The next event, or `Ok(None)` when more input is needed (or the connection is
    /// closed, or a first message awaits the caller's verdict)
    ///
    /// The event borrows the connection: copy what must outlive the next call.
    ///
    /// # Errors
    /// The [`ProtocolError`] the peer committed; the close frame answering it is
    /// queued for [`poll_transmit`](Self::poll_transmit). Every later call returns the
    /// same error.
    #[inline(always)]
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>, Error> {
        if let Some((kind, start, end)) = self.small_message() {
            let Self { recv, core, .. } = self;
            let bytes = &recv.buf[start..end];
            return match kind {
                MessageKind::Binary => Ok(Some(Event::Binary(bytes))),
                MessageKind::Text => match simdutf8::basic::from_utf8(bytes) {
                    Ok(text) => Ok(Some(Event::Text(text))),
                    Err(_) => Err(core.fail(ProtocolError::InvalidUtf8)),
                },
            };
        }
        self.poll_event_general()
    }

    /// Every event but [`small_message`](Self::small_message)'s; kept out of line so
    /// that the fast path inlines into the caller's loop
    #[inline(never)]
    fn poll_event_general(&mut self) -> Result<Option<Event<'_>>, Error> {
        let ready = match self.advance() {
            Ok(Some(ready)) => ready,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.drop_input();
                return Err(self.core.fail(e));
            }
        };
        let Self { recv, core, .. } = self;
        let event = match ready {
            Ready::Message { kind, range, auth } => {
                let bytes = match range {
                    Some((start, end)) => &recv.buf[start..end],
                    None => &recv.msg[..],
                };
                recv.touched += bytes.len() as u64;
                match (auth, kind) {
                    (true, MessageKind::Binary) => Event::AuthMessage {
                        message: Secret::new(bytes),
                        text: false,
                    },
                    (false, MessageKind::Binary) => Event::Binary(bytes),
                    // One check, in cache right after unmasking; it also makes the
                    // `&str`.
                    (auth, MessageKind::Text) => match simdutf8::basic::from_utf8(bytes) {
                        Ok(_) if auth => Event::AuthMessage {
                            message: Secret::new(bytes),
                            text: true,
                        },
                        Ok(text) => Event::Text(text),
                        Err(_) => return Err(core.fail(ProtocolError::InvalidUtf8)),
                    },
                }
            }
            Ready::Chunk {
                kind,
                start,
                end,
                first,
                fin,
            } => {
                let data = &recv.buf[start..end];
                match kind {
                    MessageKind::Text => Event::TextChunk { data, first, fin },
                    MessageKind::Binary => Event::BinaryChunk { data, first, fin },
                }
            }
            Ready::Ping(start, end) => Event::Ping(&recv.buf[start..end]),
            Ready::Pong(start, end) => Event::Pong(&recv.buf[start..end]),
            Ready::Close { code, start, end } => {
                match core::str::from_utf8(&recv.buf[start..end]) {
                    Ok(reason) => Event::Close { code, reason },
                    Err(_) => return Err(core.fail(ProtocolError::InvalidUtf8)),
                }
            }
        };
        Ok(Some(event))
    }

    /// The common case, decoded with a few branches: a whole single-frame text or
    /// binary message with a 7- or 16-bit length, all here, with nothing else going on.
    /// Unmasks it in place and returns where it is; `None` leaves everything to
    /// [`advance`](Self::advance), which handles every case, this one included.
    #[inline(always)]
    fn small_message(&mut self) -> Option<(MessageKind, usize, usize)> {
        let r = &mut self.recv;
        let core = &self.core;
        if core.phase != Phase::Open
            || core.auth != Auth::Done
            || core.limits.streaming
            || r.message.is_some()
            || r.msg_delivered
            // A waiting frame completes through `advance`, which ends the wait.
            || r.waiting.is_some()
        {
            return None;
        }
        let rest = &mut r.buf[r.pos..];
        let [b0, b1, ..] = *rest else {
            return None;
        };
        let kind = match b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => return None,
        };
        // Masked, with a 7- or 16-bit length within the limits.
        let (len, header_len) = match b1 ^ 0x80 {
            n @ 0..=125 => (usize::from(n), 6),
            126 => match *rest {
                [_, _, l0, l1, ..] => (usize::from(u16::from_be_bytes([l0, l1])), 8),
                _ => return None,
            },
            _ => return None,
        };
        if len as u64 > core.limits.max_small {
            return None;
        }
        let frame = rest.get_mut(..header_len + len)?;
        let (head, payload) = frame.split_at_mut(header_len);
        let mut key = [0u8; 4];
        key.copy_from_slice(&head[header_len - 4..]);
        if len <= MAX_CONTROL_PAYLOAD {
            mask_short(payload, key);
        } else {
            apply_mask(payload, key, 0);
        }
        let start = r.pos + header_len;
        r.pos = start + len;
        // Header, unmasking, the UTF-8 check or handing out: as `advance` counts.
        r.touched += header_len as u64 + 2 * len as u64;
        Some((kind, start, start + len))
    }

    /// Decode up to the next event; the bytes stay in place for `poll_event` to lend
    fn advance(&mut self) -> Result<Option<Ready>, ProtocolError> {
        let result = match self.core.phase {
            Phase::Open | Phase::CloseSent => None,
            Phase::Failed(e) => Some(Err(e)),
            Phase::Closed => Some(Ok(None)),
        };
        if let Some(result) = result {
            // The last event, which borrowed the buffers, is over.
            self.drop_input();
            return result;
        }
        if self.recv.msg_delivered {
            self.recv.msg = Vec::new();
            self.recv.msg_delivered = false;
        }
        loop {
            if self.core.auth == Auth::Deciding {
                return Ok(None);
            }
            if let Some(ready) = self.next_piece()? {
                return Ok(Some(ready));
            }
            if self
                .recv
                .message
                .as_ref()
                .is_some_and(|m| m.frame.is_some())
            {
                // A data frame's payload is still arriving.
                self.release_input();
                return Ok(None);
            }
            let r = &mut self.recv;
            r.touched += (r.buf.len() - r.pos).min(MAX_HEADER_LEN) as u64;
            let Some((header, header_len)) = FrameHeader::parse(&r.buf[r.pos..])? else {
                self.release_input();
                return Ok(None);
            };
            if header.rsv != 0 {
                return Err(ProtocolError::ReservedBits);
            }
            let Some(key) = header.mask else {
                return Err(ProtocolError::UnmaskedFrame);
            };
            let available = (r.buf.len() - r.pos - header_len) as u64;
            if header.opcode.is_control() {
                // At most 125 bytes: wait until the whole frame is here.
                if available < header.payload_len {
                    return Ok(None);
                }
                let start = r.pos + header_len;
                let end = start + header.payload_len as usize;
                apply_mask(&mut r.buf[start..end], key, 0);
                r.pos = end;
                r.touched += header.payload_len;
                if let Some(ready) = self.control(header.opcode, start, end)? {
                    return Ok(Some(ready));
                }
                continue;
            }
            match self.start_data_frame(header, header_len, key, available)? {
                Next::Event(ready) => return Ok(Some(ready)),
                Next::Again => {}
                Next::Wait => return Ok(None),
            }
        }
    }

    /// Handle a whole control frame whose unmasked payload is `buf[start..end]`
    fn control(
        &mut self,
        opcode: OpCode,
        start: usize,
        end: usize,
    ) -> Result<Option<Ready>, ProtocolError> {
        let payload = &self.recv.buf[start..end];
        let deliver = self.core.auth == Auth::Done;
        match opcode {
            OpCode::Ping => {
                // Before authentication the ping is not handed out, so it is answered
                // here whatever `auto_pong` says (RFC 6455 §5.5.2: a ping MUST get a
                // pong).
                if (self.core.limits.auto_pong || !deliver) && self.core.phase == Phase::Open {
                    write_frame(&mut self.core.tx, OpCode::Pong, true, payload);
                }
                Ok(deliver.then_some(Ready::Ping(start, end)))
            }
            OpCode::Pong => Ok(deliver.then_some(Ready::Pong(start, end))),
            _ => {
                let code = parse_close_payload(payload)?.map(|(code, _)| code);
                if self.core.phase == Phase::Open {
                    // Echo the status code (RFC 6455 §5.5.1), not the reason.
                    match code {
                        Some(code) => self.core.write_close(code, ""),
                        None => write_frame(&mut self.core.tx, OpCode::Close, true, &[]),
                    }
                }
                self.core.phase = Phase::Closed;
                self.recv.message = None;
                let reason_start = if code.is_some() { start + 2 } else { start };
                Ok(Some(Ready::Close {
                    code,
                    start: reason_start,
                    end,
                }))
            }
        }
    }

    /// Check a text or binary frame header; a whole single-frame message that is
    /// already here is handed out in place, anything else starts arriving piecewise
    fn start_data_frame(
        &mut self,
        header: FrameHeader,
        header_len: usize,
        key: [u8; 4],
        available: u64,
    ) -> Result<Next, ProtocolError> {
        let limits = self.core.limits;
        let before_auth = self.core.auth != Auth::Done;
        let streaming = limits.streaming && !before_auth;
        let r = &mut self.recv;
        let (kind, so_far) = match (header.opcode, &r.message) {
            (OpCode::Continuation, Some(m)) => (m.kind, m.len),
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (OpCode::Text, None) => (MessageKind::Text, 0),
            (_, None) => (MessageKind::Binary, 0),
        };
        // Both terms are below 2^63: no overflow.
        let total = so_far + header.payload_len;
        if !streaming {
            if before_auth && total > limits.max_auth {
                return Err(ProtocolError::MessageTooLarge);
            }
            if header.payload_len > limits.max_frame {
                return Err(ProtocolError::FrameTooLarge);
            }
            if total > limits.max_message {
                return Err(ProtocolError::MessageTooLarge);
            }
        }
        if !streaming && r.message.is_none() && header.fin && available >= header.payload_len {
            // The common case: a whole message in one frame, all here. Unmask in place
            // and lend it; no copy.
            let start = r.pos + header_len;
            let end = start + header.payload_len as usize;
            apply_mask(&mut r.buf[start..end], key, 0);
            r.pos = end;
            r.touched += header.payload_len;
            r.waiting = None;
            if before_auth {
                self.core.auth = Auth::Deciding;
            }
            return Ok(Next::Event(Ready::Message {
                kind,
                range: Some((start, end)),
                auth: before_auth,
            }));
        }
        if !streaming
            && r.message.is_none()
            && header.fin
            && key == [0; 4]
            && header.payload_len >= WALK_MIN_PAYLOAD
        {
            // A one-frame message being unmasked as it arrives (see `Walk`): leave it
            // where it is until the rest is here, rather than copy it out piece by
            // piece. Text that has arrived is checked now, to fail fast.
            let start = r.pos + header_len;
            let available = available as usize;
            let (checked, utf8) = r.waiting.get_or_insert_with(Default::default);
            if kind == MessageKind::Text {
                let new = &r.buf[start + *checked..start + available];
                utf8.feed(new).map_err(|_| ProtocolError::InvalidUtf8)?;
                r.touched += new.len() as u64;
            }
            *checked = available;
            // At most `max_frame_bytes` and a header: saturating only matters where
            // usize is 32 bits.
            let total = header_len.saturating_add(header.payload_len as usize);
            if r.pos > 0 && r.pos.saturating_add(total) > r.buf.capacity() {
                // It will not fit where it starts: move it to the front now, while
                // usually only its first piece is here, rather than once the buffer is
                // full.
                r.drop_consumed();
            }
            if header.payload_len <= 2 * available as u64 && total > r.buf.capacity() {
                // Room for the frame now (see the reservation below), and as much again
                // (see MIN_ROOM_AFTER_WAITING). Counted from the front: the buffer
                // stays within a few frames, however long the stream. Only a head
                // start: if it cannot be had, the buffer grows as the bytes come.
                let _ = r.buf.try_reserve(room_for(total) - r.buf.len());
            }
            return Ok(Next::Wait);
        }
        r.pos += header_len;
        if !streaming && header.payload_len <= 2 * available {
            // Most of the frame is here: make room for all of it at once rather than
            // growing (and copying) the message buffer step by step. A header alone
            // never reserves more than twice what was sent.
            r.msg.reserve(header.payload_len as usize);
        }
        let frame = InFrame {
            remaining: header.payload_len,
            mask: header.mask,
            offset: 0,
            fin: header.fin,
        };
        match &mut r.message {
            Some(m) => m.frame = Some(frame),
            None => {
                r.message = Some(InMessage {
                    kind,
                    len: 0,
                    utf8: Utf8Stream::default(),
                    frame: Some(frame),
                    first_piece: true,
                });
            }
        }
        Ok(Next::Again)
    }

    /// Consume what has arrived of the current data frame's payload
    fn next_piece(&mut self) -> Result<Option<Ready>, ProtocolError> {
        let streaming = self.core.limits.streaming && self.core.auth == Auth::Done;
        let r = &mut self.recv;
        let Some(m) = &mut r.message else {
            return Ok(None);
        };
        let Some(frame) = &mut m.frame else {
            return Ok(None);
        };
        let take = frame.remaining.min((r.buf.len() - r.pos) as u64) as usize;
        let first = m.first_piece;
        let last_of_frame = take as u64 == frame.remaining;
        let fin = last_of_frame && frame.fin;
        if take == 0 && !last_of_frame {
            return Ok(None);
        }
        let (start, end) = (r.pos, r.pos + take);
        if let Some(key) = frame.mask {
            apply_mask(&mut r.buf[start..end], key, frame.offset);
        }
        frame.offset += take;
        frame.remaining -= take as u64;
        r.pos = end;
        // Unmasked, validated and (unless streaming) copied.
        r.touched += 3 * take as u64;
        m.len += take as u64;
        if last_of_frame {
            m.frame = None;
        }
        let kind = m.kind;
        if kind == MessageKind::Text {
            let piece = &r.buf[start..end];
            m.utf8.feed(piece).map_err(|_| ProtocolError::InvalidUtf8)?;
            if fin {
                m.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if fin {
            r.message = None;
        }
        if streaming {
            if let Some(m) = &mut r.message {
                m.first_piece = false;
            }
            if take > 0 || first || fin {
                return Ok(Some(Ready::Chunk {
                    kind,
                    start,
                    end,
                    first,
                    fin,
                }));
            }
            return Ok(None);
        }
        r.msg.extend_from_slice(&r.buf[start..end]);
        if !fin {
            return Ok(None);
        }
        r.msg_delivered = true;
        let auth = self.core.auth == Auth::Awaiting;
        if auth {
            self.core.auth = Auth::Deciding;
        }
        Ok(Some(Ready::Message {
            kind,
            range: None,
            auth,
        }))
    }

    /// After a close or an error nothing more is read: free the input left and a
    /// message cut off mid-way
    // Out of line: in the decode path's error arms it would cost every frame a few
    // instructions.
    #[cold]
    #[inline(never)]
    fn drop_input(&mut self) {
        let r = &mut self.recv;
        r.pos = r.buf.len();
        self.release_input();
        self.recv.msg = Vec::new();
    }

    /// Free the input buffer once everything in it is consumed: an idle connection
    /// holds no buffer
    fn release_input(&mut self) {
        let r = &mut self.recv;
        if r.pos == r.buf.len() {
            r.last_capacity = r.buf.capacity();
            r.buf = InputBuf::default();
            r.pos = 0;
            if let Walk::Header { at } = &mut r.walk {
                *at = 0;
            }
        }
    }

    /// Move the queued output to `out`
    ///
    /// When `out` is empty the two buffers trade places: `out` gets the queued bytes
    /// without a copy, and the connection keeps `out`'s allocation for the next sends.
    /// A caller that clears and reuses one buffer thus allocates nothing in steady
    /// state; one that passes a fresh `Vec` leaves the connection holding nothing.
    /// When `out` is not empty the bytes are appended.
    ///
    /// Call after every `handle_input`/`poll_event` round and every send, and write
    /// `out` to the socket.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            core::mem::swap(out, &mut self.core.tx);
            self.core.tx.clear();
        } else {
            out.extend_from_slice(&self.core.tx);
            self.core.tx = Vec::new();
        }
    }

    /// Bytes waiting for [`poll_transmit`](Self::poll_transmit)
    ///
    /// Input can queue output (every ping gets its pong), so a peer that sends without
    /// reading makes output pile up, here or in the caller's own buffer. A caller
    /// SHOULD stop reading the socket while much output is still unwritten.
    pub fn pending_transmit(&self) -> usize {
        self.core.tx.len()
    }

    /// Queue a whole text message
    ///
    /// # Errors
    /// [`UsageError::SendAfterClose`] after this side closed or the connection ended;
    /// [`UsageError::MessageInProgress`] while a fragmented message is being sent.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_message(MessageKind::Text, text.as_bytes())
    }

    /// Queue a whole binary message
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_binary(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_message(MessageKind::Binary, payload)
    }

    fn send_message(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), Error> {
        self.core.check_send()?;
        if self.core.sending.is_some() {
            return Err(UsageError::MessageInProgress.into());
        }
        write_frame(&mut self.core.tx, kind.opcode(), true, payload);
        Ok(())
    }

    /// Queue one fragment of a message; `fin` ends the message
    ///
    /// The first fragment opens a message of `kind`; later ones must name the same
    /// kind. Pings, pongs and close may go out between fragments. For text, the whole
    /// message (not each fragment) must be UTF-8.
    ///
    /// # Errors
    /// [`UsageError::SendAfterClose`]; [`UsageError::MessageInProgress`] when a message
    /// of the other kind is open.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        let opcode = self.core.open_fragment(kind, fin)?;
        write_frame(&mut self.core.tx, opcode, fin, payload);
        Ok(())
    }

    /// The header of a frame whose `payload_len` bytes the caller writes itself right
    /// after it, for a vectored write without copying a large payload
    ///
    /// Nothing is queued: write `head.as_bytes()` then the payload. Fragments follow
    /// the rules of [`send_fragment`](Self::send_fragment).
    ///
    /// # Errors
    /// [`UsageError::TransmitPending`] unless the queued output was drained first (it
    /// must go out before this frame); otherwise as `send_fragment`.
    pub fn frame_head(
        &mut self,
        kind: MessageKind,
        payload_len: usize,
        fin: bool,
    ) -> Result<FrameHead, Error> {
        self.core.check_send()?;
        if !self.core.tx.is_empty() {
            return Err(UsageError::TransmitPending.into());
        }
        let opcode = self.core.open_fragment(kind, fin)?;
        let (bytes, len) = FrameHeader::new(fin, opcode, None, payload_len as u64).encode();
        Ok(FrameHead {
            bytes,
            len: len as u8,
        })
    }

    /// Queue a ping (at most 125 bytes of payload)
    ///
    /// # Errors
    /// [`UsageError::ControlPayloadTooLong`], [`UsageError::SendAfterClose`].
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Queue a pong (at most 125 bytes), for example when [`Config::auto_pong`] is off
    ///
    /// # Errors
    /// As [`send_ping`](Self::send_ping).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_control(OpCode::Pong, payload)
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        self.core.check_send()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::ControlPayloadTooLong.into());
        }
        write_frame(&mut self.core.tx, opcode, true, payload);
        Ok(())
    }

    /// Start the closing handshake: queue a close frame; events keep arriving until the
    /// peer's close ([`Event::Close`]), then [`is_closed`](Self::is_closed)
    ///
    /// The caller SHOULD arm a timer and close the socket if the peer does not answer.
    ///
    /// # Errors
    /// [`UsageError::InvalidCloseCode`] for a code that may not be sent (see
    /// [`CloseCode::is_valid_on_wire`]; and 1010, which only a client sends, RFC 6455
    /// §7.4.1), [`UsageError::ControlPayloadTooLong`] for a reason over 123 bytes,
    /// [`UsageError::SendAfterClose`].
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.core.check_send()?;
        if !code.is_valid_on_wire() || code == CloseCode::MANDATORY_EXTENSION {
            return Err(UsageError::InvalidCloseCode(code.0).into());
        }
        if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
            return Err(UsageError::ControlPayloadTooLong.into());
        }
        self.core.write_close(code, reason);
        self.core.phase = Phase::CloseSent;
        Ok(())
    }

    /// The first message checked out: deliver everything that follows
    ///
    /// # Errors
    /// [`UsageError::NotAwaitingAuth`] unless an [`Event::AuthMessage`] awaits a verdict.
    pub fn accept_auth(&mut self) -> Result<(), Error> {
        if self.core.auth != Auth::Deciding {
            return Err(UsageError::NotAwaitingAuth.into());
        }
        self.core.auth = Auth::Done;
        Ok(())
    }

    /// The first message did not check out (or the caller refuses before it came):
    /// close with 1008; nothing more is delivered
    ///
    /// # Errors
    /// [`UsageError::NotAwaitingAuth`] when the connection is already authenticated.
    pub fn reject_auth(&mut self) -> Result<(), Error> {
        if self.core.auth == Auth::Done {
            return Err(UsageError::NotAwaitingAuth.into());
        }
        self.core.close_for_policy();
        Ok(())
    }

    /// The caller's first-message deadline passed: close with 1008 unless the
    /// connection authenticated meanwhile (then this does nothing)
    pub fn handle_auth_timeout(&mut self) {
        if self.core.auth != Auth::Done {
            self.core.close_for_policy();
        }
    }

    /// Whether the connection is authenticated (always, unless first-message
    /// authentication is pending)
    pub fn is_authenticated(&self) -> bool {
        self.core.auth == Auth::Done
    }

    /// The close handshake is complete, or the connection failed or was closed for
    /// policy: write the remaining output, then close the socket
    pub fn is_closed(&self) -> bool {
        matches!(self.core.phase, Phase::Closed | Phase::Failed(_))
    }

    /// The protocol error that failed the connection, if any
    pub fn error(&self) -> Option<ProtocolError> {
        match self.core.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Bytes copied in, moved, parsed, unmasked or validated so far, each time counted
    ///
    /// A measure of work for tests that bound it (linear in the input, whatever its
    /// split); not a stable API.
    #[doc(hidden)]
    pub fn bytes_touched(&self) -> u64 {
        self.recv.touched
    }

    /// Bytes of memory this connection holds: the struct and its buffers' capacity
    ///
    /// Idle, that is the struct alone (a few hundred bytes). While input streams in,
    /// the input buffer holds what has not been polled yet, or a large frame still
    /// arriving, with room for about as much again: a few frames and a read at most,
    /// however long the stream. A message in several frames is assembled in a buffer
    /// of its own, up to [`Config::max_message_bytes`]; output waits until drained.
    /// Once the connection is closed or failed, input buffers are freed at the next
    /// [`poll_event`](Self::poll_event) (at once for an error).
    pub fn memory_usage(&self) -> usize {
        core::mem::size_of::<Self>()
            + self.recv.buf.capacity()
            + self.recv.msg.capacity()
            + self.core.tx.capacity()
    }
}

impl Core {
    fn check_send(&self) -> Result<(), Error> {
        match self.phase {
            Phase::Open => Ok(()),
            _ => Err(UsageError::SendAfterClose.into()),
        }
    }

    /// The opcode for the next fragment of `kind`, updating the open message
    fn open_fragment(&mut self, kind: MessageKind, fin: bool) -> Result<OpCode, Error> {
        self.check_send()?;
        let opcode = match self.sending {
            None => kind.opcode(),
            Some(open) if open == kind => OpCode::Continuation,
            Some(_) => return Err(UsageError::MessageInProgress.into()),
        };
        self.sending = if fin { None } else { Some(kind) };
        Ok(opcode)
    }

    fn write_close(&mut self, code: CloseCode, reason: &str) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        payload[..2].copy_from_slice(&code.0.to_be_bytes());
        payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
        write_frame(
            &mut self.tx,
            OpCode::Close,
            true,
            &payload[..2 + reason.len()],
        );
    }

    /// Fail the connection: queue the close frame answering `e` (unless a close went
    /// out already) and make `e` sticky
    fn fail(&mut self, e: ProtocolError) -> Error {
        if let Phase::Failed(first) = self.phase {
            return first.into();
        }
        if self.phase == Phase::Open {
            let reason = e.to_string();
            let reason = if reason.len() <= MAX_CONTROL_PAYLOAD - 2 {
                reason.as_str()
            } else {
                ""
            };
            self.write_close(e.close_code(), reason);
        }
        self.phase = Phase::Failed(e);
        e.into()
    }

    fn close_for_policy(&mut self) {
        if self.phase == Phase::Open {
            self.write_close(CloseCode::POLICY_VIOLATION, AUTH_FAILED_REASON);
        }
        if !matches!(self.phase, Phase::Failed(_)) {
            self.phase = Phase::Closed;
        }
    }
}

/// Append an unmasked frame (the server role)
#[inline]
fn write_frame(tx: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8]) {
    let header = FrameHeader::new(fin, opcode, None, payload.len() as u64);
    if payload.len() > MAX_CONTROL_PAYLOAD {
        tx.reserve(header.encoded_len() + payload.len());
    }
    header.write(tx);
    tx.extend_from_slice(payload);
}

impl Recv {
    /// All input is consumed: the next input byte starts a frame header or continues
    /// the payload of the frame being received, so the walk can follow again
    fn resume_walk(&mut self) {
        if !matches!(self.walk, Walk::Off) {
            return;
        }
        self.walk = match self.message.as_mut().and_then(|m| m.frame.as_mut()) {
            None => Walk::Header { at: 0 },
            Some(frame) => match frame.mask.take() {
                // The rest of this frame arrives unmasked by the walk.
                Some(key) => Walk::Payload {
                    key,
                    offset: frame.offset,
                    remaining: frame.remaining,
                },
                None => return,
            },
        };
    }

    /// Move the unconsumed bytes to the front of `buf`; the walk's place moves with
    /// them
    fn drop_consumed(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
        } else {
            self.touched += (self.buf.len() - self.pos) as u64;
            self.buf.drop_front(self.pos);
        }
        if let Walk::Header { at } = &mut self.walk {
            *at -= self.pos;
        }
        self.pos = 0;
    }

    /// Append input to `buf`, unmasking the payloads of large data frames on the way
    fn ingest(&mut self, mut input: &[u8]) {
        self.touched += input.len() as u64;
        if self.buf.capacity() == 0 {
            // What the last burst grew to, at once: growing again step by step costs
            // copies on every burst. Up to MIN_ROOM_AFTER_WAITING for any burst, and
            // more only as far as the first frame has a use for it: a burst of small
            // messages after a large one should not hold a large buffer. Whatever
            // length the header claims, no more is reserved than the buffer reached
            // before, nor than BURST_RESERVE_FACTOR times the input.
            let first = match self.walk {
                Walk::Header { .. } => match FrameHeader::parse(input) {
                    Ok(Some((header, len))) => usize::try_from(header.payload_len)
                        .map_or(usize::MAX, |payload| payload.saturating_add(len)),
                    _ => 0,
                },
                _ => 0,
            };
            let any_burst = self.last_capacity.min(room_for(0));
            let this_frame = self
                .last_capacity
                .min(room_for(first))
                .min(input.len().saturating_mul(BURST_RESERVE_FACTOR));
            let remembered = any_burst.max(this_frame);
            self.buf.reserve(input.len().max(remembered));
        }
        self.buf.reserve(input.len());
        while !input.is_empty() {
            match self.walk {
                Walk::Off => break,
                Walk::Payload {
                    key,
                    offset,
                    remaining,
                } => {
                    let n = remaining.min(input.len() as u64) as usize;
                    self.buf.extend_unmasked(&input[..n], key, offset);
                    self.touched += n as u64;
                    input = &input[n..];
                    self.walk = if n as u64 == remaining {
                        Walk::Header { at: self.buf.len() }
                    } else {
                        Walk::Payload {
                            key,
                            offset: offset + n,
                            remaining: remaining - n as u64,
                        }
                    };
                }
                Walk::Header { at } => {
                    // The header may have begun in an earlier input.
                    let have = self.buf.len() - at;
                    let parsed = if have == 0 {
                        FrameHeader::parse(input)
                    } else {
                        let take = (MAX_HEADER_LEN - have).min(input.len());
                        let mut head = [0u8; MAX_HEADER_LEN];
                        head[..have].copy_from_slice(&self.buf[at..]);
                        head[have..have + take].copy_from_slice(&input[..take]);
                        FrameHeader::parse(&head[..have + take])
                    };
                    match parsed {
                        Ok(Some((header, len))) => match header.mask {
                            Some(key)
                                if header.rsv == 0
                                    && !header.opcode.is_control()
                                    && header.payload_len >= WALK_MIN_PAYLOAD =>
                            {
                                self.buf.extend_from_slice(&input[..len - have]);
                                let end = self.buf.len();
                                self.buf[end - 4..end].fill(0);
                                input = &input[len - have..];
                                self.walk = Walk::Payload {
                                    key,
                                    offset: 0,
                                    remaining: header.payload_len,
                                };
                            }
                            // Small, control or invalid: decoding deals with it.
                            _ => self.walk = Walk::Off,
                        },
                        // Still incomplete: it all goes to `buf`.
                        Ok(None) => break,
                        Err(_) => self.walk = Walk::Off,
                    }
                }
            }
        }
        self.buf.extend_from_slice(input);
    }
}

impl<U> core::fmt::Debug for ServerConnection<U> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConnection")
            .field("phase", &self.core.phase)
            .field("auth", &self.core.auth)
            .field("buffered_input", &(self.recv.buf.len() - self.recv.pos))
            .field("buffered_message", &self.recv.msg.len())
            .field("pending_transmit", &self.core.tx.len())
            .finish_non_exhaustive()
    }
}
