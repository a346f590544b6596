//! Denial of service: hostile inputs are refused at their cap or handled in linear
//! work and bounded memory. Work is counted (bytes touched), never timed.

mod common;

use common::*;
use wsgate::Instant;
use wsgate::connection::{Event, ServerConnection};
use wsgate::{Config, ProtocolError};

const READ: usize = 64 * 1024;

struct Fed {
    messages: Vec<usize>,
    pings: usize,
    pongs_out: usize,
    touched: u64,
    peak_memory: usize,
    error: Option<ProtocolError>,
}

/// Feed `wire` in reads of `step` bytes, polling and draining after each, as a server
/// loop would
fn feed(config: &Config, wire: &[u8], step: usize) -> Fed {
    let mut conn = ServerConnection::new((), config, Instant::ZERO);
    let mut fed = Fed {
        messages: vec![],
        pings: 0,
        pongs_out: 0,
        touched: 0,
        peak_memory: 0,
        error: None,
    };
    let mut out = Vec::new();
    for chunk in wire.chunks(step) {
        if conn.is_closed() {
            break;
        }
        conn.handle_input(chunk);
        fed.peak_memory = fed.peak_memory.max(conn.memory_usage());
        loop {
            match conn.poll_event() {
                Ok(Some(Event::Binary(b))) => fed.messages.push(b.len()),
                Ok(Some(Event::Text(t))) => fed.messages.push(t.len()),
                Ok(Some(Event::Ping(_))) => fed.pings += 1,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(wsgate::Error::Protocol(e)) => {
                    fed.error = Some(e);
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        fed.peak_memory = fed.peak_memory.max(conn.memory_usage());
        conn.poll_transmit(&mut out);
        fed.pongs_out += server_frames(&out).len();
        out.clear();
    }
    fed.touched = conn.bytes_touched();
    fed
}

fn one_byte_fragments(n: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity(n * 7);
    wire.extend(frame(false, 2, b"x"));
    for _ in 2..n {
        wire.extend(frame(false, 0, b"x"));
    }
    wire.extend(frame(true, 0, b"x"));
    wire
}

#[test]
fn a_message_of_a_million_one_byte_fragments_is_linear() {
    let config = Config::default();
    let small = feed(&config, &one_byte_fragments(100_000), READ);
    let big_wire = one_byte_fragments(1_000_000);
    let big = feed(&config, &big_wire, READ);
    assert_eq!(big.messages, vec![1_000_000]);
    assert_eq!(big.error, None);
    let ratio = big.touched as f64 / small.touched as f64;
    assert!((9.5..=10.5).contains(&ratio), "10x input, {ratio:.2}x work");
    // Each byte is touched a few times (copied in, parsed or unmasked, copied out).
    assert!(
        big.touched < 5 * big_wire.len() as u64,
        "{} for {}",
        big.touched,
        big_wire.len()
    );
    // Held at once: one read and the message being assembled (Vec growth included).
    assert!(
        big.peak_memory <= 2 * READ + 2 * 1_000_000 + 1024,
        "{}",
        big.peak_memory
    );
}

#[test]
fn a_message_too_large_in_tiny_fragments_stops_at_the_limit() {
    let config = Config::builder()
        .max_message_bytes(10_000)
        .max_frame_bytes(10_000)
        .build()
        .unwrap();
    let fed = feed(&config, &one_byte_fragments(1_000_000), READ);
    assert_eq!(fed.error, Some(ProtocolError::MessageTooLarge));
    assert!(
        fed.touched < 20 * READ as u64,
        "stopped early: {}",
        fed.touched
    );
}

#[test]
fn a_ping_flood_is_answered_with_bounded_memory() {
    let flood = |n: usize| frame(true, 9, &[b'p'; 125]).repeat(n);
    let small = feed(&Config::default(), &flood(10_000), READ);
    let big = feed(&Config::default(), &flood(100_000), READ);
    assert_eq!((big.pings, big.pongs_out), (100_000, 100_000));
    let ratio = big.touched as f64 / small.touched as f64;
    assert!((9.5..=10.5).contains(&ratio), "10x input, {ratio:.2}x work");
    // One read in, its pongs out: never the whole flood.
    assert!(big.peak_memory <= 3 * READ, "{}", big.peak_memory);
}

#[test]
fn byte_by_byte_feeding_is_linear() {
    let message = |n: usize| frame(true, 1, &b"a".repeat(n));
    let small = feed(&Config::default(), &message(20_000), 1);
    let big = feed(&Config::default(), &message(200_000), 1);
    assert_eq!(big.messages, vec![200_000]);
    let ratio = big.touched as f64 / small.touched as f64;
    assert!((9.5..=10.5).contains(&ratio), "10x input, {ratio:.2}x work");
}

#[test]
fn a_frame_announcing_2_pow_63_minus_1_bytes_is_refused_from_its_header() {
    let mut wire = vec![0x82, 0xFF];
    wire.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    wire.extend_from_slice(&KEY);
    wire.extend_from_slice(&[0; 1000]);
    let fed = feed(&Config::default(), &wire, READ);
    assert_eq!(fed.error, Some(ProtocolError::FrameTooLarge));
    assert!(
        fed.peak_memory <= 2048,
        "nothing reserved for the payload: {}",
        fed.peak_memory
    );
    // Streaming applies no size limit, and still buffers nothing whole.
    let config = Config::builder().streaming(true).build().unwrap();
    let fed = feed(&config, &wire, 7);
    assert_eq!(fed.error, None);
    assert!(fed.peak_memory <= 1024, "{}", fed.peak_memory);
}

// ---- the handshake ----

use wsgate::{Decision, Outcome, ServerHandshake};

fn handshake_fed(
    config: &Config,
    request: &[u8],
    step: usize,
) -> (Result<bool, ProtocolError>, u64, usize) {
    let mut hs = ServerHandshake::new(config, Instant::ZERO);
    let mut out = Vec::new();
    let mut fed = 0;
    for chunk in request.chunks(step) {
        fed += chunk.len();
        match hs.handle_input(chunk, &mut out, |_| Decision::accept(())) {
            Ok(None) => {}
            Ok(Some(o)) => {
                return (
                    Ok(matches!(o, Outcome::Accepted(_))),
                    hs.bytes_examined(),
                    fed,
                );
            }
            Err(wsgate::Error::Protocol(e)) => return (Err(e), hs.bytes_examined(), fed),
            Err(e) => panic!("{e}"),
        }
    }
    (Ok(false), hs.bytes_examined(), fed)
}

fn upgrade_with(extra_headers: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    )
    .into_bytes()
}

#[test]
fn a_maximum_size_request_fed_one_byte_at_a_time_is_linear() {
    let config = Config::default();
    // 90 cookie-sized headers: just under the 32 KiB head limit.
    let header = format!("X-Big: {}\r\n", "c".repeat(350));
    let mut request = upgrade_with(&header.repeat(90));
    let room = config.max_request_bytes() - request.len();
    request.splice(
        request.len() - 2..request.len() - 2,
        format!("X-Pad: {}\r\n", "p".repeat(room - 9)).into_bytes(),
    );
    assert_eq!(request.len(), config.max_request_bytes());
    let (whole, whole_work, _) = handshake_fed(&config, &request, request.len());
    let (bytes, byte_work, _) = handshake_fed(&config, &request, 1);
    assert_eq!((whole, bytes), (Ok(true), Ok(true)));
    assert_eq!(whole_work, request.len() as u64, "each byte once");
    // Each byte once as it arrives, a CR at a chunk end once more, and one pass to
    // index the finished head: never a re-scan of the growing buffer.
    assert!(
        byte_work <= 2 * request.len() as u64 + 200,
        "{byte_work} for {}",
        request.len()
    );
}

#[test]
fn a_20_mb_header_line_is_examined_only_up_to_the_cap() {
    let config = Config::default();
    let mut request = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
    request.resize(20 << 20, b'a');
    for step in [request.len(), 64 * 1024, 1000] {
        let (verdict, work, fed) = handshake_fed(&config, &request, step);
        assert_eq!(verdict, Err(ProtocolError::HeaderLineTooLong));
        // Never more than one byte past the head cap, in however many calls.
        assert!(
            work <= config.max_request_bytes() as u64 + 1,
            "step {step}: {work}"
        );
        assert!(
            fed <= config.max_line_bytes() + step + 64,
            "step {step}: fed {fed}"
        );
    }
}

#[test]
fn ten_thousand_tiny_headers_stop_at_the_header_cap() {
    let config = Config::default();
    let request = upgrade_with(&"A: b\r\n".repeat(10_000));
    for step in [request.len(), 1] {
        let (verdict, work, _) = handshake_fed(&config, &request, step);
        assert_eq!(verdict, Err(ProtocolError::TooManyHeaders));
        assert!(
            work <= config.max_request_bytes() as u64 + 1,
            "step {step}: {work}"
        );
        if step == 1 {
            // The upgrade headers, then tiny ones up to the cap: 6 bytes each, plus a
            // CR that ends a chunk looked at again with the next byte. Then it stops.
            let bound = upgrade_with("").len() as u64 + 7 * config.max_headers() as u64;
            assert!(work <= bound, "{work} > {bound}");
        }
    }
}
