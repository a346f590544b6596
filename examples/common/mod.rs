//! Shared by the examples: the handshake decision that checks a token on every
//! carrier, and the event pump that echoes messages and checks a first message

#![allow(dead_code)] // each example uses a different part

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use wsgate::auth::{self, Secret};
use wsgate::connection::{Event, ServerConnection};
use wsgate::{
    Accept, Accepted, Challenge, Config, Decision, Outcome, Response, ServerHandshake,
    UpgradeRequest,
};

pub const REALM: &str = "wsgate";

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
        Found::Nothing if first_message_auth => {
            Decision::Accept(Accept::new(Carrier::Pending).first_message_auth())
        }
        Found::Nothing => Decision::reject(challenges()),
    }
}

/// The instant on this process's clock, for the connection's timers
pub fn now() -> wsgate::Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    wsgate::Instant::from_origin(ORIGIN.get_or_init(std::time::Instant::now).elapsed())
}

/// How long until `deadline` on this process's clock (zero once it passed)
pub fn until(deadline: wsgate::Instant) -> Duration {
    deadline.saturating_duration_since(now())
}

/// Poll every event: echo text and binary straight from the connection's buffer,
/// check a first message against `token`. Pings are answered and closes echoed by the
/// connection itself.
pub fn pump(conn: &mut ServerConnection<Carrier>, token: Option<&str>) {
    let (rx, tx, carrier) = conn.split();
    loop {
        // A send fails only after this side closed.
        match rx.poll_event(tx) {
            Ok(Some(Event::Text(text))) => {
                let _ = tx.send_text(&text);
            }
            Ok(Some(Event::Binary(bytes))) => {
                let _ = tx.send_binary(&bytes);
            }
            Ok(Some(Event::AuthMessage { message, text })) => {
                let right = text && token.is_some_and(|t| message.ct_eq(t.as_bytes()));
                let verdict = if right {
                    *carrier = Carrier::FirstMessage;
                    tx.accept_auth()
                } else {
                    tx.reject_auth()
                };
                verdict.expect("a first message awaits its verdict");
            }
            Ok(Some(_)) => {}
            // Need more input, or the peer broke the protocol (the close is queued).
            Ok(None) | Err(_) => return,
        }
    }
}

/// Read with `deadline`, if any, as a socket read timeout; `None` once it passed
pub fn read_until(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Option<wsgate::Instant>,
) -> io::Result<Option<usize>> {
    if let Some(d) = deadline {
        let left = until(d);
        if left.is_zero() {
            return Ok(None);
        }
        stream.set_read_timeout(Some(left))?;
    } else {
        stream.set_read_timeout(None)?;
    }
    match stream.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
        Err(e) => Err(e),
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
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::new();

    let mut handshake = ServerHandshake::new(config, now());
    let accepted = loop {
        let step = match read_until(&mut stream, &mut buf, handshake.poll_timeout())? {
            Some(0) => return Ok(()),
            Some(n) => handshake.handle_input(&buf[..n], &mut out, |req| {
                decide(req, token, first_message_auth)
            }),
            // The deadline passed: a 408.
            None => handshake.handle_timeout(now(), &mut out).map(|()| None),
        };
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
/// first message when the handshake carried no credential. The socket is read
/// straight into the connection; its deadlines become socket read timeouts.
pub fn echo_loop(
    mut stream: TcpStream,
    config: &Config,
    accepted: Accepted<Carrier>,
    token: Option<&str>,
) -> io::Result<()> {
    let mut out = Vec::new();
    let mut conn = ServerConnection::from_accepted(accepted, config, now());
    loop {
        pump(&mut conn, token);
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
            let mut sink = [0u8; 4096];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            return Ok(());
        }
        let deadline = conn.poll_timeout();
        match read_until(&mut stream, conn.input_buffer(), deadline)? {
            Some(0) => return Ok(()),
            Some(n) => conn.handle_read(n),
            None => {
                conn.handle_read(0);
                conn.handle_timeout(now());
            }
        }
    }
}
