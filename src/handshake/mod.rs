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

mod request;
mod response;

use std::mem::MaybeUninit;

pub use request::{Cookies, HeaderIter, ListItems, UpgradeRequest};
pub(crate) use request::{percent_decode, query_pairs_raw, trim_ows};
pub use response::{
    Accept, AcceptKey, BearerError, Body, Challenge, Decision, HeaderText, Response, accept_key,
};

use crate::config::{Config, MAX_HEADERS_CEILING};
use crate::error::{Error, ProtocolError, UsageError};
use request::OwnedIndex;

/// The server side of one opening handshake
///
/// Holds nothing until a request arrives in more than one piece; then at most
/// [`Config::max_request_bytes`] + 1 bytes. See the [module docs](self) for the flow.
#[derive(Debug)]
pub struct ServerHandshake {
    config: Config,
    /// Bytes of an unfinished request head; empty while requests arrive whole.
    buf: Vec<u8>,
    scan: Scan,
    state: State,
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
#[derive(Debug)]
pub struct Accepted<U> {
    data: U,
    subprotocol: Option<HeaderText>,
    leftover: Vec<u8>,
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

    /// The data and the leftover bytes
    pub fn into_parts(self) -> (U, Vec<u8>) {
        (self.data, self.leftover)
    }
}

/// A handshake answered with a response other than `101`
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl ServerHandshake {
    /// A handshake that enforces `config`'s limits
    pub fn new(config: &Config) -> Self {
        ServerHandshake {
            config: config.clone(),
            buf: Vec::new(),
            scan: Scan::default(),
            state: State::Reading,
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
        let Some(found) = self.feed(input, out)? else {
            return Ok(None);
        };
        let buf = std::mem::take(&mut self.buf);
        let (head, leftover) = found.split(&buf, input);
        let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS_CEILING];
        let req = match request::parse(head, &mut storage) {
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
        let Some(found) = self.feed(input, out)? else {
            return Ok(None);
        };
        let mut buf = std::mem::take(&mut self.buf);
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
        let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS_CEILING];
        let index = match request::parse(&buf[..head_len], &mut storage) {
            Ok(req) => req.index(&buf[..head_len]),
            Err(e) => return Err(self.fail(e, out)),
        };
        Ok(Some(PendingHandshake {
            buf,
            head_len,
            index,
        }))
    }

    /// Take `input` into the scan. `Some` once the head is complete.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Option<Found>, Error> {
        match self.state {
            State::Reading => {}
            State::Finished => return Err(UsageError::HandshakeFinished.into()),
            State::Failed(e) => return Err(e.into()),
        }
        // Never look at more than one byte past the cap: a 20 MB line costs 32 KiB.
        let room = self.config.max_request_bytes() + 1 - self.buf.len();
        let take = input.len().min(room);
        let scanned = if self.buf.is_empty() {
            // Fast path: a request that arrives whole is parsed in place, no copy.
            match self.scan.scan(&input[..take], &self.config) {
                Ok(Some(end)) => Ok(Some(Found::InInput { end })),
                Ok(None) => {
                    self.buf.extend_from_slice(&input[..take]);
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        } else {
            self.buf.extend_from_slice(&input[..take]);
            self.scan.scan(&self.buf, &self.config).map(|end| {
                end.map(|end| Found::InBuf {
                    end,
                    input_used: take,
                })
            })
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

/// Incremental line scan: each byte is examined once across all calls.
#[derive(Debug, Default)]
struct Scan {
    /// Bytes of the buffer already examined.
    pos: usize,
    /// Start of the current (unfinished) line.
    line_start: usize,
    /// Complete lines seen: the request line, then headers.
    lines: usize,
}

impl Scan {
    /// Examine `buf[self.pos..]`. `Some(end)` when the empty line ending the head is
    /// found; `end` is the length of the head.
    fn scan(&mut self, buf: &[u8], config: &Config) -> Result<Option<usize>, ProtocolError> {
        let start = self.pos;
        // The checks run in the order that byte-at-a-time feeding would trip them, so
        // any split of the same bytes ends in the same error.
        for i in memchr::memchr_iter(b'\n', &buf[start..]).map(|i| i + start) {
            // Bytes of the line before the LF, its CR included.
            let line_len = i - self.line_start;
            if line_len > config.max_line_bytes() + 1 {
                return Err(self.line_too_long());
            }
            if i >= config.max_request_bytes() {
                return Err(self.too_large());
            }
            if line_len == 0 || buf[i - 1] != b'\r' {
                return Err(ProtocolError::MalformedLineEnding);
            }
            if self.lines == 0 {
                // RFC 9112 §2.2: ignore empty lines before the request line.
                if line_len > 1 {
                    self.lines = 1;
                }
            } else if line_len == 1 {
                self.pos = i + 1;
                return Ok(Some(i + 1));
            } else if self.lines > config.max_headers() {
                return Err(ProtocolError::TooManyHeaders);
            } else {
                self.lines += 1;
            }
            self.line_start = i + 1;
        }
        self.pos = buf.len();
        // The unfinished line may end in the CR of its CRLF.
        if buf.len() - self.line_start > config.max_line_bytes() + 1 {
            return Err(self.line_too_long());
        }
        if buf.len() > config.max_request_bytes() {
            return Err(self.too_large());
        }
        Ok(None)
    }

    fn line_too_long(&self) -> ProtocolError {
        if self.lines == 0 {
            ProtocolError::RequestLineTooLong
        } else {
            ProtocolError::HeaderLineTooLong
        }
    }

    fn too_large(&self) -> ProtocolError {
        if self.lines == 0 {
            ProtocolError::RequestLineTooLong
        } else {
            ProtocolError::RequestTooLarge
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
/// use wsgate::{Config, Decision, Outcome, Response, ServerHandshake};
///
/// let mut hs = ServerHandshake::new(&Config::default());
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
    index: OwnedIndex,
}

impl std::fmt::Debug for PendingHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingHandshake")
            .field("request", &self.request())
            .field("leftover_len", &self.leftover().len())
            .finish()
    }
}

impl PendingHandshake {
    /// The request
    pub fn request(&self) -> UpgradeRequest<'_> {
        UpgradeRequest::from_index(&self.buf[..self.head_len], &self.index)
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
    let head_only = req.method() == "HEAD";
    let result = match (decision, req.websocket_key()) {
        (Decision::Accept(accept), Some(key)) => {
            let (data, subprotocol, headers) = accept.into_parts();
            match subprotocol.as_deref() {
                Some(p) if !req.offers_subprotocol(p) => Err(UsageError::SubprotocolNotOffered),
                p => response::write_accept(key.as_bytes(), p, &headers, out),
            }
            .map(|()| {
                Outcome::Accepted(Accepted {
                    data,
                    subprotocol,
                    leftover,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(bytes: &[u8]) -> Result<Option<usize>, ProtocolError> {
        Scan::default().scan(bytes, &Config::default())
    }

    #[test]
    fn scan_finds_the_empty_line() {
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"),
            Ok(Some(24))
        );
        assert_eq!(scan_all(b"\r\nGET / HTTP/1.1\r\n\r\n"), Ok(Some(20)));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nA: b\r\n"), Ok(None));
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\nA: b\n\n"),
            Err(ProtocolError::MalformedLineEnding)
        );
        assert_eq!(scan_all(b"\n"), Err(ProtocolError::MalformedLineEnding));
    }

    #[test]
    fn scan_resumes_where_it_stopped() {
        let bytes = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        let mut scan = Scan::default();
        for n in 1..bytes.len() {
            assert_eq!(scan.scan(&bytes[..n], &Config::default()), Ok(None));
            assert_eq!(scan.pos, n);
        }
        assert_eq!(scan.scan(bytes, &Config::default()), Ok(Some(bytes.len())));
    }
}
