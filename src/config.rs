//! Limits that bound the work and memory an untrusted peer can cause

use core::time::Duration;

use crate::error::ConfigError;

/// The largest [`Config::max_headers`] accepted: the header index lives on the stack
/// while the decision runs (32 bytes per slot).
pub const MAX_HEADERS_CEILING: usize = 256;

/// The largest [`Config::max_request_bytes`] accepted.
pub const MAX_REQUEST_BYTES_CEILING: usize = 1 << 20;

/// Limits for one connection
///
/// The defaults fit every real browser (Chromium with large cookies sends 8-16 KiB of
/// headers) while keeping a peer that never finishes its request to at most 32 KiB.
///
/// ```
/// let config = wsgate::Config::builder().max_headers(64).build().unwrap();
/// assert_eq!(config.max_headers(), 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    max_request_bytes: usize,
    max_line_bytes: usize,
    max_headers: usize,
    max_frame_bytes: usize,
    max_message_bytes: usize,
    max_auth_message_bytes: usize,
    auto_pong: bool,
    streaming: bool,
    handshake_timeout: Duration,
    first_message_timeout: Duration,
    close_timeout: Duration,
    keepalive: Option<Keepalive>,
}

/// Keepalive: ping a peer that has sent nothing for a while, and give up on one that
/// does not answer
///
/// After `interval` without any input the connection sends a ping (between one and
/// two intervals after the last input, as timers fire); when nothing (a pong or any
/// other frame) arrives within `timeout` of it, the connection fails with
/// [`ProtocolError::KeepaliveTimeout`](crate::ProtocolError::KeepaliveTimeout) and
/// queues a close with 1011, as Python `websockets` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before a ping
    pub interval: Duration,
    /// How long the pong may take
    pub timeout: Duration,
}

impl Default for Keepalive {
    /// 20 s and 20 s, Python `websockets`' defaults
    fn default() -> Self {
        Keepalive {
            interval: Duration::from_secs(20),
            timeout: Duration::from_secs(20),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_request_bytes: 32 * 1024,
            max_line_bytes: 16 * 1024,
            max_headers: 100,
            max_frame_bytes: 16 << 20,
            max_message_bytes: 64 << 20,
            max_auth_message_bytes: 8 * 1024,
            auto_pong: true,
            streaming: false,
            handshake_timeout: Duration::from_secs(10),
            first_message_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(10),
            keepalive: None,
        }
    }
}

impl Config {
    /// Start from the defaults
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
        }
    }

    /// Most bytes of request head (request line, headers, final CRLF); more is a 431
    /// (or 414 while the request line is still unfinished). Default 32 KiB.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// Most bytes in one line, CRLF excluded; a longer request line is a 414, a longer
    /// header line a 431. Default 16 KiB.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// Most header fields; more is a 431. Default 100, at most [`MAX_HEADERS_CEILING`].
    pub fn max_headers(&self) -> usize {
        self.max_headers
    }

    /// Most payload bytes in one data frame; more closes with 1009. Default 16 MiB,
    /// which lets a 16 MiB message arrive as a single frame.
    ///
    /// Not applied in [streaming](Config::streaming) mode, which buffers no payload.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Most payload bytes in one message, all fragments together; more closes with
    /// 1009. Default 64 MiB: a connection never buffers more than this.
    ///
    /// Not applied in [streaming](Config::streaming) mode.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Most bytes of the first message when it carries the credential (first-message
    /// authentication); more closes with 1009 before the rest is buffered. Also the most
    /// input that may wait behind that message while the caller decides on it; more
    /// closes with 1008. Default 8 KiB: room for any token, while an unauthenticated
    /// peer can make the connection hold little (what waits, and a read's room: under
    /// 160 KiB with the defaults, whatever length a frame header announces).
    pub fn max_auth_message_bytes(&self) -> usize {
        self.max_auth_message_bytes
    }

    /// Answer each ping with a pong automatically. Default on; when off, the caller
    /// answers [`Event::Ping`](crate::connection::Event::Ping) itself. Pings that arrive
    /// before first-message authentication succeeds are not handed out, so they are
    /// answered either way.
    pub fn auto_pong(&self) -> bool {
        self.auto_pong
    }

    /// Hand out data as it arrives ([`Event::TextChunk`](crate::connection::Event::TextChunk),
    /// [`Event::BinaryChunk`](crate::connection::Event::BinaryChunk)) instead of whole
    /// messages, so a large message is never held whole. Default off.
    pub fn streaming(&self) -> bool {
        self.streaming
    }

    /// How long a request head may take to arrive, from
    /// [`ServerHandshake::new`](crate::ServerHandshake::new); later, it is answered
    /// `408` and closed. Default 10 s, as Python `websockets`' `open_timeout`: a client
    /// that stalls mid-request costs the bytes it sent, and only until then.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// How long a connection that authenticates by its first message may take to
    /// send it; later, it is closed with 1008. Default 10 s.
    pub fn first_message_timeout(&self) -> Duration {
        self.first_message_timeout
    }

    /// How long to wait for the peer's close after this side sent one; later, the
    /// connection counts as closed and the caller may drop the socket. Default 10 s.
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// Keepalive pings; default off. See [`Keepalive`].
    pub fn keepalive(&self) -> Option<Keepalive> {
        self.keepalive
    }
}

/// Builds a [`Config`], checking each limit
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// See [`Config::max_request_bytes`]
    pub fn max_request_bytes(mut self, n: usize) -> Self {
        self.config.max_request_bytes = n;
        self
    }

    /// See [`Config::max_line_bytes`]
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.config.max_line_bytes = n;
        self
    }

    /// See [`Config::max_headers`]
    pub fn max_headers(mut self, n: usize) -> Self {
        self.config.max_headers = n;
        self
    }

    /// See [`Config::max_frame_bytes`]
    pub fn max_frame_bytes(mut self, n: usize) -> Self {
        self.config.max_frame_bytes = n;
        self
    }

    /// See [`Config::max_message_bytes`]
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.config.max_message_bytes = n;
        self
    }

    /// See [`Config::max_auth_message_bytes`]
    pub fn max_auth_message_bytes(mut self, n: usize) -> Self {
        self.config.max_auth_message_bytes = n;
        self
    }

    /// See [`Config::auto_pong`]
    pub fn auto_pong(mut self, on: bool) -> Self {
        self.config.auto_pong = on;
        self
    }

    /// See [`Config::streaming`]
    pub fn streaming(mut self, on: bool) -> Self {
        self.config.streaming = on;
        self
    }

    /// See [`Config::handshake_timeout`]
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.config.handshake_timeout = d;
        self
    }

    /// See [`Config::first_message_timeout`]
    pub fn first_message_timeout(mut self, d: Duration) -> Self {
        self.config.first_message_timeout = d;
        self
    }

    /// See [`Config::close_timeout`]
    pub fn close_timeout(mut self, d: Duration) -> Self {
        self.config.close_timeout = d;
        self
    }

    /// See [`Config::keepalive`]
    pub fn keepalive(mut self, keepalive: Option<Keepalive>) -> Self {
        self.config.keepalive = keepalive;
        self
    }

    /// Check the limits and build
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] when a limit is outside its range: `max_request_bytes`
    /// in 64..=1 MiB, `max_line_bytes` in 16..=`max_request_bytes`, `max_headers` in
    /// 1..=[`MAX_HEADERS_CEILING`], `max_message_bytes` at least 1, `max_frame_bytes` in
    /// 1..=`max_message_bytes`, `max_auth_message_bytes` at least 1 (the smaller of it
    /// and `max_message_bytes` applies to a first message).
    /// [`ConfigError::ZeroDuration`] for a timeout or keepalive duration of zero.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.config;
        check(
            "max_request_bytes",
            c.max_request_bytes,
            64,
            MAX_REQUEST_BYTES_CEILING,
        )?;
        check("max_line_bytes", c.max_line_bytes, 16, c.max_request_bytes)?;
        check("max_headers", c.max_headers, 1, MAX_HEADERS_CEILING)?;
        check("max_message_bytes", c.max_message_bytes, 1, usize::MAX)?;
        check("max_frame_bytes", c.max_frame_bytes, 1, c.max_message_bytes)?;
        check(
            "max_auth_message_bytes",
            c.max_auth_message_bytes,
            1,
            usize::MAX,
        )?;
        let keepalive = c.keepalive.map_or([None; 2], |k| {
            [
                Some(("keepalive.interval", k.interval)),
                Some(("keepalive.timeout", k.timeout)),
            ]
        });
        let durations = [
            Some(("handshake_timeout", c.handshake_timeout)),
            Some(("first_message_timeout", c.first_message_timeout)),
            Some(("close_timeout", c.close_timeout)),
        ];
        for (name, d) in durations.into_iter().chain(keepalive).flatten() {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration { name });
            }
        }
        Ok(c)
    }
}

fn check(name: &'static str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            name,
            min,
            max,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_their_own_checks() {
        assert_eq!(Config::builder().build(), Ok(Config::default()));
    }

    #[test]
    fn out_of_range_limits_are_refused() {
        let err = Config::builder().max_headers(0).build().unwrap_err();
        assert_eq!(
            err,
            ConfigError::OutOfRange {
                name: "max_headers",
                min: 1,
                max: MAX_HEADERS_CEILING,
                value: 0
            }
        );
        assert!(Config::builder().max_headers(257).build().is_err());
        assert!(
            Config::builder()
                .max_request_bytes(2 << 20)
                .build()
                .is_err()
        );
        let err = Config::builder()
            .max_request_bytes(1000)
            .max_line_bytes(2000)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("max_line_bytes"), "{err}");
    }

    #[test]
    fn zero_durations_are_refused() {
        let zero = Duration::ZERO;
        let keepalive = |interval, timeout| Some(Keepalive { interval, timeout });
        let second = Duration::from_secs(1);
        for (builder, name) in [
            (
                Config::builder().handshake_timeout(zero),
                "handshake_timeout",
            ),
            (
                Config::builder().first_message_timeout(zero),
                "first_message_timeout",
            ),
            (Config::builder().close_timeout(zero), "close_timeout"),
            (
                Config::builder().keepalive(keepalive(zero, second)),
                "keepalive.interval",
            ),
            (
                Config::builder().keepalive(keepalive(second, zero)),
                "keepalive.timeout",
            ),
        ] {
            assert_eq!(builder.build(), Err(ConfigError::ZeroDuration { name }));
        }
        let on = Config::builder()
            .keepalive(keepalive(second, second))
            .build();
        assert_eq!(on.unwrap().keepalive(), keepalive(second, second));
    }
}
