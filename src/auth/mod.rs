//! Credentials in the upgrade request, by carrier
//!
//! Browsers cannot set headers on `new WebSocket(..)`, so a credential arrives by one
//! of several carriers; each has its extractor here:
//!
//! | carrier | wire form | extractor |
//! |---|---|---|
//! | Bearer header | `Authorization: Bearer <token>` (RFC 6750) | [`bearer`] |
//! | Basic header | `Authorization: Basic base64(user:pass)` (RFC 7617) | [`basic`] |
//! | query parameter | `GET /ws?token=<t>` | [`query`] |
//! | cookie | `Cookie: token=<t>` (RFC 6265) | [`cookie`] |
//! | subprotocol slot | `Sec-WebSocket-Protocol: access_token, <t>` | [`subprotocol_slot`] |
//!
//! Every credential comes out as a [`Secret`] (or [`BasicCredentials`]), whose `Debug`
//! prints no secret. Compare secrets with [`Secret::ct_eq`] (constant time).
//!
//! ```
//! use wsgate::{auth, Config, Decision, Instant, Response, ServerHandshake};
//!
//! let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
//! let mut out = Vec::new();
//! let req = b"GET /ws?token=s3cret HTTP/1.1\r\nHost: h\r\n\r\n";
//! hs.handle_input(req, &mut out, |req| {
//!     let token = auth::bearer(req).ok().flatten().or_else(|| auth::query(req, "token"));
//!     match token {
//!         Some(t) if t.ct_eq(b"s3cret") => Decision::accept(()),
//!         Some(_) => Decision::reject(Response::unauthorized_bearer("api").invalid_token()),
//!         None => Decision::reject(Response::unauthorized_bearer("api")),
//!     }
//! })
//! .unwrap();
//! // Not an upgrade, so the accept became a 426; the token was right.
//! assert!(out.starts_with(b"HTTP/1.1 426 "));
//! ```

use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;

use crate::handshake::{HeaderId, UpgradeRequest, percent_decode, trim_ows};

/// A credential; its `Debug` output is `Secret(<redacted>)`
///
/// Borrowed from the request where the wire form is the secret itself, owned where it
/// had to be decoded. `==` compares in constant time, like [`Secret::ct_eq`].
#[derive(Clone, Eq)]
pub struct Secret<'a>(Cow<'a, [u8]>);

impl PartialEq for Secret<'_> {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<'a> Secret<'a> {
    /// Wrap bytes as a secret
    pub fn new(bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret bytes. Keep them out of logs.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, if it is UTF-8. Keep it out of logs.
    pub fn expose_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.0).ok()
    }

    /// Compare with `expected` in time that depends only on the lengths
    pub fn ct_eq(&self, expected: &[u8]) -> bool {
        ct_eq(&self.0, expected)
    }

    /// A copy that does not borrow the request
    pub fn into_owned(self) -> Secret<'static> {
        Secret(Cow::Owned(self.0.into_owned()))
    }
}

/// Compare two byte strings in time that depends only on their lengths, not on where
/// they differ (for comparing a presented token with the expected one)
///
/// ```
/// assert!(wsgate::auth::ct_eq(b"token", b"token"));
/// assert!(!wsgate::auth::ct_eq(b"token", b"tokem"));
/// assert!(!wsgate::auth::ct_eq(b"token", b"token2"));
/// ```
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold into an early-exit comparison.
    core::hint::black_box(diff) == 0
}

/// The `Authorization` header is present but not usable
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// More than one `Authorization` header
    #[error("more than one Authorization header")]
    DuplicateAuthorization,
    /// The credentials do not follow the scheme's syntax (RFC 6750 §2.1 b64token,
    /// RFC 7617 base64 of `user:pass`)
    #[error("malformed Authorization credentials")]
    Malformed,
}

/// `Authorization: <scheme> <credentials>`, split.
struct Authorization<'a> {
    scheme: &'a [u8],
    credentials: &'a [u8],
}

/// The single `Authorization` header, if any.
fn authorization<'a>(
    req: &UpgradeRequest<'a>,
) -> Result<Option<Authorization<'a>>, CredentialError> {
    let mut values = req.values_of(HeaderId::Authorization);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(CredentialError::DuplicateAuthorization);
    }
    let split = value.iter().position(|&b| b == b' ').unwrap_or(value.len());
    Ok(Some(Authorization {
        scheme: &value[..split],
        credentials: trim_ows(&value[split..]),
    }))
}

/// `Authorization: Bearer <token>` (RFC 6750 §2.1); the scheme is case-insensitive
///
/// `Ok(None)` when there is no `Authorization` header or it has another scheme.
///
/// # Errors
/// [`CredentialError`] when the token is not a b64token or the header is repeated:
/// answer with `401` and `error="invalid_request"`, or `400`.
pub fn bearer<'a>(req: &UpgradeRequest<'a>) -> Result<Option<Secret<'a>>, CredentialError> {
    match authorization(req)? {
        Some(a) if a.scheme.eq_ignore_ascii_case(b"bearer") => {
            if is_b64token(a.credentials) {
                Ok(Some(Secret::new(a.credentials)))
            } else {
                Err(CredentialError::Malformed)
            }
        }
        _ => Ok(None),
    }
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    body_len > 0
        && token[..body_len]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// User and password from `Authorization: Basic` (RFC 7617), both redacted in `Debug`;
/// `==` compares in constant time
#[derive(Clone, Eq)]
pub struct BasicCredentials {
    /// `user:pass`, decoded.
    decoded: Vec<u8>,
    colon: usize,
}

impl BasicCredentials {
    /// The user id (before the first `:`)
    pub fn user(&self) -> Secret<'_> {
        Secret::new(&self.decoded[..self.colon])
    }

    /// The password (after the first `:`)
    pub fn password(&self) -> Secret<'_> {
        Secret::new(&self.decoded[self.colon + 1..])
    }
}

impl PartialEq for BasicCredentials {
    fn eq(&self, other: &Self) -> bool {
        // The split point is compared too: "a:bc" and "ab:c" differ.
        ct_eq(&self.decoded, &other.decoded) & (self.colon == other.colon)
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicCredentials(<redacted>)")
    }
}

/// `Authorization: Basic base64(user:pass)` (RFC 7617); the scheme is case-insensitive
///
/// Browsers send this for `ws://user:pass@host/` only after a `401` carrying a Basic
/// challenge ([`Response::unauthorized_basic`](crate::Response::unauthorized_basic)).
/// `Ok(None)` when there is no `Authorization` header or it has another scheme.
///
/// # Errors
/// [`CredentialError`] when the credentials are not base64 of `user:pass`.
pub fn basic(req: &UpgradeRequest<'_>) -> Result<Option<BasicCredentials>, CredentialError> {
    match authorization(req)? {
        Some(a) if a.scheme.eq_ignore_ascii_case(b"basic") => {
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let decoded = engine
                .decode(a.credentials)
                .map_err(|_| CredentialError::Malformed)?;
            let colon = decoded
                .iter()
                .position(|&b| b == b':')
                .ok_or(CredentialError::Malformed)?;
            Ok(Some(BasicCredentials { decoded, colon }))
        }
        _ => Ok(None),
    }
}

/// The first query parameter called `name`, percent-decoded (`?token=<t>`)
///
/// Query strings end up in access logs: prefer short-lived, single-use tokens here.
pub fn query<'a>(req: &UpgradeRequest<'a>, name: &str) -> Option<Secret<'a>> {
    req.query_value_raw(name).map(|v| Secret(percent_decode(v)))
}

/// The value of the first cookie called `name` (`Cookie: token=<t>`)
pub fn cookie<'a>(req: &UpgradeRequest<'a>, name: &str) -> Option<Secret<'a>> {
    req.cookie(name).map(|v| Secret::new(v.as_bytes()))
}

/// The subprotocol offered right after `marker`
/// (`Sec-WebSocket-Protocol: access_token, <t>` with marker `access_token`)
///
/// To accept, echo the marker, never the token:
/// `Accept::new(user).subprotocol("access_token")`. The token must be an HTTP token
/// (browsers refuse `=`, `/`, `+`, `,` and space): use base64url without padding.
pub fn subprotocol_slot<'a>(req: &UpgradeRequest<'a>, marker: &str) -> Option<Secret<'a>> {
    let mut offered = req.subprotocols();
    offered.find(|p| *p == marker)?;
    offered.next().map(|t| Secret::new(t.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64token_syntax() {
        for ok in ["a", "abc==", "A-._~+/9", "x="] {
            assert!(is_b64token(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "=", "a b", "a=b", "a,b", "tok\"", "\u{e9}"] {
            assert!(!is_b64token(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(Secret::new(&b"k"[..]).ct_eq(b"k"));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new(&b"hunter2"[..]);
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let b = BasicCredentials {
            decoded: b"alice:hunter2".to_vec(),
            colon: 5,
        };
        assert!(!format!("{b:?}").contains("hunter2"));
        assert!(!format!("{b:?}").contains("alice"));
        assert_eq!(b.user().expose(), b"alice");
        assert_eq!(b.password().expose_str(), Some("hunter2"));
    }
}
