//! The server connection after a valid handshake, fed arbitrary bytes: events or a
//! protocol error, never a panic; whole and chunked feeding give the same events, the
//! same error and the same output bytes; so do bytes the caller holds
//! (`handle_input`) and reads straight into the connection (`input_buffer` and
//! `handle_read`), with the same timer calls on a fake clock.
//!
//! The first byte picks the mode: bit 0 streaming, bit 1 first-message authentication,
//! bit 2 small limits, bit 3 timers (keepalive, short deadlines, the clock moving
//! between reads), bit 4 the caller closes first; the second byte the chunk size.
//! Every text and binary message is echoed while it is lent.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wsgate::connection::{Event, ServerConnection};
use wsgate::{Accept, CloseCode, Config, Decision, Error, Instant, Keepalive, Outcome, ServerHandshake};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[derive(Debug, PartialEq)]
struct Run {
    events: Vec<String>,
    /// Streaming: the bytes of every chunk, joined, per message kind
    streamed: Vec<u8>,
    error: Option<wsgate::ProtocolError>,
    out: Vec<u8>,
    closed: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Feed {
    Input,
    Read,
}

fn run<'a>(mode: u8, feed: Feed, chunks: impl Iterator<Item = &'a [u8]>) -> Run {
    let timers = mode & 8 != 0;
    let mut builder = Config::builder().streaming(mode & 1 != 0);
    if mode & 4 != 0 {
        builder = builder.max_frame_bytes(64).max_message_bytes(100).max_auth_message_bytes(16);
    }
    if timers {
        builder = builder
            .keepalive(Some(Keepalive { interval: Duration::from_secs(1), timeout: Duration::from_secs(1) }))
            .first_message_timeout(Duration::from_secs(3))
            .close_timeout(Duration::from_secs(2));
    }
    let config = builder.build().unwrap();
    let mut hs = ServerHandshake::new(&config, Instant::ZERO);
    let mut out = Vec::new();
    let mut accept = Accept::new(());
    if mode & 2 != 0 {
        accept = accept.first_message_auth();
    }
    let Ok(Some(Outcome::Accepted(accepted))) = hs.handle_input(REQUEST, &mut out, |_| Decision::Accept(accept)) else {
        panic!("the handshake is valid");
    };
    let mut now = Instant::ZERO;
    let mut conn = ServerConnection::from_accepted(accepted, &config, now);
    let mut run = Run { events: Vec::new(), streamed: Vec::new(), error: None, out: Vec::new(), closed: false };
    if mode & 16 != 0 {
        conn.sender().close(now, CloseCode::NORMAL, "bye").unwrap();
    }
    'feed: for chunk in chunks {
        match feed {
            Feed::Input => conn.handle_input(chunk),
            Feed::Read => {
                // The room lent may end with a large frame: then more reads.
                let mut rest = chunk;
                while !rest.is_empty() {
                    let room = conn.input_buffer();
                    if room.is_empty() {
                        // Closed: nothing more is read, as handle_input ignores it.
                        assert!(conn.is_closed());
                        break;
                    }
                    let n = room.len().min(rest.len());
                    room[..n].copy_from_slice(&rest[..n]);
                    conn.handle_read(n);
                    rest = &rest[n..];
                }
            }
        }
        loop {
            let (rx, tx, _) = conn.split();
            let verdict = match rx.poll_event(tx) {
                Ok(None) => break,
                Ok(Some(Event::TextChunk { data, .. } | Event::BinaryChunk { data, .. })) => {
                    run.streamed.extend_from_slice(data);
                    None
                }
                Ok(Some(Event::AuthMessage { message, .. })) => {
                    let ok = message.expose().first() == Some(&b'k');
                    run.events.push(format!("auth {ok}"));
                    Some(ok)
                }
                Ok(Some(Event::Text(text))) => {
                    run.events.push(format!("text {}", text.as_str()));
                    let _ = tx.send_text(&text);
                    None
                }
                Ok(Some(Event::Binary(bytes))) => {
                    run.events.push(format!("binary {bytes:?}"));
                    let _ = tx.send_binary(&bytes);
                    None
                }
                Ok(Some(e)) => {
                    run.events.push(format!("{e:?}"));
                    None
                }
                Err(Error::Protocol(e)) => {
                    run.error = Some(e);
                    assert_eq!(rx.poll_event(tx), Err(Error::Protocol(e)), "sticky");
                    break 'feed;
                }
                Err(e) => panic!("{e:?}"),
            };
            match verdict {
                Some(true) => tx.accept_auth().unwrap(),
                Some(false) => tx.reject_auth().unwrap(),
                None => {}
            }
        }
        conn.poll_transmit(&mut run.out);
        assert!(conn.memory_usage() < 2 << 20, "bounded by the input and the limits");
        if timers {
            // The clock moves by what the chunk says; the timer fires when due, and
            // sometimes early (a spurious call does nothing).
            now = now + Duration::from_millis(u64::from(chunk[0]) * 20);
            match conn.poll_timeout() {
                Some(t) if t <= now => conn.handle_timeout(now),
                Some(_) if chunk[0] & 1 == 1 => conn.handle_timeout(now),
                _ => {}
            }
            assert!(conn.poll_timeout().is_none_or(|t| t > now || conn.is_closed()));
        }
    }
    conn.poll_transmit(&mut run.out);
    run.closed = conn.is_closed();
    run
}

fuzz_target!(|data: &[u8]| {
    let [mode, step, bytes @ ..] = data else { return };
    let step = usize::from(*step) + 1;
    let chunked = run(*mode, Feed::Input, bytes.chunks(step));
    let read = run(*mode, Feed::Read, bytes.chunks(step));
    assert_eq!(chunked, read, "reads into the connection decode as bytes fed");
    if mode & 8 != 0 {
        // The clock moved with every chunk: the chunking decides when timers fire.
        return;
    }
    let mut whole = run(*mode, Feed::Input, std::iter::once(bytes));
    let mut chunked = chunked;
    if whole.error.is_some() {
        // Streaming hands out each piece as it arrives, so with smaller reads more of
        // a message that turns out bad was handed out; both are prefixes of the same.
        let (short, long) = if whole.streamed.len() <= chunked.streamed.len() {
            (&whole.streamed, &chunked.streamed)
        } else {
            (&chunked.streamed, &whole.streamed)
        };
        assert!(long.starts_with(short));
        whole.streamed.clear();
        chunked.streamed.clear();
    }
    assert_eq!(whole, chunked);
});
