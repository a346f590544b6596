//! Denial of service: hostile inputs are refused at their cap or handled in linear
//! work and bounded memory. Work is counted (bytes touched), never timed.

mod common;

use common::*;
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
    let mut conn = ServerConnection::new((), config);
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
        if conn.handle_input(chunk).is_err() {
            break;
        }
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
