//! The credential extractors over any header values: no panic, and no extracted
//! secret shows in the `Debug` of the request view or of the credentials.
//!
//! The input is split at 0xFF bytes into: authorization value, cookie header, query,
//! subprotocol header. Control bytes are replaced so that the request stays HTTP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgate::Instant;
use wsgate::{Config, ServerHandshake, auth};

fn clean(part: &[u8], query: bool) -> Vec<u8> {
    part.iter()
        .map(|&b| match b {
            0..=0x1F | 0x7F => b'a',
            b' ' | b'#' if query => b'+',
            b => b,
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF);
    let mut next = |query| clean(parts.next().unwrap_or_default(), query);
    let (authz, cookie, query, protocols) = (next(false), next(false), next(true), next(false));
    let mut request = b"GET /ws?".to_vec();
    request.extend_from_slice(&query);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: f\r\nAuthorization: ");
    request.extend_from_slice(&authz);
    request.extend_from_slice(b"\r\nCookie: ");
    request.extend_from_slice(&cookie);
    request.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
    request.extend_from_slice(&protocols);
    request.extend_from_slice(b"\r\n\r\n");

    let config = Config::default();
    let mut out = Vec::new();
    let Ok(Some(pending)) = ServerHandshake::new(&config, Instant::ZERO).handle_input_deferred(&request, &mut out) else {
        return; // not a parseable request (a header value made of spaces only, ...)
    };
    let req = pending.request();
    let shown = format!("{req:?}");
    let mut secrets = Vec::new();
    if let Ok(Some(t)) = auth::bearer(&req) {
        assert_eq!(format!("{t:?}"), "Secret(<redacted>)");
        secrets.push(t.expose().to_vec());
    }
    if let Ok(Some(c)) = auth::basic(&req) {
        assert!(!format!("{c:?}").contains(':'));
        secrets.push(c.password().expose().to_vec());
    }
    for name in ["token", "access_token", ""] {
        if let Some(t) = auth::query(&req, name) {
            secrets.push(t.expose().to_vec());
        }
        if let Some(t) = auth::cookie(&req, name) {
            secrets.push(t.expose().to_vec());
        }
    }
    if let Some(t) = auth::subprotocol_slot(&req, "access_token") {
        secrets.push(t.expose().to_vec());
    }
    for s in secrets {
        // Short or digit-free values can occur in the Debug text by chance ("GET",
        // "/ws", header names); a long alphanumeric value with a digit cannot.
        if s.len() >= 6
            && s.iter().all(|b| b.is_ascii_alphanumeric())
            && s.iter().any(|b| b.is_ascii_digit())
        {
            let s = String::from_utf8(s).unwrap();
            assert!(!shown.contains(&s), "secret in Debug: {shown}");
        }
    }
});
