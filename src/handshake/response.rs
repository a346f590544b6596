//! What the decision returns, and the bytes of the `101` or the rejection

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use sha1::digest::core_api::Block;
use sha1::{Digest, Sha1, Sha1Core};

use super::parse::is_token;
use crate::error::{ProtocolError, UsageError};

/// A header name or value the caller hands over: static text costs no allocation
pub type HeaderText = Cow<'static, str>;

/// The GUID of RFC 6455 §1.3, appended to the key before hashing
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Headers the `101` writes itself; a decision may not set them
const RESERVED_ON_ACCEPT: [&str; 7] = [
    "upgrade",
    "connection",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

/// Headers every rejection writes itself; a decision may not set them
const RESERVED_ON_REJECT: [&str; 3] = ["connection", "content-length", "transfer-encoding"];

/// The caller's verdict on a request
///
/// Returned by the closure given to
/// [`ServerHandshake::handle_input`](crate::ServerHandshake::handle_input), or passed to
/// [`PendingHandshake::decide`](crate::PendingHandshake::decide).
#[derive(Debug)]
pub enum Decision<U> {
    /// Answer `101 Switching Protocols`; `U` is the caller's data for this connection
    /// (the authenticated user, say), handed back in
    /// [`Accepted`](crate::Accepted). Accepting a request that is not a WebSocket
    /// upgrade answers `426 Upgrade Required` instead.
    Accept(Accept<U>),
    /// Answer with this response and close: a `401`, a `403`, or, for a plain HTTP
    /// request, any response such as a `200` page
    Reject(Response),
}

impl<U> Decision<U> {
    /// Accept with `data`, no subprotocol and no extra headers
    pub fn accept(data: U) -> Self {
        Decision::Accept(Accept::new(data))
    }

    /// Answer with `response`
    pub fn reject(response: Response) -> Self {
        Decision::Reject(response)
    }
}

impl<U> From<Accept<U>> for Decision<U> {
    fn from(accept: Accept<U>) -> Self {
        Decision::Accept(accept)
    }
}

impl<U> From<Response> for Decision<U> {
    fn from(response: Response) -> Self {
        Decision::Reject(response)
    }
}

/// An acceptance: the caller's data, an optional subprotocol, extra headers
///
/// ```
/// use wsgate::Accept;
/// let accept = Accept::new("alice").subprotocol("access_token").header("X-Served-By", "a");
/// assert_eq!(accept.data(), &"alice");
/// ```
pub struct Accept<U> {
    data: U,
    subprotocol: Option<HeaderText>,
    headers: Vec<(HeaderText, HeaderText)>,
    first_message_auth: bool,
}

impl<U: fmt::Debug> fmt::Debug for Accept<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accept")
            .field("data", &self.data)
            .field("subprotocol", &self.subprotocol)
            .field("headers", &HeaderNames(&self.headers))
            .field("first_message_auth", &self.first_message_auth)
            .finish()
    }
}

/// Prints header names only: values the caller sets (a `Set-Cookie` carrying a fresh
/// token, say) stay out of `Debug`.
struct HeaderNames<'a>(&'a [(HeaderText, HeaderText)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

impl<U> Accept<U> {
    /// Accept with `data`
    pub fn new(data: U) -> Self {
        Accept {
            data,
            subprotocol: None,
            headers: Vec::new(),
            first_message_auth: false,
        }
    }

    /// The handshake carried no credential: the connection's first message must
    /// (see [`connection`](crate::connection#first-message-authentication)). It travels
    /// with the [`Accepted`](crate::Accepted) into
    /// [`ServerConnection::from_accepted`](crate::ServerConnection::from_accepted).
    #[must_use]
    pub fn first_message_auth(mut self) -> Self {
        self.first_message_auth = true;
        self
    }

    /// Echo `protocol` in `Sec-WebSocket-Protocol`; it MUST be one the client offered,
    /// or the handshake fails with [`UsageError::SubprotocolNotOffered`]
    pub fn subprotocol(mut self, protocol: impl Into<HeaderText>) -> Self {
        self.subprotocol = Some(protocol.into());
        self
    }

    /// Add a header to the `101`
    pub fn header(mut self, name: impl Into<HeaderText>, value: impl Into<HeaderText>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The caller's data
    pub fn data(&self) -> &U {
        &self.data
    }

    #[allow(clippy::type_complexity)]
    pub(crate) fn into_parts(self) -> (U, Option<HeaderText>, Vec<(HeaderText, HeaderText)>, bool) {
        (
            self.data,
            self.subprotocol,
            self.headers,
            self.first_message_auth,
        )
    }
}

/// An error code of a Bearer challenge (RFC 6750 §3.1)
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// The request is malformed (answer with 400)
    InvalidRequest,
    /// The token presented is expired, revoked, malformed or unknown
    InvalidToken,
    /// The token lacks the scope the resource needs (answer with 403)
    InsufficientScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Basic,
}

/// A `WWW-Authenticate` challenge
///
/// ```
/// use wsgate::Challenge;
/// let bearer = Challenge::bearer("api").error(wsgate::BearerError::InvalidToken);
/// let basic = Challenge::basic("api");
/// # let _ = (bearer, basic);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: Scheme,
    realm: HeaderText,
    error: Option<BearerError>,
}

impl Challenge {
    /// `Bearer realm="<realm>"` (RFC 6750 §3)
    pub fn bearer(realm: impl Into<HeaderText>) -> Self {
        Challenge {
            scheme: Scheme::Bearer,
            realm: realm.into(),
            error: None,
        }
    }

    /// `Basic realm="<realm>", charset="UTF-8"` (RFC 7617 §2): a browser given
    /// `ws://user:pass@host/` retries with these credentials after this challenge
    pub fn basic(realm: impl Into<HeaderText>) -> Self {
        Challenge {
            scheme: Scheme::Basic,
            realm: realm.into(),
            error: None,
        }
    }

    /// Add `error="..."` to a Bearer challenge; ignored on Basic
    pub fn error(mut self, error: BearerError) -> Self {
        if self.scheme == Scheme::Bearer {
            self.error = Some(error);
        }
        self
    }

    /// The challenge, as the value of a `WWW-Authenticate` header.
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.scheme {
            Scheme::Bearer => b"Bearer realm=\"",
            Scheme::Basic => b"Basic realm=\"",
        });
        self.write_rest(out);
    }

    /// The whole `WWW-Authenticate` header line.
    fn write_header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.scheme {
            Scheme::Bearer => b"WWW-Authenticate: Bearer realm=\"",
            Scheme::Basic => b"WWW-Authenticate: Basic realm=\"",
        });
        self.write_rest(out);
        out.extend_from_slice(b"\r\n");
    }

    /// What follows `realm="`.
    fn write_rest(&self, out: &mut Vec<u8>) {
        let realm = self.realm.as_bytes();
        if realm.iter().any(|&b| b == b'"' || b == b'\\') {
            for &b in realm {
                if b == b'"' || b == b'\\' {
                    out.push(b'\\');
                }
                out.push(b);
            }
        } else {
            out.extend_from_slice(realm);
        }
        out.extend_from_slice(match self.scheme {
            Scheme::Bearer => b"\"",
            Scheme::Basic => b"\", charset=\"UTF-8\"",
        });
        if let Some(error) = self.error {
            out.extend_from_slice(match error {
                BearerError::InvalidRequest => b", error=\"invalid_request\"",
                BearerError::InvalidToken => b", error=\"invalid_token\"",
                BearerError::InsufficientScope => b", error=\"insufficient_scope\"",
            });
        }
    }
}

/// A response other than `101`: a rejection, or the answer to a plain HTTP request
///
/// The handshake always adds `Content-Length` and `Connection: close` (`Connection:
/// Upgrade, close` when an `Upgrade` header names a protocol, as in a 426), and a
/// `Content-Type: text/plain` unless one is set. The default body is the status line's
/// reason (`401 Unauthorized`); nothing from the request is ever echoed.
///
/// ```
/// use wsgate::{Challenge, Response};
/// let r = Response::unauthorized_bearer("api").invalid_token().with_challenge(Challenge::basic("api"));
/// assert_eq!(r.status(), 401);
/// let page = Response::new(200).header("Content-Type", "text/html").body("<h1>hi</h1>");
/// # let _ = page;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    /// Two slots without allocation: enough for Bearer and Basic side by side.
    challenges: [Option<Challenge>; 2],
    headers: Vec<(HeaderText, HeaderText)>,
    body: Option<Cow<'static, [u8]>>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("challenges", &self.challenges)
            .field("headers", &HeaderNames(&self.headers))
            .field("body_len", &self.body.as_ref().map(|b| b.len()))
            .finish()
    }
}

impl Response {
    /// A response with `status` (200..=599) and the default body
    pub fn new(status: u16) -> Self {
        Response {
            status,
            challenges: [None, None],
            headers: Vec::new(),
            body: None,
        }
    }

    /// `400 Bad Request`
    pub fn bad_request() -> Self {
        Response::new(400)
    }

    /// `401 Unauthorized` with `challenge`
    pub fn unauthorized(challenge: Challenge) -> Self {
        Response::new(401).with_challenge(challenge)
    }

    /// `401 Unauthorized` with `WWW-Authenticate: Bearer realm="<realm>"`
    pub fn unauthorized_bearer(realm: impl Into<HeaderText>) -> Self {
        Response::unauthorized(Challenge::bearer(realm))
    }

    /// `401 Unauthorized` with `WWW-Authenticate: Basic realm="<realm>", charset="UTF-8"`
    pub fn unauthorized_basic(realm: impl Into<HeaderText>) -> Self {
        Response::unauthorized(Challenge::basic(realm))
    }

    /// `403 Forbidden`: the credential is fine but not allowed here
    pub fn forbidden() -> Self {
        Response::new(403)
    }

    /// `426 Upgrade Required` with `Upgrade: websocket`: the default answer to a plain
    /// HTTP request that the decision accepted
    pub fn upgrade_required() -> Self {
        Response::new(426).header("Upgrade", "websocket")
    }

    /// Mark every Bearer challenge `error="invalid_token"`: a token was presented and
    /// is not valid (RFC 6750 §3.1)
    pub fn invalid_token(mut self) -> Self {
        for c in self.challenges.iter_mut().flatten() {
            *c = c.clone().error(BearerError::InvalidToken);
        }
        self
    }

    /// Add a `WWW-Authenticate` challenge (several may be given, e.g. Bearer and Basic)
    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        match self.challenges.iter_mut().find(|c| c.is_none()) {
            Some(slot) => *slot = Some(challenge),
            None => {
                let mut value = Vec::new();
                challenge.write(&mut value);
                let value = String::from_utf8_lossy(&value).into_owned();
                self.headers.push(("WWW-Authenticate".into(), value.into()));
            }
        }
        self
    }

    /// Add a header
    pub fn header(mut self, name: impl Into<HeaderText>, value: impl Into<HeaderText>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replace the default body (text or bytes; static ones are not copied)
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = Some(body.into().0);
        self
    }

    /// The status code
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Append the response to `out`. `head_only` (a `HEAD` request) omits the body.
    pub(crate) fn write(&self, head_only: bool, out: &mut Vec<u8>) -> Result<(), UsageError> {
        if !(200..=599).contains(&self.status) {
            return Err(UsageError::InvalidStatus(self.status));
        }
        check_headers(&self.headers, &RESERVED_ON_REJECT)?;
        for c in self.challenges.iter().flatten() {
            check_value(c.realm.as_bytes())?;
        }
        if let (true, None, Some(texts)) = (
            self.headers.is_empty(),
            &self.body,
            status_texts(self.status),
        ) {
            // The usual rejection (a 401 with its challenges, say): the status line,
            // the challenges, then one tail built at compile time.
            // A challenge line is at most 80 bytes besides its (escaped) realm.
            let challenges: usize = self
                .challenges
                .iter()
                .flatten()
                .map(|c| 80 + 2 * c.realm.len())
                .sum();
            out.reserve(texts.line.len() + challenges + texts.tail_len);
            out.extend_from_slice(texts.line.as_bytes());
            for c in self.challenges.iter().flatten() {
                c.write_header(out);
            }
            out.extend_from_slice(texts.tail(head_only));
            return Ok(());
        }
        // One allocation at most when `out` starts empty: the fixed lines fit in 192.
        let challenges: usize = self
            .challenges
            .iter()
            .flatten()
            .map(|c| c.realm.len())
            .sum();
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        let body = self.body.as_ref().map_or(0, |b| b.len());
        out.reserve(192 + 2 * challenges + headers + body);
        write_status_line(self.status, out);
        for c in self.challenges.iter().flatten() {
            c.write_header(out);
        }
        write_headers(&self.headers, out);
        let named = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let (has_type, upgrade) = (named("content-type"), named("upgrade"));
        let rest = |parts: &[&[u8]], out: &mut Vec<u8>| {
            write_rest(has_type, upgrade, parts, self.status, head_only, out)
        };
        match (&self.body, status_texts(self.status)) {
            (Some(body), _) => rest(&[body], out),
            (None, Some(texts)) => rest(&[texts.body.as_bytes()], out),
            (None, None) => {
                let digits = status_digits(self.status);
                rest(&[&digits[..], b" \n"], out)
            }
        }
        Ok(())
    }
}

/// A response body: converts from `&'static str`, `String`, `&'static [u8]`, `Vec<u8>`
#[derive(Clone, PartialEq, Eq)]
pub struct Body(Cow<'static, [u8]>);

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({} bytes)", self.0.len())
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body(Cow::Borrowed(s.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body(Cow::Owned(s.into_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(b: &'static [u8]) -> Self {
        Body(Cow::Borrowed(b))
    }
}

impl<const N: usize> From<&'static [u8; N]> for Body {
    fn from(b: &'static [u8; N]) -> Self {
        Body(Cow::Borrowed(b))
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body(Cow::Owned(b))
    }
}

/// Write the answer to a request the handshake refused before any decision.
pub(crate) fn write_protocol_error(err: ProtocolError, out: &mut Vec<u8>) {
    let status = err.status_hint();
    write_status_line(status, out);
    match err {
        ProtocolError::MethodNotAllowed => out.extend_from_slice(b"Allow: GET\r\n"),
        // RFC 6455 §4.4, and RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
        ProtocolError::UnsupportedVersion => {
            out.extend_from_slice(b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n")
        }
        _ => {}
    }
    let upgrade = err == ProtocolError::UnsupportedVersion;
    let message = err.to_string();
    let digits = status_digits(status);
    let body = [
        &digits[..],
        b" ",
        reason(status).as_bytes(),
        b": ",
        message.as_bytes(),
        b"\n",
    ];
    write_rest(false, upgrade, &body, status, false, out);
}

/// Write `500` for a decision the handshake could not carry out (a usage error).
pub(crate) fn write_internal_error(out: &mut Vec<u8>) {
    write_status_line(500, out);
    write_rest(
        false,
        false,
        &[b"500 Internal Server Error\n"],
        500,
        false,
        out,
    );
}

/// `Content-Type` (unless set), `Content-Length`, `Connection`, the blank line and the
/// body made of `parts`.
///
/// A response that names a protocol in `Upgrade` (a 426) lists `Upgrade` in
/// `Connection` too, as RFC 9110 §7.8 asks of every sender of `Upgrade`.
fn write_rest(
    has_type: bool,
    upgrade: bool,
    parts: &[&[u8]],
    status: u16,
    head_only: bool,
    out: &mut Vec<u8>,
) {
    let connection: &[u8] = if upgrade {
        b"Connection: Upgrade, close\r\n"
    } else {
        b"Connection: close\r\n"
    };
    let no_body = status == 204 || status == 304;
    if no_body {
        out.extend_from_slice(connection);
        out.extend_from_slice(b"\r\n");
        return;
    }
    out.extend_from_slice(if has_type {
        b"Content-Length: "
    } else {
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: "
    });
    write_decimal(parts.iter().map(|p| p.len()).sum(), out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(connection);
    out.extend_from_slice(b"\r\n");
    if !head_only {
        for p in parts {
            out.extend_from_slice(p);
        }
    }
}

/// Write the `101 Switching Protocols` response (RFC 6455 §4.2.2).
pub(crate) fn write_accept(
    key: &[u8],
    subprotocol: Option<&str>,
    headers: &[(HeaderText, HeaderText)],
    out: &mut Vec<u8>,
) -> Result<(), UsageError> {
    check_headers(headers, &RESERVED_ON_ACCEPT)?;
    if let Some(p) = subprotocol {
        check_value(p.as_bytes())?;
    }
    // The hash first (a validated key is always 24 bytes), the encoding last: the
    // hash's latency then overlaps the copy of the lines that do not need it.
    let digest = <&[u8; 24]>::try_from(key).map(sha1_of_key_and_guid);
    let headers_len: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    out.reserve(160 + subprotocol.map_or(0, |p| p.len()) + headers_len);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    let accept = match digest {
        Ok(digest) => AcceptKey(base64_of_digest(&digest)),
        Err(_) => accept_key(key),
    };
    if subprotocol.is_none() && headers.is_empty() {
        // The usual 101 ends here: the value and both line ends in one copy.
        let mut last = [0; 32];
        last[..28].copy_from_slice(&accept.0);
        last[28..].copy_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&last);
        return Ok(());
    }
    out.extend_from_slice(&accept.0);
    out.extend_from_slice(b"\r\n");
    if let Some(p) = subprotocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    write_headers(headers, out);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2):
/// base64(SHA-1(key ++ GUID))
///
/// ```
/// let accept = wsgate::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> AcceptKey {
    if let Ok(key) = <&[u8; 24]>::try_from(key) {
        return AcceptKey(base64_of_digest(&sha1_of_key_and_guid(key)));
    }
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID);
    AcceptKey(base64_of_digest(&sha.finalize().into()))
}

/// SHA-1 of a 24-byte key (every valid key is) followed by the GUID.
///
/// Those 60 bytes always pad to the same two blocks, laid out here and handed to the
/// compression function directly (it uses SHA-NI where the CPU has it); the general
/// hasher's buffering costs about as much as the hashing for so short a message.
fn sha1_of_key_and_guid(key: &[u8; 24]) -> [u8; 20] {
    let mut blocks = [Block::<Sha1Core>::default(); 2];
    blocks[0][..24].copy_from_slice(key);
    blocks[0][24..60].copy_from_slice(WEBSOCKET_GUID);
    // Padding: a 1 bit, zeros, the message length in bits (big-endian).
    blocks[0][60] = 0x80;
    blocks[1][56..].copy_from_slice(&(60u64 * 8).to_be_bytes());
    let mut state = [
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    sha1::compress(&mut state, &blocks);
    let mut digest = [0u8; 20];
    for (bytes, word) in digest.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// Standard base64 (with padding) of a 20-byte SHA-1 digest: always 28 characters.
///
/// Written out for the one fixed size: the general encoder's checks and loops
/// cost more than the encoding itself here.
fn base64_of_digest(digest: &[u8; 20]) -> [u8; 28] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = [b'='; 28];
    // Six groups of 3 bytes make 24 characters; the last 2 bytes make 3 more and `=`.
    for (bytes, chars) in digest.chunks(3).zip(text.chunks_mut(4)) {
        let group = bytes
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for (j, c) in chars.iter_mut().enumerate().take(bytes.len() + 1) {
            *c = ALPHABET[(group >> (18 - 6 * j)) as usize & 63];
        }
    }
    text
}

/// A `Sec-WebSocket-Accept` value, 28 base64 characters held inline
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AcceptKey([u8; 28]);

impl AcceptKey {
    /// The value as text
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AcceptKey").field(&self.as_str()).finish()
    }
}

fn check_headers(
    headers: &[(HeaderText, HeaderText)],
    reserved: &[&'static str],
) -> Result<(), UsageError> {
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(UsageError::InvalidHeaderName);
        }
        if let Some(r) = reserved.iter().find(|r| name.eq_ignore_ascii_case(r)) {
            return Err(UsageError::ReservedHeader(r));
        }
        check_value(value.as_bytes())?;
    }
    Ok(())
}

/// Field values: visible ASCII, space, tab, obs-text; no CR, LF, NUL (RFC 9110 §5.5).
fn check_value(value: &[u8]) -> Result<(), UsageError> {
    if value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
    {
        Ok(())
    } else {
        Err(UsageError::InvalidHeaderValue)
    }
}

fn write_headers(headers: &[(HeaderText, HeaderText)], out: &mut Vec<u8>) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn write_status_line(status: u16, out: &mut Vec<u8>) {
    if let Some(texts) = status_texts(status) {
        out.extend_from_slice(texts.line.as_bytes());
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&status_digits(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Three ASCII digits of a status in 100..=999.
fn status_digits(status: u16) -> [u8; 3] {
    let s = status.min(999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

fn write_decimal(mut n: usize, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The texts of a status with a reason phrase
struct StatusTexts {
    /// `HTTP/1.1 <code> <reason>\r\n`
    line: &'static str,
    /// The default body, `<code> <reason>\n`
    body: &'static str,
    /// What ends a response with no header but the challenges and the default body:
    /// `Content-Type`, `Content-Length`, `Connection: close`, the blank line, the
    /// body (as `write_rest` writes them), in `tail[..tail_len]`.
    tail: [u8; 160],
    tail_len: usize,
    /// How many of the tail's bytes are the body.
    tail_body: usize,
}

impl StatusTexts {
    const fn new(status: u16, line: &'static str, body: &'static str) -> Self {
        const fn put(tail: &mut [u8; 160], at: usize, bytes: &[u8]) -> usize {
            let mut i = 0;
            while i < bytes.len() {
                tail[at + i] = bytes[i];
                i += 1;
            }
            at + bytes.len()
        }
        let mut tail = [0; 160];
        if status == 204 || status == 304 {
            let len = put(&mut tail, 0, b"Connection: close\r\n\r\n");
            return StatusTexts {
                line,
                body,
                tail,
                tail_len: len,
                tail_body: 0,
            };
        }
        let mut at = put(
            &mut tail,
            0,
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: ",
        );
        // The body's length in decimal: two digits at most.
        assert!(body.len() < 100);
        if body.len() >= 10 {
            at = put(&mut tail, at, &[b'0' + (body.len() / 10) as u8]);
        }
        at = put(&mut tail, at, &[b'0' + (body.len() % 10) as u8]);
        at = put(&mut tail, at, b"\r\nConnection: close\r\n\r\n");
        let len = put(&mut tail, at, body.as_bytes());
        StatusTexts {
            line,
            body,
            tail,
            tail_len: len,
            tail_body: body.len(),
        }
    }

    /// The tail, without the body for a `HEAD` request.
    fn tail(&self, head_only: bool) -> &[u8] {
        let len = self.tail_len - if head_only { self.tail_body } else { 0 };
        self.tail.get(..len).unwrap_or_default()
    }
}

/// Defines, from one table, `reason` and `status_texts`.
macro_rules! statuses {
    ($($code:literal $reason:literal,)*) => {
        /// The reason phrase of common statuses (RFC 9110 §15); empty for others, which
        /// the status-line grammar allows.
        pub(crate) fn reason(status: u16) -> &'static str {
            match status {
                $($code => $reason,)*
                _ => "",
            }
        }

        /// For a status with a reason phrase, its texts, each built at compile time.
        fn status_texts(status: u16) -> Option<&'static StatusTexts> {
            match status {
                $($code => {
                    const TEXTS: StatusTexts = StatusTexts::new(
                        $code,
                        concat!("HTTP/1.1 ", $code, " ", $reason, "\r\n"),
                        concat!($code, " ", $reason, "\n"),
                    );
                    Some(&TEXTS)
                })*
                _ => None,
            }
        }
    };
}

statuses! {
    101 "Switching Protocols",
    200 "OK",
    201 "Created",
    202 "Accepted",
    204 "No Content",
    301 "Moved Permanently",
    302 "Found",
    303 "See Other",
    304 "Not Modified",
    307 "Temporary Redirect",
    308 "Permanent Redirect",
    400 "Bad Request",
    401 "Unauthorized",
    403 "Forbidden",
    404 "Not Found",
    405 "Method Not Allowed",
    408 "Request Timeout",
    409 "Conflict",
    410 "Gone",
    413 "Content Too Large",
    414 "URI Too Long",
    415 "Unsupported Media Type",
    426 "Upgrade Required",
    429 "Too Many Requests",
    431 "Request Header Fields Too Large",
    500 "Internal Server Error",
    501 "Not Implemented",
    502 "Bad Gateway",
    503 "Service Unavailable",
    504 "Gateway Timeout",
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn rfc_6455_sample_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_str(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn accept_keys_match_the_general_encoder() {
        for len in 0..100 {
            let key: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let mut sha = Sha1::new();
            sha.update(&key);
            sha.update(WEBSOCKET_GUID);
            let expected = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
            assert_eq!(accept_key(&key).as_str(), expected);
        }
    }

    #[test]
    fn decimal() {
        for n in [0usize, 7, 10, 99, 100, 12345, usize::MAX] {
            let mut out = Vec::new();
            write_decimal(n, &mut out);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn challenge_realm_is_quoted() {
        let mut out = Vec::new();
        Challenge::bearer(r#"a"b\c"#)
            .error(BearerError::InvalidToken)
            .write(&mut out);
        assert_eq!(out, br#"Bearer realm="a\"b\\c", error="invalid_token""#);
        out.clear();
        Challenge::basic("r")
            .error(BearerError::InvalidToken)
            .write(&mut out);
        assert_eq!(out, br#"Basic realm="r", charset="UTF-8""#);
    }

    #[test]
    fn invalid_responses_write_nothing() {
        let mut out = Vec::new();
        assert_eq!(
            Response::new(101).write(false, &mut out),
            Err(UsageError::InvalidStatus(101))
        );
        assert_eq!(
            Response::new(200)
                .header("X", "a\r\nSet-Cookie: x")
                .write(false, &mut out),
            Err(UsageError::InvalidHeaderValue)
        );
        assert_eq!(
            Response::new(200)
                .header("Bad Name", "a")
                .write(false, &mut out),
            Err(UsageError::InvalidHeaderName)
        );
        assert_eq!(
            Response::new(200)
                .header("content-length", "5")
                .write(false, &mut out),
            Err(UsageError::ReservedHeader("content-length"))
        );
        assert_eq!(
            Response::unauthorized_bearer("a\nb").write(false, &mut out),
            Err(UsageError::InvalidHeaderValue)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn response_bytes() {
        let cases: [(Response, bool, &str); 8] = [
            (
                Response::unauthorized_bearer("api"),
                false,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"api\"\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\n\
                 Connection: close\r\n\r\n401 Unauthorized\n",
            ),
            (
                Response::unauthorized_bearer(r#"a"b\c"#)
                    .with_challenge(Challenge::basic("b"))
                    .invalid_token(),
                true,
                "HTTP/1.1 401 Unauthorized\r\n\
                 WWW-Authenticate: Bearer realm=\"a\\\"b\\\\c\", error=\"invalid_token\"\r\n\
                 WWW-Authenticate: Basic realm=\"b\", charset=\"UTF-8\"\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\n\
                 Connection: close\r\n\r\n",
            ),
            (
                Response::unauthorized(
                    Challenge::bearer("x").error(BearerError::InsufficientScope),
                )
                .with_challenge(Challenge::bearer("y").error(BearerError::InvalidRequest)),
                false,
                "HTTP/1.1 401 Unauthorized\r\n\
                 WWW-Authenticate: Bearer realm=\"x\", error=\"insufficient_scope\"\r\n\
                 WWW-Authenticate: Bearer realm=\"y\", error=\"invalid_request\"\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\n\
                 Connection: close\r\n\r\n401 Unauthorized\n",
            ),
            (
                Response::new(200)
                    .header("Content-Type", "text/html")
                    .body("<p>"),
                false,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\
                 Connection: close\r\n\r\n<p>",
            ),
            (
                Response::new(204),
                false,
                "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
            ),
            (
                Response::new(299),
                false,
                "HTTP/1.1 299 \r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 5\r\nConnection: close\r\n\r\n299 \n",
            ),
            (
                Response::upgrade_required(),
                false,
                "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\n\
                 Connection: Upgrade, close\r\n\r\n426 Upgrade Required\n",
            ),
            (
                Response::new(503).body(vec![b'x'; 1234]),
                true,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 1234\r\nConnection: close\r\n\r\n",
            ),
        ];
        for (response, head_only, expected) in cases {
            let mut out = b"kept".to_vec();
            response.write(head_only, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), format!("kept{expected}"));
        }
        let mut out = Vec::new();
        write_accept(b"dGhlIHNhbXBsZSBub25jZQ==", Some("chat"), &[], &mut out).unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
              Sec-WebSocket-Protocol: chat\r\n\r\n"
        );
    }

    #[test]
    fn status_tails_are_what_write_rest_writes() {
        let mut n = 0;
        for status in 100..=999 {
            let Some(texts) = status_texts(status) else {
                continue;
            };
            n += 1;
            for head_only in [false, true] {
                let mut expected = Vec::new();
                write_rest(
                    false,
                    false,
                    &[texts.body.as_bytes()],
                    status,
                    head_only,
                    &mut expected,
                );
                assert_eq!(texts.tail(head_only), &expected[..], "{status} {head_only}");
            }
            assert_eq!(
                texts.line,
                format!("HTTP/1.1 {status} {}\r\n", reason(status))
            );
        }
        assert_eq!(n, 30);
    }

    #[test]
    fn third_challenge_goes_to_headers() {
        let r = Response::unauthorized_bearer("a")
            .with_challenge(Challenge::basic("b"))
            .with_challenge(Challenge::bearer("c"));
        let mut out = Vec::new();
        r.write(false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("WWW-Authenticate: ").count(), 3, "{text}");
        assert!(
            text.contains("WWW-Authenticate: Bearer realm=\"c\"\r\n"),
            "{text}"
        );
    }
}
