#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

extern crate alloc;

pub mod auth;
mod config;
pub mod connection;
pub mod error;
pub mod frame;
pub mod handshake;
mod time;
mod work;

pub use config::{
    Config, ConfigBuilder, Keepalive, MAX_HEADERS_CEILING, MAX_REQUEST_BYTES_CEILING,
};
pub use connection::{Event, MessageKind, Payload, Receiver, Sender, ServerConnection, Text};
pub use error::{ConfigError, Error, ProtocolError, UsageError};
pub use frame::CloseCode;
pub use handshake::{
    Accept, AcceptKey, Accepted, BearerError, Body, Challenge, Decision, Outcome, PendingHandshake,
    Rejected, Response, ServerHandshake, UpgradeRequest, accept_key,
};
pub use time::Instant;
