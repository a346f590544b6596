//! Messages after the `101`: bytes in, events out; messages in, bytes out (RFC 6455 §5-7)
//!
//! A [`ServerConnection`] is a state machine over the bytes the caller reads from the
//! socket. It has two sides: a [`Receiver`] that turns bytes into [`Event`]s, and a
//! [`Sender`] that queues what this side says. [`split`](ServerConnection::split)
//! lends both at once, so a received message can be answered or forwarded while it is
//! still lent, without a copy. The caller drives it in a loop:
//!
//! 1. input: [`handle_input`](ServerConnection::handle_input) with bytes the caller
//!    holds, or a socket read straight into
//!    [`input_buffer`](ServerConnection::input_buffer) followed by
//!    [`handle_read`](ServerConnection::handle_read);
//! 2. [`Receiver::poll_event`] until it returns `Ok(None)`: text, binary, ping, pong
//!    and close events, each borrowing the receiver only;
//! 3. output: [`poll_transmit`](Sender::poll_transmit) into the caller's buffer, or
//!    straight from the queue with [`transmit_chunks`](Sender::transmit_chunks) and
//!    [`consume_transmit`](Sender::consume_transmit): pongs, the close echo, and
//!    whatever the caller sent;
//! 4. time: arm a timer for [`poll_timeout`](ServerConnection::poll_timeout) and call
//!    [`handle_timeout`](ServerConnection::handle_timeout) when it fires;
//! 5. once [`is_closed`](ServerConnection::is_closed) and the output is written, close
//!    the socket.
//!
//! After any call that changes the connection, drain `poll_event`, then the output,
//! and ask `poll_timeout` again before waiting.
//!
//! ```
//! use wsgate::connection::{Event, ServerConnection};
//! use wsgate::frame::{apply_mask, FrameHeader, OpCode};
//! use wsgate::{Config, Instant};
//!
//! let mut conn = ServerConnection::new("alice", &Config::default(), Instant::ZERO);
//! // A client's masked text frame "hi", as read from the socket
//! let mut wire = Vec::new();
//! FrameHeader::new(true, OpCode::Text, Some([7, 7, 7, 7]), 2).write(&mut wire);
//! wire.extend_from_slice(&[b'h' ^ 7, b'i' ^ 7]);
//!
//! conn.handle_input(&wire);
//! let (rx, tx, user) = conn.split();
//! while let Some(event) = rx.poll_event(tx).unwrap() {
//!     if let Event::Text(text) = event {
//!         assert_eq!(*user, "alice");
//!         tx.send_text(&text).unwrap(); // answered while it is lent
//!     }
//! }
//! let mut out = Vec::new();
//! conn.poll_transmit(&mut out);
//! assert_eq!(out, b"\x81\x02hi"); // server frames are not masked
//! ```
//!
//! # Errors and closing
//!
//! When the peer breaks the protocol, the connection queues a close frame with the
//! matching code (1002, 1007, 1009; see [`ProtocolError::close_code`]), and
//! `poll_event` returns the [`ProtocolError`], then the same error on every later call:
//! it is the one place errors come out. Messages completed before the error are
//! delivered first. A received close is echoed; then
//! [`is_closed`](ServerConnection::is_closed) is true.
//!
//! # First-message authentication
//!
//! Browsers that cannot send a credential in the handshake send it as the first
//! message. A handshake accepted with
//! [`Accept::first_message_auth`](crate::Accept::first_message_auth) makes a
//! connection that delivers that message as [`Event::AuthMessage`] (at most
//! [`Config::max_auth_message_bytes`]) and nothing else until the caller calls
//! [`Sender::accept_auth`]; everything that arrives meanwhile waits (up to the same
//! cap; more closes with 1008), nothing is lost. Pings are answered meanwhile but not
//! handed out. [`Sender::reject_auth`], and the deadline
//! ([`Config::first_message_timeout`]), close with 1008.

mod event;
mod input;
mod recv;
mod send;
mod timer;
mod utf8;

pub use event::{Event, Payload, Text};
pub use recv::Receiver;
pub use send::{AsText, FrameHead, MaskSource, Sender, TransmitChunks};

use crate::config::Config;
use crate::error::ProtocolError;
use crate::handshake::Accepted;
use crate::time::Instant;
use send::{Auth, Phase, Role};
use timer::{Due, Timers};

/// Text or binary
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1)
    Text,
    /// Binary (opcode 0x2)
    Binary,
}

impl MessageKind {
    fn opcode(self) -> crate::frame::OpCode {
        match self {
            Self::Text => crate::frame::OpCode::Text,
            Self::Binary => crate::frame::OpCode::Binary,
        }
    }
}

/// The server side of an open WebSocket connection
///
/// Holds the caller's data `U` (what the handshake decision learned) for its whole
/// life. Holds no buffer while idle: input is buffered only until its events are
/// polled (and while reads keep coming full), output only until it is drained. See
/// the [module docs](self).
pub struct ServerConnection<U> {
    data: U,
    rx: Receiver,
    tx: Sender,
}

impl<U> ServerConnection<U> {
    /// A connection whose handshake is done at `now`, carrying the caller's `data`
    pub fn new(data: U, config: &Config, now: Instant) -> Self {
        Self::build(data, config, now, false)
    }

    /// A connection whose first message must carry the credential (see the
    /// [module docs](self#first-message-authentication)), for a handshake made
    /// elsewhere; a handshake made by [`ServerHandshake`](crate::ServerHandshake)
    /// chooses this in its decision instead
    pub fn with_first_message_auth(data: U, config: &Config, now: Instant) -> Self {
        Self::build(data, config, now, true)
    }

    fn build(data: U, config: &Config, now: Instant, first_message_auth: bool) -> Self {
        let auth = if first_message_auth {
            Auth::Awaiting
        } else {
            Auth::Done
        };
        Self {
            data,
            rx: Receiver::new(config, true),
            tx: Sender::new(
                Role::Server,
                Timers::new(config, now, first_message_auth),
                auth,
            ),
        }
    }

    /// The connection for a handshake accepted at `now`: its data, whether the first
    /// message must authenticate, and the bytes that came after the request
    pub fn from_accepted(accepted: Accepted<U>, config: &Config, now: Instant) -> Self {
        let (data, leftover, first_message_auth) = accepted.into_connection_parts();
        let mut conn = Self::build(data, config, now, first_message_auth);
        conn.handle_input(&leftover);
        conn
    }

    /// Both sides and the caller's data at once: poll events from the receiver while
    /// the sender answers them
    pub fn split(&mut self) -> (&mut Receiver, &mut Sender, &mut U) {
        (&mut self.rx, &mut self.tx, &mut self.data)
    }

    /// The sending side, to send, close or decide on a first message
    pub fn sender(&mut self) -> &mut Sender {
        &mut self.tx
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

    /// Feed bytes the caller already holds, in any split
    ///
    /// Buffers them (unmasking large payloads on the way); [`poll_event`](Self::poll_event)
    /// decodes. Bytes after the close handshake or a failure are ignored. An error
    /// they cause comes out of `poll_event`.
    pub fn handle_input(&mut self, input: &[u8]) {
        self.rx.handle_input(input, &mut self.tx);
    }

    /// Room for a socket read straight into the connection: read into it, then tell
    /// [`handle_read`](Self::handle_read) how many bytes landed
    ///
    /// At least 64 KiB, and up to the end of a large frame that is arriving, so that
    /// the frame lands where it is handed out from; or exactly the rest of such a frame
    /// when little room would be left after it (the next frame then lands at the
    /// front, rather than being moved there). Room is allocated here, not
    /// before: a caller that asks only once the socket is readable holds no buffer
    /// while idle. The room's old contents are meaningless. Once the connection is
    /// closed or failed it is empty: nothing more is read (a read into it returns 0).
    pub fn input_buffer(&mut self) -> &mut [u8] {
        self.rx.input_buffer(&self.tx)
    }

    /// `n` bytes were read into the start of [`input_buffer`](Self::input_buffer)'s
    /// room; they are unmasked in place now, while in cache
    ///
    /// Call `handle_read(0)` when the read found nothing (it would block, or timed
    /// out): the connection then lets an empty buffer go, so that it holds none while
    /// the caller waits. Between reads that find bytes the buffer is kept.
    ///
    /// Call it right after the read: feeding bytes or polling events in between may
    /// move or free the room.
    ///
    /// # Panics
    /// When `n` is more than the room lent, or the room is known to be gone (bytes
    /// were fed, or decoding moved the buffer, since it was lent): a caller's bug
    /// that would make stale bytes count as input.
    pub fn handle_read(&mut self, n: usize) {
        self.rx.handle_read(n, &mut self.tx);
    }

    /// The next event; see [`Receiver::poll_event`], which [`split`](Self::split)
    /// lends beside the sender so that the event can be answered while it is lent
    ///
    /// # Errors
    /// As [`Receiver::poll_event`].
    #[inline(always)]
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>, crate::Error> {
        self.rx.poll_event(&mut self.tx)
    }

    /// Move the queued output to `out`; see [`Sender::poll_transmit`]
    pub fn poll_transmit(&mut self, out: &mut alloc::vec::Vec<u8>) {
        self.tx.poll_transmit(out);
    }

    /// The earliest deadline the caller's timer must fire at, if any: the first
    /// message's, the wait for the peer's close, or keepalive
    ///
    /// May change after every call that changes the connection; ask again before
    /// waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tx.timers.next(self.tx.phase)
    }

    /// The caller's timer fired at `now`: act on what is due
    ///
    /// A first message not accepted in time closes with 1008; a peer's close that did
    /// not come in time ends the wait ([`is_closed`](Self::is_closed)); keepalive
    /// pings an idle peer, and fails the connection with
    /// [`ProtocolError::KeepaliveTimeout`] (close 1011) when nothing answers. Calls
    /// before a deadline, or late ones, do only what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        // A timer fired: a buffer kept between reads goes, if nothing is in it.
        self.rx.release_if_idle();
        match self.tx.timers.due(now, self.tx.phase) {
            Due::Nothing => {}
            Due::AuthTimeout => {
                self.tx.auth_timed_out();
                self.rx.drop_input();
            }
            Due::CloseTimeout => {
                self.tx.phase = Phase::Closed;
                self.rx.drop_input();
            }
            Due::Ping => {
                let _ = self.tx.send_ping(&[]);
            }
            Due::KeepaliveTimeout => {
                self.rx.drop_input();
                self.tx.fail(ProtocolError::KeepaliveTimeout);
            }
        }
    }

    /// Whether the connection is over; see [`Sender::is_closed`]
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Bytes copied in, moved, parsed, unmasked or validated so far, each time counted
    ///
    /// A measure of work for tests that bound it (linear in the input, whatever its
    /// split); with the `work-counters` feature only, not a stable API.
    #[cfg(feature = "work-counters")]
    #[doc(hidden)]
    pub fn bytes_touched(&self) -> u64 {
        self.rx.work()
    }

    /// Bytes of memory this connection holds: the struct and its buffers' capacity
    ///
    /// Idle, that is the struct alone (a few hundred bytes). While input streams in,
    /// the input buffer holds what has not been polled yet, or a large frame still
    /// arriving, with room for about as much again: a few frames and a read at most,
    /// however long the stream. While reads into [`input_buffer`](Self::input_buffer)
    /// find bytes, the buffer is kept when drained; a read that finds nothing
    /// (`handle_read(0)`, a would-block) or the next
    /// [`handle_timeout`](Self::handle_timeout) lets it go. A
    /// message in several frames is assembled in a buffer of its own, up to
    /// [`Config::max_message_bytes`]; output (owned payloads included) waits until
    /// drained. Once the connection is closed or failed, input buffers are freed at
    /// the next [`poll_event`](Self::poll_event) (at once for an error).
    pub fn memory_usage(&self) -> usize {
        core::mem::size_of::<Self>() + self.rx.capacity() + self.tx.queue.capacity()
    }
}

impl<U> core::fmt::Debug for ServerConnection<U> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConnection")
            .field("rx", &self.rx)
            .field("tx", &self.tx)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
