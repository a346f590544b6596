//! A sans-IO WebSocket (RFC 6455) state machine that decides at the handshake who may
//! connect
//!
//! wsgate parses the upgrade request bytes, shows the caller's decision a borrowed view
//! of the request, and writes the `101 Switching Protocols` (with the right
//! `Sec-WebSocket-Accept` and the chosen subprotocol) or a rejection (`401` with a
//! challenge, `403`, ...). It performs no I/O, reads no clock, spawns nothing: the
//! caller owns sockets and timers, so it fits any async runtime or blocking code.
//!
//! Rejecting happens before any connection state exists, so an attacker cannot hold
//! idle unauthenticated sockets open. Credentials can arrive by every carrier browsers
//! allow (see [`auth`]), and none is ever echoed or printed by `Debug`.
//!
//! # A blocking server that authenticates by Bearer token
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpListener;
//!
//! use wsgate::{auth, Config, Decision, Outcome, Response, ServerHandshake};
//!
//! fn main() -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:9001")?;
//!     let config = Config::default();
//!     for stream in listener.incoming() {
//!         let mut stream = stream?;
//!         let mut handshake = ServerHandshake::new(&config);
//!         let mut buf = [0u8; 4096];
//!         let mut out = Vec::new();
//!         let outcome = loop {
//!             let n = stream.read(&mut buf)?;
//!             if n == 0 {
//!                 break None; // the client went away mid-request
//!             }
//!             let step = handshake.handle_input(&buf[..n], &mut out, |req| {
//!                 match auth::bearer(req) {
//!                     Ok(Some(token)) if token.ct_eq(b"let-me-in") => Decision::accept("alice"),
//!                     Ok(Some(_)) | Err(_) => {
//!                         Decision::reject(Response::unauthorized_bearer("chat").invalid_token())
//!                     }
//!                     Ok(None) => Decision::reject(Response::unauthorized_bearer("chat")),
//!                 }
//!             });
//!             match step {
//!                 Ok(None) => continue, // need more bytes
//!                 Ok(Some(outcome)) => break Some(outcome),
//!                 Err(e) => {
//!                     eprintln!("bad handshake: {e}"); // the 4xx is in `out`
//!                     break None;
//!                 }
//!             }
//!         };
//!         stream.write_all(&out)?; // the 101, the 401 or the 4xx
//!         match outcome {
//!             Some(Outcome::Accepted(accepted)) => {
//!                 let (user, first_frames) = accepted.into_parts();
//!                 println!("{user} connected ({} bytes of frames already here)", first_frames.len());
//!                 // hand `stream` and `first_frames` to the connection
//!             }
//!             Some(Outcome::Rejected(_)) | None => {} // dropping the stream closes it
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! For a decision that needs an async lookup, use
//! [`ServerHandshake::handle_input_deferred`] and [`PendingHandshake::decide`].
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

/// The README's code blocks compile as doctests, so the quickstart cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod auth;
mod config;
pub mod connection;
pub mod error;
pub mod frame;
pub mod handshake;

pub use config::{Config, ConfigBuilder, MAX_HEADERS_CEILING, MAX_REQUEST_BYTES_CEILING};
pub use connection::{Event, MessageKind, ServerConnection};
pub use error::{ConfigError, Error, ProtocolError, UsageError};
pub use frame::CloseCode;
pub use handshake::{
    Accept, AcceptKey, Accepted, BearerError, Body, Challenge, Decision, Outcome, PendingHandshake,
    Rejected, Response, ServerHandshake, UpgradeRequest, accept_key,
};
