//! The browser demo: log in, then connect by every carrier a browser can use
//!
//! ```sh
//! cargo run --example auth_demo -- [--addr 127.0.0.1:8080]
//! ```
//!
//! One port serves the page (`GET /`), the login (`POST /login` with JSON
//! `{"username": "alice", "password": "wonderland"}`, answered with a token and a
//! cookie) and the WebSocket endpoints, all through the same handshake: plain HTTP
//! requests reach the same decision as upgrades and get whatever response it gives.
//! The page then opens a WebSocket with the token in the query, a cookie, the
//! subprotocol slot, the first message and `ws://token:T@host/` (Basic, after the
//! server's 401 challenge), each with the right and a wrong token, and shows which
//! were let in.

mod common;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use base64::Engine;
use wsgate::{Config, Decision, Outcome, Response, ServerHandshake};

const PAGE: &str = include_str!("auth_demo.html");
const USER: &str = "alice";
const PASSWORD: &str = "wonderland";
const MAX_LOGIN_BODY: usize = 4096;

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            _ => {
                eprintln!("usage: auth_demo [--addr HOST:PORT]");
                std::process::exit(2);
            }
        }
    }
    let token = Arc::new(new_token()?);
    let listener = TcpListener::bind(&addr)?;
    println!(
        "listening on {} (open http://{0}/ and log in as {USER} / {PASSWORD})",
        listener.local_addr()?
    );
    io::stdout().flush()?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let token = Arc::clone(&token);
        std::thread::spawn(move || {
            if let Err(e) = handle(stream, &token) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

/// The token issued at login: 18 random bytes as base64url without padding, so it
/// is an HTTP token and may travel in the subprotocol slot
fn new_token() -> io::Result<String> {
    let mut bytes = [0u8; 18];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn handle(mut stream: TcpStream, token: &str) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let config = Config::default();
    let mut handshake = ServerHandshake::new(&config, common::now());
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::new();
    // Deferred: a login must read its body before the decision.
    let pending = loop {
        let step = match common::read_until(&mut stream, &mut buf, handshake.poll_timeout())? {
            Some(0) => return Ok(()),
            Some(n) => handshake.handle_input_deferred(&buf[..n], &mut out),
            // The request did not come in time: a 408.
            None => handshake
                .handle_timeout(common::now(), &mut out)
                .map(|()| None),
        };
        match step {
            Ok(None) => {}
            Ok(Some(pending)) => break pending,
            Err(_) => return stream.write_all(&out), // the 4xx or 408
        }
    };
    stream.set_read_timeout(None)?;
    let req = pending.request();
    let decision = if req.is_upgrade() {
        // Only /ws/first lets a handshake without credential in, to authenticate by
        // its first message; elsewhere that is a 401 whose Basic challenge makes the
        // browser retry with the credentials of a ws://user:pass@ URL.
        common::decide(&req, Some(token), req.path() == "/ws/first")
    } else {
        match (req.method(), req.path()) {
            ("GET", "/") => Decision::reject(
                Response::new(200)
                    .header("Content-Type", "text/html; charset=utf-8")
                    .header("Cache-Control", "no-store")
                    .body(PAGE),
            ),
            ("POST", "/login") => {
                let len = req
                    .header("content-length")
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok());
                match len {
                    Some(len) if len <= MAX_LOGIN_BODY => {
                        let body = read_body(&mut stream, pending.leftover(), len)?;
                        login(&body, token)
                    }
                    _ => Decision::reject(Response::bad_request().body("bad login request\n")),
                }
            }
            _ => Decision::reject(Response::new(404).body("not found\n")),
        }
    };
    let outcome = pending.decide(decision, &mut out);
    stream.write_all(&out)?;
    match outcome {
        Ok(Outcome::Accepted(accepted)) => {
            common::echo_loop(stream, &config, accepted, Some(token))
        }
        _ => Ok(()),
    }
}

/// The request body: what came with the head, then the rest from the socket
fn read_body(stream: &mut TcpStream, leftover: &[u8], len: usize) -> io::Result<Vec<u8>> {
    let mut body = leftover[..leftover.len().min(len)].to_vec();
    let start = body.len();
    body.resize(len, 0);
    stream.read_exact(&mut body[start..])?;
    Ok(body)
}

fn login(body: &[u8], token: &str) -> Decision<common::Carrier> {
    let body = String::from_utf8_lossy(body);
    let ok = json_string(&body, "username").as_deref() == Some(USER)
        && json_string(&body, "password")
            .is_some_and(|p| wsgate::auth::ct_eq(p.as_bytes(), PASSWORD.as_bytes()));
    if !ok {
        return Decision::reject(
            Response::new(401)
                .header("Content-Type", "application/json")
                .body(r#"{"error":"wrong username or password"}"#),
        );
    }
    Decision::reject(
        Response::new(200)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store")
            // For the cookie carrier; scoped to its endpoint so that the other
            // attempts on the page show their own carrier at work.
            .header(
                "Set-Cookie",
                format!("token={token}; Path=/ws/cookie; SameSite=Strict; HttpOnly"),
            )
            .body(format!(r#"{{"token":"{token}"}}"#)),
    )
}

/// `"name": "value"` from a flat JSON object (no escapes: enough for this demo)
fn json_string(json: &str, name: &str) -> Option<String> {
    let key = format!("\"{name}\"");
    let rest = json[json.find(&key)? + key.len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}
