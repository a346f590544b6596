//! The sending side: what this side says (frames, close), its verdicts, its timers,
//! and the output queue the caller drains

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bytes::{Buf, Bytes};

use super::MessageKind;
use super::event::Text;
use super::timer::Timers;
use crate::error::{Error, ProtocolError, UsageError};
use crate::frame::{
    CloseCode, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, apply_mask,
};
use crate::time::Instant;

/// Where the mask keys of a client's frames come from (RFC 6455 §5.3)
///
/// Every frame a client sends is masked with a fresh key, and RFC 6455 §5.3 and §10.3
/// say the keys MUST be unpredictable: draw them from a cryptographically secure
/// generator. The crate draws no randomness itself. Any `FnMut() -> [u8; 4]` is a
/// source:
///
/// ```text
/// let mut rng = rand::rngs::StdRng::from_os_rng(); // a CSPRNG
/// let source = move || rng.random::<[u8; 4]>();
/// ```
pub trait MaskSource {
    /// The key for the next frame
    fn next_key(&mut self) -> [u8; 4];
}

impl<F: FnMut() -> [u8; 4]> MaskSource for F {
    fn next_key(&mut self) -> [u8; 4] {
        self()
    }
}

/// Text that is known to be UTF-8: `str`, `String`, or a received [`Text`]
pub trait AsText: sealed::Sealed {
    /// The UTF-8 bytes
    fn utf8_bytes(&self) -> &[u8];
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for alloc::string::String {}
    impl Sealed for super::Text<'_> {}
}

impl AsText for str {
    fn utf8_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsText for String {
    fn utf8_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsText for Text<'_> {
    fn utf8_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Which end of the connection this is (RFC 6455 §5.1): a server's frames go out
/// unmasked and a client's must come in masked; a client masks every frame it sends
pub(super) enum Role {
    Server,
    // Constructed by the connection's tests until the client handshake exists.
    #[cfg_attr(not(test), allow(dead_code))]
    Client(Box<dyn MaskSource + Send>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Open,
    /// This side sent a close and waits for the peer's.
    CloseSent,
    /// Both closes were exchanged, this side closed for a policy reason, or the peer's
    /// close did not come in time.
    Closed,
    Failed(ProtocolError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Auth {
    Done,
    /// The first message has not arrived.
    Awaiting,
    /// The first message was handed out; the caller has not decided.
    Deciding,
}

const AUTH_FAILED_REASON: &str = "authentication failed";
const AUTH_TIMEOUT_REASON: &str = "authentication timed out";

/// A payload this small is copied into the queue: cheaper than queueing it apart.
const OWNED_MIN: usize = 512;

/// Written bytes are dropped from the front of the queue once there are this many
/// and they are half of it.
const COMPACT_MIN: usize = 4096;

/// The sending side of a connection, and the connection's state
///
/// Queues frames for the caller to write: whole messages, fragments, pings, pongs,
/// the close. It also holds what both sides share: whether the connection is open,
/// whether the first message authenticated, and its deadlines. Get it from
/// [`ServerConnection::split`](super::ServerConnection::split) next to the
/// [`Receiver`](super::Receiver), so that a received message can be answered while it
/// is still lent.
pub struct Sender {
    pub(super) queue: OutQueue,
    pub(super) phase: Phase,
    pub(super) auth: Auth,
    /// The kind of the fragmented message being sent, if one is open.
    sending: Option<MessageKind>,
    role: Role,
    pub(super) timers: Timers,
}

/// Output waiting for the caller: frame bytes, and owned payloads queued without a
/// copy between them
#[derive(Default)]
pub(super) struct OutQueue {
    /// Frame bytes; `bytes[taken..]` are not yet taken.
    bytes: Vec<u8>,
    taken: usize,
    /// Payloads queued whole; each goes out after `bytes[..at]`.
    owned: VecDeque<(usize, Bytes)>,
    /// Their bytes not yet taken.
    owned_len: usize,
}

impl OutQueue {
    /// The first contiguous piece of the output, empty when nothing waits
    fn front(&self) -> &[u8] {
        match self.owned.front() {
            Some((at, _)) if self.taken < *at => &self.bytes[self.taken..*at],
            Some((_, payload)) => payload,
            None => &self.bytes[self.taken..],
        }
    }

    fn consume(&mut self, mut n: usize) {
        assert!(n <= self.len(), "consumed more than was queued");
        while n > 0 {
            let bytes_end = self.owned.front().map_or(self.bytes.len(), |(at, _)| *at);
            if self.taken < bytes_end {
                let take = n.min(bytes_end - self.taken);
                self.taken += take;
                n -= take;
                continue;
            }
            // What is left of `n` is in the payloads queued whole.
            let Some((_, payload)) = self.owned.front_mut() else {
                unreachable!("n is within the queue");
            };
            let take = n.min(payload.len());
            self.owned_len -= take;
            n -= take;
            if take == payload.len() {
                self.owned.pop_front();
            } else {
                payload.advance(take);
            }
        }
        if self.owned.is_empty() && self.taken == self.bytes.len() {
            self.bytes.clear();
            self.taken = 0;
        } else if self.taken >= COMPACT_MIN && 2 * self.taken >= self.bytes.len() {
            // Written bytes go once they are half the queue, so that a caller who never
            // quite empties it does not keep all it ever sent. Each byte moves once at
            // most per time it could have been written.
            self.bytes.drain(..self.taken);
            for (at, _) in &mut self.owned {
                *at -= self.taken;
            }
            self.taken = 0;
        }
    }

    fn len(&self) -> usize {
        self.bytes.len() - self.taken + self.owned_len
    }

    /// The pieces not yet taken, in order
    fn chunks(&self) -> TransmitChunks<'_> {
        TransmitChunks {
            queue: self,
            next: 0,
            in_payload: false,
            at: self.taken,
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity()
            + self.owned.capacity() * core::mem::size_of::<(usize, Bytes)>()
            + self.owned_len
    }
}

/// The queued output, piece by piece, for a vectored write (see
/// [`Sender::transmit_chunks`])
pub struct TransmitChunks<'a> {
    queue: &'a OutQueue,
    /// The next piece: an owned payload's index, or (`None`) frame bytes before it.
    next: usize,
    in_payload: bool,
    at: usize,
}

impl<'a> Iterator for TransmitChunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let q = self.queue;
        loop {
            if self.in_payload {
                // Never empty: an owned payload is dropped once written.
                let (_, payload) = &q.owned[self.next];
                self.in_payload = false;
                self.next += 1;
                return Some(payload);
            }
            let Some((end, _)) = q.owned.get(self.next) else {
                let piece = &q.bytes[self.at..];
                self.at = q.bytes.len();
                return (!piece.is_empty()).then_some(piece);
            };
            let piece = &q.bytes[self.at..*end];
            self.at = *end;
            self.in_payload = true;
            if !piece.is_empty() {
                return Some(piece);
            }
        }
    }
}

impl Sender {
    pub(super) fn new(role: Role, timers: Timers, auth: Auth) -> Self {
        Sender {
            queue: OutQueue::default(),
            phase: Phase::Open,
            auth,
            sending: None,
            role,
            timers,
        }
    }

    /// Queue a whole text message: a `str`, or a received [`Text`] (echoed or
    /// forwarded without checking its UTF-8 again)
    ///
    /// # Errors
    /// [`UsageError::SendAfterClose`] after this side closed or the connection ended;
    /// [`UsageError::MessageInProgress`] while a fragmented message is being sent.
    pub fn send_text<T: AsText + ?Sized>(&mut self, text: &T) -> Result<(), Error> {
        self.send_message(MessageKind::Text, text.utf8_bytes())
    }

    /// Queue a whole binary message (copied into the queue)
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_binary(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_message(MessageKind::Binary, payload)
    }

    /// Queue a whole binary message without copying it: the queue holds `payload`
    /// until it is written (see [`transmit_chunks`](Self::transmit_chunks))
    ///
    /// A client masks what it sends, so its payloads are copied (and masked) anyway;
    /// so are small ones, which cost less to copy than to queue apart.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_binary_owned(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send_owned(MessageKind::Binary, payload.into())
    }

    /// Queue a whole text message without copying it, as
    /// [`send_binary_owned`](Self::send_binary_owned)
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_text_owned(&mut self, text: String) -> Result<(), Error> {
        self.send_owned(MessageKind::Text, Bytes::from(text))
    }

    fn send_owned(&mut self, kind: MessageKind, payload: Bytes) -> Result<(), Error> {
        if payload.len() < OWNED_MIN || matches!(self.role, Role::Client(_)) {
            return self.send_message(kind, &payload);
        }
        self.check_message()?;
        let header = FrameHeader::new(true, kind.opcode(), None, payload.len() as u64);
        header.write(&mut self.queue.bytes);
        self.queue.owned_len += payload.len();
        self.queue
            .owned
            .push_back((self.queue.bytes.len(), payload));
        Ok(())
    }

    fn check_message(&self) -> Result<(), Error> {
        self.check_send()?;
        if self.sending.is_some() {
            return Err(UsageError::MessageInProgress.into());
        }
        Ok(())
    }

    fn send_message(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), Error> {
        self.check_message()?;
        self.write_frame(kind.opcode(), true, payload);
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
        let opcode = self.open_fragment(kind, fin)?;
        self.write_frame(opcode, fin, payload);
        Ok(())
    }

    /// The header of a frame whose `payload_len` bytes the caller writes itself right
    /// after it, for a vectored write without copying a large payload
    ///
    /// Nothing is queued: write `head.as_bytes()` then the payload. Fragments follow
    /// the rules of [`send_fragment`](Self::send_fragment). A server only: a client
    /// masks its payloads, so they go through the queue.
    ///
    /// The caller MUST write the whole payload before it writes anything queued
    /// meanwhile (a pong, a keepalive ping, the close echo), or that output lands
    /// inside this frame.
    ///
    /// # Errors
    /// [`UsageError::TransmitPending`] unless the queued output was drained first (it
    /// must go out before this frame); [`UsageError::MaskRequired`] for a client;
    /// otherwise as `send_fragment`.
    pub fn frame_head(
        &mut self,
        kind: MessageKind,
        payload_len: usize,
        fin: bool,
    ) -> Result<FrameHead, Error> {
        self.check_send()?;
        if matches!(self.role, Role::Client(_)) {
            return Err(UsageError::MaskRequired.into());
        }
        if self.queue.len() != 0 {
            return Err(UsageError::TransmitPending.into());
        }
        let opcode = self.open_fragment(kind, fin)?;
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

    /// Queue a pong (at most 125 bytes), for example when
    /// [`Config::auto_pong`](crate::Config::auto_pong) is off
    ///
    /// # Errors
    /// As [`send_ping`](Self::send_ping).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_control(OpCode::Pong, payload)
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        self.check_send()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::ControlPayloadTooLong.into());
        }
        self.write_frame(opcode, true, payload);
        Ok(())
    }

    /// Start the closing handshake at `now`: queue a close frame; events keep
    /// arriving until the peer's close ([`Event::Close`](super::Event::Close)), then
    /// [`is_closed`](Self::is_closed)
    ///
    /// If the peer's close has not come [`Config::close_timeout`](crate::Config::close_timeout)
    /// after `now`, the connection's timer ends the wait: it counts as closed and the
    /// caller may drop the socket.
    ///
    /// # Errors
    /// [`UsageError::InvalidCloseCode`] for a code that may not be sent (see
    /// [`CloseCode::is_valid_on_wire`]; and 1010 from a server, which only a client
    /// sends, RFC 6455 §7.4.1), [`UsageError::ControlPayloadTooLong`] for a reason over
    /// 123 bytes, [`UsageError::SendAfterClose`].
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.check_send()?;
        let server = matches!(self.role, Role::Server);
        if !code.is_valid_on_wire() || (server && code == CloseCode::MANDATORY_EXTENSION) {
            return Err(UsageError::InvalidCloseCode(code.0).into());
        }
        if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
            return Err(UsageError::ControlPayloadTooLong.into());
        }
        self.write_close(code, reason);
        self.phase = Phase::CloseSent;
        self.timers.close_sent(now);
        Ok(())
    }

    /// The first message checked out: deliver everything that follows
    ///
    /// # Errors
    /// [`UsageError::NotAwaitingAuth`] unless an
    /// [`Event::AuthMessage`](super::Event::AuthMessage) awaits a verdict on a
    /// connection that is still open (not after the deadline or a rejection).
    pub fn accept_auth(&mut self) -> Result<(), Error> {
        // Not once the connection closed for it (refused, too late) or failed.
        if self.auth != Auth::Deciding || !matches!(self.phase, Phase::Open | Phase::CloseSent) {
            return Err(UsageError::NotAwaitingAuth.into());
        }
        self.auth = Auth::Done;
        self.timers.authenticated();
        Ok(())
    }

    /// The first message did not check out (or the caller refuses before it came):
    /// close with 1008; nothing more is delivered
    ///
    /// # Errors
    /// [`UsageError::NotAwaitingAuth`] when the connection is already authenticated.
    pub fn reject_auth(&mut self) -> Result<(), Error> {
        if self.auth == Auth::Done {
            return Err(UsageError::NotAwaitingAuth.into());
        }
        self.close_for_policy(AUTH_FAILED_REASON);
        Ok(())
    }

    /// Whether the connection is authenticated (always, unless first-message
    /// authentication is pending)
    pub fn is_authenticated(&self) -> bool {
        self.auth == Auth::Done
    }

    /// The close handshake is complete, the peer's close did not come in time, or the
    /// connection failed or was closed for policy: write the remaining output, then
    /// close the socket
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed | Phase::Failed(_))
    }

    /// The protocol error that failed the connection, if any
    pub fn error(&self) -> Option<ProtocolError> {
        match self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Move the queued output to `out`
    ///
    /// When `out` is empty and the queue holds only frame bytes, the two buffers trade
    /// places: `out` gets the queued bytes without a copy, and the connection keeps
    /// `out`'s allocation for the next sends. A caller that clears and reuses one
    /// buffer thus allocates nothing in steady state. Otherwise the output is appended
    /// (owned payloads are copied here; [`transmit_chunks`](Self::transmit_chunks)
    /// writes them without).
    ///
    /// Call after every round of input and events and every send, and write `out` to
    /// the socket.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        let q = &mut self.queue;
        if out.is_empty() && q.taken == 0 && q.owned.is_empty() {
            core::mem::swap(out, &mut q.bytes);
            q.bytes.clear();
            return;
        }
        out.reserve(q.len());
        for chunk in q.chunks() {
            out.extend_from_slice(chunk);
        }
        q.owned.clear();
        q.owned_len = 0;
        q.bytes.clear();
        q.taken = 0;
    }

    /// The queued output in order, as pieces to write straight from the queue (a
    /// vectored write takes them all); then tell [`consume_transmit`](Self::consume_transmit)
    /// how many bytes were written
    ///
    /// ```
    /// # use wsgate::{Config, Instant, ServerConnection};
    /// # let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
    /// # let mut socket = Vec::new();
    /// use std::io::{IoSlice, Write};
    /// conn.sender().send_binary_owned(vec![7u8; 4096]).unwrap();
    /// let tx = conn.sender();
    /// let slices: Vec<IoSlice<'_>> = tx.transmit_chunks().map(IoSlice::new).collect();
    /// let written = socket.write_vectored(&slices).unwrap();
    /// tx.consume_transmit(written);
    /// ```
    pub fn transmit_chunks(&self) -> TransmitChunks<'_> {
        self.queue.chunks()
    }

    /// The first piece of the queued output, for a plain write straight from the
    /// queue; empty when nothing waits
    pub fn transmit_front(&self) -> &[u8] {
        self.queue.front()
    }

    /// `n` bytes of the queued output were written: drop them
    ///
    /// # Panics
    /// When `n` is more than [`pending_transmit`](Self::pending_transmit).
    pub fn consume_transmit(&mut self, n: usize) {
        self.queue.consume(n);
    }

    /// Bytes waiting to be written
    ///
    /// Input can queue output (every ping gets its pong), so a peer that sends without
    /// reading makes output pile up, here or in the caller's own buffer. A caller
    /// SHOULD stop reading the socket while much output is still unwritten.
    pub fn pending_transmit(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn check_send(&self) -> Result<(), Error> {
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

    /// Append a frame: unmasked from a server, masked with a fresh key from a client
    #[inline]
    pub(super) fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        let key = match &mut self.role {
            Role::Server => None,
            Role::Client(source) => Some(source.next_key()),
        };
        let tx = &mut self.queue.bytes;
        let header = FrameHeader::new(fin, opcode, key, payload.len() as u64);
        if payload.len() > MAX_CONTROL_PAYLOAD {
            tx.reserve(header.encoded_len() + payload.len());
        }
        header.write(tx);
        let start = tx.len();
        tx.extend_from_slice(payload);
        if let Some(key) = key {
            apply_mask(&mut tx[start..], key, 0);
        }
    }

    pub(super) fn write_close(&mut self, code: CloseCode, reason: &str) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        payload[..2].copy_from_slice(&code.0.to_be_bytes());
        payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
        self.write_frame(OpCode::Close, true, &payload[..2 + reason.len()]);
    }

    /// Fail the connection: queue the close frame answering `e` (unless a close went
    /// out already) and make `e` sticky
    pub(super) fn fail(&mut self, e: ProtocolError) -> Error {
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

    /// Close with 1008 and `reason`, and stop: nothing more is sent or delivered
    pub(super) fn close_for_policy(&mut self, reason: &str) {
        if self.phase == Phase::Open {
            self.write_close(CloseCode::POLICY_VIOLATION, reason);
        }
        if !matches!(self.phase, Phase::Failed(_)) {
            self.phase = Phase::Closed;
        }
    }

    /// The first message's deadline passed
    pub(super) fn auth_timed_out(&mut self) {
        if self.auth != Auth::Done {
            self.close_for_policy(AUTH_TIMEOUT_REASON);
        }
    }
}

/// An encoded frame header to write before a payload the caller writes itself (a
/// vectored write), from [`Sender::frame_head`]
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

impl core::fmt::Debug for Sender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sender")
            .field("phase", &self.phase)
            .field("auth", &self.auth)
            .field("pending_transmit", &self.queue.len())
            .finish_non_exhaustive()
    }
}
