//! The server side of the opening handshake (RFC 6455 §4.2)
//!
//! Bytes in, a decision, response bytes out:
//!
//! 1. [`ServerHandshake::handle_input`] takes the bytes as they arrive, in any split.
//!    Until the request head is complete it returns `Ok(None)`: incomplete input is not
//!    an error. Every byte is examined once (no re-parse of a growing buffer), and the
//!    caps of [`Config`] bound memory and work.
//! 2. Once complete, the request is parsed and validated and the caller's decision sees
//!    it as a borrowed [`UpgradeRequest`]. Or, with
//!    [`ServerHandshake::handle_input_deferred`], the caller holds a
//!    [`PendingHandshake`] while it does an async lookup, then decides.
//! 3. The `101` or the rejection is appended to the caller's output buffer, and the
//!    [`Outcome`] says which; bytes received after the request are handed back in it.
//!
//! A request the handshake refuses by itself (malformed, over a cap, a broken upgrade)
//! gets its answer (400, 405, 414, 426, 431) appended to the output and the
//! [`ProtocolError`] returned; the caller writes the output and closes. The error is
//! sticky: later calls return it again and write nothing more.

mod parse;
mod request;
mod response;

pub(crate) use parse::HeaderId;
pub use request::{Cookies, HeaderIter, ListItems, UpgradeRequest};
pub(crate) use request::{percent_decode, trim_ows};
pub use response::{
    Accept, AcceptKey, BearerError, Body, Challenge, Decision, HeaderText, Response, accept_key,
};

use crate::config::Config;
use crate::error::{Error, ProtocolError, UsageError};
use crate::time::Instant;
use crate::work::Work;
use alloc::vec::Vec;
use parse::{HeaderIndex, HeaderSpan, RequestLine, Scan, SeenIds, Span};

/// The server side of one opening handshake
///
/// Holds nothing until a request arrives in more than one piece; then at most
/// [`Config::max_request_bytes`] + 1 bytes. See the [module docs](self) for the flow.
/// `Debug` shows how much is buffered, never the bytes (they may hold a credential).
pub struct ServerHandshake {
    config: Config,
    /// Bytes of an unfinished request head; empty while requests arrive whole.
    buf: Vec<u8>,
    scan: Scan,
    state: State,
    /// Bytes handed to the scanner, over all calls: a bound on the work done.
    examined: Work,
    /// When the request head must be complete.
    deadline: Instant,
}

impl core::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("buffered", &self.buf.len())
            .field("lines", &self.scan.lines)
            .field("state", &self.state)
            .finish()
    }
}

#[derive(Debug)]
enum State {
    Reading,
    Finished,
    Failed(ProtocolError),
}

/// The result of a decided handshake
#[derive(Debug)]
pub enum Outcome<U> {
    /// The `101` is in the output buffer; the connection is open
    Accepted(Accepted<U>),
    /// Another response is in the output buffer; write it, then close the connection
    Rejected(Rejected),
}

/// An accepted handshake: the caller's data, the subprotocol echoed, and the bytes
/// that followed the request (the first frames, to feed to the connection)
///
/// `Debug` shows the length of the leftover bytes, not the bytes.
pub struct Accepted<U> {
    data: U,
    subprotocol: Option<HeaderText>,
    leftover: Vec<u8>,
    first_message_auth: bool,
}

impl<U> Accepted<U> {
    /// The data the decision attached
    pub fn data(&self) -> &U {
        &self.data
    }

    /// The data the decision attached, mutably
    pub fn data_mut(&mut self) -> &mut U {
        &mut self.data
    }

    /// The subprotocol sent in the `101`, if any
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Bytes received after the request head: the start of the WebSocket stream
    pub fn leftover(&self) -> &[u8] {
        &self.leftover
    }

    /// Whether the decision asked for first-message authentication
    /// ([`Accept::first_message_auth`])
    pub fn first_message_auth(&self) -> bool {
        self.first_message_auth
    }

    /// The data and the leftover bytes
    pub fn into_parts(self) -> (U, Vec<u8>) {
        (self.data, self.leftover)
    }

    pub(crate) fn into_connection_parts(self) -> (U, Vec<u8>, bool) {
        (self.data, self.leftover, self.first_message_auth)
    }
}

/// A handshake answered with a response other than `101`
///
/// `Debug` shows the length of the leftover bytes (a request body may hold a
/// password), not the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Rejected {
    status: u16,
    leftover: Vec<u8>,
}

impl Rejected {
    /// The status written
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Bytes received after the request head (a request body, say)
    pub fn leftover(&self) -> &[u8] {
        &self.leftover
    }
}

impl<U: core::fmt::Debug> core::fmt::Debug for Accepted<U> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Accepted")
            .field("data", &self.data)
            .field("subprotocol", &self.subprotocol)
            .field("leftover_len", &self.leftover.len())
            .field("first_message_auth", &self.first_message_auth)
            .finish()
    }
}

impl core::fmt::Debug for Rejected {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rejected")
            .field("status", &self.status)
            .field("leftover_len", &self.leftover.len())
            .finish()
    }
}

impl ServerHandshake {
    /// A handshake whose connection was accepted at `now`, enforcing `config`'s
    /// limits and its [handshake deadline](Config::handshake_timeout)
    pub fn new(config: &Config, now: Instant) -> Self {
        ServerHandshake {
            config: config.clone(),
            buf: Vec::new(),
            scan: Scan::default(),
            state: State::Reading,
            examined: Work::default(),
            deadline: now + config.handshake_timeout(),
        }
    }

    /// When the caller's timer must fire: the request's deadline, while it is still
    /// arriving
    pub fn poll_timeout(&self) -> Option<Instant> {
        matches!(self.state, State::Reading).then_some(self.deadline)
    }

    /// The caller's timer fired at `now`: a request still incomplete at its deadline
    /// is answered `408` (appended to `out`), and the handshake fails
    ///
    /// Before the deadline, or once the request is complete, this does nothing. The
    /// bytes held for the request are freed: a client that stalls costs only what it
    /// sent, and only until its deadline.
    ///
    /// # Errors
    /// [`ProtocolError::HandshakeTimeout`], once the deadline passed; the caller MUST
    /// write `out` and close the connection.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<u8>) -> Result<(), Error> {
        match self.state {
            State::Reading if now >= self.deadline => {
                Err(self.fail(ProtocolError::HandshakeTimeout, out))
            }
            _ => Ok(()),
        }
    }

    /// Feed received bytes; once the request is complete, decide and answer
    ///
    /// Returns `Ok(None)` while the request is incomplete (`decide` is not called).
    /// Once it is complete, `decide` runs on the parsed request and the response is
    /// appended to `out`: `Ok(Some(Outcome::Accepted(..)))` for a `101`,
    /// `Ok(Some(Outcome::Rejected(..)))` for any other response.
    ///
    /// # Errors
    /// - [`Error::Protocol`]: the request is malformed, over a cap, or a broken upgrade.
    ///   Its answer (see [`ProtocolError::status_hint`]) is appended to `out`.
    /// - [`Error::Usage`]: the decision cannot be carried out (a subprotocol the client
    ///   did not offer, a bad header); a `500` is appended to `out`. Also returned for
    ///   input after the handshake finished.
    ///
    /// In every error case the caller MUST write `out` and close the connection.
    pub fn handle_input<U, F>(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        decide: F,
    ) -> Result<Option<Outcome<U>>, Error>
    where
        F: FnOnce(&UpgradeRequest<'_>) -> Decision<U>,
    {
        let mut index = HeaderIndex::default();
        let Some(found) = self.feed(input, out, &mut index)? else {
            return Ok(None);
        };
        let buf = core::mem::take(&mut self.buf);
        let (head, leftover) = found.split(&buf, input);
        let req = match UpgradeRequest::new(head, self.scan.request_line, &index) {
            Ok(req) => req,
            Err(e) => return Err(self.fail(e, out)),
        };
        let decision = decide(&req);
        respond(&req, decision, leftover, out).map(Some)
    }

    /// Feed received bytes; once the request is complete, hand it over undecided
    ///
    /// Returns `Ok(None)` while the request is incomplete. The [`PendingHandshake`]
    /// owns a copy of the request, so it can be held across an async lookup (it is
    /// `Send + 'static`) and then decided.
    ///
    /// # Errors
    /// As [`handle_input`](Self::handle_input), but decision errors come from
    /// [`PendingHandshake::decide`].
    pub fn handle_input_deferred(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<PendingHandshake>, Error> {
        let mut index = HeaderIndex::default();
        let Some(found) = self.feed(input, out, &mut index)? else {
            return Ok(None);
        };
        let mut buf = core::mem::take(&mut self.buf);
        let head_len = match found {
            Found::InInput { end } => {
                buf.extend_from_slice(input);
                end
            }
            Found::InBuf { end, input_used } => {
                buf.extend_from_slice(&input[input_used..]);
                end
            }
        };
        let line = self.scan.request_line;
        let key = match UpgradeRequest::new(&buf[..head_len], line, &index) {
            Ok(req) => req.key_span(),
            Err(e) => return Err(self.fail(e, out)),
        };
        Ok(Some(PendingHandshake {
            headers: index.as_slice().to_vec(),
            seen: *index.seen_ids(),
            buf,
            head_len,
            line,
            key,
        }))
    }

    /// Take `input` into the scan. `Some` once the head is complete; `index` then
    /// holds its headers.
    fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        index: &mut HeaderIndex,
    ) -> Result<Option<Found>, Error> {
        match self.state {
            State::Reading => {}
            State::Finished => return Err(UsageError::HandshakeFinished.into()),
            State::Failed(e) => return Err(e.into()),
        }
        // Never look at more than one byte past the cap: a 20 MB line costs 32 KiB.
        let room = (self.config.max_request_bytes() + 1).saturating_sub(self.buf.len());
        let take = input.len().min(room);
        let scanned = if self.buf.is_empty() {
            // Fast path: a request that arrives whole is parsed in place, no copy.
            self.examined.add(take as u64);
            let scanned = self.scan.scan(&input[..take], &self.config, Some(index));
            if let Ok(None) = scanned {
                self.buf.extend_from_slice(&input[..take]);
            }
            scanned.map(|end| end.map(|end| Found::InInput { end }))
        } else {
            self.buf.extend_from_slice(&input[..take]);
            self.examined
                .add((self.buf.len() - self.scan.position()) as u64);
            match self.scan.scan(&self.buf, &self.config, None) {
                // A request that came in pieces is indexed in one more pass.
                Ok(Some(end)) => self.reindex(end, index).map(|()| {
                    Some(Found::InBuf {
                        end,
                        input_used: take,
                    })
                }),
                other => other.map(|_| None),
            }
        };
        match scanned {
            Ok(Some(found)) => {
                self.state = State::Finished;
                Ok(Some(found))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.fail(e, out)),
        }
    }

    /// Scan the complete head in `self.buf[..end]` again, filling `index`.
    fn reindex(&mut self, end: usize, index: &mut HeaderIndex) -> Result<(), ProtocolError> {
        self.scan = Scan::default();
        self.examined.add(end as u64);
        match self.scan.scan(&self.buf[..end], &self.config, Some(index)) {
            Ok(Some(again)) if again == end => Ok(()),
            // The same bytes scan the same way; this arm is never taken.
            Ok(_) => Err(ProtocolError::MalformedLineEnding),
            Err(e) => Err(e),
        }
    }

    /// Bytes handed to the request scanner so far, each time counted (it may stop
    /// before their end): a bound on the work done
    ///
    /// For tests that bound the work (linear in the input, whatever its split, and
    /// never past the caps); with the `work-counters` feature only, not a stable API.
    #[cfg(feature = "work-counters")]
    #[doc(hidden)]
    pub fn bytes_examined(&self) -> u64 {
        self.examined.bytes()
    }

    fn fail(&mut self, e: ProtocolError, out: &mut Vec<u8>) -> Error {
        self.state = State::Failed(e);
        self.buf = Vec::new();
        response::write_protocol_error(e, out);
        e.into()
    }
}

/// Where the complete head is: at the start of this call's input, or in the buffer
/// (which then holds `input[..input_used]` at its end).
#[derive(Debug, Clone, Copy)]
enum Found {
    InInput { end: usize },
    InBuf { end: usize, input_used: usize },
}

impl Found {
    /// The head, and the bytes after it as one owned buffer.
    fn split<'a>(self, buf: &'a [u8], input: &'a [u8]) -> (&'a [u8], Vec<u8>) {
        match self {
            Found::InInput { end } => (&input[..end], input[end..].to_vec()),
            Found::InBuf { end, input_used } => {
                let mut rest = Vec::with_capacity(buf.len() - end + input.len() - input_used);
                rest.extend_from_slice(&buf[end..]);
                rest.extend_from_slice(&input[input_used..]);
                (&buf[..end], rest)
            }
        }
    }
}

/// A complete, valid request whose decision is still to come
///
/// Owns a copy of the request and the bytes after it. Look at it with
/// [`request`](Self::request), do any lookup (async or not), then call
/// [`decide`](Self::decide).
///
/// ```
/// use wsgate::{Config, Decision, Instant, Outcome, Response, ServerHandshake};
///
/// let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
/// let mut out = Vec::new();
/// let req = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
///             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///             Sec-WebSocket-Version: 13\r\n\r\n";
/// let pending = hs.handle_input_deferred(req, &mut out).unwrap().unwrap();
/// let user = (pending.request().path() == "/chat").then_some("alice"); // e.g. an async lookup
/// let decision = match user {
///     Some(u) => Decision::accept(u),
///     None => Decision::reject(Response::forbidden()),
/// };
/// match pending.decide(decision, &mut out).unwrap() {
///     Outcome::Accepted(a) => assert_eq!(*a.data(), "alice"),
///     Outcome::Rejected(_) => unreachable!(),
/// }
/// assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// ```
#[derive(Clone)]
pub struct PendingHandshake {
    /// The head, then the bytes that followed it.
    buf: Vec<u8>,
    head_len: usize,
    line: RequestLine,
    headers: Vec<HeaderSpan>,
    seen: SeenIds,
    key: Option<Span>,
}

impl core::fmt::Debug for PendingHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingHandshake")
            .field("request", &self.request())
            .field("leftover_len", &self.leftover().len())
            .finish()
    }
}

impl PendingHandshake {
    /// The request
    pub fn request(&self) -> UpgradeRequest<'_> {
        UpgradeRequest::revalidated(
            &self.buf[..self.head_len],
            self.line,
            &self.headers,
            &self.seen,
            self.key,
        )
    }

    /// Bytes received after the request head
    pub fn leftover(&self) -> &[u8] {
        &self.buf[self.head_len..]
    }

    /// Carry out `decision`: append the `101` or the response to `out`
    ///
    /// # Errors
    /// [`Error::Usage`] when the decision cannot be carried out; a `500` is appended
    /// to `out` and the caller MUST write it and close.
    pub fn decide<U>(self, decision: Decision<U>, out: &mut Vec<u8>) -> Result<Outcome<U>, Error> {
        let leftover = self.leftover().to_vec();
        respond(&self.request(), decision, leftover, out)
    }
}

/// Turn the decision into response bytes and an outcome.
fn respond<U>(
    req: &UpgradeRequest<'_>,
    decision: Decision<U>,
    leftover: Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<Outcome<U>, Error> {
    let mark = out.len();
    let head_only = req.is_head();
    let result = match (decision, req.websocket_key_bytes()) {
        (Decision::Accept(accept), Some(key)) => {
            let (data, subprotocol, headers, first_message_auth) = accept.into_parts();
            match subprotocol.as_deref() {
                Some(p) if !req.offers_subprotocol(p) => Err(UsageError::SubprotocolNotOffered),
                p => response::write_accept(key, p, &headers, out),
            }
            .map(|()| {
                Outcome::Accepted(Accepted {
                    data,
                    subprotocol,
                    leftover,
                    first_message_auth,
                })
            })
        }
        (Decision::Accept(_), None) => {
            Response::upgrade_required()
                .write(head_only, out)
                .map(|()| {
                    Outcome::Rejected(Rejected {
                        status: 426,
                        leftover,
                    })
                })
        }
        (Decision::Reject(response), _) => response.write(head_only, out).map(|()| {
            Outcome::Rejected(Rejected {
                status: response.status(),
                leftover,
            })
        }),
    };
    result.map_err(|e| {
        out.truncate(mark);
        response::write_internal_error(out);
        e.into()
    })
}
