//! The server connection after a valid handshake, fed arbitrary bytes: events or a
//! protocol error, never a panic; whole and chunked feeding give the same events, the
//! same error and the same output bytes.
//!
//! The first byte picks the mode: bit 0 streaming, bit 1 first-message authentication,
//! bit 2 small limits; the other bits the chunk size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgate::connection::{Event, ServerConnection};
use wsgate::{Config, Decision, Error, Outcome, ServerHandshake};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[derive(Debug, PartialEq)]
struct Run {
    events: Vec<String>,
    /// Streaming: the bytes of every chunk, joined, per message kind
    streamed: Vec<u8>,
    error: Option<wsgate::ProtocolError>,
    out: Vec<u8>,
}

fn run<'a>(mode: u8, chunks: impl Iterator<Item = &'a [u8]>) -> Run {
    let mut builder = Config::builder().streaming(mode & 1 != 0);
    if mode & 4 != 0 {
        builder = builder.max_frame_bytes(64).max_message_bytes(100).max_auth_message_bytes(16);
    }
    let config = builder.build().unwrap();
    let mut hs = ServerHandshake::new(&config);
    let mut out = Vec::new();
    let Ok(Some(Outcome::Accepted(accepted))) = hs.handle_input(REQUEST, &mut out, |_| Decision::accept(())) else {
        panic!("the handshake is valid");
    };
    let mut conn = ServerConnection::from_accepted(accepted, &config);
    if mode & 2 != 0 {
        conn = conn.require_first_message_auth();
    }
    let mut run = Run { events: Vec::new(), streamed: Vec::new(), error: None, out: Vec::new() };
    'feed: for chunk in chunks {
        if let Err(e) = conn.handle_input(chunk) {
            let Error::Protocol(e) = e else { panic!("{e:?}") };
            run.error = Some(e);
            break;
        }
        loop {
            let verdict = match conn.poll_event() {
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
                Ok(Some(e)) => {
                    run.events.push(format!("{e:?}"));
                    None
                }
                Err(Error::Protocol(e)) => {
                    run.error = Some(e);
                    assert_eq!(conn.poll_event(), Err(Error::Protocol(e)), "sticky");
                    break 'feed;
                }
                Err(e) => panic!("{e:?}"),
            };
            match verdict {
                Some(true) => conn.accept_auth().unwrap(),
                Some(false) => conn.reject_auth().unwrap(),
                None => {}
            }
        }
        conn.poll_transmit(&mut run.out);
        assert!(conn.memory_usage() < 1 << 20, "bounded by the input and the limits");
    }
    conn.poll_transmit(&mut run.out);
    run
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else { return };
    let step = usize::from(mode >> 3) + 1;
    let mut whole = run(mode, std::iter::once(bytes));
    let mut chunked = run(mode, bytes.chunks(step));
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
