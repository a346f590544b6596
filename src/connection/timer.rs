//! The connection's deadlines: the first message, the peer's close, keepalive
//!
//! The caller's timer fires at [`poll_timeout`](super::ServerConnection::poll_timeout)
//! and calls [`handle_timeout`](super::ServerConnection::handle_timeout); what is due
//! then is decided here. A call before a deadline, or for one that no longer applies,
//! does nothing.

use core::time::Duration;

use super::send::Phase;
use crate::config::{Config, Keepalive};
use crate::time::Instant;

pub(super) struct Timers {
    /// When the first message must have been accepted, with first-message
    /// authentication.
    auth: Option<Instant>,
    close_timeout: Duration,
    /// When to stop waiting for the peer's close after ours.
    close: Option<Instant>,
    keepalive: Option<KeepaliveTimer>,
    /// Input arrived since the keepalive timer last looked: the peer is alive.
    pub(super) saw_input: bool,
}

struct KeepaliveTimer {
    config: Keepalive,
    /// When to look whether the peer has been idle.
    check: Instant,
    /// When the unanswered ping went out.
    ping: Option<Instant>,
}

/// What a timer asks the connection to do
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    Nothing,
    /// The first message did not come (or was not accepted) in time: close 1008.
    AuthTimeout,
    /// The peer's close did not come: stop waiting.
    CloseTimeout,
    /// Idle for an interval: ping.
    Ping,
    /// No pong in time: fail.
    KeepaliveTimeout,
}

impl Timers {
    pub(super) fn new(config: &Config, now: Instant, first_message_auth: bool) -> Self {
        Timers {
            auth: first_message_auth.then(|| now + config.first_message_timeout()),
            close_timeout: config.close_timeout(),
            close: None,
            keepalive: config.keepalive().map(|k| KeepaliveTimer {
                config: k,
                check: now + k.interval,
                ping: None,
            }),
            saw_input: false,
        }
    }

    pub(super) fn authenticated(&mut self) {
        self.auth = None;
    }

    pub(super) fn close_sent(&mut self, now: Instant) {
        self.close = Some(now + self.close_timeout);
    }

    /// The earliest deadline, if any applies in `phase`
    pub(super) fn next(&self, phase: Phase) -> Option<Instant> {
        let (open, closing) = (phase == Phase::Open, phase == Phase::CloseSent);
        let keepalive = self.keepalive.as_ref().filter(|_| open);
        [
            self.auth.filter(|_| open || closing),
            self.close.filter(|_| closing),
            keepalive.map(|k| k.check),
            keepalive.and_then(|k| k.ping.map(|sent| sent + k.config.timeout)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// What is due at `now`; the keepalive timer re-arms itself, and counts a ping as
    /// sent when it returns `Due::Ping`
    pub(super) fn due(&mut self, now: Instant, phase: Phase) -> Due {
        let (open, closing) = (phase == Phase::Open, phase == Phase::CloseSent);
        if (open || closing) && self.auth.is_some_and(|t| now >= t) {
            self.auth = None;
            return Due::AuthTimeout;
        }
        if closing && self.close.is_some_and(|t| now >= t) {
            self.close = None;
            return Due::CloseTimeout;
        }
        if !open {
            return Due::Nothing;
        }
        let saw_input = core::mem::take(&mut self.saw_input);
        let Some(k) = &mut self.keepalive else {
            return Due::Nothing;
        };
        if let Some(sent) = k.ping {
            // Any input answers: a pong, or anything else the peer sent.
            if saw_input {
                k.ping = None;
            } else if now >= sent + k.config.timeout {
                self.keepalive = None;
                return Due::KeepaliveTimeout;
            }
        }
        if now < k.check {
            // Not due yet: keep what was seen for when it is.
            self.saw_input |= saw_input;
            return Due::Nothing;
        }
        k.check = now + k.config.interval;
        if saw_input || k.ping.is_some() {
            return Due::Nothing;
        }
        k.ping = Some(now);
        Due::Ping
    }
}
