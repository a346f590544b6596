//! One pass over the request head: line framing, caps, grammar, header index
//!
//! Header lines of the usual shape (a name of letters, digits and dashes, a value
//! with no control byte) are taken whole, one after the other: the line end is found
//! sixteen bytes at a time, which checks the line for control bytes in the same
//! sweep, then the colon eight at a time. Any other line, and a line the buffer does
//! not hold to its end, goes through the general loop: it finds the bytes that
//! matter, control bytes and DEL, and checks names and the request line when their
//! line ends. Each received byte is examined once by each at most (a trailing CR
//! waiting for its LF: once more).
//!
//! The checks run in the order byte-at-a-time feeding would trip them, so any split of
//! the same bytes ends in the same result (the property tests hold this).

use crate::config::Config;
use crate::error::ProtocolError;
use alloc::vec::Vec;

/// Byte range into the request head; heads are capped at 1 MiB, so u32 suffices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(crate) fn new_u32(start: u32, end: u32) -> Self {
        Span { start, end }
    }

    pub(crate) fn get(self, raw: &[u8]) -> &[u8] {
        raw.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// The span as text; every span the parser makes is ASCII or was checked.
    pub(crate) fn get_str(self, raw: &[u8]) -> &str {
        core::str::from_utf8(self.get(raw)).unwrap_or_default()
    }
}

/// Where one header's name and (trimmed) value are, and which header it is.
///
/// Sixteen bytes, so that a fresh index is zeroed in a few wide stores: the id rides
/// in the top byte of the value's end (heads are capped at 1 MiB, below 2^24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct HeaderSpan {
    pub(crate) name: Span,
    value_start: u32,
    value_end_and_id: u32,
}

// A position is at most the cap, plus one: it must leave the top byte to the id.
const _: () = assert!(crate::config::MAX_REQUEST_BYTES_CEILING < 1 << 23);

impl HeaderSpan {
    pub(crate) fn new(name: Span, value: Span, id: HeaderId) -> Self {
        debug_assert!(value.end < 1 << 24);
        HeaderSpan {
            name,
            value_start: value.start,
            value_end_and_id: value.end | (id as u32) << 24,
        }
    }

    /// The value, trimmed of surrounding spaces and tabs.
    pub(crate) fn value(&self) -> Span {
        Span::new_u32(self.value_start, self.value_end_and_id & 0x00ff_ffff)
    }

    /// Which header this is.
    pub(crate) fn id(&self) -> HeaderId {
        HeaderId::ALL
            .get((self.value_end_and_id >> 24) as usize)
            .copied()
            .unwrap_or_default()
    }
}

/// The headers the crate itself reads, recognised once when the line is parsed so
/// that later lookups compare a byte, not a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub(crate) enum HeaderId {
    #[default]
    Other,
    Host,
    Upgrade,
    Connection,
    SecWebSocketKey,
    SecWebSocketVersion,
    SecWebSocketProtocol,
    SecWebSocketExtensions,
    ContentLength,
    TransferEncoding,
    Authorization,
    Cookie,
    Origin,
}

impl HeaderId {
    /// How many ids there are, `Other` included.
    pub(crate) const COUNT: usize = HeaderId::Origin as usize + 1;

    /// Every id, each at its own index.
    const ALL: [HeaderId; HeaderId::COUNT] = [
        HeaderId::Other,
        HeaderId::Host,
        HeaderId::Upgrade,
        HeaderId::Connection,
        HeaderId::SecWebSocketKey,
        HeaderId::SecWebSocketVersion,
        HeaderId::SecWebSocketProtocol,
        HeaderId::SecWebSocketExtensions,
        HeaderId::ContentLength,
        HeaderId::TransferEncoding,
        HeaderId::Authorization,
        HeaderId::Cookie,
        HeaderId::Origin,
    ];

    /// The id of header `name` (any case); `Other` for a name the crate does not read.
    // Inlined into the scan's per-line path, where a call would cost as much as the
    // compare.
    #[inline(always)]
    pub(crate) fn of(name: &[u8]) -> HeaderId {
        // One comparison at most: the length and the first letter pick the candidate.
        let first = name.first().map_or(0, |&b| b | 0x20);
        let (id, same) = match (name.len(), first) {
            (4, b'h') => (HeaderId::Host, eq_lower(name, b"host")),
            (7, b'u') => (HeaderId::Upgrade, eq_lower(name, b"upgrade")),
            (10, b'c') => (HeaderId::Connection, eq_lower(name, b"connection")),
            (17, b's') => (
                HeaderId::SecWebSocketKey,
                eq_lower(name, b"sec-websocket-key"),
            ),
            (21, b's') => (
                HeaderId::SecWebSocketVersion,
                eq_lower(name, b"sec-websocket-version"),
            ),
            (22, b's') => (
                HeaderId::SecWebSocketProtocol,
                eq_lower(name, b"sec-websocket-protocol"),
            ),
            (24, b's') => (
                HeaderId::SecWebSocketExtensions,
                eq_lower(name, b"sec-websocket-extensions"),
            ),
            (14, b'c') => (HeaderId::ContentLength, eq_lower(name, b"content-length")),
            (17, b't') => (
                HeaderId::TransferEncoding,
                eq_lower(name, b"transfer-encoding"),
            ),
            (13, b'a') => (HeaderId::Authorization, eq_lower(name, b"authorization")),
            (6, b'c') => (HeaderId::Cookie, eq_lower(name, b"cookie")),
            (6, b'o') => (HeaderId::Origin, eq_lower(name, b"origin")),
            _ => (HeaderId::Other, false),
        };
        if same { id } else { HeaderId::Other }
    }
}

/// Whether `name` is `lower` (lowercase letters and `-`) in any ASCII case.
///
/// A few word compares, overlapping where `N` is not a multiple of the word: each byte
/// of `name` gets the case bit where `lower` has a letter (a `-` must match exactly,
/// or a CR would pass for it) and must then equal `lower`'s byte.
pub(crate) fn eq_lower<const N: usize>(name: &[u8], lower: &[u8; N]) -> bool {
    let Ok(name) = <&[u8; N]>::try_from(name) else {
        return false;
    };
    if N >= 8 {
        let word = |s: &[u8; N], at: usize| {
            u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default())
        };
        let diff = |at: usize| {
            let l = word(lower, at);
            (word(name, at) | (l & 0x4040_4040_4040_4040) >> 1) ^ l
        };
        let last = N.saturating_sub(8);
        diff(0) | diff(last.min(8)) | diff(last) == 0
    } else {
        let word = |s: &[u8; N], at: usize| {
            u32::from_le_bytes(s[at..at + 4].try_into().unwrap_or_default())
        };
        let diff = |at: usize| {
            let l = word(lower, at);
            (word(name, at) | (l & 0x4040_4040) >> 1) ^ l
        };
        diff(0) | diff(N.saturating_sub(4)) == 0
    }
}

/// `METHOD SP target SP HTTP/1.x`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RequestLine {
    pub(crate) method: Span,
    pub(crate) target: Span,
    pub(crate) minor_version: u8,
}

/// Headers kept inline before spilling to the heap: browsers send 10-20.
const INLINE_HEADERS: usize = 32;

/// The header index of one request: inline for the usual sizes, so parsing a whole
/// request allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct HeaderIndex {
    inline: [HeaderSpan; INLINE_HEADERS],
    /// Headers pushed: in `inline` while they fit, else all in `spill`.
    len: usize,
    spill: Vec<HeaderSpan>,
    /// Per [`HeaderId`], as the headers are indexed: validation looks the headers it
    /// reads up here instead of walking them all.
    seen: SeenIds,
}

/// [`Seen`] per [`HeaderId`], indexed by the id.
pub(crate) type SeenIds = [Seen; HeaderId::COUNT];

/// How many headers have one id, and where the last of them is (the only one, when
/// there is one: the case lookups take).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) count: u32,
    pub(crate) last: u32,
}

impl Default for HeaderIndex {
    fn default() -> Self {
        HeaderIndex {
            inline: [HeaderSpan::default(); INLINE_HEADERS],
            len: 0,
            spill: Vec::new(),
            seen: [Seen::default(); HeaderId::COUNT],
        }
    }
}

impl HeaderIndex {
    /// Add header `h`, whose id is `id`.
    // Inlined into the scan's per-line path: a call there spills its registers.
    #[inline(always)]
    fn push(&mut self, h: HeaderSpan, id: HeaderId) {
        let seen = &mut self.seen[id as usize];
        seen.count += 1;
        seen.last = self.len as u32;
        if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = h;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(h);
        }
        self.len += 1;
    }

    pub(crate) fn as_slice(&self) -> &[HeaderSpan] {
        self.inline.get(..self.len).unwrap_or(&self.spill)
    }

    /// How many headers have id `id`, and where the last is.
    #[cfg(test)]
    pub(crate) fn seen(&self, id: HeaderId) -> Seen {
        self.seen[id as usize]
    }

    /// [`Seen`] for every id.
    pub(crate) fn seen_ids(&self) -> &SeenIds {
        &self.seen
    }
}

/// Incremental parse state, kept between calls.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Bytes of the buffer already examined.
    pos: usize,
    /// Start of the current (unfinished) line.
    line_start: usize,
    /// Complete lines seen: the request line, then headers.
    pub(crate) lines: usize,
    pub(crate) request_line: RequestLine,
}

impl Scan {
    /// Bytes of the buffer already examined
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Examine `buf[self.pos..]`. `Some(end)` once the empty line ending the head is
    /// found (`end` is the head's length). Header lines go to `index` if given.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        config: &Config,
        mut index: Option<&mut HeaderIndex>,
    ) -> Result<Option<usize>, ProtocolError> {
        let mut p = self.pos;
        loop {
            if p == self.line_start && self.lines > 0 {
                p = self.plain_header_lines(buf, p, config, index.as_deref_mut());
            }
            // A line that starts with its CR (the empty line ending the head) needs
            // no search.
            let next = match buf.get(p) {
                Some(&b) if is_special(b) => Some(p),
                _ => find_special(buf, p),
            };
            let Some(q) = next else {
                break;
            };
            match buf[q] {
                b'\t' => {
                    p = q + 1;
                    continue;
                }
                b'\r' if q + 1 == buf.len() => {
                    // Wait for the byte after the CR; look at the CR again then.
                    self.pos = q;
                    return self.check_partial(buf.len(), config).map(|()| None);
                }
                b'\r' => {
                    self.check_line(q + 1, config)?;
                    if q + 1 >= config.max_request_bytes() {
                        return Err(self.too_large());
                    }
                    if buf[q + 1] != b'\n' {
                        return Err(ProtocolError::MalformedLineEnding);
                    }
                    if self.end_line(&buf[..q], config, index.as_deref_mut())? {
                        self.pos = q + 2;
                        return Ok(Some(q + 2));
                    }
                    p = q + 2;
                    self.line_start = p;
                }
                b'\n' => {
                    self.check_line(q, config)?;
                    if q >= config.max_request_bytes() {
                        return Err(self.too_large());
                    }
                    return Err(ProtocolError::MalformedLineEnding);
                }
                _ => {
                    self.check_line(q, config)?;
                    return Err(self.malformed_line());
                }
            }
        }
        self.pos = buf.len();
        self.check_partial(buf.len(), config).map(|()| None)
    }

    /// Take the header lines of the usual shape from `p`, a line start, on (see
    /// [`plain_header_line`]) while they are within the caps; returns where the
    /// first other line starts, for the general loop.
    fn plain_header_lines(
        &mut self,
        buf: &[u8],
        mut p: usize,
        config: &Config,
        mut index: Option<&mut HeaderIndex>,
    ) -> usize {
        let mut lines = self.lines;
        // No line of a buffer this short can be over the line or the request cap.
        let short =
            buf.len() <= config.max_line_bytes() + 1 && buf.len() <= config.max_request_bytes();
        // The empty line ending the head is the general loop's.
        while buf.get(p) != Some(&b'\r') {
            let Some((header, id, cr)) = plain_header_line(buf, p) else {
                break;
            };
            // The checks of the loop at a CR, in its order; a line that fails one is
            // left to the loop, which returns the error.
            let within = (short
                || cr + 1 - p <= config.max_line_bytes() + 1
                    && cr + 1 < config.max_request_bytes())
                && lines <= config.max_headers();
            if !within {
                break;
            }
            if let Some(index) = index.as_deref_mut() {
                index.push(header, id);
            }
            lines += 1;
            p = cr + 2;
        }
        self.lines = lines;
        self.line_start = p;
        p
    }

    /// The caps as they stand once `len` bytes have arrived and the head is unfinished.
    fn check_partial(&self, len: usize, config: &Config) -> Result<(), ProtocolError> {
        self.check_line(len, config)?;
        if len > config.max_request_bytes() {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// Whether the current line, `end - line_start` bytes so far (a final CR
    /// included), is already over the cap.
    fn check_line(&self, end: usize, config: &Config) -> Result<(), ProtocolError> {
        if end - self.line_start > config.max_line_bytes() + 1 {
            return Err(if self.lines == 0 {
                ProtocolError::RequestLineTooLong
            } else {
                ProtocolError::HeaderLineTooLong
            });
        }
        Ok(())
    }

    /// A line ended; `head[self.line_start..]` is its content. `true` at the empty
    /// line that ends the head.
    fn end_line(
        &mut self,
        head: &[u8],
        config: &Config,
        index: Option<&mut HeaderIndex>,
    ) -> Result<bool, ProtocolError> {
        let start = self.line_start;
        let line = &head[start..];
        if self.lines == 0 {
            // RFC 9112 §2.2: ignore empty lines before the request line.
            if !line.is_empty() {
                self.request_line = parse_request_line(line, start)?;
                self.lines = 1;
            }
            return Ok(false);
        }
        if line.is_empty() {
            return Ok(true);
        }
        if self.lines > config.max_headers() {
            return Err(ProtocolError::TooManyHeaders);
        }
        let header = parse_header_line(line, start)?;
        if let Some(index) = index {
            index.push(header, header.id());
        }
        self.lines += 1;
        Ok(false)
    }

    fn malformed_line(&self) -> ProtocolError {
        if self.lines == 0 {
            ProtocolError::MalformedRequestLine
        } else {
            ProtocolError::MalformedHeader
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

/// `method SP request-target SP HTTP/1.x` (RFC 9112 §3), at offset `at` in the head.
fn parse_request_line(line: &[u8], at: usize) -> Result<RequestLine, ProtocolError> {
    usual_request_line(line, at).map_or_else(|| any_request_line(line, at), Ok)
}

/// The usual request line, `GET <target> HTTP/1.1`, in a few wide compares; `None`
/// for any other, which [`any_request_line`] takes.
fn usual_request_line(line: &[u8], at: usize) -> Option<RequestLine> {
    let target = line
        .strip_prefix(b"GET ")?
        .strip_suffix(b" HTTP/1.1")
        .filter(|t| !t.is_empty() && t.iter().all(|b| (0x21..=0x7e).contains(b)))?;
    Some(RequestLine {
        method: Span::new(at, at + 3),
        target: Span::new(at + 4, at + 4 + target.len()),
        minor_version: 1,
    })
}

/// `method SP request-target SP HTTP/1.x`, any method.
fn any_request_line(line: &[u8], at: usize) -> Result<RequestLine, ProtocolError> {
    let bad = ProtocolError::MalformedRequestLine;
    let method_len = line.iter().position(|&b| !is_token(b)).ok_or(bad)?;
    if method_len == 0 || line[method_len] != b' ' {
        return Err(bad);
    }
    let target_start = method_len + 1;
    let target_len = line[target_start..]
        .iter()
        .position(|&b| !(0x21..=0x7e).contains(&b))
        .ok_or(bad)?;
    let version_start = target_start + target_len;
    if target_len == 0 || line[version_start] != b' ' {
        return Err(bad);
    }
    let minor_version = match &line[version_start + 1..] {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        _ => return Err(bad),
    };
    Ok(RequestLine {
        method: Span::new(at, at + method_len),
        target: Span::new(at + target_start, at + version_start),
        minor_version,
    })
}

/// A header line at `start` in the usual shape, taken in one go: a name of letters,
/// digits and `-` (shorter than [`PLAIN_NAME_SPAN`]), `:`, spaces, and a value with
/// no control byte (not even a tab) up to the CR LF. Returns the header, its id and
/// where the CR is; `None` for any other line, or one the buffer does not hold to its
/// LF, which the general loop then takes (the line's bytes are looked at twice at
/// most).
fn plain_header_line(buf: &[u8], start: usize) -> Option<(HeaderSpan, HeaderId, usize)> {
    // The line end first: where the next line starts hangs on it alone, not on the
    // name, so that the work on the name overlaps the search for the next line end.
    let cr = find_special(buf, start)?;
    if buf[cr] != b'\r' || buf.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    let colon = find_colon(buf, start).filter(|&colon| colon > start && colon < cr)?;
    // No control byte is left in the line: a name the crate knows is letters and
    // `-` (`of` compares every byte); any other is checked here.
    let id = HeaderId::of(&buf[start..colon]);
    if id == HeaderId::Other && !is_alnum_dash(buf, start, colon) {
        return None;
    }
    // `: value`: the one space is taken without a loop, any more with one.
    let mut value_start = colon + 1 + usize::from(buf[colon + 1] == b' ');
    while value_start < cr && buf[value_start] == b' ' {
        value_start += 1;
    }
    let mut value_end = cr;
    if buf[cr - 1] == b' ' {
        while value_end > value_start && buf[value_end - 1] == b' ' {
            value_end -= 1;
        }
    }
    let header = HeaderSpan::new(
        Span::new(start, colon),
        Span::new(value_start, value_end),
        id,
    );
    Some((header, id, cr))
}

/// [`plain_header_line`] looks for the colon in this many bytes: longer names are
/// left to the general loop.
const PLAIN_NAME_SPAN: usize = 64;

/// The first `:` in `buf[start..]`, sixteen bytes at a time; `None` if none is in the
/// first [`PLAIN_NAME_SPAN`] bytes, and where the buffer ends too soon to tell. It may
/// lie past the line's end, which the caller checks.
fn find_colon(buf: &[u8], start: usize) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The top bit of each byte of `word` that is a colon: the lowest set is exact (a
    // false one only ever follows a true one).
    let colons = |word: u64| {
        let x = word ^ (LOW * u64::from(b':'));
        x.wrapping_sub(LOW) & !x & HIGH
    };
    let mut at = start;
    while at - start < PLAIN_NAME_SPAN {
        let Some(pair) = buf.get(at..at + 16) else {
            // The last word or so of the buffer, one word at a time.
            let word = u64::from_le_bytes(buf.get(at..at + 8)?.try_into().ok()?);
            let found = colons(word);
            return (found != 0).then(|| at + found.trailing_zeros() as usize / 8);
        };
        let (low, high) = pair.split_at(8);
        let low = colons(u64::from_le_bytes(low.try_into().unwrap_or_default()));
        let high = colons(u64::from_le_bytes(high.try_into().unwrap_or_default()));
        if low != 0 {
            return Some(at + low.trailing_zeros() as usize / 8);
        }
        if high != 0 {
            return Some(at + 8 + high.trailing_zeros() as usize / 8);
        }
        at += 16;
    }
    None
}

/// Whether `buf[start..end]` is all letters, digits and `-`.
fn is_alnum_dash(buf: &[u8], start: usize, end: usize) -> bool {
    let mut at = start;
    while at < end {
        let Some(chunk) = buf.get(at..at + 16) else {
            return buf[at..end].iter().all(|&b| is_alnum_dash_byte(b));
        };
        if alnum_dash_len(chunk.try_into().unwrap_or(&[0; 16])) < (end - at).min(16) {
            return false;
        }
        at += 16;
    }
    true
}

/// A letter, digit or `-`, in a form that vectorises (no early exit, no table).
#[inline(always)]
fn is_alnum_dash_byte(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter | digit | (b == b'-')
}

/// `name ":" OWS value OWS` (RFC 9112 §5). Control bytes and DEL were already refused
/// by the scan, so the value needs no further check; the name must be a token and
/// end right at the colon (no space before it, no obs-fold continuation).
fn parse_header_line(line: &[u8], at: usize) -> Result<HeaderSpan, ProtocolError> {
    let name_len = token_len(line);
    if name_len == 0 || line.get(name_len) != Some(&b':') {
        return Err(ProtocolError::MalformedHeader);
    }
    let mut start = name_len + 1;
    let mut end = line.len();
    while start < end && matches!(line[start], b' ' | b'\t') {
        start += 1;
    }
    while end > start && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    Ok(HeaderSpan::new(
        Span::new(at, at + name_len),
        Span::new(at + start, at + end),
        HeaderId::of(&line[..name_len]),
    ))
}

/// The length of the token (RFC 9110 §5.6.2) at the start of `bytes`.
fn token_len(bytes: &[u8]) -> usize {
    // Names are letters, digits and dashes nearly always: those are checked 16 at a
    // time, any other token byte (and the last few bytes) one at a time.
    let mut n = 0;
    while let Some(chunk) = bytes.get(n..n + 16) {
        let run = alnum_dash_len(chunk.try_into().unwrap_or(&[0; 16]));
        n += run;
        if run < 16 {
            // Usually the `:`: done without entering the loop below, whose exit
            // branch would be mispredicted once per line.
            if !is_token(chunk[run]) {
                return n;
            }
            break;
        }
    }
    while bytes.get(n).is_some_and(|&b| is_token(b)) {
        n += 1;
    }
    n
}

/// How many of 16 bytes are letters, digits or `-` before the first that is not.
fn alnum_dash_len(chunk: &[u8; 16]) -> usize {
    // Shaped like `has_special` so that it compiles to vector instructions.
    let mut flags = [0u8; 16];
    for (flag, &b) in flags.iter_mut().zip(chunk) {
        *flag = if is_alnum_dash_byte(b) { 0 } else { 0xff };
    }
    (u128::from_le_bytes(flags).trailing_zeros() / 8) as usize
}

/// The first `needle` in `line`, eight bytes at a time.
pub(crate) fn find_byte(line: &[u8], needle: u8) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while i + 8 <= line.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&line[i..i + 8]);
        let x = u64::from_le_bytes(word) ^ (LOW * needle as u64);
        let found = x.wrapping_sub(LOW) & !x & HIGH;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    line[i..].iter().position(|&b| b == needle).map(|j| i + j)
}

/// RFC 9110 §5.6.2 tchar
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// The first byte at or after `from` that is a control byte (< 0x20) or DEL.
// Inlined: the per-line path keeps its vector constants in registers across it.
#[inline(always)]
fn find_special(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(chunk) = buf.get(at..at + 16) {
        let chunk: &[u8; 16] = chunk.try_into().unwrap_or(&[0; 16]);
        if has_special(chunk) {
            return Some(at + first_special(chunk));
        }
        at += 16;
    }
    // Fewer than 16 bytes left: the last 16 of the buffer, less those before `at`.
    if at >= buf.len() {
        return None;
    }
    let Some(last) = buf.len().checked_sub(16) else {
        return buf[at..]
            .iter()
            .position(|&b| is_special(b))
            .map(|j| at + j);
    };
    let (low, high) = special_words(buf[last..].try_into().unwrap_or(&[0; 16]));
    let bits = (u128::from(high) << 64 | u128::from(low)) >> (8 * (at - last));
    (bits != 0).then(|| at + bits.trailing_zeros() as usize / 8)
}

// The two helpers below are the scan's inner loop. They are written as a fold and a
// loop over 16 bytes because the compiler turns those into a few SSE2 instructions
// (compare, compare, or, move mask) rather than 16 byte tests. Other shapes of the same
// logic (a `map`, shifting bits into a mask) compile to byte-at-a-time code.

/// Whether any of 16 bytes is a control byte or DEL.
fn has_special(chunk: &[u8; 16]) -> bool {
    chunk.iter().fold(false, |any, &b| any | is_special(b))
}

/// The first control byte or DEL of 16, at least one of which is one.
///
/// Eight bytes at a time in general-purpose registers: the vector form of this
/// (flags, then moved out to find the first) costs a store and a reload on the
/// path to every line end.
fn first_special(chunk: &[u8; 16]) -> usize {
    let (low, high) = special_words(chunk);
    if low != 0 {
        low.trailing_zeros() as usize / 8
    } else {
        8 + high.trailing_zeros() as usize / 8
    }
}

/// [`special_bits`] of the two halves of 16 bytes.
fn special_words(chunk: &[u8; 16]) -> (u64, u64) {
    let (low, high) = chunk.split_at(8);
    (
        special_bits(low.try_into().unwrap_or([0; 8])),
        special_bits(high.try_into().unwrap_or([0; 8])),
    )
}

/// The top bit of each byte of `word` that is a control byte or DEL, exactly (no
/// false positives from carries: the sums below never carry out of a byte).
fn special_bits(word: [u8; 8]) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let w = u64::from_le_bytes(word);
    let low7 = w & LOW7;
    // A byte's top bit is clear in the first sum where its low 7 bits are < 0x20, and
    // set in the second where they are 0x7f; bytes with their own top bit set are
    // neither.
    let control = !(low7 + 0x6060_6060_6060_6060);
    let del = low7 + 0x0101_0101_0101_0101;
    (control | del) & !w & HIGH
}

fn is_special(b: u8) -> bool {
    (b < 0x20) | (b == 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(bytes: &[u8]) -> Result<Option<usize>, ProtocolError> {
        Scan::default().scan(bytes, &Config::default(), None)
    }

    #[test]
    fn scan_finds_the_empty_line() {
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"),
            Ok(Some(24))
        );
        assert_eq!(scan_all(b"\r\nGET / HTTP/1.1\r\n\r\n"), Ok(Some(20)));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nA: b\r\n"), Ok(None));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r"), Ok(None));
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\nA: b\n\n"),
            Err(ProtocolError::MalformedLineEnding)
        );
        assert_eq!(scan_all(b"\n"), Err(ProtocolError::MalformedLineEnding));
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\rX"),
            Err(ProtocolError::MalformedLineEnding)
        );
        assert_eq!(
            scan_all(b"GET /\x01 HTTP/1.1"),
            Err(ProtocolError::MalformedRequestLine)
        );
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\r\nA: \x7f\r\n"),
            Err(ProtocolError::MalformedHeader)
        );
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nA:\tb\t\r\n\r\n"), Ok(Some(25)));
    }

    #[test]
    fn scan_resumes_where_it_stopped() {
        let bytes = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        let mut scan = Scan::default();
        for n in 1..bytes.len() {
            assert_eq!(scan.scan(&bytes[..n], &Config::default(), None), Ok(None));
            // Every byte is examined once; a CR at the end waits for its LF.
            let waiting_cr = bytes[n - 1] == b'\r';
            assert_eq!(scan.pos, if waiting_cr { n - 1 } else { n });
        }
        let mut index = HeaderIndex::default();
        let mut whole = Scan::default();
        assert_eq!(
            whole.scan(bytes, &Config::default(), Some(&mut index)),
            Ok(Some(bytes.len()))
        );
        assert_eq!(
            scan.scan(bytes, &Config::default(), None),
            Ok(Some(bytes.len()))
        );
        assert_eq!(whole.request_line, scan.request_line);
        assert_eq!(index.as_slice().len(), 1);
    }

    #[test]
    fn special_bytes_are_found_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                for special in [0u8, b'\t', b'\n', b'\r', 0x1f, 0x7f] {
                    let mut buf = vec![b'a'; len];
                    buf[at] = special;
                    // Bytes that must never be flagged.
                    for (k, b) in buf.iter_mut().enumerate() {
                        if k != at && k % 3 == 0 {
                            *b = [0x20, 0x7e, 0x80, 0xff, 0x21][k % 5];
                        }
                    }
                    for from in 0..=at {
                        assert_eq!(find_special(&buf, from), Some(at), "{len} {at} {special}");
                    }
                    assert_eq!(find_special(&buf, at + 1), None);
                }
            }
        }
        assert_eq!(find_special(b"", 0), None);
        assert_eq!(find_special(b"\x80\x7e\x20\xff\x1f", 0), Some(4));
    }

    #[test]
    fn special_bits_are_exact() {
        for b in 0..=255u8 {
            for at in 0..8 {
                for fill in [b'a', 0x80, 0xff, 0x7e, 0x20, 0x00] {
                    let mut word = [fill; 8];
                    word[at] = b;
                    let expected = word
                        .iter()
                        .enumerate()
                        .filter(|&(_, &x)| is_special(x))
                        .fold(0u64, |bits, (i, _)| bits | 0x80 << (8 * i));
                    assert_eq!(special_bits(word), expected, "{b} {at} {fill}");
                }
            }
        }
    }

    #[test]
    fn find_byte_at_every_offset() {
        for len in 1..30 {
            for at in 0..len {
                let mut line = vec![b'a'; len];
                line[at] = b':';
                if at + 1 < len {
                    line[at + 1] = b':';
                }
                assert_eq!(find_byte(&line, b':'), Some(at));
            }
            assert_eq!(find_byte(&vec![b';'; len], b':'), None);
        }
    }

    #[test]
    fn token_len_at_every_offset() {
        let fill = b"Sec-WebSocket-Key0123456789abcdefghijklmnopqrstuvwxyzZ";
        for len in 0..48 {
            for at in 0..=len {
                for stop in [b':', b' ', b'_', b'~', b'\r', b'@', b'\\', 0x80, 0xff] {
                    let mut line = fill[..len].to_vec();
                    if at < len {
                        line[at] = stop;
                    }
                    let expected = line.iter().position(|&b| !is_token(b)).unwrap_or(len);
                    assert_eq!(token_len(&line), expected, "{len} {at} {stop}");
                }
            }
        }
    }

    #[test]
    fn usual_request_lines_agree_with_any() {
        let odd = [b' ', b'\t', 0, 0x7f, 0x80, b'/', b'a', b'?', b'%'];
        let mut taken = 0;
        for line in [
            &b"GET / HTTP/1.1"[..],
            b"GET /chat?room=1&token=a%20b HTTP/1.1",
        ] {
            for at in 0..line.len() {
                for &b in &odd {
                    let mut changed = line.to_vec();
                    changed[at] = b;
                    for variant in [line.to_vec(), changed] {
                        if let Some(usual) = usual_request_line(&variant, 3) {
                            assert_eq!(Ok(usual), any_request_line(&variant, 3), "{variant:?}");
                            taken += 1;
                        }
                    }
                }
            }
        }
        assert!(taken > 200, "{taken}");
        assert_eq!(usual_request_line(b"GET  HTTP/1.1", 0), None);
        assert_eq!(usual_request_line(b"GET / HTTP/1.0", 0), None);
        assert_eq!(usual_request_line(b"POST / HTTP/1.1", 0), None);
    }

    #[test]
    fn request_lines() {
        let ok = parse_request_line(b"GET /a?b HTTP/1.1", 2).unwrap();
        assert_eq!(ok.method, Span::new(2, 5));
        assert_eq!(ok.target, Span::new(6, 10));
        assert_eq!(ok.minor_version, 1);
        for bad in [
            &b"GET /a HTTP/1.2"[..],
            b"GET  /a HTTP/1.1",
            b"GET /a  HTTP/1.1",
            b"GET /a",
            b"GET",
            b" GET /a HTTP/1.1",
            b"G(T /a HTTP/1.1",
            b"GET /\xc3\xa9 HTTP/1.1",
            b"GET /a HTTP/1.1 ",
        ] {
            assert_eq!(
                parse_request_line(bad, 0),
                Err(ProtocolError::MalformedRequestLine),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn header_lines() {
        let h = parse_header_line(b"Host: \t a b \t", 0).unwrap();
        assert_eq!(h.name, Span::new(0, 4));
        assert_eq!(h.value(), Span::new(8, 11));
        let empty = parse_header_line(b"X:", 0).unwrap();
        assert_eq!(empty.value(), Span::new(2, 2));
        for bad in [&b"Host : a"[..], b": a", b" Host: a", b"Ho(st: a", b"Host"] {
            assert_eq!(
                parse_header_line(bad, 0),
                Err(ProtocolError::MalformedHeader)
            );
        }
    }

    /// What the general loop makes of the header line at `start`: the header
    /// and its CR, if the line is whole and well-formed.
    fn header_line_in_general(buf: &[u8], start: usize) -> Option<(HeaderSpan, usize)> {
        let mut p = start;
        let cr = loop {
            let q = find_special(buf, p)?;
            match buf[q] {
                b'\t' => p = q + 1,
                b'\r' if buf.get(q + 1) == Some(&b'\n') => break q,
                _ => return None,
            }
        };
        let header = parse_header_line(&buf[start..cr], start).ok()?;
        Some((header, cr))
    }

    #[test]
    fn plain_header_lines_agree_with_the_byte_by_byte_loop() {
        let lines: [&[u8]; 10] = [
            b"Host: example.com",
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0.0.0",
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            b"a:b",
            b"X-Y:  spaced out  ",
            b"Origin: http://a:1",
            b"Cookie:",
            b"X-Sixty-Three-Bytes-Is-The-Longest-Name-The-Plain-Path-Takes-On: v",
            b"X-Sixty-Four-Bytes-Of-Name-Are-Left-To-The-General-Loop-To-Parse: v",
        ];
        let odd = [
            b' ', b':', b'\t', b'\r', b'\n', 0, 0x7f, b'(', b'_', b'A', 0x80, b'-',
        ];
        let mut taken = 0;
        let mut well_formed = 0;
        for line in lines {
            let mut variants = vec![line.to_vec()];
            for at in 0..=line.len() {
                for &b in &odd {
                    let mut inserted = line.to_vec();
                    inserted.insert(at, b);
                    variants.push(inserted);
                    if at < line.len() {
                        let mut replaced = line.to_vec();
                        replaced[at] = b;
                        variants.push(replaced);
                    }
                }
            }
            for variant in variants {
                for tail in [&b"\r\nNext: line\r\n\r\n"[..], b"\r\n", b"\r", b""] {
                    let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
                    let start = buf.len();
                    buf.extend_from_slice(&variant);
                    buf.extend_from_slice(tail);
                    let fast = plain_header_line(&buf, start).map(|(header, id, cr)| {
                        assert_eq!(id, header.id());
                        (header, cr)
                    });
                    let slow = header_line_in_general(&buf, start);
                    if fast.is_some() {
                        assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&buf));
                        taken += 1;
                    }
                    well_formed += usize::from(slow.is_some());
                }
            }
        }
        // The plain path takes most well-formed lines, or this test says little.
        assert!(taken * 2 > well_formed, "{taken} of {well_formed}");
        for (i, line) in lines.iter().enumerate() {
            let buf = [line, &b"\r\nNext: line\r\n"[..]].concat();
            let is_last = i == lines.len() - 1;
            assert_eq!(plain_header_line(&buf, 0).is_some(), !is_last, "{line:?}");
        }
    }

    #[test]
    fn header_ids() {
        let known = [
            (HeaderId::Host, "host"),
            (HeaderId::Upgrade, "upgrade"),
            (HeaderId::Connection, "connection"),
            (HeaderId::SecWebSocketKey, "sec-websocket-key"),
            (HeaderId::SecWebSocketVersion, "sec-websocket-version"),
            (HeaderId::SecWebSocketProtocol, "sec-websocket-protocol"),
            (HeaderId::SecWebSocketExtensions, "sec-websocket-extensions"),
            (HeaderId::ContentLength, "content-length"),
            (HeaderId::TransferEncoding, "transfer-encoding"),
            (HeaderId::Authorization, "authorization"),
            (HeaderId::Cookie, "cookie"),
            (HeaderId::Origin, "origin"),
        ];
        for (id, name) in known {
            assert_eq!(HeaderId::of(name.as_bytes()), id);
            assert_eq!(HeaderId::of(name.to_ascii_uppercase().as_bytes()), id);
            // Every single-byte change of a known name is another header, but for
            // the case of a letter (a CR is not a `-`, nor 0xc8 an `h`, ...).
            for i in 0..name.len() {
                for b in 0..=255u8 {
                    let mut other = name.as_bytes().to_vec();
                    other[i] = b;
                    let expected = if other.eq_ignore_ascii_case(name.as_bytes()) {
                        id
                    } else {
                        HeaderId::Other
                    };
                    assert_eq!(HeaderId::of(&other), expected, "{other:?}");
                }
            }
            assert_eq!(HeaderId::of(&name.as_bytes()[1..]), HeaderId::Other);
            assert_eq!(HeaderId::of(format!("{name}s").as_bytes()), HeaderId::Other);
        }
        assert_eq!(HeaderId::of(b""), HeaderId::Other);
        assert_eq!(HeaderId::of(b"User-Agent"), HeaderId::Other);
    }

    #[test]
    fn the_index_counts_each_id() {
        let mut index = HeaderIndex::default();
        let ids = [
            HeaderId::Host,
            HeaderId::Other,
            HeaderId::Cookie,
            HeaderId::Other,
        ];
        for i in 0..40 {
            let id = ids[i % 4];
            index.push(HeaderSpan::new(Span::default(), Span::default(), id), id);
        }
        let seen = |count, last| Seen { count, last };
        assert_eq!(index.seen(HeaderId::Host), seen(10, 36));
        assert_eq!(index.seen(HeaderId::Other), seen(20, 39));
        assert_eq!(index.seen(HeaderId::Cookie), seen(10, 38));
        assert_eq!(index.seen(HeaderId::Origin).count, 0);
        assert_eq!(HeaderId::COUNT, 13);
    }

    #[test]
    fn spans_keep_their_id() {
        for (i, &id) in HeaderId::ALL.iter().enumerate() {
            assert_eq!(id as usize, i);
            let value = Span::new(i, (1 << 24) - 1 - i);
            let h = HeaderSpan::new(Span::new(1, 2), value, id);
            assert_eq!((h.name, h.value(), h.id()), (Span::new(1, 2), value, id));
        }
    }

    #[test]
    fn the_index_spills_past_its_inline_slots() {
        let mut index = HeaderIndex::default();
        for i in 0..40 {
            index.push(
                HeaderSpan::new(Span::new(i, i + 1), Span::default(), HeaderId::Other),
                HeaderId::Other,
            );
        }
        let names: Vec<u32> = index.as_slice().iter().map(|h| h.name.start).collect();
        assert_eq!(names, (0..40).collect::<Vec<u32>>());
    }
}
