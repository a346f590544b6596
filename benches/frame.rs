//! Frame throughput after the handshake: decoding client frames, encoding server frames.
//!
//! Every cell is a buffer of N single-frame messages of one payload size (16 B, 1 KiB,
//! 64 KiB, 1 MiB), with N chosen for about 2 MiB of payload (and at least one frame).
//! Throughput is in payload bytes, so criterion prints GiB/s; the time per frame is the
//! time per iteration divided by N (the benchmark id names N).
//!
//! - `decode_binary`, `decode_text`: N masked client frames (a different key per
//!   frame; text is ASCII) become N messages. Every implementation gets the same bytes,
//!   copies them in once per iteration (unmasking in place destroys them), hands out
//!   every message and has its payload touched (`black_box`). The peers read from an
//!   in-memory stream that repeats the same bytes forever (the steady state of a
//!   long-lived connection), N messages per iteration; each read copies into their
//!   own buffer, as a socket read would. `wsgate` is fed the buffer 64 KiB at a time
//!   by `handle_input`, as by a caller that already holds the bytes (a TLS layer's
//!   plaintext, say): one copy, into the connection. `wsgate-64k` reads the same
//!   stream through a 64 KiB buffer first, the way a server reads a socket, and then
//!   copies into the connection. `wsgate-read` reads the stream straight into the
//!   connection (`input_buffer`, at most 64 KiB a read, then `handle_read`): the
//!   like-for-like comparison with the peers, who also read into their own buffer.
//!   sockudo-ws is driven through its protocol layer the way its stream drives it:
//!   reads of up to 64 KiB appended to a `BytesMut`, then `process_into`.
//! - `encode_binary`: N unmasked server frames of the same payload, written to an
//!   in-memory sink that takes every byte without copying it: a socket's copy into
//!   the kernel costs every implementation the same, so what is measured is each
//!   library's own work. `wsgate` is `send_binary` N times (each payload is copied
//!   into the connection's buffer), then `poll_transmit` and one write;
//!   `wsgate-owned` is `send_binary_owned` N times (the queue holds the caller's
//!   `Bytes`, no copy), then one vectored write of `transmit_chunks` and
//!   `consume_transmit`: the message send path of a caller that owns its payloads,
//!   as the peers' `Bytes` messages do. For `wsgate-vectored` each frame is
//!   `frame_head` and a vectored write of the header and the caller's payload.
//!   sockudo-ws is `encode_message` N times into a `BytesMut`, then one write.
//!
//! Each connection lives across iterations (the per-connection setup is the handshake
//! bench's business). Before a group is measured, every implementation runs once over a
//! one-shot stream and is checked: N messages, the right payloads, all input consumed,
//! nothing more; encoders must produce the same bytes as wsgate.
//!
//! Run with `cargo bench --bench frame` (add `-- --warm-up-time 1 --measurement-time 3`
//! for a quick run).
//!
//! Every implementation copies with `memcpy`, and on some CPUs glibc's `rep movsb`
//! copy is 15-20 times slower when the destination is 1-63 bytes past the source modulo
//! 4 KiB (seen on an AMD EPYC with glibc 2.36). Buffer addresses then decide the
//! results more than the code does. If a cell looks odd, compare with a run under
//! `GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295` (vector copies only).

use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::io::{self, IoSlice, Read, Write};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::Bytes;
use tungstenite::protocol::{Role as TRole, WebSocketConfig};
use wsgate::frame::{FrameHeader, OpCode, apply_mask};
use wsgate::{Config, Event, Instant, MessageKind, ServerConnection};

/// Payload sizes per frame.
const SIZES: [usize; 4] = [16, 1 << 10, 64 << 10, 1 << 20];

/// Payload bytes per buffer (per iteration).
const PAYLOAD_PER_BUFFER: usize = 2 << 20;

/// The read buffer of `wsgate-64k`, a typical socket read size.
const READ_CHUNK: usize = 64 << 10;

/// Frames per buffer for a payload size.
fn frames_for(size: usize) -> usize {
    (PAYLOAD_PER_BUFFER / size).max(1)
}

/// `16B`, `1KiB`, ...; the benchmark parameter also names the frame count.
fn label(size: usize, frames: usize) -> String {
    let size = match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s if s >= 1 << 10 => format!("{}KiB", s >> 10),
        s => format!("{s}B"),
    };
    format!("{size}x{frames}")
}

// ---- inputs ----

/// A deterministic byte generator (xorshift64), so every run measures the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One message's payload: random bytes, or ASCII text.
fn payload(kind: MessageKind, size: usize) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    match kind {
        MessageKind::Binary => (0..size).map(|_| rng.next() as u8).collect(),
        MessageKind::Text => {
            const TEXT: &[u8] = b"The quick brown fox jumps over the lazy dog; 0123456789. ";
            TEXT.iter().copied().cycle().take(size).collect()
        }
    }
}

fn opcode(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}

/// `frames` masked client frames carrying `payload`, each with its own key.
fn client_wire(kind: MessageKind, payload: &[u8], frames: usize) -> Vec<u8> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut wire = Vec::with_capacity(frames * (payload.len() + 14));
    for _ in 0..frames {
        let key = (rng.next() as u32).to_ne_bytes();
        FrameHeader::new(true, opcode(kind), Some(key), payload.len() as u64).write(&mut wire);
        let start = wire.len();
        wire.extend_from_slice(payload);
        apply_mask(&mut wire[start..], key, 0);
    }
    wire
}

/// `frames` unmasked server binary frames carrying `payload`: what every encoder must
/// produce.
fn server_wire(payload: &[u8], frames: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity(frames * (payload.len() + 10));
    for _ in 0..frames {
        FrameHeader::new(true, OpCode::Binary, None, payload.len() as u64).write(&mut wire);
        wire.extend_from_slice(payload);
    }
    wire
}

// ---- the in-memory connection ----

/// An in-memory connection, always ready, for the blocking and the async peers.
///
/// Reads copy from `input`: once, then end of stream (`one_shot`), or over and over
/// (`cyclic`), a read never crossing the end of `input`. Writes append to `output`,
/// which is emptied instead of grown when a write would not fit its capacity: a reused
/// send buffer. A `sink` keeps nothing: it counts what is written and copies nothing.
struct MemStream<'a> {
    input: &'a [u8],
    pos: usize,
    cyclic: bool,
    output: Vec<u8>,
    discard: bool,
    written: usize,
}

impl<'a> MemStream<'a> {
    fn one_shot(input: &'a [u8], output_capacity: usize) -> Self {
        MemStream {
            input,
            pos: 0,
            cyclic: false,
            output: Vec::with_capacity(output_capacity),
            discard: false,
            written: 0,
        }
    }

    fn sink() -> MemStream<'static> {
        MemStream {
            discard: true,
            ..MemStream::one_shot(&[], 0)
        }
    }

    fn cyclic(input: &'a [u8], output_capacity: usize) -> Self {
        MemStream {
            cyclic: true,
            ..Self::one_shot(input, output_capacity)
        }
    }

    /// Whether all of a one-shot input was read.
    fn input_done(&self) -> bool {
        self.pos == self.input.len()
    }

    fn take(&mut self, max: usize) -> &'a [u8] {
        if self.cyclic && self.pos == self.input.len() {
            self.pos = 0;
        }
        let n = max.min(self.input.len() - self.pos);
        let chunk = &self.input[self.pos..self.pos + n];
        self.pos += n;
        chunk
    }

    fn put<'b>(&mut self, bufs: impl Iterator<Item = &'b [u8]> + Clone) -> usize {
        let n: usize = bufs.clone().map(<[u8]>::len).sum();
        self.written += n;
        if self.discard {
            for b in bufs {
                black_box(b);
            }
            return n;
        }
        if self.output.len() + n > self.output.capacity() {
            self.output.clear();
        }
        for b in bufs {
            self.output.extend_from_slice(b);
        }
        n
    }
}

impl MemStream<'_> {
    /// Any number of slices (wsgate, tokio-websockets, fastwebsockets), without an
    /// allocation.
    fn put_vectored(&mut self, bufs: &[IoSlice<'_>]) -> usize {
        self.put(bufs.iter().map(|b| &b[..]))
    }
}

impl Read for MemStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = self.take(buf.len());
        buf[..chunk.len()].copy_from_slice(chunk);
        Ok(chunk.len())
    }
}

impl Write for MemStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.put(std::iter::once(buf)))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(self.put_vectored(bufs))
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
        let chunk = self.get_mut().take(buf.remaining());
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
        Poll::Ready(Ok(self.get_mut().put(std::iter::once(buf))))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().put_vectored(bufs)))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Poll a future once with a no-op waker: over an always-ready stream it completes
/// without a runtime.
fn poll_once<F: Future>(fut: F) -> F::Output {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("Pending over an always-ready in-memory stream"),
    }
}

// ---- decoders: each hands every message to `visit` ----

/// The buffer in `READ_CHUNK` pieces, each followed by its events.
fn wsgate_decode(
    conn: &mut ServerConnection<()>,
    wire: &[u8],
    visit: &mut impl FnMut(MessageKind, &[u8]),
) {
    for chunk in wire.chunks(READ_CHUNK) {
        conn.handle_input(chunk);
        wsgate_drain(conn, visit);
    }
}

/// Read `messages` messages from `stream` through a `READ_CHUNK` buffer, as a server
/// loop does with a socket.
fn wsgate_decode_chunked(
    conn: &mut ServerConnection<()>,
    stream: &mut MemStream<'_>,
    chunk: &mut [u8],
    messages: usize,
    visit: &mut impl FnMut(MessageKind, &[u8]),
) {
    let mut seen = 0;
    while seen < messages {
        let n = stream.read(chunk).expect("in-memory read");
        assert!(n > 0, "wsgate-64k: end of stream after {seen} messages");
        conn.handle_input(&chunk[..n]);
        seen += wsgate_drain(conn, visit);
    }
}

/// `wsgate-read`: each read lands straight in the connection's buffer.
fn wsgate_decode_read(
    conn: &mut ServerConnection<()>,
    stream: &mut MemStream<'_>,
    messages: usize,
    visit: &mut impl FnMut(MessageKind, &[u8]),
) {
    let mut seen = 0;
    while seen < messages {
        let room = conn.input_buffer();
        let max = room.len().min(READ_CHUNK);
        let n = stream.read(&mut room[..max]).expect("in-memory read");
        assert!(n > 0, "wsgate-read: end of stream after {seen} messages");
        conn.handle_read(n);
        seen += wsgate_drain(conn, visit);
    }
}

/// Poll events until wsgate needs more input; returns the number of messages.
fn wsgate_drain(
    conn: &mut ServerConnection<()>,
    visit: &mut impl FnMut(MessageKind, &[u8]),
) -> usize {
    let mut messages = 0;
    while let Some(event) = conn.poll_event().expect("wsgate poll_event") {
        match event {
            Event::Binary(b) => visit(MessageKind::Binary, &b),
            Event::Text(t) => visit(MessageKind::Text, t.as_bytes()),
            other => panic!("wsgate: unexpected {other:?}"),
        }
        messages += 1;
    }
    messages
}

type Tungstenite<'a> = tungstenite::WebSocket<MemStream<'a>>;

fn tungstenite_new(stream: MemStream<'_>) -> Tungstenite<'_> {
    // The defaults (64 MiB messages, 16 MiB frames) already admit 1 MiB; raised anyway
    // so that no limit is near.
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    tungstenite::WebSocket::from_raw_socket(stream, TRole::Server, Some(config))
}

fn tungstenite_decode(
    ws: &mut Tungstenite<'_>,
    messages: usize,
    visit: &mut impl FnMut(MessageKind, &[u8]),
) {
    for _ in 0..messages {
        match ws.read().expect("tungstenite read") {
            tungstenite::Message::Binary(b) => visit(MessageKind::Binary, &b),
            tungstenite::Message::Text(t) => visit(MessageKind::Text, t.as_bytes()),
            other => panic!("tungstenite: unexpected {other:?}"),
        }
    }
}

type TokioWs<'a> = tokio_websockets::WebSocketStream<MemStream<'a>>;

fn tokio_websockets_new(stream: MemStream<'_>) -> TokioWs<'_> {
    tokio_websockets::ServerBuilder::new()
        .limits(tokio_websockets::Limits::default().max_payload_len(Some(64 << 20)))
        .serve(stream)
}

fn tokio_websockets_decode(
    ws: &mut TokioWs<'_>,
    messages: usize,
    visit: &mut impl FnMut(MessageKind, &[u8]),
) {
    for _ in 0..messages {
        let msg = poll_once(poll_fn(|cx| Pin::new(&mut *ws).poll_next(cx)))
            .expect("tokio-websockets: end of stream")
            .expect("tokio-websockets read");
        if let Some(text) = msg.as_text() {
            visit(MessageKind::Text, text.as_bytes());
        } else if msg.is_binary() {
            visit(MessageKind::Binary, msg.as_payload());
        } else {
            panic!("tokio-websockets: unexpected {msg:?}");
        }
    }
}

type FastWs<'a> = fastwebsockets::WebSocket<MemStream<'a>>;

fn fastwebsockets_new(stream: MemStream<'_>) -> FastWs<'_> {
    let mut ws = fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
    // The default is 64 MiB; set so that no limit is near. Auto-close and auto-pong
    // stay on: no control frame is sent.
    ws.set_max_message_size(64 << 20);
    ws
}

/// fastwebsockets reads frames, not messages; every message here is one frame.
fn fastwebsockets_decode(
    ws: &mut FastWs<'_>,
    messages: usize,
    visit: &mut impl FnMut(MessageKind, &[u8]),
) {
    use fastwebsockets::OpCode as FOp;
    for _ in 0..messages {
        let frame = poll_once(ws.read_frame()).expect("fastwebsockets read_frame");
        assert!(frame.fin, "fastwebsockets: a fragment");
        match frame.opcode {
            FOp::Binary => visit(MessageKind::Binary, &frame.payload),
            FOp::Text => visit(MessageKind::Text, &frame.payload),
            other => panic!("fastwebsockets: unexpected {other:?}"),
        }
    }
}

/// sockudo-ws's protocol layer with its read buffer, as its stream uses them.
struct Sockudo<'a> {
    protocol: sockudo_ws::protocol::Protocol,
    read_buf: BytesMut,
    /// Decoded and not yet handed out: a read can complete more messages than a
    /// round asks for.
    ready: std::collections::VecDeque<sockudo_ws::protocol::Message>,
    decoded: Vec<sockudo_ws::protocol::Message>,
    stream: MemStream<'a>,
    write_buf: BytesMut,
}

fn sockudo_new(stream: MemStream<'_>) -> Sockudo<'_> {
    Sockudo {
        protocol: sockudo_ws::protocol::Protocol::new(
            sockudo_ws::protocol::Role::Server,
            64 << 20,
            64 << 20,
        ),
        read_buf: BytesMut::with_capacity(sockudo_ws::RECV_BUFFER_SIZE),
        ready: Default::default(),
        decoded: Vec::new(),
        stream,
        write_buf: BytesMut::new(),
    }
}

fn sockudo_decode(
    ws: &mut Sockudo<'_>,
    messages: usize,
    visit: &mut impl FnMut(MessageKind, &[u8]),
) {
    use sockudo_ws::protocol::Message as SMsg;
    for _ in 0..messages {
        while ws.ready.is_empty() {
            // Its stream's read: at least 4 KiB of room, a 64 KiB read at most.
            if ws.read_buf.capacity() - ws.read_buf.len() < 4096 {
                ws.read_buf.reserve(sockudo_ws::RECV_BUFFER_SIZE);
            }
            let room = (ws.read_buf.capacity() - ws.read_buf.len()).min(READ_CHUNK);
            let chunk = MemStream::take(&mut ws.stream, room);
            assert!(!chunk.is_empty(), "sockudo-ws: end of stream");
            ws.read_buf.extend_from_slice(chunk);
            ws.protocol
                .process_into(&mut ws.read_buf, &mut ws.decoded)
                .expect("sockudo-ws process");
            ws.ready.extend(ws.decoded.drain(..));
        }
        match ws.ready.pop_front() {
            Some(SMsg::Binary(b)) => visit(MessageKind::Binary, &b),
            // Checked as it was received.
            Some(SMsg::Text(t)) => visit(MessageKind::Text, &t),
            other => panic!("sockudo-ws: unexpected {other:?}"),
        }
    }
}

// ---- encoders: `frames` binary messages of `payload` each ----

/// Queue the frames, take the output and write it. `out` is emptied first, so
/// `poll_transmit` trades buffers with the connection: both allocations are reused.
fn wsgate_encode(
    conn: &mut ServerConnection<()>,
    payload: &[u8],
    frames: usize,
    out: &mut Vec<u8>,
    stream: &mut MemStream<'_>,
) {
    for _ in 0..frames {
        conn.sender()
            .send_binary(payload)
            .expect("wsgate send_binary");
    }
    out.clear();
    conn.poll_transmit(out);
    stream.write_all(out).expect("in-memory write");
}

/// The owned-payload path: the queue holds each `Bytes` (a reference count, no copy),
/// then vectored writes straight from the queue, 16 pieces at a time.
fn wsgate_encode_owned(
    conn: &mut ServerConnection<()>,
    payload: &Bytes,
    frames: usize,
    stream: &mut MemStream<'_>,
) {
    for _ in 0..frames {
        conn.sender()
            .send_binary_owned(payload.clone())
            .expect("wsgate send_binary_owned");
    }
    let tx = conn.sender();
    while tx.pending_transmit() > 0 {
        let mut slices = [IoSlice::new(&[]); 16];
        let mut k = 0;
        for (slot, chunk) in slices.iter_mut().zip(tx.transmit_chunks()) {
            *slot = IoSlice::new(chunk);
            k += 1;
        }
        let n = stream
            .write_vectored(&slices[..k])
            .expect("in-memory write");
        tx.consume_transmit(n);
    }
}

/// sockudo-ws: `encode_message` into its write buffer, then one write.
fn sockudo_encode(ws: &mut Sockudo<'_>, payload: &Bytes, frames: usize) {
    use sockudo_ws::protocol::Message as SMsg;
    for _ in 0..frames {
        ws.protocol
            .encode_message(&SMsg::Binary(payload.clone()), &mut ws.write_buf)
            .expect("sockudo-ws encode");
    }
    ws.stream.write_all(&ws.write_buf).expect("in-memory write");
    ws.write_buf.clear();
}

/// The zero-copy path: each frame's header and the caller's payload in one vectored
/// write.
fn wsgate_encode_vectored(
    conn: &mut ServerConnection<()>,
    payload: &[u8],
    frames: usize,
    stream: &mut MemStream<'_>,
) {
    for _ in 0..frames {
        let head = conn
            .sender()
            .frame_head(MessageKind::Binary, payload.len(), true)
            .expect("wsgate frame_head");
        let bufs = [IoSlice::new(head.as_bytes()), IoSlice::new(payload)];
        let n = stream.write_vectored(&bufs).expect("in-memory write");
        assert_eq!(n, head.as_bytes().len() + payload.len(), "a short write");
    }
}

/// `write` buffers (flushing to the stream past 128 KiB), one `flush` at the end.
/// `Bytes::clone` only bumps a reference count.
fn tungstenite_encode(ws: &mut Tungstenite<'_>, payload: &Bytes, frames: usize) {
    for _ in 0..frames {
        ws.write(tungstenite::Message::Binary(payload.clone()))
            .expect("tungstenite write");
    }
    ws.flush().expect("tungstenite flush");
}

/// `feed` (poll_ready + start_send; it flushes past 8 KiB queued), one flush at the end.
fn tokio_websockets_encode(ws: &mut TokioWs<'_>, payload: &Bytes, frames: usize) {
    for _ in 0..frames {
        poll_once(poll_fn(|cx| Pin::new(&mut *ws).poll_ready(cx))).expect("tws poll_ready");
        Pin::new(&mut *ws)
            .start_send(tokio_websockets::Message::binary(payload.clone()))
            .expect("tokio-websockets start_send");
    }
    poll_once(poll_fn(|cx| Pin::new(&mut *ws).poll_flush(cx))).expect("tws poll_flush");
}

/// `write_frame` writes straight to the stream (vectored above 1 KiB of payload).
fn fastwebsockets_encode(ws: &mut FastWs<'_>, payload: &[u8], frames: usize) {
    use fastwebsockets::{Frame, Payload};
    for _ in 0..frames {
        poll_once(ws.write_frame(Frame::binary(Payload::Borrowed(payload))))
            .expect("fastwebsockets write_frame");
    }
    poll_once(ws.flush()).expect("fastwebsockets flush");
}

// ---- checks, once per cell, outside the timed loops ----

/// Counts messages and checks each against the expected kind and payload.
struct Expect<'a> {
    name: &'static str,
    kind: MessageKind,
    payload: &'a [u8],
    seen: usize,
}

impl<'a> Expect<'a> {
    fn new(name: &'static str, kind: MessageKind, payload: &'a [u8]) -> Self {
        Expect {
            name,
            kind,
            payload,
            seen: 0,
        }
    }

    fn visit(&mut self, kind: MessageKind, payload: &[u8]) {
        assert_eq!(kind, self.kind, "{}: message {} kind", self.name, self.seen);
        assert!(
            payload == self.payload,
            "{}: message {} payload differs",
            self.name,
            self.seen
        );
        self.seen += 1;
    }

    fn done(&self, frames: usize) {
        assert_eq!(self.seen, frames, "{}: messages decoded", self.name);
    }
}

/// Every decoder, over a one-shot stream: exactly `frames` messages with the right
/// payload, the whole input consumed, and nothing after it.
fn check_decoders(kind: MessageKind, payload: &[u8], wire: &[u8], frames: usize) {
    let config = Config::default();

    let mut e = Expect::new("wsgate", kind, payload);
    let mut conn = ServerConnection::new((), &config, Instant::ZERO);
    wsgate_decode(&mut conn, wire, &mut |k, p| e.visit(k, p));
    e.done(frames);
    assert_eq!(conn.sender().pending_transmit(), 0, "wsgate queued output");

    let mut e = Expect::new("wsgate-64k", kind, payload);
    let mut conn = ServerConnection::new((), &config, Instant::ZERO);
    let mut stream = MemStream::one_shot(wire, 0);
    let mut chunk = vec![0u8; READ_CHUNK];
    wsgate_decode_chunked(&mut conn, &mut stream, &mut chunk, frames, &mut |k, p| {
        e.visit(k, p)
    });
    e.done(frames);
    assert!(stream.input_done(), "wsgate-64k left input unread");
    assert!(conn.poll_event().expect("wsgate").is_none());

    let mut e = Expect::new("wsgate-read", kind, payload);
    let mut conn = ServerConnection::new((), &config, Instant::ZERO);
    let mut stream = MemStream::one_shot(wire, 0);
    wsgate_decode_read(&mut conn, &mut stream, frames, &mut |k, p| e.visit(k, p));
    e.done(frames);
    assert!(stream.input_done(), "wsgate-read left input unread");
    assert!(conn.poll_event().expect("wsgate").is_none());

    let mut e = Expect::new("sockudo-ws", kind, payload);
    let mut ws = sockudo_new(MemStream::one_shot(wire, 0));
    sockudo_decode(&mut ws, frames, &mut |k, p| e.visit(k, p));
    e.done(frames);
    assert!(ws.stream.input_done(), "sockudo-ws left input unread");
    assert!(
        ws.ready.is_empty() && ws.read_buf.is_empty(),
        "sockudo-ws: more than {frames} messages"
    );

    let mut e = Expect::new("tungstenite", kind, payload);
    let mut ws = tungstenite_new(MemStream::one_shot(wire, 0));
    tungstenite_decode(&mut ws, frames, &mut |k, p| e.visit(k, p));
    e.done(frames);
    assert!(ws.get_ref().input_done(), "tungstenite left input unread");
    assert!(
        ws.read().is_err(),
        "tungstenite: more than {frames} messages"
    );

    let mut e = Expect::new("tokio-websockets", kind, payload);
    let mut ws = tokio_websockets_new(MemStream::one_shot(wire, 0));
    tokio_websockets_decode(&mut ws, frames, &mut |k, p| e.visit(k, p));
    e.done(frames);
    assert!(
        ws.get_ref().input_done(),
        "tokio-websockets left input unread"
    );
    let next = poll_once(poll_fn(|cx| Pin::new(&mut ws).poll_next(cx)));
    assert!(
        !matches!(next, Some(Ok(_))),
        "tokio-websockets: more than {frames} messages"
    );

    let mut e = Expect::new("fastwebsockets", kind, payload);
    let mut ws = fastwebsockets_new(MemStream::one_shot(wire, 0));
    fastwebsockets_decode(&mut ws, frames, &mut |k, p| e.visit(k, p));
    e.done(frames);
    assert!(
        poll_once(ws.read_frame()).is_err(),
        "fastwebsockets: more than {frames} frames"
    );
    assert!(
        ws.into_inner().input_done(),
        "fastwebsockets left input unread"
    );
}

/// Every encoder, once: the bytes must equal `expected`.
fn check_encoders(payload: &[u8], frames: usize, expected: &[u8]) {
    let config = Config::default();
    let bytes = Bytes::copy_from_slice(payload);

    let mut conn = ServerConnection::new((), &config, Instant::ZERO);
    let mut out = Vec::new();
    let mut stream = MemStream::one_shot(&[], expected.len());
    wsgate_encode(&mut conn, payload, frames, &mut out, &mut stream);
    assert!(stream.output == expected, "wsgate output differs");

    let mut conn = ServerConnection::new((), &config, Instant::ZERO);
    let mut stream = MemStream::one_shot(&[], expected.len());
    wsgate_encode_vectored(&mut conn, payload, frames, &mut stream);
    assert!(stream.output == expected, "wsgate-vectored output differs");

    let mut conn = ServerConnection::new((), &config, Instant::ZERO);
    let mut stream = MemStream::one_shot(&[], expected.len());
    wsgate_encode_owned(&mut conn, &bytes, frames, &mut stream);
    assert!(stream.output == expected, "wsgate-owned output differs");

    let mut ws = sockudo_new(MemStream::one_shot(&[], expected.len()));
    sockudo_encode(&mut ws, &bytes, frames);
    assert!(ws.stream.output == expected, "sockudo-ws output differs");

    let mut ws = tungstenite_new(MemStream::one_shot(&[], expected.len()));
    tungstenite_encode(&mut ws, &bytes, frames);
    assert!(
        ws.get_ref().output == expected,
        "tungstenite output differs"
    );

    let mut ws = tokio_websockets_new(MemStream::one_shot(&[], expected.len()));
    tokio_websockets_encode(&mut ws, &bytes, frames);
    assert!(
        ws.get_ref().output == expected,
        "tokio-websockets output differs"
    );

    let mut ws = fastwebsockets_new(MemStream::one_shot(&[], expected.len()));
    fastwebsockets_encode(&mut ws, payload, frames);
    assert!(
        ws.into_inner().output == expected,
        "fastwebsockets output differs"
    );
}

// ---- the benchmarks ----

fn decode_group(c: &mut Criterion, kind: MessageKind, group: &str) {
    let config = Config::default();
    let mut g = c.benchmark_group(group);
    // An iteration takes milliseconds: equal-sized samples, not a linear ramp.
    g.sampling_mode(SamplingMode::Flat);

    for size in SIZES {
        let frames = frames_for(size);
        let payload = payload(kind, size);
        let wire = client_wire(kind, &payload, frames);
        check_decoders(kind, &payload, &wire, frames);
        let param = label(size, frames);
        g.throughput(Throughput::Bytes((size * frames) as u64));

        // Sums the payload lengths, through black_box, so every payload is real.
        let mut total = 0usize;
        let mut touch = |_: MessageKind, p: &[u8]| total += black_box(p).len();

        let mut conn = ServerConnection::new((), &config, Instant::ZERO);
        g.bench_function(BenchmarkId::new("wsgate", &param), |b| {
            b.iter(|| wsgate_decode(&mut conn, black_box(&wire), &mut touch))
        });

        let mut conn = ServerConnection::new((), &config, Instant::ZERO);
        let mut stream = MemStream::cyclic(&wire, 0);
        let mut chunk = vec![0u8; READ_CHUNK];
        g.bench_function(BenchmarkId::new("wsgate-64k", &param), |b| {
            b.iter(|| wsgate_decode_chunked(&mut conn, &mut stream, &mut chunk, frames, &mut touch))
        });

        let mut conn = ServerConnection::new((), &config, Instant::ZERO);
        let mut stream = MemStream::cyclic(&wire, 0);
        g.bench_function(BenchmarkId::new("wsgate-read", &param), |b| {
            b.iter(|| wsgate_decode_read(&mut conn, &mut stream, frames, &mut touch))
        });

        let mut ws = sockudo_new(MemStream::cyclic(&wire, 0));
        g.bench_function(BenchmarkId::new("sockudo-ws", &param), |b| {
            b.iter(|| sockudo_decode(&mut ws, frames, &mut touch))
        });

        let mut ws = tungstenite_new(MemStream::cyclic(&wire, 0));
        g.bench_function(BenchmarkId::new("tungstenite", &param), |b| {
            b.iter(|| tungstenite_decode(&mut ws, frames, &mut touch))
        });

        let mut ws = tokio_websockets_new(MemStream::cyclic(&wire, 0));
        g.bench_function(BenchmarkId::new("tokio-websockets", &param), |b| {
            b.iter(|| tokio_websockets_decode(&mut ws, frames, &mut touch))
        });

        let mut ws = fastwebsockets_new(MemStream::cyclic(&wire, 0));
        g.bench_function(BenchmarkId::new("fastwebsockets", &param), |b| {
            b.iter(|| fastwebsockets_decode(&mut ws, frames, &mut touch))
        });

        black_box(total);
    }
    g.finish();
}

fn decode_binary(c: &mut Criterion) {
    decode_group(c, MessageKind::Binary, "decode_binary");
}

fn decode_text(c: &mut Criterion) {
    decode_group(c, MessageKind::Text, "decode_text");
}

fn encode_binary(c: &mut Criterion) {
    let config = Config::default();
    let mut g = c.benchmark_group("encode_binary");
    g.sampling_mode(SamplingMode::Flat);

    for size in SIZES {
        let frames = frames_for(size);
        let payload = payload(MessageKind::Binary, size);
        let bytes = Bytes::copy_from_slice(&payload);
        let expected = server_wire(&payload, frames);
        check_encoders(&payload, frames, &expected);
        let param = label(size, frames);
        g.throughput(Throughput::Bytes((size * frames) as u64));

        let mut conn = ServerConnection::new((), &config, Instant::ZERO);
        let mut out = Vec::new();
        let mut sink = MemStream::sink();
        g.bench_function(BenchmarkId::new("wsgate", &param), |b| {
            b.iter(|| wsgate_encode(&mut conn, black_box(&payload), frames, &mut out, &mut sink))
        });
        let mut written = vec![sink.written];

        let mut conn = ServerConnection::new((), &config, Instant::ZERO);
        let mut sink = MemStream::sink();
        g.bench_function(BenchmarkId::new("wsgate-vectored", &param), |b| {
            b.iter(|| wsgate_encode_vectored(&mut conn, black_box(&payload), frames, &mut sink))
        });
        written.push(sink.written);

        let mut conn = ServerConnection::new((), &config, Instant::ZERO);
        let mut sink = MemStream::sink();
        g.bench_function(BenchmarkId::new("wsgate-owned", &param), |b| {
            b.iter(|| wsgate_encode_owned(&mut conn, black_box(&bytes), frames, &mut sink))
        });
        written.push(sink.written);

        let mut ws = sockudo_new(MemStream::sink());
        g.bench_function(BenchmarkId::new("sockudo-ws", &param), |b| {
            b.iter(|| sockudo_encode(&mut ws, black_box(&bytes), frames))
        });
        written.push(ws.stream.written);

        let mut ws = tungstenite_new(MemStream::sink());
        g.bench_function(BenchmarkId::new("tungstenite", &param), |b| {
            b.iter(|| tungstenite_encode(&mut ws, black_box(&bytes), frames))
        });
        written.push(ws.get_ref().written);

        let mut ws = tokio_websockets_new(MemStream::sink());
        g.bench_function(BenchmarkId::new("tokio-websockets", &param), |b| {
            b.iter(|| tokio_websockets_encode(&mut ws, black_box(&bytes), frames))
        });
        written.push(ws.get_ref().written);

        let mut ws = fastwebsockets_new(MemStream::sink());
        g.bench_function(BenchmarkId::new("fastwebsockets", &param), |b| {
            b.iter(|| fastwebsockets_encode(&mut ws, black_box(&payload), frames))
        });
        written.push(ws.into_inner().written);
        // Every timed round wrote all of its frames (a cell left out by a filter
        // wrote nothing).
        for w in written {
            assert!(w % expected.len() == 0, "{param}: {w} bytes written");
        }
    }
    g.finish();
}

criterion_group!(benches, decode_binary, decode_text, encode_binary);
criterion_main!(benches);
