//! `UpgradeRequest<'a>`: a borrowed, validated view of a request head

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::parse::{
    HeaderId, HeaderIndex, HeaderSpan, RequestLine, SeenIds, Span, eq_lower, find_byte,
};
use crate::error::ProtocolError;

/// Headers whose values may carry a credential; `Debug` prints them as `<redacted>`.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "sec-websocket-protocol",
];

/// A parsed and validated HTTP/1.1 request head, borrowed from the received bytes
///
/// This is what the decision sees. Nothing is copied: every accessor returns a slice of
/// the bytes the client sent. Header values are bytes, trimmed of surrounding spaces
/// and tabs; names compare ASCII-case-insensitively. `Debug` output redacts the query
/// string and every header that can carry a credential (`Authorization`, `Cookie`,
/// `Sec-WebSocket-Protocol`).
///
/// A request whose [`is_upgrade`](Self::is_upgrade) is true has passed every check of
/// RFC 6455 §4.2.1: `GET`, HTTP/1.1, `Host`, `Upgrade: websocket`, `Connection: Upgrade`,
/// a `Sec-WebSocket-Key` that is base64 of 16 bytes, `Sec-WebSocket-Version: 13`.
#[derive(Clone, Copy)]
pub struct UpgradeRequest<'a> {
    raw: &'a [u8],
    /// Method, target and version; the text is taken out of `raw` when asked for.
    line: RequestLine,
    headers: &'a [HeaderSpan],
    /// Per id, how many headers have it and where the last is.
    seen: &'a SeenIds,
    key: Option<Span>,
}

impl<'a> UpgradeRequest<'a> {
    /// The view over `raw` (the head the parser scanned), validated: RFC 9112 §3.2 for
    /// every request, RFC 6455 §4.2.1 for WebSocket upgrades.
    pub(crate) fn new(
        raw: &'a [u8],
        line: RequestLine,
        index: &'a HeaderIndex,
    ) -> Result<Self, ProtocolError> {
        let mut view =
            UpgradeRequest::revalidated(raw, line, index.as_slice(), index.seen_ids(), None);
        view.key = view.validate()?;
        Ok(view)
    }

    /// The same view, for a request already validated (`key` from the first time).
    pub(crate) fn revalidated(
        raw: &'a [u8],
        line: RequestLine,
        headers: &'a [HeaderSpan],
        seen: &'a SeenIds,
        key: Option<Span>,
    ) -> Self {
        UpgradeRequest {
            raw,
            line,
            headers,
            seen,
            key,
        }
    }

    /// The headers that can have id `id`: none, the one, or (for a repeated header)
    /// all of them, which the caller filters.
    fn with_id(&self, id: HeaderId) -> &'a [HeaderSpan] {
        let seen = self.seen[id as usize];
        let last = seen.last as usize;
        match seen.count {
            0 => &[],
            1 => self.headers.get(last..=last).unwrap_or_default(),
            _ => self.headers,
        }
    }

    /// Where the key is, for [`revalidated`](Self::revalidated).
    pub(crate) fn key_span(&self) -> Option<Span> {
        self.key
    }

    /// Returns where the key of a valid upgrade is, `None` for a plain HTTP request.
    fn validate(&self) -> Result<Option<Span>, ProtocolError> {
        // Each header the checks read is looked up, not searched for.
        let count = |id: HeaderId| self.seen[id as usize].count;
        // The value of the one header with id `id`; `None` when none or several have it.
        let only = |id: HeaderId| match self.with_id(id) {
            [h] => Some(h.value()),
            _ => None,
        };
        let hosts = count(HeaderId::Host);
        let upgrade_websocket =
            self.any_value(HeaderId::Upgrade, |v| list_contains(v, b"websocket"));
        let connection_upgrade =
            self.any_value(HeaderId::Connection, |v| list_contains(v, b"upgrade"));
        let body = count(HeaderId::TransferEncoding) > 0
            || self.any_value(HeaderId::ContentLength, |v| v != b"0");
        if hosts > 1 {
            return Err(ProtocolError::DuplicateHost);
        }
        if hosts == 0 && self.line.minor_version >= 1 {
            return Err(ProtocolError::MissingHost);
        }
        if !upgrade_websocket {
            return Ok(None);
        }
        if self.line.method.get(self.raw) != b"GET" {
            return Err(ProtocolError::MethodNotAllowed);
        }
        if self.line.minor_version == 0 {
            return Err(ProtocolError::UnsupportedHttpVersion);
        }
        // `path()` is the target itself when that starts with `/` (the usual case).
        let target = self.line.target.get(self.raw);
        if target.first() != Some(&b'/') && !self.path().starts_with('/') {
            return Err(ProtocolError::InvalidTarget);
        }
        if !connection_upgrade {
            return Err(ProtocolError::MissingConnectionUpgrade);
        }
        let version = only(HeaderId::SecWebSocketVersion).map(|v| v.get(self.raw));
        if version != Some(&b"13"[..]) {
            return Err(ProtocolError::UnsupportedVersion);
        }
        let Some(key) = only(HeaderId::SecWebSocketKey) else {
            return Err(ProtocolError::MissingKey);
        };
        if !is_valid_key(key.get(self.raw)) {
            return Err(ProtocolError::InvalidKey);
        }
        if body {
            return Err(ProtocolError::UnexpectedBody);
        }
        Ok(Some(key))
    }

    /// Whether any header with id `id` has a value that passes `test`.
    fn any_value(&self, id: HeaderId, test: impl Fn(&[u8]) -> bool) -> bool {
        match self.with_id(id) {
            // The usual case: the one header, no id to check.
            [h] => test(h.value().get(self.raw)),
            _ => self.values_of(id).any(test),
        }
    }

    /// Whether this is a valid WebSocket upgrade; `false` for a plain HTTP request
    /// (a page, a health check), which the decision may answer with any response
    pub fn is_upgrade(&self) -> bool {
        self.key.is_some()
    }

    /// The request method, e.g. `GET`
    pub fn method(&self) -> &'a str {
        // ASCII: the parser checked.
        self.line.method.get_str(self.raw)
    }

    /// Whether the method is `HEAD`, without taking out its text.
    pub(crate) fn is_head(&self) -> bool {
        self.line.method.get(self.raw) == b"HEAD"
    }

    /// The request target exactly as sent: path and query, e.g. `/chat?room=1`
    ///
    /// May hold a query-parameter credential: do not log it.
    pub fn target(&self) -> &'a str {
        // ASCII: the parser checked.
        self.line.target.get_str(self.raw)
    }

    /// The path of the target, without the query (`/chat`)
    ///
    /// For an absolute-form target (`http://host/chat`) this is the part after the
    /// authority, `/` if there is none.
    pub fn path(&self) -> &'a str {
        let before_query = self.target().split('?').next().unwrap_or_default();
        if before_query.starts_with('/') {
            return before_query;
        }
        match before_query.find("://") {
            Some(i) => {
                let after_scheme = &before_query[i + 3..];
                after_scheme.find('/').map_or("/", |j| &after_scheme[j..])
            }
            None => before_query,
        }
    }

    /// The raw query string after `?`, not decoded
    pub fn query(&self) -> Option<&'a str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// The query's `name=value` pairs, percent-decoded (`+` is a space, as in
    /// `URLSearchParams`; invalid UTF-8 after decoding is replaced by U+FFFD)
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> + 'a {
        query_pairs_raw(self.query().unwrap_or_default())
            .map(|(name, value)| (decode_lossy(name), decode_lossy(value)))
    }

    /// The first value of query parameter `name`, percent-decoded
    ///
    /// ```
    /// # let bytes = b"GET /ws?room=a%20b&x HTTP/1.1\r\nHost: h\r\n\r\n";
    /// # let mut hs = wsgate::ServerHandshake::new(&wsgate::Config::default(), wsgate::Instant::ZERO);
    /// # let mut out = Vec::new();
    /// hs.handle_input(bytes, &mut out, |req| {
    ///     assert_eq!(req.query_param("room").as_deref(), Some("a b"));
    ///     assert_eq!(req.query_param("x").as_deref(), Some(""));
    ///     wsgate::Decision::<()>::reject(wsgate::Response::forbidden())
    /// })
    /// .unwrap();
    /// ```
    pub fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query_value_raw(name).map(decode_lossy)
    }

    /// The still-encoded value of the first query parameter whose decoded name is `name`.
    pub(crate) fn query_value_raw(&self, name: &str) -> Option<&'a str> {
        query_pairs_raw(self.query()?)
            .find(|(n, _)| percent_decode(n).as_ref() == name.as_bytes())
            .map(|(_, value)| value)
    }

    /// The HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0
    pub fn http_minor_version(&self) -> u8 {
        self.line.minor_version
    }

    /// Every header as `(name, value)`, in the order received; values are trimmed of
    /// surrounding spaces and tabs
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            raw: self.raw,
            headers: self.headers.iter(),
            id: None,
        }
    }

    /// The value of the first header called `name` (ASCII case-insensitive)
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.header_all(name).next()
    }

    /// The values of every header called `name` (ASCII case-insensitive), in order
    pub fn header_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        let raw = self.raw;
        let id = HeaderId::of(name.as_bytes());
        // A header with a known id has a known name, so it never matches another name.
        self.with_id(id)
            .iter()
            .filter(move |h| {
                h.id() == id
                    && (id != HeaderId::Other
                        || h.name.get(raw).eq_ignore_ascii_case(name.as_bytes()))
            })
            .map(move |h| h.value().get(raw))
    }

    /// The values of every header with id `id` (not `Other`), in order.
    pub(crate) fn values_of(&self, id: HeaderId) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let raw = self.raw;
        self.with_id(id)
            .iter()
            .filter(move |h| h.id() == id)
            .map(move |h| h.value().get(raw))
    }

    /// The `Host` header
    pub fn host(&self) -> Option<&'a str> {
        self.values_of(HeaderId::Host)
            .next()
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The `Origin` header (browsers always send it; compare it to allow-list origins)
    pub fn origin(&self) -> Option<&'a str> {
        self.values_of(HeaderId::Origin)
            .next()
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The `Sec-WebSocket-Key` of a valid upgrade
    pub fn websocket_key(&self) -> Option<&'a str> {
        self.key.map(|k| k.get_str(self.raw))
    }

    /// [`websocket_key`](Self::websocket_key) as bytes, without the UTF-8 check.
    pub(crate) fn websocket_key_bytes(&self) -> Option<&'a [u8]> {
        self.key.map(|k| k.get(self.raw))
    }

    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in order, across repeated
    /// headers; both `a, b` (browsers) and `a,b` (Node ws) are understood
    ///
    /// This list can hold a credential (`access_token, <token>`): never accept the
    /// token itself as the subprotocol, and do not log the list.
    pub fn subprotocols(&self) -> ListItems<'a> {
        ListItems::new(self.headers_with(HeaderId::SecWebSocketProtocol))
    }

    /// Whether the client offered subprotocol `protocol` (case-sensitive, RFC 6455 §4.1)
    pub fn offers_subprotocol(&self, protocol: &str) -> bool {
        self.subprotocols().any(|p| p == protocol)
    }

    /// The extensions offered in `Sec-WebSocket-Extensions`, each with its parameters
    /// as sent (`permessage-deflate; client_max_window_bits`)
    pub fn extensions(&self) -> ListItems<'a> {
        ListItems::new(self.headers_with(HeaderId::SecWebSocketExtensions))
    }

    /// The cookies of every `Cookie` header as `(name, value)` (RFC 6265 §4.2.1;
    /// surrounding double quotes are removed from values, pairs that are not UTF-8 or
    /// lack `=` are skipped)
    pub fn cookies(&self) -> Cookies<'a> {
        Cookies {
            headers: self.headers_with(HeaderId::Cookie),
            rest: &[],
        }
    }

    /// The headers with id `id` (not `Other`), as `(name, value)`.
    fn headers_with(&self, id: HeaderId) -> HeaderIter<'a> {
        HeaderIter {
            raw: self.raw,
            headers: self.with_id(id).iter(),
            id: Some(id),
        }
    }

    /// The value of the first cookie called `name`
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.cookies().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl fmt::Debug for UpgradeRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(HeaderIter<'a>);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_list();
                for (name, value) in self.0.clone() {
                    if SECRET_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
                        list.entry(&(name, "<redacted>"));
                    } else {
                        list.entry(&(name, String::from_utf8_lossy(value)));
                    }
                }
                list.finish()
            }
        }
        f.debug_struct("UpgradeRequest")
            .field("method", &self.method())
            .field("path", &self.path())
            .field("query", &self.query().map(|_| "<redacted>"))
            .field("is_upgrade", &self.is_upgrade())
            .field("headers", &Redacted(self.headers()))
            .finish()
    }
}

/// Iterator over request headers as `(name, value)`
#[derive(Clone)]
pub struct HeaderIter<'a> {
    raw: &'a [u8],
    headers: core::slice::Iter<'a, HeaderSpan>,
    /// Only headers with this id, if set.
    id: Option<HeaderId>,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        for h in self.headers.by_ref() {
            if self.id.is_none_or(|want| h.id() == want) {
                return Some((h.name.get_str(self.raw), h.value().get(self.raw)));
            }
        }
        None
    }
}

/// Items of a comma-separated header list, across repeated headers, trimmed, empty
/// items skipped; commas inside double quotes do not split
#[derive(Clone)]
pub struct ListItems<'a> {
    headers: HeaderIter<'a>,
    rest: &'a [u8],
}

impl<'a> ListItems<'a> {
    /// The items of `headers`' values.
    fn new(headers: HeaderIter<'a>) -> Self {
        ListItems { headers, rest: &[] }
    }
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            if self.rest.is_empty() {
                self.rest = self.headers.next()?.1;
            }
            let (item, rest) = split_list_item(self.rest);
            self.rest = rest;
            let item = trim_ows(item);
            if !item.is_empty() {
                if let Ok(s) = core::str::from_utf8(item) {
                    return Some(s);
                }
            }
        }
    }
}

/// Cookies of the `Cookie` headers as `(name, value)`
#[derive(Clone)]
pub struct Cookies<'a> {
    headers: HeaderIter<'a>,
    rest: &'a [u8],
}

impl<'a> Iterator for Cookies<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                self.rest = self.headers.next()?.1;
            }
            let (pair, rest) = match find_byte(self.rest, b';') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            let Some(eq) = find_byte(pair, b'=') else {
                continue;
            };
            let name = trim_ows(&pair[..eq]);
            let mut value = trim_ows(&pair[eq + 1..]);
            if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
                value = &value[1..value.len() - 1];
            }
            if name.is_empty() {
                continue;
            }
            if let (Ok(n), Ok(v)) = (core::str::from_utf8(name), core::str::from_utf8(value)) {
                return Some((n, v));
            }
        }
    }
}

/// Split off the first comma-separated item, honouring quoted strings.
fn split_list_item(s: &[u8]) -> (&[u8], &[u8]) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => return (&s[..i], &s[i + 1..]),
            _ => {}
        }
    }
    (s, &[])
}

/// Whether the comma-separated list `value` holds `token` (lowercase letters; ASCII
/// case-insensitive).
fn list_contains<const N: usize>(value: &[u8], token: &[u8; N]) -> bool {
    // Nearly always the list is the token alone (`Upgrade: websocket`): a few word
    // compares.
    eq_lower(value, token)
        || value
            .split(|&b| b == b',')
            .any(|item| trim_ows(item).eq_ignore_ascii_case(token))
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 6455 §4.1: the key is base64 of 16 bytes: 22 alphabet characters whose last
/// one carries 4 zero bits, then `==`.
fn is_valid_key(key: &[u8]) -> bool {
    let Ok(key) = <&[u8; 24]>::try_from(key) else {
        return false;
    };
    // The 22 characters as two overlapping blocks of 16, each a fold without early
    // exit over a fixed length: a few vector instructions.
    let block = |at: usize| <&[u8; 16]>::try_from(&key[at..at + 16]).is_ok_and(all_base64);
    let alphabet = block(0) & block(6);
    // The characters whose 6-bit value has its low 4 bits zero: 0, 16, 32, 48.
    let zero_bits = matches!(key[21], b'A' | b'Q' | b'g' | b'w');
    alphabet & zero_bits & (key[22..] == *b"==")
}

fn all_base64(block: &[u8; 16]) -> bool {
    block.iter().fold(true, |ok, &b| ok & is_base64(b))
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() | (b == b'+') | (b == b'/')
}

/// `a=1&b&c=` as raw `(name, value)` pairs; empty pieces skipped.
fn query_pairs_raw(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// `application/x-www-form-urlencoded` decoding: `%XX` and `+`. A `%` not followed
/// by two hex digits stays as it is (WHATWG URL).
pub(crate) fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push(hex(h) << 4 | hex(l));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

fn decode_lossy(s: &str) -> Cow<'_, str> {
    match percent_decode(s) {
        Cow::Borrowed(_) => Cow::Borrowed(s),
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZR==")); // non-zero padding bits
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=")); // 15 bytes
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ")); // no padding
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j*Q=="));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(!is_valid_key(b""));
    }

    #[test]
    fn keys_match_the_rfc_definition() {
        // RFC 6455 §4.1 spelled out: 22 base64 characters, the last with 4 zero
        // bits, then `==`.
        fn reference(key: &[u8]) -> bool {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let value = |b| ALPHABET.iter().position(|&a| a == b);
            key.len() == 24
                && key[22..] == *b"=="
                && key[..22].iter().all(|&b| value(b).is_some())
                && value(key[21]).is_some_and(|v| v % 16 == 0)
        }
        let base = *b"dGhlIHNhbXBsZSBub25jZQ==";
        for at in [0, 7, 15, 16, 20, 21, 22, 23] {
            for b in 0..=255u8 {
                let mut key = base;
                key[at] = b;
                assert_eq!(is_valid_key(&key), reference(&key), "{at} {b}");
            }
        }
        for len in 0..30 {
            let key = vec![b'A'; len];
            assert_eq!(is_valid_key(&key), reference(&key));
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(&*percent_decode("a%20b+c"), b"a b c");
        assert_eq!(&*percent_decode("%2B%2b"), b"++");
        assert_eq!(&*percent_decode("100%"), b"100%");
        assert_eq!(&*percent_decode("%zz%4"), b"%zz%4");
        assert_eq!(&*percent_decode("%ff"), b"\xff");
        assert!(matches!(percent_decode("plain"), Cow::Borrowed(_)));
        assert_eq!(decode_lossy("%ff"), "\u{fffd}");
    }

    #[test]
    fn list_splitting() {
        assert_eq!(
            split_list_item(br#"a; p="x,y", b"#),
            (&br#"a; p="x,y""#[..], &b" b"[..])
        );
        assert_eq!(
            split_list_item(br#"a; p="x\",y", b"#),
            (&br#"a; p="x\",y""#[..], &b" b"[..])
        );
        assert!(list_contains(b"keep-alive, Upgrade", b"upgrade"));
        assert!(!list_contains(b"keep-alive, Upgrades", b"upgrade"));
        assert!(list_contains(b"UpGrade", b"upgrade"));
        assert!(!list_contains(b"upgrad\xc5", b"upgrade"));
        assert!(list_contains(b"WebSocket", b"websocket"));
        assert!(!list_contains(b"websocket\r", b"websocket"));
        assert_eq!(trim_ows(b" \t x y\t "), b"x y");
    }
}
