//! Server-side cost of one WebSocket opening handshake, per connection.
//!
//! Each iteration turns the same 432-byte Chrome-style upgrade request into the
//! response bytes, starting from a fresh handshake state (that is the per-connection
//! cost). `handshake_101` accepts the client and compares wsgate with tungstenite and
//! tokio-websockets; `handshake_401` rejects it for a missing Bearer token. The peers
//! run over in-memory streams, so no socket or runtime cost is measured.
//!
//! Run with `cargo bench --bench handshake` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick run).

use std::hint::black_box;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::handshake::server::{ErrorResponse, Request as TRequest, Response as TResponse};
use tungstenite::http;
use wsgate::{Config, Decision, Instant, Outcome, Response, ServerHandshake, auth};

/// A Chrome-style upgrade request, exactly 432 bytes (the UA is abbreviated to fit).
const REQUEST: &[u8] = concat!(
    "GET / HTTP/1.1\r\n",
    "Host: example.com\r\n",
    "Connection: Upgrade\r\n",
    "Pragma: no-cache\r\n",
    "Cache-Control: no-cache\r\n",
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0.0.0\r\n",
    "Upgrade: websocket\r\n",
    "Origin: https://example.com\r\n",
    "Sec-WebSocket-Version: 13\r\n",
    "Accept-Encoding: gzip, deflate, br\r\n",
    "Accept-Language: en\r\n",
    "Cookie: sid=9f86d08\r\n",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    "\r\n",
)
.as_bytes();

const REQUEST_LEN: usize = 432;

/// An in-memory connection: reads come from `input`, writes are appended to `output`.
/// Every operation is immediately ready, so it serves both the blocking (tungstenite)
/// and the async (tokio-websockets) peers.
struct MemStream<'a> {
    input: &'a [u8],
    output: &'a mut Vec<u8>,
}

impl<'a> MemStream<'a> {
    fn new(input: &'a [u8], output: &'a mut Vec<u8>) -> Self {
        MemStream { input, output }
    }

    fn take(&mut self, max: usize) -> &'a [u8] {
        let n = max.min(self.input.len());
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        head
    }
}

impl io::Read for MemStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = self.take(buf.len());
        buf[..chunk.len()].copy_from_slice(chunk);
        Ok(chunk.len())
    }
}

impl io::Write for MemStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for MemStream<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let chunk = this.take(buf.remaining());
        buf.put_slice(chunk);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemStream<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

// ---- wsgate ----

fn wsgate_accept(config: &Config, input: &[u8], out: &mut Vec<u8>) -> Option<Outcome<()>> {
    let mut hs = ServerHandshake::new(config, Instant::ZERO);
    hs.handle_input(input, out, |_req| Decision::accept(()))
        .expect("wsgate rejected the benchmark request")
}

fn wsgate_reject(config: &Config, input: &[u8], out: &mut Vec<u8>) -> Option<Outcome<()>> {
    let mut hs = ServerHandshake::new(config, Instant::ZERO);
    hs.handle_input(input, out, |req| match auth::bearer(req) {
        Ok(Some(t)) if t.ct_eq(b"tok") => Decision::accept(()),
        _ => Decision::reject(Response::unauthorized_bearer("api")),
    })
    .expect("wsgate failed on the benchmark request")
}

// ---- tungstenite ----

/// Accept over an in-memory stream; the result (the WebSocket) is dropped here.
/// Returns whether the handshake succeeded.
// The callback's error type (`ErrorResponse`, 136 bytes) is fixed by tungstenite.
#[allow(clippy::result_large_err)]
fn tungstenite_accept(input: &[u8], out: &mut Vec<u8>) -> bool {
    let r = tungstenite::accept_hdr(
        MemStream::new(input, out),
        |_req: &TRequest, resp: TResponse| -> Result<TResponse, ErrorResponse> { Ok(resp) },
    );
    black_box(r).is_ok()
}

/// Reject with a Bearer challenge; tungstenite writes the 401 and then returns an
/// error (expected). Returns whether the handshake succeeded.
#[allow(clippy::result_large_err)] // as above: the callback's type is tungstenite's
fn tungstenite_reject(input: &[u8], out: &mut Vec<u8>) -> bool {
    let r = tungstenite::accept_hdr(
        MemStream::new(input, out),
        |_req: &TRequest, _resp: TResponse| -> Result<TResponse, ErrorResponse> {
            Err(http::Response::builder()
                .status(http::StatusCode::UNAUTHORIZED)
                .header(http::header::WWW_AUTHENTICATE, "Bearer realm=\"api\"")
                .body(None)
                .expect("valid 401 response"))
        },
    );
    black_box(r).is_ok()
}

// ---- tokio-websockets ----

/// One poll with a no-op waker: the in-memory stream is always ready, so the
/// handshake completes without a runtime.
fn tokio_websockets_accept(
    builder: &tokio_websockets::ServerBuilder,
    input: &[u8],
    out: &mut Vec<u8>,
) {
    let fut = pin!(builder.accept(MemStream::new(input, out)));
    let mut cx = Context::from_waker(Waker::noop());
    match fut.poll(&mut cx) {
        Poll::Ready(r) => {
            let (req, ws) = r.expect("tokio-websockets rejected the benchmark request");
            black_box(req);
            drop(black_box(ws));
        }
        Poll::Pending => {
            panic!("tokio-websockets accept returned Pending over an always-ready stream")
        }
    }
}

fn check_outputs(config: &Config) {
    assert_eq!(
        REQUEST.len(),
        REQUEST_LEN,
        "the request must be exactly 432 bytes"
    );

    let mut out = Vec::new();
    let r = wsgate_accept(config, REQUEST, &mut out);
    assert!(
        matches!(r, Some(Outcome::Accepted(_))),
        "wsgate did not accept"
    );
    assert!(out.starts_with(b"HTTP/1.1 101"), "wsgate 101: {out:?}");
    assert!(
        out.windows(21).any(|w| w == b"Sec-WebSocket-Accept:"),
        "wsgate 101 has no Sec-WebSocket-Accept"
    );

    out.clear();
    let r = wsgate_reject(config, REQUEST, &mut out);
    assert!(
        matches!(r, Some(Outcome::Rejected(_))),
        "wsgate did not reject"
    );
    assert!(out.starts_with(b"HTTP/1.1 401"), "wsgate 401: {out:?}");

    out.clear();
    assert!(
        tungstenite_accept(REQUEST, &mut out),
        "tungstenite did not accept"
    );
    assert!(out.starts_with(b"HTTP/1.1 101"), "tungstenite 101: {out:?}");

    out.clear();
    assert!(
        !tungstenite_reject(REQUEST, &mut out),
        "tungstenite did not reject"
    );
    assert!(out.starts_with(b"HTTP/1.1 401"), "tungstenite 401: {out:?}");

    out.clear();
    tokio_websockets_accept(&tokio_websockets::ServerBuilder::new(), REQUEST, &mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 101"),
        "tokio-websockets 101: {out:?}"
    );
}

fn handshake_101(c: &mut Criterion) {
    let config = Config::default();
    check_outputs(&config);
    let mut out: Vec<u8> = Vec::with_capacity(1024);

    let mut g = c.benchmark_group("handshake_101");
    g.throughput(Throughput::Elements(1));

    g.bench_function("wsgate", |b| {
        b.iter(|| {
            out.clear();
            black_box(wsgate_accept(&config, black_box(REQUEST), &mut out));
        })
    });

    g.bench_function("tungstenite", |b| {
        b.iter(|| {
            out.clear();
            black_box(tungstenite_accept(black_box(REQUEST), &mut out));
        })
    });

    let builder = tokio_websockets::ServerBuilder::new();
    g.bench_function("tokio-websockets", |b| {
        b.iter(|| {
            out.clear();
            tokio_websockets_accept(&builder, black_box(REQUEST), &mut out);
        })
    });

    g.finish();
}

fn handshake_401(c: &mut Criterion) {
    let config = Config::default();
    let mut out: Vec<u8> = Vec::with_capacity(1024);

    // tokio-websockets is absent: its server `accept` has no way to reject a
    // well-formed request with a custom response (only a 400 for a malformed one).
    let mut g = c.benchmark_group("handshake_401");
    g.throughput(Throughput::Elements(1));

    g.bench_function("wsgate", |b| {
        b.iter(|| {
            out.clear();
            black_box(wsgate_reject(&config, black_box(REQUEST), &mut out));
        })
    });

    g.bench_function("tungstenite", |b| {
        b.iter(|| {
            out.clear();
            black_box(tungstenite_reject(black_box(REQUEST), &mut out));
        })
    });

    g.finish();
}

criterion_group!(benches, handshake_101, handshake_401);
criterion_main!(benches);
