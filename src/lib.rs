//! A sans-IO WebSocket (RFC 6455) state machine that decides at the handshake who may
//! connect
//!
//! wsgate parses the upgrade request bytes, shows the caller's decision a borrowed view
//! of the request, and writes the `101 Switching Protocols` (with the right
//! `Sec-WebSocket-Accept` and the chosen subprotocol) or a rejection (`401` with a
//! challenge, `403`, ...). Then a [`ServerConnection`] turns socket bytes into messages
//! and messages into socket bytes (RFC 6455 §5-7). It performs no I/O, reads no clock,
//! spawns nothing: the caller owns sockets and timers, so it fits any async runtime or
//! blocking code.
//!
//! Rejecting happens before any connection state exists, so an attacker cannot hold
//! idle unauthenticated sockets open. Credentials can arrive by every carrier browsers
//! allow (see [`auth`]), and none is ever echoed or printed by `Debug`.
//!
//! # A blocking echo server that authenticates by Bearer token
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpListener;
//!
//! use wsgate::{auth, Config, Decision, Event, Outcome, Response, ServerConnection, ServerHandshake};
//!
//! fn main() -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:9001")?;
//!     let config = Config::default();
//!     for stream in listener.incoming() {
//!         let mut stream = stream?;
//!         let mut buf = vec![0u8; 64 * 1024];
//!         let mut out = Vec::new();
//!
//!         // 1. The handshake decides who may connect.
//!         let mut handshake = ServerHandshake::new(&config);
//!         let accepted = loop {
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
//!                 Ok(Some(Outcome::Accepted(accepted))) => break Some(accepted),
//!                 Ok(Some(Outcome::Rejected(_))) | Err(_) => break None, // a 401 or 4xx
//!             }
//!         };
//!         stream.write_all(&out)?; // the 101, the 401 or the 4xx
//!         out.clear();
//!         let Some(accepted) = accepted else { continue }; // dropping the stream closes it
//!
//!         // 2. The connection echoes text until the close handshake completes.
//!         let mut conn = ServerConnection::from_accepted(accepted, &config);
//!         println!("{} connected", conn.data());
//!         let mut echo = Vec::new();
//!         loop {
//!             loop {
//!                 match conn.poll_event() {
//!                     Ok(Some(Event::Text(text))) => echo.push(text.to_owned()),
//!                     Ok(Some(_)) => {} // pings are answered and closes echoed for you
//!                     Ok(None) | Err(_) => break, // need more input, or failed (close queued)
//!                 }
//!             }
//!             for text in echo.drain(..) {
//!                 conn.send_text(&text).ok(); // fails only once closing
//!             }
//!             conn.poll_transmit(&mut out);
//!             stream.write_all(&out)?;
//!             out.clear();
//!             if conn.is_closed() {
//!                 break;
//!             }
//!             let n = stream.read(&mut buf)?;
//!             if n == 0 {
//!                 break;
//!             }
//!             conn.handle_input(&buf[..n]).ok(); // a failure also comes from poll_event
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! For a decision that needs an async lookup, use
//! [`ServerHandshake::handle_input_deferred`] and [`PendingHandshake::decide`]. The
//! layers: [`frame`] (the wire codec), [`handshake`], [`auth`] (credentials),
//! [`connection`] (messages, close handshake, first-message authentication).
//!
//! # Without the standard library
//!
//! The crate needs only `core` and `alloc`. With `default-features = false` it builds
//! for targets without `std` (an embedded TCP stack, say). The default `std` feature
//! only lets the UTF-8 check of text messages choose its SIMD code for the CPU at run
//! time; without it the check uses what the build targets (on baseline x86-64, the
//! scalar check).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

/// The README's code blocks compile as doctests, so the quickstart cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

extern crate alloc;

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
