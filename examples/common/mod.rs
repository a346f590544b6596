//! Shared by the examples: the handshake decision that checks a token on every
//! carrier, and the event pump that echoes messages and checks a first message

#![allow(dead_code)] // each example uses a different part

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use wsgate::auth::{self, Secret};
use wsgate::connection::{Event, MessageKind, ServerConnection};
use wsgate::{
    Accept, Accepted, Challenge, Config, Decision, Outcome, Response, ServerHandshake,
    UpgradeRequest,
};

pub const REALM: &str = "wsgate";

/// How long a connection may take to send its first message when that carries the
/// credential
pub const AUTH_DEADLINE: Duration = Duration::from_secs(10);

/// How the connection was let in
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// No token is configured: everyone is let in
    Open,
    Bearer,
    Basic,
    Query,
    Cookie,
    Subprotocol,
    /// The handshake had no credential; the first message must carry it
    Pending,
    FirstMessage,
}

enum Found {
    Right(Carrier),
    Wrong,
    Nothing,
}

/// What the carriers of one request hold
struct Tally<'t> {
    token: &'t [u8],
    right: Option<Carrier>,
    wrong: bool,
}

impl Tally<'_> {
    fn offer(&mut self, carrier: Carrier, secret: Option<Secret<'_>>) {
        match secret {
            Some(s) if s.ct_eq(self.token) => {
                self.right.get_or_insert(carrier);
            }
            Some(_) => self.wrong = true,
            None => {}
        }
    }
}

/// Look for `token` on every handshake carrier; a right one anywhere wins
fn find(req: &UpgradeRequest<'_>, token: &[u8]) -> Found {
    let mut t = Tally {
        token,
        right: None,
        wrong: false,
    };
    match auth::bearer(req) {
        Ok(secret) => t.offer(Carrier::Bearer, secret),
        Err(_) => t.wrong = true,
    }
    match auth::basic(req) {
        Ok(Some(c)) if c.user().ct_eq(b"token") => t.offer(Carrier::Basic, Some(c.password())),
        Ok(Some(_)) | Err(_) => t.wrong = true,
        Ok(None) => {}
    }
    t.offer(Carrier::Query, auth::query(req, "token"));
    t.offer(Carrier::Query, auth::query(req, "access_token"));
    t.offer(Carrier::Cookie, auth::cookie(req, "token"));
    t.offer(
        Carrier::Subprotocol,
        auth::subprotocol_slot(req, "access_token"),
    );
    match t {
        Tally {
            right: Some(carrier),
            ..
        } => Found::Right(carrier),
        Tally { wrong: true, .. } => Found::Wrong,
        _ => Found::Nothing,
    }
}

/// Challenges for both schemes, so that a browser given `ws://token:T@host/` retries
/// with Basic
pub fn challenges() -> Response {
    Response::unauthorized_bearer(REALM).with_challenge(Challenge::basic(REALM))
}

/// The handshake decision of a server guarded by `token` (none: open to all)
pub fn decide(
    req: &UpgradeRequest<'_>,
    token: Option<&str>,
    first_message_auth: bool,
) -> Decision<Carrier> {
    let Some(token) = token else {
        return Decision::accept(Carrier::Open);
    };
    match find(req, token.as_bytes()) {
        Found::Right(Carrier::Subprotocol) => {
            // Echo the marker, never the token.
            Decision::Accept(Accept::new(Carrier::Subprotocol).subprotocol("access_token"))
        }
        Found::Right(carrier) => Decision::accept(carrier),
        Found::Wrong => Decision::reject(challenges().invalid_token()),
        Found::Nothing if first_message_auth => Decision::accept(Carrier::Pending),
        Found::Nothing => Decision::reject(challenges()),
    }
}

/// Poll every event: echo text and binary, check a first message against `token`.
/// Pings are answered and closes echoed by the connection itself.
///
/// `scratch` holds a copy of each message to echo: the event borrows the connection,
/// which must be free again to send.
pub fn pump(conn: &mut ServerConnection<Carrier>, token: Option<&str>, scratch: &mut Vec<u8>) {
    loop {
        let echo = match conn.poll_event() {
            Ok(Some(Event::Text(text))) => {
                scratch.clear();
                scratch.extend_from_slice(text.as_bytes());
                Some(MessageKind::Text)
            }
            Ok(Some(Event::Binary(bytes))) => {
                scratch.clear();
                scratch.extend_from_slice(bytes);
                Some(MessageKind::Binary)
            }
            Ok(Some(Event::AuthMessage { message, text })) => {
                let right = text && token.is_some_and(|t| message.ct_eq(t.as_bytes()));
                if right {
                    *conn.data_mut() = Carrier::FirstMessage;
                    conn.accept_auth()
                        .expect("a first message awaits its verdict");
                } else {
                    conn.reject_auth()
                        .expect("a first message awaits its verdict");
                }
                None
            }
            Ok(Some(_)) => None,
            // The peer broke the protocol; the close frame is queued.
            Ok(None) | Err(_) => return,
        };
        if let Some(kind) = echo {
            // A whole message as one frame. Fails only after this side closed.
            let _ = conn.send_fragment(kind, scratch, true);
        }
    }
}

/// Serve one connection on a blocking socket: handshake, then echo until closed
pub fn serve_blocking(
    mut stream: TcpStream,
    config: &Config,
    token: Option<&str>,
    first_message_auth: bool,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();

    let mut handshake = ServerHandshake::new(config);
    let accepted = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let step = handshake.handle_input(&buf[..n], &mut out, |req| {
            decide(req, token, first_message_auth)
        });
        stream.write_all(&out)?;
        out.clear();
        match step {
            Ok(None) => {}
            Ok(Some(Outcome::Accepted(accepted))) => break accepted,
            // A rejection or a malformed request: its response is written; close.
            Ok(Some(Outcome::Rejected(_))) | Err(_) => return Ok(()),
        }
    };

    echo_loop(stream, config, accepted, token)
}

/// Run an accepted connection on a blocking socket: echo until closed, checking a
/// first message when the handshake carried no credential
pub fn echo_loop(
    mut stream: TcpStream,
    config: &Config,
    accepted: Accepted<Carrier>,
    token: Option<&str>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let pending = *accepted.data() == Carrier::Pending;
    let mut conn = ServerConnection::from_accepted(accepted, config);
    let mut deadline = None;
    if pending {
        conn = conn.require_first_message_auth();
        deadline = Some(Instant::now() + AUTH_DEADLINE);
    }
    let mut scratch = Vec::new();
    loop {
        pump(&mut conn, token, &mut scratch);
        conn.poll_transmit(&mut out);
        stream.write_all(&out)?;
        out.clear();
        if conn.is_closed() {
            // The server closes the TCP connection first (RFC 6455 §7.1.1). Half-close
            // and read until the peer closes too (2 s at most): closing with unread
            // input makes the kernel send a reset, which can destroy the close frame
            // before the peer reads it.
            stream.shutdown(Shutdown::Write)?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            return Ok(());
        }
        // The first-message timer is a socket read timeout here.
        if let Some(d) = deadline {
            if conn.is_authenticated() {
                stream.set_read_timeout(None)?;
                deadline = None;
            } else {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    conn.handle_auth_timeout();
                    continue;
                }
                stream.set_read_timeout(Some(left))?;
            }
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.handle_auth_timeout();
                continue;
            }
            Err(e) => return Err(e),
        };
        // An error is also returned by the next poll_event, which queues its close.
        let _ = conn.handle_input(&buf[..n]);
    }
}
