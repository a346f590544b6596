//! No credential appears in any `Debug` or `Display` output (request view,
//! handshake, credentials, errors, decisions, outcomes, connection, events) nor in any
//! response or close frame the crate writes

use wsgate::Instant;
use wsgate::auth;
use wsgate::connection::{Event, ServerConnection};
use wsgate::{Config, Decision, Error, Outcome, Response, ServerHandshake};

/// Distinct secrets on every carrier; base64("token:BASICSECRET9") for Basic
const SECRETS: [&str; 6] = [
    "QUERYSECRET1",
    "BEARERSECRET2",
    "COOKIESECRET3",
    "SLOTSECRET4",
    "BASICSECRET9",
    "FIRSTMSGSECRET5",
];

fn request(authorization: &str) -> String {
    format!(
        "GET /ws?token=QUERYSECRET1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nAuthorization: {authorization}\r\n\
         Cookie: theme=dark; token=COOKIESECRET3\r\n\
         Sec-WebSocket-Protocol: access_token, SLOTSECRET4\r\nUser-Agent: test-agent\r\n\r\n"
    )
}

fn assert_clean(printed: &[String]) {
    for text in printed {
        for s in SECRETS {
            assert!(!text.contains(s), "{s} leaked in {text}");
        }
        assert!(
            !text.contains("dG9rZW46QkFTSUNTRUNSRVQ5"),
            "Basic credentials leaked in {text}"
        );
    }
}

#[test]
fn the_request_view_credentials_decisions_and_responses_print_no_secret() {
    for authorization in ["Bearer BEARERSECRET2", "Basic dG9rZW46QkFTSUNTRUNSRVQ5"] {
        let config = Config::default();
        let mut hs = ServerHandshake::new(&config, Instant::ZERO);
        let mut out = Vec::new();
        let raw = request(authorization);
        // In two pieces, so the handshake buffers the first.
        assert!(
            hs.handle_input_deferred(&raw.as_bytes()[..100], &mut out)
                .unwrap()
                .is_none()
        );
        let mut printed = vec![format!("{hs:?}")];
        let pending = hs
            .handle_input_deferred(&raw.as_bytes()[100..], &mut out)
            .unwrap()
            .unwrap();
        let req = pending.request();
        printed.push(format!("{req:?}"));
        printed.push(format!("{pending:?}"));
        printed.push(format!("{hs:?}"));
        printed.push(format!("{:?}", auth::bearer(&req)));
        printed.push(format!("{:?}", auth::basic(&req)));
        if let Ok(Some(basic)) = auth::basic(&req) {
            printed.push(format!("{:?} {:?}", basic.user(), basic.password()));
        }
        printed.push(format!("{:?}", auth::query(&req, "token")));
        printed.push(format!("{:?}", auth::cookie(&req, "token")));
        printed.push(format!(
            "{:?}",
            auth::subprotocol_slot(&req, "access_token")
        ));
        printed.push(format!("{:?}", req.headers().collect::<Vec<_>>().len()));
        assert!(
            printed[1].contains("test-agent"),
            "other headers still print: {}",
            printed[1]
        );

        // Rejected: the decision, the outcome and the 401 bytes.
        let decision: Decision<()> = Decision::reject(
            Response::unauthorized_bearer("r")
                .invalid_token()
                .body("no"),
        );
        printed.push(format!("{decision:?}"));
        let mut out = Vec::new();
        match pending.decide(decision, &mut out).unwrap() {
            Outcome::Rejected(r) => printed.push(format!("{r:?}")),
            Outcome::Accepted(_) => panic!("accepted"),
        }
        printed.push(String::from_utf8_lossy(&out).into_owned());
        assert_clean(&printed);
    }
}

#[test]
fn an_accepted_slot_token_is_never_echoed() {
    let config = Config::default();
    let mut hs = ServerHandshake::new(&config, Instant::ZERO);
    let mut out = Vec::new();
    let raw = request("Bearer BEARERSECRET2") + "\u{0}trailing";
    let outcome = hs
        .handle_input(raw.as_bytes(), &mut out, |_| {
            Decision::Accept(wsgate::Accept::new("user").subprotocol("access_token"))
        })
        .unwrap()
        .unwrap();
    let Outcome::Accepted(accepted) = outcome else {
        panic!("rejected")
    };
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(
        text.contains("Sec-WebSocket-Protocol: access_token\r\n"),
        "{text}"
    );
    assert_clean(&[
        text,
        format!("{accepted:?}"),
        format!("{:?}", accepted.subprotocol()),
    ]);
}

#[test]
fn errors_print_no_request_bytes() {
    // Requests that fail at different stages, each carrying secrets.
    let broken = [
        request("Bearer BEARERSECRET2").replace("HTTP/1.1", "HTTP/9.9"),
        request("Bearer BEARERSECRET2").replace("\r\nHost: h", ""),
        request("Bearer BEARERSECRET2").replace("Version: 13", "Version: 8"),
        request("Bearer BEARERSECRET2").replace("Cookie:", "Cookie QUERYSECRET1:"),
        request("Bearer BEARERSECRET2").replace("GET", "POST"),
        request("Bearer BEARERSECRET2").replace("\r\nUser-Agent", "\nUser-Agent"),
    ];
    for raw in broken {
        let mut out = Vec::new();
        let err = ServerHandshake::new(&Config::default(), Instant::ZERO)
            .handle_input(raw.as_bytes(), &mut out, |_| Decision::accept(()))
            .unwrap_err();
        assert_clean(&[
            format!("{err}"),
            format!("{err:?}"),
            String::from_utf8_lossy(&out).into_owned(),
        ]);
    }
    let bad = "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer BEARERSECRET2 !\r\n\r\n";
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let pending = hs
        .handle_input_deferred(bad.as_bytes(), &mut Vec::new())
        .unwrap()
        .unwrap();
    let err = auth::bearer(&pending.request()).unwrap_err();
    assert_clean(&[format!("{err}"), format!("{err:?}")]);
}

#[test]
fn a_first_message_credential_prints_nowhere() {
    let mut conn = ServerConnection::with_first_message_auth((), &Config::default(), Instant::ZERO);
    let mut frame = vec![0x81, 0x80 | 15, 0, 0, 0, 0];
    frame.extend_from_slice(b"FIRSTMSGSECRET5");
    conn.handle_input(&frame[..10]);
    let mut printed = vec![format!("{conn:?}")];
    conn.handle_input(&frame[10..]);
    printed.push(format!("{conn:?}"));
    let event = conn.poll_event().unwrap().unwrap();
    assert!(matches!(event, Event::AuthMessage { .. }));
    printed.push(format!("{event:?}"));
    conn.sender().reject_auth().unwrap();
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    printed.push(String::from_utf8_lossy(&out).into_owned());
    printed.push(format!("{conn:?}"));
    let err: Error = conn.sender().send_text("x").unwrap_err();
    printed.push(format!("{err} {err:?}"));
    assert_clean(&printed);
}
