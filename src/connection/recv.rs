//! The receiving side: bytes in, unmasked where they land, events out

use alloc::vec::Vec;

use super::MessageKind;
use super::event::{Event, Payload, Text};
use super::input::InputBuf;
use super::send::{Auth, Phase, Sender};
use super::utf8::Utf8Stream;
use crate::auth::Secret;
use crate::config::Config;
use crate::error::{Error, ProtocolError};
use crate::frame::{
    CloseCode, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, apply_mask, mask_short,
    parse_close_payload,
};
use crate::work::Work;

/// The receiving side of a connection: turns the bytes read from the socket into
/// [`Event`]s
///
/// Each event borrows this side only, so the [`Sender`] (from
/// [`ServerConnection::split`](super::ServerConnection::split)) can answer or forward
/// it without copying it first.
pub struct Receiver {
    /// Received bytes; `buf[pos..]` is not yet consumed.
    buf: InputBuf,
    pos: usize,
    /// The payload of a message that arrived in several frames.
    msg: Vec<u8>,
    /// `msg` was handed out; empty it on the next call.
    msg_delivered: bool,
    message: Option<InMessage>,
    /// How far the frames in `buf` have been followed as they landed.
    arrival: Arrival,
    /// The frame whose payload is being followed is a whole message (final, not a
    /// continuation): it is handed out where it lands, so room to its end pays.
    landing_whole: bool,
    /// A one-frame message waiting in `buf` for the rest of its payload: how many
    /// payload bytes were seen (they are unmasked), and (for text) their UTF-8 state.
    waiting: Option<(usize, Utf8Stream)>,
    /// The capacity `buf` had when it was last released.
    last_capacity: usize,
    /// The caller reads into the buffer and its last read found bytes: more may be
    /// waiting in the socket, so the buffer is kept when drained rather than freed
    /// and allocated (and zeroed) again for the next read.
    busy: bool,
    /// The length of the room [`input_buffer`](Self::input_buffer) last lent.
    lent: usize,
    limits: Limits,
    /// The peer's frames must be masked (this is a server) or must not be (a client).
    masked: bool,
    /// Bytes copied in, moved, parsed, unmasked or validated: a work measure.
    work: Work,
}

/// Following the frames as their bytes land in the buffer, to unmask the payloads of
/// large data frames while the bytes are in cache (or as they are copied in: one pass
/// instead of two). The key in the buffered header is then zeroed, so that decoding
/// finds a frame that means the same and needs no unmasking. Small frames are left to
/// decoding, which unmasks them in place: following them would cost more than it
/// saves.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    /// Input is buffered as it comes.
    Unfollowed,
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
/// times its own length (see [`Receiver::reserve_for_burst`]): a 64 KiB read makes
/// room for a 1 MiB frame at once; a header alone gets no more than any burst,
/// whatever it claims.
const BURST_RESERVE_FACTOR: usize = 32;

/// The smallest data frame payload worth unmasking on the way in.
const FOLLOW_MIN_PAYLOAD: u64 = 512;

/// What [`Receiver::input_buffer`] lends at least: a typical socket read.
pub(super) const READ_SIZE: usize = 64 << 10;

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

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_frame: u64,
    max_message: u64,
    max_auth: u64,
    /// The largest payload [`Receiver::small_message`] may take: within both size
    /// limits.
    max_small: u64,
    auto_pong: bool,
    streaming: bool,
}

/// What decoding a data frame header leads to
enum FrameStart {
    Event(EventAt),
    /// The frame's payload is consumed as it arrives: go on decoding.
    Again,
    /// The frame stays in the buffer until all of it is here.
    Wait,
}

/// Where an event's bytes are
#[derive(Debug, Clone, Copy)]
enum EventAt {
    /// A whole message in `buf[start..end]`, or in `msg` when `range` is `None`.
    /// `checked`: its UTF-8 was checked as it arrived (text).
    Message {
        kind: MessageKind,
        range: Option<(usize, usize)>,
        checked: bool,
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

impl Receiver {
    /// `masked`: the peer is a client, whose frames must be masked.
    pub(super) fn new(config: &Config, masked: bool) -> Self {
        Receiver {
            buf: InputBuf::default(),
            pos: 0,
            msg: Vec::new(),
            msg_delivered: false,
            message: None,
            arrival: Arrival::Header { at: 0 },
            landing_whole: false,
            waiting: None,
            last_capacity: 0,
            busy: false,
            lent: 0,
            limits: Limits {
                max_frame: config.max_frame_bytes() as u64,
                max_message: config.max_message_bytes() as u64,
                max_auth: config.max_auth_message_bytes() as u64,
                max_small: config.max_frame_bytes().min(config.max_message_bytes()) as u64,
                auto_pong: config.auto_pong(),
                streaming: config.streaming(),
            },
            masked,
            work: Work::default(),
        }
    }

    /// Whether input is still taken: not after the close handshake or a failure
    fn takes_input(tx: &Sender) -> bool {
        matches!(tx.phase, Phase::Open | Phase::CloseSent)
    }

    /// Drop consumed bytes before `incoming` more arrive, where that is due
    fn make_room(&mut self, incoming: usize) {
        // Drop what was consumed, unless the input fits after it: then moving the
        // rest to the front can wait until the buffer is full, and is paid once per
        // buffer rather than once per input. (A large frame waiting for its end is
        // moved sooner, when it starts: see `start_data_frame`.)
        if self.pos > 0
            && (self.pos == self.buf.len() || self.buf.capacity() - self.buf.len() < incoming)
        {
            self.drop_consumed();
        }
        if self.buf.is_empty() {
            self.resume_following();
        }
    }

    /// Take bytes the caller holds
    pub(super) fn handle_input(&mut self, input: &[u8], tx: &mut Sender) {
        // The room lent for a read is no longer where it was.
        self.lent = 0;
        if !Self::takes_input(tx) || input.is_empty() {
            return;
        }
        self.make_room(input.len());
        // The read size is the caller's: nothing says whether more is waiting.
        self.busy = false;
        self.ingest(input);
        self.after_input(tx);
    }

    /// Lend the room after the buffered bytes for a socket read: at least
    /// [`READ_SIZE`] bytes, and up to the end of a large frame that is arriving, so that
    /// it lands where it will be handed out; exactly the rest of that frame when
    /// little room would be left after it; nothing once input is no longer taken
    pub(super) fn input_buffer(&mut self, tx: &Sender) -> &mut [u8] {
        if !Self::takes_input(tx) {
            // Nothing more is read: no room, and no buffer allocated for it.
            self.lent = 0;
            return &mut [];
        }
        let room = self.buf.capacity() - self.buf.len();
        // Room beyond a read only for a frame handed out where it lands: not one that
        // is streamed or gathered with others, nor one over the limits (it fails when
        // decoded), which before authentication are the first message's.
        let authenticated = tx.auth == Auth::Done;
        let in_place = self.landing_whole && !(self.limits.streaming && authenticated);
        let limit = if authenticated {
            self.limits.max_small
        } else {
            self.limits.max_small.min(self.limits.max_auth)
        };
        let want = match self.arrival {
            Arrival::Payload {
                offset, remaining, ..
            } if in_place && remaining <= limit => {
                let rest = remaining as usize;
                if rest <= room {
                    // It fits where it is landing. When little room would be left
                    // after it, the read stops at its end: once it is handed out the
                    // buffer is empty and the next frame lands at the front, where
                    // it would otherwise be moved to.
                    return self.lend(if room - rest < READ_SIZE { rest } else { room });
                }
                // Room to its end, so that it is handed out where it lands, up to
                // BURST_RESERVE_FACTOR times what has come of it: a header alone
                // cannot make the connection hold much.
                rest.min(
                    offset
                        .max(MAX_HEADER_LEN)
                        .saturating_mul(BURST_RESERVE_FACTOR),
                )
                .max(READ_SIZE)
            }
            _ => READ_SIZE,
        };
        self.make_room(want);
        if self.buf.capacity() == 0 {
            self.reserve_for_burst(None);
        }
        self.lend((self.buf.capacity() - self.buf.len()).max(want))
    }

    /// The `n` bytes of room after the buffered ones, for a read
    fn lend(&mut self, n: usize) -> &mut [u8] {
        let spare = self.buf.spare(n);
        self.lent = spare.len();
        spare
    }

    /// `n` bytes landed at the start of the room [`input_buffer`](Self::input_buffer)
    /// lent
    pub(super) fn handle_read(&mut self, n: usize, tx: &mut Sender) {
        let lent = core::mem::take(&mut self.lent);
        assert!(
            n <= lent,
            "handle_read({n}) after input_buffer lent {lent} bytes"
        );
        if n == 0 {
            // The read found nothing: the socket is drained, and the caller will wait.
            self.release_if_idle();
            return;
        }
        if !Self::takes_input(tx) {
            return;
        }
        // The caller reads while bytes come: keep the buffer between reads until one
        // finds nothing (or a timer fires), rather than free it and zero a new one
        // for every read.
        self.busy = true;
        self.land(n);
        self.after_input(tx);
    }

    fn after_input(&mut self, tx: &mut Sender) {
        tx.timers.saw_input = true;
        if tx.auth == Auth::Deciding && (self.buf.len() - self.pos) as u64 > self.limits.max_auth {
            self.drop_input();
            tx.fail(ProtocolError::TooMuchBeforeAuth);
        }
    }

    /// The next event, or `Ok(None)` when more input is needed (or the connection is
    /// closed, or a first message awaits the caller's verdict)
    ///
    /// The event borrows this side until its next call; `tx` is only used during the
    /// call (pongs, the close echo, the close that answers an error go out through
    /// it), so it stays free to answer the event.
    ///
    /// # Errors
    /// The [`ProtocolError`] that failed the connection, whether the peer committed it
    /// or a deadline passed; the close frame answering it is queued in `tx`. Every
    /// later call returns the same error.
    #[inline(always)]
    pub fn poll_event(&mut self, tx: &mut Sender) -> Result<Option<Event<'_>>, Error> {
        if let Some((kind, start, end)) = self.small_message(tx) {
            let bytes = &self.buf[start..end];
            return match kind {
                MessageKind::Binary => Ok(Some(Event::Binary(Payload::in_place(bytes)))),
                MessageKind::Text => match simdutf8::basic::from_utf8(bytes) {
                    Ok(text) => Ok(Some(Event::Text(Text::from_str(text)))),
                    Err(_) => Err(tx.fail(ProtocolError::InvalidUtf8)),
                },
            };
        }
        self.poll_event_general(tx)
    }

    /// Every event but [`small_message`](Self::small_message)'s; kept out of line so
    /// that the fast path inlines into the caller's loop
    #[inline(never)]
    fn poll_event_general(&mut self, tx: &mut Sender) -> Result<Option<Event<'_>>, Error> {
        let at = match self.advance(tx) {
            Ok(Some(at)) => at,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.drop_input();
                return Err(tx.fail(e));
            }
        };
        let event = match at {
            EventAt::Message {
                kind,
                range,
                checked,
                auth,
            } => {
                let text = kind == MessageKind::Text;
                // Text not checked as it came arrived whole in place: it is checked
                // here, once, in cache right after unmasking, which also makes the
                // `&str`. (An assembled message was checked piece by piece.)
                let (payload, str) = match range {
                    Some((start, end)) => {
                        let bytes = &self.buf[start..end];
                        let str = if text && !checked {
                            match simdutf8::basic::from_utf8(bytes) {
                                Ok(str) => Some(str),
                                Err(_) => return Err(tx.fail(ProtocolError::InvalidUtf8)),
                            }
                        } else {
                            None
                        };
                        (Payload::in_place(bytes), str)
                    }
                    None => (Payload::assembled(&mut self.msg), None),
                };
                self.work.add(payload.len() as u64);
                match (auth, str) {
                    (true, _) => Event::AuthMessage {
                        message: Secret::new(payload.into_ref()),
                        text,
                    },
                    (false, _) if !text => Event::Binary(payload),
                    (false, Some(str)) => Event::Text(Text::from_str(str)),
                    (false, None) => Event::Text(Text::checked(payload)),
                }
            }
            EventAt::Chunk {
                kind,
                start,
                end,
                first,
                fin,
            } => {
                let data = &self.buf[start..end];
                match kind {
                    MessageKind::Text => Event::TextChunk { data, first, fin },
                    MessageKind::Binary => Event::BinaryChunk { data, first, fin },
                }
            }
            EventAt::Ping(start, end) => Event::Ping(&self.buf[start..end]),
            EventAt::Pong(start, end) => Event::Pong(&self.buf[start..end]),
            EventAt::Close { code, start, end } => {
                match core::str::from_utf8(&self.buf[start..end]) {
                    Ok(reason) => Event::Close { code, reason },
                    Err(_) => return Err(tx.fail(ProtocolError::InvalidUtf8)),
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
    fn small_message(&mut self, tx: &Sender) -> Option<(MessageKind, usize, usize)> {
        if tx.phase != Phase::Open
            || tx.auth != Auth::Done
            || self.limits.streaming
            || self.message.is_some()
            || self.msg_delivered
            // A waiting frame completes through `advance`, which ends the wait.
            || self.waiting.is_some()
        {
            return None;
        }
        let (mask_bit, key_len) = if self.masked { (0x80, 4) } else { (0, 0) };
        let rest = &mut self.buf[self.pos..];
        let [b0, b1, ..] = *rest else {
            return None;
        };
        let kind = match b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => return None,
        };
        // Masked as the role requires, with a 7- or 16-bit length within the limits.
        let (len, header_len) = match b1 ^ mask_bit {
            n @ 0..=125 => (usize::from(n), 2 + key_len),
            126 => match *rest {
                [_, _, l0, l1, ..] => (usize::from(u16::from_be_bytes([l0, l1])), 4 + key_len),
                _ => return None,
            },
            _ => return None,
        };
        if len as u64 > self.limits.max_small {
            return None;
        }
        let frame = rest.get_mut(..header_len + len)?;
        let (head, payload) = frame.split_at_mut(header_len);
        if self.masked {
            let mut key = [0u8; 4];
            key.copy_from_slice(&head[header_len - 4..]);
            if len <= MAX_CONTROL_PAYLOAD {
                mask_short(payload, key);
            } else {
                apply_mask(payload, key, 0);
            }
        }
        let start = self.pos + header_len;
        self.pos = start + len;
        // Header, unmasking, the UTF-8 check or handing out: as `advance` counts.
        self.work.add(header_len as u64 + 2 * len as u64);
        Some((kind, start, start + len))
    }

    /// Decode up to the next event; the bytes stay in place for `poll_event` to lend
    fn advance(&mut self, tx: &mut Sender) -> Result<Option<EventAt>, ProtocolError> {
        // Decoding may move or free the buffer: the room lent for a read goes with it.
        self.lent = 0;
        let result = match tx.phase {
            Phase::Open | Phase::CloseSent => None,
            Phase::Failed(e) => Some(Err(e)),
            Phase::Closed => Some(Ok(None)),
        };
        if let Some(result) = result {
            // The last event, which borrowed the buffers, is over.
            self.drop_input();
            return result;
        }
        if self.msg_delivered {
            self.msg = Vec::new();
            self.msg_delivered = false;
        }
        loop {
            if tx.auth == Auth::Deciding {
                return Ok(None);
            }
            if let Some(at) = self.next_piece(tx)? {
                return Ok(Some(at));
            }
            if self.message.as_ref().is_some_and(|m| m.frame.is_some()) {
                // A data frame's payload is still arriving.
                self.release_input();
                return Ok(None);
            }
            self.work
                .add((self.buf.len() - self.pos).min(MAX_HEADER_LEN) as u64);
            let Some((header, header_len)) = FrameHeader::parse(&self.buf[self.pos..])? else {
                self.release_input();
                return Ok(None);
            };
            if header.rsv != 0 {
                return Err(ProtocolError::ReservedBits);
            }
            let key = match (header.mask, self.masked) {
                (Some(key), true) => key,
                (None, false) => [0; 4],
                (None, true) => return Err(ProtocolError::UnmaskedFrame),
                (Some(_), false) => return Err(ProtocolError::MaskedFrame),
            };
            let available = (self.buf.len() - self.pos - header_len) as u64;
            if header.opcode.is_control() {
                // At most 125 bytes: wait until the whole frame is here.
                if available < header.payload_len {
                    return Ok(None);
                }
                let start = self.pos + header_len;
                let end = start + header.payload_len as usize;
                apply_mask(&mut self.buf[start..end], key, 0);
                self.pos = end;
                self.work.add(header.payload_len);
                if let Some(at) = self.control(tx, header.opcode, start, end)? {
                    return Ok(Some(at));
                }
                continue;
            }
            match self.start_data_frame(tx, header, header_len, key, available)? {
                FrameStart::Event(at) => return Ok(Some(at)),
                FrameStart::Again => {}
                FrameStart::Wait => return Ok(None),
            }
        }
    }

    /// Handle a whole control frame whose unmasked payload is `buf[start..end]`
    fn control(
        &mut self,
        tx: &mut Sender,
        opcode: OpCode,
        start: usize,
        end: usize,
    ) -> Result<Option<EventAt>, ProtocolError> {
        let payload = &self.buf[start..end];
        let deliver = tx.auth == Auth::Done;
        match opcode {
            OpCode::Ping => {
                // Before authentication the ping is not handed out, so it is answered
                // here whatever `auto_pong` says (RFC 6455 §5.5.2: a ping MUST get a
                // pong).
                if (self.limits.auto_pong || !deliver) && tx.phase == Phase::Open {
                    tx.write_frame(OpCode::Pong, true, payload);
                }
                Ok(deliver.then_some(EventAt::Ping(start, end)))
            }
            OpCode::Pong => Ok(deliver.then_some(EventAt::Pong(start, end))),
            _ => {
                let code = parse_close_payload(payload)?.map(|(code, _)| code);
                if tx.phase == Phase::Open {
                    // Echo the status code (RFC 6455 §5.5.1), not the reason.
                    match code {
                        Some(code) => tx.write_close(code, ""),
                        None => tx.write_frame(OpCode::Close, true, &[]),
                    }
                }
                tx.phase = Phase::Closed;
                self.message = None;
                let reason_start = if code.is_some() { start + 2 } else { start };
                Ok(Some(EventAt::Close {
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
        tx: &mut Sender,
        header: FrameHeader,
        header_len: usize,
        key: [u8; 4],
        available: u64,
    ) -> Result<FrameStart, ProtocolError> {
        let limits = self.limits;
        let before_auth = tx.auth != Auth::Done;
        let streaming = limits.streaming && !before_auth;
        let (kind, so_far) = match (header.opcode, &self.message) {
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
        let start = self.pos + header_len;
        if !streaming && self.message.is_none() && header.fin && available >= header.payload_len {
            // The common case: a whole message in one frame, all here. Unmask in place
            // and lend it; no copy. What waited was unmasked and (text) checked as it
            // came; the rest is done now.
            let end = start + header.payload_len as usize;
            let seen = self.waiting.map_or(0, |(seen, _)| seen);
            apply_mask(&mut self.buf[start + seen..end], key, seen);
            self.pos = end;
            self.work.add(header.payload_len);
            let checked = match self.waiting.take() {
                Some((seen, mut utf8)) if kind == MessageKind::Text => {
                    let rest = &self.buf[start + seen..end];
                    self.work.add(rest.len() as u64);
                    utf8.feed(rest).map_err(|_| ProtocolError::InvalidUtf8)?;
                    utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                    true
                }
                _ => false,
            };
            if before_auth {
                tx.auth = Auth::Deciding;
            }
            return Ok(FrameStart::Event(EventAt::Message {
                kind,
                range: Some((start, end)),
                checked,
                auth: before_auth,
            }));
        }
        if !streaming && self.message.is_none() && header.fin {
            // A one-frame message, part of it here: leave it where it is until the
            // rest comes, rather than copy it out piece by piece. What has arrived is
            // unmasked in place (a large frame was as it landed: its key is zeroed)
            // and, for text, checked now, to fail fast.
            let available = available as usize;
            let (seen, utf8) = self.waiting.get_or_insert_with(Default::default);
            let new = &mut self.buf[start + *seen..start + available];
            apply_mask(new, key, *seen);
            if kind == MessageKind::Text {
                utf8.feed(new).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            self.work.add(2 * new.len() as u64);
            *seen = available;
            // At most `max_frame_bytes` and a header: saturating only matters where
            // usize is 32 bits.
            let total = header_len.saturating_add(header.payload_len as usize);
            if self.pos > 0 && self.pos.saturating_add(total) > self.buf.capacity() {
                // It will not fit where it starts: move it to the front now, while
                // usually only its first piece is here, rather than once the buffer is
                // full.
                self.drop_consumed();
            }
            if header.payload_len <= 2 * available as u64 && total > self.buf.capacity() {
                // Room for the frame now (see the reservation below), and as much again
                // (see MIN_ROOM_AFTER_WAITING). Counted from the front: the buffer
                // stays within a few frames, however long the stream. Only a head
                // start: if it cannot be had, the buffer grows as the bytes come.
                let _ = self.buf.try_reserve(room_for(total) - self.buf.len());
            }
            return Ok(FrameStart::Wait);
        }
        self.pos += header_len;
        if !streaming && header.payload_len <= 2 * available {
            // Most of the frame is here: make room for all of it at once rather than
            // growing (and copying) the message buffer step by step. A header alone
            // never reserves more than twice what was sent.
            self.reserve_msg(header.payload_len as usize);
        }
        let frame = InFrame {
            remaining: header.payload_len,
            mask: (key != [0; 4]).then_some(key),
            offset: 0,
            fin: header.fin,
        };
        match &mut self.message {
            Some(m) => m.frame = Some(frame),
            None => {
                self.message = Some(InMessage {
                    kind,
                    len: 0,
                    utf8: Utf8Stream::default(),
                    frame: Some(frame),
                    first_piece: true,
                });
            }
        }
        Ok(FrameStart::Again)
    }

    /// Consume what has arrived of the current data frame's payload
    fn next_piece(&mut self, tx: &mut Sender) -> Result<Option<EventAt>, ProtocolError> {
        let streaming = self.limits.streaming && tx.auth == Auth::Done;
        let Some(m) = &mut self.message else {
            return Ok(None);
        };
        let Some(frame) = &mut m.frame else {
            return Ok(None);
        };
        let take = frame.remaining.min((self.buf.len() - self.pos) as u64) as usize;
        let first = m.first_piece;
        let last_of_frame = take as u64 == frame.remaining;
        let fin = last_of_frame && frame.fin;
        if take == 0 && !last_of_frame {
            return Ok(None);
        }
        let (start, end) = (self.pos, self.pos + take);
        if let Some(key) = frame.mask {
            apply_mask(&mut self.buf[start..end], key, frame.offset);
        }
        frame.offset += take;
        frame.remaining -= take as u64;
        self.pos = end;
        // Unmasked, validated and (unless streaming) copied.
        self.work.add(3 * take as u64);
        m.len += take as u64;
        if last_of_frame {
            m.frame = None;
        }
        let kind = m.kind;
        if kind == MessageKind::Text {
            let piece = &self.buf[start..end];
            m.utf8.feed(piece).map_err(|_| ProtocolError::InvalidUtf8)?;
            if fin {
                m.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if fin {
            self.message = None;
        }
        if streaming {
            if let Some(m) = &mut self.message {
                m.first_piece = false;
            }
            if take > 0 || first || fin {
                return Ok(Some(EventAt::Chunk {
                    kind,
                    start,
                    end,
                    first,
                    fin,
                }));
            }
            return Ok(None);
        }
        self.reserve_msg(end - start);
        self.msg.extend_from_slice(&self.buf[start..end]);
        if !fin {
            return Ok(None);
        }
        self.msg_delivered = true;
        let auth = tx.auth == Auth::Awaiting;
        if auth {
            tx.auth = Auth::Deciding;
        }
        Ok(Some(EventAt::Message {
            kind,
            range: None,
            checked: true,
            auth,
        }))
    }

    /// Room in the message buffer for `more` bytes: it doubles as it grows, but never
    /// past the message limit, so that it holds no more than the limit allows
    fn reserve_msg(&mut self, more: usize) {
        let need = self.msg.len().saturating_add(more);
        if need > self.msg.capacity() {
            let limit = usize::try_from(self.limits.max_message).unwrap_or(usize::MAX);
            let target = self
                .msg
                .capacity()
                .saturating_mul(2)
                .max(need)
                .min(limit.max(need));
            self.msg.reserve_exact(target - self.msg.len());
        }
    }

    /// After a close or an error nothing more is read: free the input left and a
    /// message cut off mid-way
    // Out of line: in the decode path's error arms it would cost every frame a few
    // instructions.
    #[cold]
    #[inline(never)]
    pub(super) fn drop_input(&mut self) {
        self.pos = self.buf.len();
        self.busy = false;
        self.release_input();
        self.msg = Vec::new();
    }

    /// Once everything in the input buffer is consumed, free it (an idle connection
    /// holds no buffer), unless the last input filled a read (more is on its way)
    fn release_input(&mut self) {
        if self.pos == self.buf.len() {
            if self.busy {
                self.buf.clear();
            } else {
                self.last_capacity = self.buf.capacity();
                self.buf = InputBuf::default();
            }
            self.pos = 0;
            if let Arrival::Header { at } = &mut self.arrival {
                *at = 0;
            }
        }
    }

    /// All input is consumed: the next input byte starts a frame header or continues
    /// the payload of the frame being received, so it can be followed again
    fn resume_following(&mut self) {
        if !matches!(self.arrival, Arrival::Unfollowed) {
            return;
        }
        self.arrival = match self.message.as_mut().and_then(|m| m.frame.as_mut()) {
            None => Arrival::Header { at: 0 },
            Some(frame) => match frame.mask.take() {
                // The rest of this frame is unmasked as it lands; it is gathered into
                // the message, not handed out where it lands.
                Some(key) => {
                    self.landing_whole = false;
                    Arrival::Payload {
                        key,
                        offset: frame.offset,
                        remaining: frame.remaining,
                    }
                }
                None => return,
            },
        };
    }

    /// Move the unconsumed bytes to the front of `buf`; the place being followed moves
    /// with them
    fn drop_consumed(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
        } else {
            self.work.add((self.buf.len() - self.pos) as u64);
            self.buf.drop_front(self.pos);
        }
        if let Arrival::Header { at } = &mut self.arrival {
            *at -= self.pos;
        }
        self.pos = 0;
    }

    /// A new burst's buffer: what the last burst grew to, at once, since growing again
    /// step by step costs copies on every burst. Up to MIN_ROOM_AFTER_WAITING for any
    /// burst, and more only as far as the first frame (whose first bytes are `first`)
    /// has a use for it: a burst of small messages after a large one should not hold a
    /// large buffer. Whatever length the header claims, no more is reserved than the
    /// buffer reached before, nor than BURST_RESERVE_FACTOR times the input.
    fn reserve_for_burst(&mut self, first: Option<&[u8]>) {
        let any_burst = self.last_capacity.min(room_for(0));
        let this_frame = match (first, self.arrival) {
            (Some(input), Arrival::Header { .. }) => {
                let total = match FrameHeader::parse(input) {
                    Ok(Some((header, len))) => usize::try_from(header.payload_len)
                        .map_or(usize::MAX, |payload| payload.saturating_add(len)),
                    _ => 0,
                };
                self.last_capacity
                    .min(room_for(total))
                    .min(input.len().saturating_mul(BURST_RESERVE_FACTOR))
            }
            _ => 0,
        };
        let incoming = first.map_or(READ_SIZE, <[u8]>::len);
        self.buf.reserve(incoming.max(any_burst).max(this_frame));
    }

    /// Append input to `buf`, unmasking the payloads of large data frames on the way
    fn ingest(&mut self, mut input: &[u8]) {
        self.work.add(input.len() as u64);
        if self.buf.capacity() == 0 {
            self.reserve_for_burst(Some(input));
        }
        self.buf.reserve(input.len());
        while !input.is_empty() {
            match self.arrival {
                Arrival::Unfollowed => break,
                Arrival::Payload {
                    key,
                    offset,
                    remaining,
                } => {
                    let n = remaining.min(input.len() as u64) as usize;
                    self.buf.extend_unmasked(&input[..n], key, offset);
                    self.work.add(n as u64);
                    input = &input[n..];
                    self.arrival = self.payload_landed(key, offset, remaining, n);
                }
                Arrival::Header { at } => {
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
                    match self.header_landed(parsed) {
                        Some((len, key, payload_len, whole)) => {
                            self.buf.extend_from_slice(&input[..len - have]);
                            input = &input[len - have..];
                            self.follow_payload(self.buf.len(), key, payload_len, whole);
                        }
                        // Still incomplete: it all goes to `buf`.
                        None if matches!(self.arrival, Arrival::Header { .. }) => break,
                        None => {}
                    }
                }
            }
        }
        self.buf.extend_from_slice(input);
    }

    /// `n` bytes landed in place after the buffered ones: unmask the payloads of large
    /// data frames among them now, while they are in cache
    fn land(&mut self, n: usize) {
        self.work.add(n as u64);
        let mut at = self.buf.len();
        self.buf.commit(n);
        let end = self.buf.len();
        while at < end {
            match self.arrival {
                Arrival::Unfollowed => break,
                Arrival::Payload {
                    key,
                    offset,
                    remaining,
                } => {
                    let n = remaining.min((end - at) as u64) as usize;
                    apply_mask(&mut self.buf[at..at + n], key, offset);
                    self.work.add(n as u64);
                    at += n;
                    self.arrival = self.payload_landed(key, offset, remaining, n);
                    if let Arrival::Header { at: next } = &mut self.arrival {
                        *next = at;
                    }
                }
                Arrival::Header { at: head } => {
                    let parsed = FrameHeader::parse(&self.buf[head..end]);
                    match self.header_landed(parsed) {
                        Some((len, key, payload_len, whole)) => {
                            at = head + len;
                            self.follow_payload(at, key, payload_len, whole);
                        }
                        None if matches!(self.arrival, Arrival::Header { .. }) => break,
                        None => {}
                    }
                }
            }
        }
    }

    /// A large data frame's header ends at `buf[..header_end]`: its payload is
    /// unmasked as it lands, so its key is zeroed (decoding then finds nothing to
    /// unmask) and its payload followed; `whole`: it is a message by itself
    fn follow_payload(&mut self, header_end: usize, key: [u8; 4], payload_len: u64, whole: bool) {
        self.buf[header_end - 4..header_end].fill(0);
        self.landing_whole = whole;
        self.arrival = Arrival::Payload {
            key,
            offset: 0,
            remaining: payload_len,
        };
    }

    /// Where following goes after `n` payload bytes of the frame being unmasked
    /// landed; the next header's place is filled in by the caller
    fn payload_landed(&self, key: [u8; 4], offset: usize, remaining: u64, n: usize) -> Arrival {
        if n as u64 == remaining {
            Arrival::Header { at: self.buf.len() }
        } else {
            Arrival::Payload {
                key,
                offset: offset + n,
                remaining: remaining - n as u64,
            }
        }
    }

    /// A frame header was parsed as it landed: its length, key, payload length and
    /// whether it is a message by itself, when it starts a large masked data frame to
    /// unmask as it lands; `None` while it is incomplete (following goes on) or when
    /// decoding deals with it (following stops)
    fn header_landed(
        &mut self,
        parsed: Result<Option<(FrameHeader, usize)>, ProtocolError>,
    ) -> Option<(usize, [u8; 4], u64, bool)> {
        match parsed {
            Ok(Some((header, len))) => match header.mask {
                Some(key)
                    if header.rsv == 0
                        && !header.opcode.is_control()
                        && header.payload_len >= FOLLOW_MIN_PAYLOAD =>
                {
                    let whole = header.fin && header.opcode != OpCode::Continuation;
                    Some((len, key, header.payload_len, whole))
                }
                // Small, control, unmasked or invalid: decoding deals with it.
                _ => {
                    self.arrival = Arrival::Unfollowed;
                    None
                }
            },
            Ok(None) => None,
            Err(_) => {
                self.arrival = Arrival::Unfollowed;
                None
            }
        }
    }

    /// The caller stopped reading for now: an input buffer kept between reads goes
    /// once nothing is in it
    pub(super) fn release_if_idle(&mut self) {
        if self.lent == 0 {
            self.busy = false;
            self.release_input();
        }
    }

    pub(super) fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity() + self.msg.capacity()
    }

    #[cfg(feature = "work-counters")]
    pub(super) fn work(&self) -> u64 {
        self.work.bytes()
    }
}

impl core::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Receiver")
            .field("buffered_input", &self.buffered())
            .field("buffered_message", &self.msg.len())
            .finish_non_exhaustive()
    }
}
