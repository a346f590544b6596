//! The server handshake: any bytes give an outcome, "need more" or a protocol error,
//! never a panic; fed whole and fed in chunks, the verdict and the bytes written agree.
//! A request still incomplete at its deadline gets a 408 and nothing more. The first
//! byte picks the chunk size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgate::Instant;
use wsgate::{Config, Decision, Outcome, Response, ServerHandshake, UpgradeRequest, auth};

/// Exercise the request view and decide from what the credentials say
fn decide(req: &UpgradeRequest<'_>) -> Decision<u8> {
    let _ = (req.path(), req.query(), req.host(), req.origin(), req.websocket_key());
    let _ = req.query_pairs().count() + req.cookies().count() + req.extensions().count();
    if let Some(p) = req.subprotocols().next() {
        if p.len() % 3 == 0 {
            return Decision::Accept(wsgate::Accept::new(1).subprotocol(p.to_string()));
        }
    }
    match auth::bearer(req) {
        Ok(Some(t)) if t.ct_eq(b"let-me-in") => Decision::accept(2),
        Ok(Some(_)) | Err(_) => Decision::reject(Response::unauthorized_bearer("f").invalid_token()),
        Ok(None) if auth::cookie(req, "token").is_some() => Decision::reject(Response::forbidden()),
        Ok(None) => Decision::accept(0),
    }
}

/// What one run produced: the verdict, the bytes written, the bytes after the head
fn config() -> Config {
    Config::builder().max_request_bytes(4096).max_line_bytes(1024).max_headers(16).build().unwrap()
}

fn run<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (String, Vec<u8>, Vec<u8>) {
    let mut hs = ServerHandshake::new(&config(), Instant::ZERO);
    let mut out = Vec::new();
    let mut verdict = String::from("need more");
    let mut leftover = Vec::new();
    let mut done = false;
    for chunk in chunks {
        if done {
            leftover.extend_from_slice(chunk);
            continue;
        }
        match hs.handle_input(chunk, &mut out, decide) {
            Ok(None) => {}
            Ok(Some(Outcome::Accepted(a))) => {
                verdict = format!("accepted {} {:?}", a.data(), a.subprotocol());
                leftover.extend_from_slice(a.leftover());
                done = true;
            }
            Ok(Some(Outcome::Rejected(r))) => {
                verdict = format!("rejected {}", r.status());
                leftover.extend_from_slice(r.leftover());
                done = true;
            }
            Err(e) => {
                verdict = format!("error {e}");
                done = true;
                // Sticky, and nothing more is written.
                let before = out.len();
                assert_eq!(hs.handle_input(b"x", &mut out, decide).unwrap_err(), e);
                assert_eq!(out.len(), before);
                break;
            }
        }
    }
    (verdict, out, if done { leftover } else { Vec::new() })
}

fuzz_target!(|data: &[u8]| {
    let Some((&lead, bytes)) = data.split_first() else { return };
    let step = usize::from(lead % 64) + 1;
    let whole = run(std::iter::once(bytes));
    let chunked = run(bytes.chunks(step));
    assert_eq!(whole.0, chunked.0);
    assert_eq!(whole.1, chunked.1);
    if !whole.0.starts_with("error") {
        assert_eq!(whole.2, chunked.2);
    }
    if whole.0 == "need more" {
        // Incomplete at its deadline: a 408, then the same error for any input.
        let mut hs = ServerHandshake::new(&config(), Instant::ZERO);
        let mut out = Vec::new();
        assert!(matches!(hs.handle_input(bytes, &mut out, decide), Ok(None)));
        let deadline = hs.poll_timeout().expect("a deadline while the request is incomplete");
        assert!(deadline > Instant::ZERO);
        hs.handle_timeout(Instant::ZERO, &mut out).expect("early: nothing");
        assert!(out.is_empty());
        let err = hs.handle_timeout(deadline, &mut out).unwrap_err();
        assert!(out.starts_with(b"HTTP/1.1 408 "));
        let written = out.len();
        assert_eq!(hs.handle_input(b"x", &mut out, decide).unwrap_err(), err);
        assert_eq!(out.len(), written);
        assert_eq!(hs.poll_timeout(), None);
    }
});
