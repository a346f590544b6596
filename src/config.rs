//! Limits that bound the work and memory an untrusted peer can cause

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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_request_bytes: 32 * 1024,
            max_line_bytes: 16 * 1024,
            max_headers: 100,
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

    /// Check the limits and build
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] when a limit is outside its range: `max_request_bytes`
    /// in 64..=1 MiB, `max_line_bytes` in 16..=`max_request_bytes`, `max_headers` in
    /// 1..=[`MAX_HEADERS_CEILING`].
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
}
