//! The connection as a caller sees it: handshake to close, first-message
//! authentication, sending, streaming, memory held, and property tests

mod common;

use common::*;
use proptest::prelude::*;
use std::time::Duration;

use wsgate::Instant;
use wsgate::connection::{Event, MessageKind, ServerConnection};
use wsgate::frame::{FrameHeader, OpCode, apply_mask};
use wsgate::{
    CloseCode, Config, Decision, Error, Outcome, ProtocolError, ServerHandshake, UsageError,
};

const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn collect(conn: &mut ServerConnection<impl Sized>) -> Result<Vec<Ev>, Error> {
    let mut events = Vec::new();
    while let Some(e) = conn.poll_event()? {
        events.push(own(&e));
    }
    Ok(events)
}

fn drained(conn: &mut ServerConnection<impl Sized>) -> Vec<u8> {
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    out
}

/// Handshake, an echo, a ping, the close handshake: the states and events in order
#[test]
fn transcript_handshake_echo_close() {
    let config = Config::default();
    let mut input = REQUEST.as_bytes().to_vec();
    // The first frames arrive in the same read as the request.
    input.extend(text("hello"));
    input.extend(frame(true, 9, b"p"));
    let mut hs = ServerHandshake::new(&config, Instant::ZERO);
    let mut out = Vec::new();
    let outcome = hs
        .handle_input(&input, &mut out, |req| {
            Decision::accept(req.path().to_string())
        })
        .unwrap()
        .unwrap();
    let Outcome::Accepted(accepted) = outcome else {
        panic!("rejected")
    };
    assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    let mut transcript = vec!["101".to_string()];

    let mut conn = ServerConnection::from_accepted(accepted, &config, Instant::ZERO);
    assert_eq!(conn.data(), "/chat");
    let mut wire = Vec::new();
    while let Some(event) = conn.poll_event().unwrap().map(|e| own(&e)) {
        transcript.push(format!("{event:?}"));
        if let Ev::Text(t) = event {
            conn.sender().send_text(&t).unwrap();
        }
    }
    conn.poll_transmit(&mut wire);
    transcript.push(format!("sent {:?}", server_frames(&wire)));

    conn.handle_input(&close(1000, "done"));
    let events = collect(&mut conn).unwrap();
    transcript.push(format!("{events:?}"));
    transcript.push(format!("closed={}", conn.is_closed()));
    transcript.push(format!("sent {:?}", server_frames(&drained(&mut conn))));
    assert!(conn.sender().send_text("too late").is_err());

    let expected = [
        "101",
        r#"Text("hello")"#,
        r#"Ping([112])"#,
        r#"sent [(Text, true, [104, 101, 108, 108, 111]), (Pong, true, [112])]"#,
        r#"[Close(Some(1000), "done")]"#,
        "closed=true",
        r#"sent [(Close, true, [3, 232])]"#,
    ];
    assert_eq!(transcript, expected);
}

#[test]
fn server_initiated_close_waits_for_the_peer() {
    let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
    conn.sender()
        .close(Instant::ZERO, CloseCode::GOING_AWAY, "restart")
        .unwrap();
    assert!(!conn.is_closed());
    assert_eq!(
        conn.sender().send_binary(b"x"),
        Err(UsageError::SendAfterClose.into())
    );
    // Data still arrives until the peer's close; no second close frame goes out.
    conn.handle_input(&[text("in flight"), close(1001, "")].concat());
    assert_eq!(
        collect(&mut conn).unwrap(),
        vec![
            Ev::Text("in flight".into()),
            Ev::Close(Some(1001), String::new())
        ]
    );
    assert!(conn.is_closed());
    let frames = server_frames(&drained(&mut conn));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].2[..2], 1001u16.to_be_bytes());
    assert_eq!(&frames[0].2[2..], b"restart");
}

#[test]
fn a_close_in_the_middle_of_a_message_frees_what_was_assembled() {
    let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
    conn.handle_input(&frame(false, 2, &vec![7; 256 << 10]));
    assert_eq!(conn.poll_event().unwrap(), None);
    assert!(conn.memory_usage() > 256 << 10);
    conn.handle_input(&close(1000, ""));
    assert_eq!(
        collect(&mut conn).unwrap(),
        vec![Ev::Close(Some(1000), String::new())]
    );
    drained(&mut conn);
    assert!(conn.is_closed());
    // The message can never complete; its buffer goes with the close.
    assert!(conn.memory_usage() < 4096, "{}", conn.memory_usage());

    // The same after a protocol error (an unmasked frame).
    let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
    conn.handle_input(&frame(false, 2, &vec![7; 256 << 10]));
    assert_eq!(conn.poll_event().unwrap(), None);
    conn.handle_input(&[0x82, 0x01, b'x']);
    assert_eq!(conn.poll_event(), Err(ProtocolError::UnmaskedFrame.into()));
    assert!(conn.memory_usage() < 4096, "{}", conn.memory_usage());
}

#[test]
fn send_errors_are_usage_errors_not_panics() {
    let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
    assert_eq!(
        conn.sender().send_ping(&[0; 126]),
        Err(UsageError::ControlPayloadTooLong.into())
    );
    assert_eq!(
        conn.sender().close(Instant::ZERO, CloseCode(1005), ""),
        Err(UsageError::InvalidCloseCode(1005).into())
    );
    // Only a client closes with 1010 (an extension it needs was not negotiated).
    assert_eq!(
        conn.sender()
            .close(Instant::ZERO, CloseCode::MANDATORY_EXTENSION, ""),
        Err(UsageError::InvalidCloseCode(1010).into())
    );
    assert_eq!(
        conn.sender()
            .close(Instant::ZERO, CloseCode(1000), &"x".repeat(124)),
        Err(UsageError::ControlPayloadTooLong.into())
    );
    conn.sender()
        .send_fragment(MessageKind::Text, b"a", false)
        .unwrap();
    assert_eq!(
        conn.sender().send_text("b"),
        Err(UsageError::MessageInProgress.into())
    );
    assert_eq!(
        conn.sender().send_fragment(MessageKind::Binary, b"b", true),
        Err(UsageError::MessageInProgress.into())
    );
    conn.sender().send_ping(b"between").unwrap();
    conn.sender()
        .send_fragment(MessageKind::Text, b"b", true)
        .unwrap();
    assert_eq!(
        conn.sender().frame_head(MessageKind::Binary, 3, true),
        Err(UsageError::TransmitPending.into())
    );
    let out = drained(&mut conn);
    assert_eq!(
        server_frames(&out),
        vec![
            (OpCode::Text, false, b"a".to_vec()),
            (OpCode::Ping, true, b"between".to_vec()),
            (OpCode::Continuation, true, b"b".to_vec()),
        ]
    );
    // The vectored path: head, then the caller's payload, byte-identical to send_binary.
    let payload = vec![7u8; 70_000];
    let head = conn
        .sender()
        .frame_head(MessageKind::Binary, payload.len(), true)
        .unwrap();
    let mut vectored = head.as_bytes().to_vec();
    vectored.extend_from_slice(&payload);
    conn.sender().send_binary(&payload).unwrap();
    assert_eq!(drained(&mut conn), vectored);
    assert_eq!(
        conn.sender().accept_auth(),
        Err(UsageError::NotAwaitingAuth.into())
    );
}

#[test]
fn protocol_error_is_sticky_and_closes() {
    let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
    conn.handle_input(&raw_frame(true, 0, 1, b"x", None));
    let err = Error::Protocol(ProtocolError::UnmaskedFrame);
    assert_eq!(conn.poll_event().unwrap_err(), err);
    assert_eq!(conn.poll_event().unwrap_err(), err);
    conn.handle_input(&text("more"));
    assert_eq!(conn.poll_event().unwrap_err(), err);
    assert!(conn.is_closed());
    assert_eq!(conn.sender().error(), Some(ProtocolError::UnmaskedFrame));
    assert_eq!(
        conn.sender().send_text("x"),
        Err(UsageError::SendAfterClose.into())
    );
    assert_eq!(close_code_sent(&drained(&mut conn)), Some(1002));
    assert!(drained(&mut conn).is_empty(), "one close frame only");
}

#[test]
fn auto_pong_can_be_turned_off() {
    let config = Config::builder().auto_pong(false).build().unwrap();
    let mut conn = ServerConnection::new((), &config, Instant::ZERO);
    conn.handle_input(&frame(true, 9, b"x"));
    assert_eq!(collect(&mut conn).unwrap(), vec![Ev::Ping(b"x".to_vec())]);
    assert!(drained(&mut conn).is_empty());
    conn.sender().send_pong(b"x").unwrap();
    assert_eq!(
        server_frames(&drained(&mut conn)),
        vec![(OpCode::Pong, true, b"x".to_vec())]
    );
}

fn auth_conn(config: &Config) -> ServerConnection<Option<String>> {
    ServerConnection::with_first_message_auth(None, config, Instant::ZERO)
}

#[test]
fn first_message_auth_holds_everything_until_accepted() {
    let mut conn = auth_conn(&Config::default());
    assert!(!conn.sender().is_authenticated());
    let input = [
        frame(true, 9, b"early ping"),
        text("secret-token"),
        text("queued 1"),
        frame(true, 2, b"queued 2"),
    ]
    .concat();
    conn.handle_input(&input);
    let message = match conn.poll_event().unwrap() {
        Some(event @ Event::AuthMessage { .. }) => {
            let shown = format!("{event:?}");
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
            let Event::AuthMessage { message, text } = event else {
                unreachable!()
            };
            assert!(text);
            message.expose().to_vec()
        }
        other => panic!("expected the auth message, got {other:?}"),
    };
    assert_eq!(message, b"secret-token");
    // Nothing else is delivered while the caller decides; the early ping was
    // answered but not delivered.
    assert_eq!(conn.poll_event().unwrap(), None);
    assert_eq!(
        server_frames(&drained(&mut conn)),
        vec![(OpCode::Pong, true, b"early ping".to_vec())]
    );
    conn.handle_input(&text("queued 3"));
    assert_eq!(conn.poll_event().unwrap(), None);

    *conn.data_mut() = Some("alice".into());
    conn.sender().accept_auth().unwrap();
    assert!(conn.sender().is_authenticated());
    assert_eq!(
        collect(&mut conn).unwrap(),
        vec![
            Ev::Text("queued 1".into()),
            Ev::Binary(b"queued 2".to_vec()),
            Ev::Text("queued 3".into())
        ]
    );
    assert_eq!(conn.data().as_deref(), Some("alice"));
}

#[test]
fn first_message_auth_rejected_or_timed_out_closes_1008() {
    let mut conn = auth_conn(&Config::default());
    conn.handle_input(&[text("wrong"), text("after")].concat());
    assert!(matches!(
        conn.poll_event().unwrap(),
        Some(Event::AuthMessage { .. })
    ));
    conn.sender().reject_auth().unwrap();
    assert!(conn.is_closed());
    assert_eq!(
        conn.poll_event().unwrap(),
        None,
        "nothing after a failed authentication"
    );
    let out = drained(&mut conn);
    assert_eq!(close_code_sent(&out), Some(1008));
    assert!(
        !out.windows(5).any(|w| w == b"wrong"),
        "the credential is not echoed"
    );

    // The deadline passes before any message.
    let mut conn = auth_conn(&Config::default());
    conn.handle_input(&text("late token")[..3]);
    assert_eq!(conn.poll_event().unwrap(), None);
    let deadline = conn.poll_timeout().expect("the first-message deadline");
    assert_eq!(deadline, Instant::ZERO + Duration::from_secs(10));
    conn.handle_timeout(deadline);
    assert!(conn.is_closed());
    assert_eq!(close_code_sent(&drained(&mut conn)), Some(1008));

    // A timer firing after success is a no-op.
    let mut conn = auth_conn(&Config::default());
    conn.handle_input(&text("ok"));
    assert!(conn.poll_event().unwrap().is_some());
    conn.sender().accept_auth().unwrap();
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(Instant::ZERO + Duration::from_secs(10));
    assert!(!conn.is_closed());
    assert!(drained(&mut conn).is_empty());
}

#[test]
fn first_message_over_the_auth_cap_is_refused_from_its_header() {
    let config = Config::builder()
        .max_auth_message_bytes(64)
        .build()
        .unwrap();
    let mut conn = auth_conn(&config);
    let big = frame(true, 1, &[b'a'; 65]);
    conn.handle_input(&big[..8]);
    assert_eq!(
        conn.poll_event(),
        Err(ProtocolError::MessageTooLarge.into())
    );
    assert_eq!(close_code_sent(&drained(&mut conn)), Some(1009));
    // Fragments count together.
    let mut conn = auth_conn(&config);
    conn.handle_input(&[frame(false, 1, &[b'a'; 40]), frame(true, 0, &[b'a'; 40])].concat());
    assert_eq!(
        conn.poll_event(),
        Err(ProtocolError::MessageTooLarge.into())
    );
}

#[test]
fn input_behind_an_undecided_first_message_is_bounded_by_the_auth_cap() {
    let config = Config::builder()
        .max_auth_message_bytes(1000)
        .build()
        .unwrap();
    let mut conn = auth_conn(&config);
    conn.handle_input(&text("token"));
    assert!(conn.poll_event().unwrap().is_some());
    // 2 * (4 + 480) = 968 bytes wait: allowed.
    conn.handle_input(&frame(true, 2, &[0; 480]));
    conn.handle_input(&frame(true, 2, &[0; 480]));
    conn.handle_input(&frame(true, 2, &[0; 30]));
    assert_eq!(
        conn.poll_event(),
        Err(ProtocolError::TooMuchBeforeAuth.into())
    );
    assert_eq!(close_code_sent(&drained(&mut conn)), Some(1008));

    // With the default limits an unauthenticated peer cannot park megabytes behind
    // its first message, whatever the message limit allows an authenticated one.
    let mut conn = auth_conn(&Config::default());
    conn.handle_input(&text("token?"));
    assert!(conn.poll_event().unwrap().is_some());
    let junk = frame(true, 2, &vec![0u8; 4000]);
    let mut refused = None;
    for i in 0..16 {
        conn.handle_input(&junk);
        if let Err(e) = conn.poll_event() {
            refused = Some((i, e));
            break;
        }
    }
    assert_eq!(
        refused,
        Some((2, ProtocolError::TooMuchBeforeAuth.into())),
        "two frames of 4008 bytes fit in 8 KiB, a third does not"
    );
    assert!(conn.memory_usage() < 4096, "{}", conn.memory_usage());
}

#[test]
fn pings_before_authentication_are_answered_even_without_auto_pong() {
    // The caller answers pings itself only once it sees them, and before
    // authentication it does not: RFC 6455 §5.5.2 still wants a pong.
    let config = Config::builder().auto_pong(false).build().unwrap();
    let mut conn = auth_conn(&config);
    conn.handle_input(&[frame(true, 9, b"are you there"), text("token")].concat());
    assert!(matches!(
        conn.poll_event().unwrap(),
        Some(Event::AuthMessage { .. })
    ));
    assert_eq!(
        server_frames(&drained(&mut conn)),
        vec![(OpCode::Pong, true, b"are you there".to_vec())]
    );
    conn.sender().accept_auth().unwrap();
    // After authentication the caller's setting holds: delivered, not answered.
    conn.handle_input(&frame(true, 9, b"again"));
    assert_eq!(
        collect(&mut conn).unwrap(),
        vec![Ev::Ping(b"again".to_vec())]
    );
    assert!(drained(&mut conn).is_empty());
}

#[test]
fn streaming_hands_out_pieces_that_add_up_to_the_message() {
    let config = Config::builder()
        .streaming(true)
        .max_frame_bytes(16)
        .max_message_bytes(16)
        .build()
        .unwrap();
    let payload: Vec<u8> = "streamed €uro text ".repeat(50).into_bytes();
    let wire = [
        frame(false, 1, &payload[..301]),
        frame(true, 9, b"p"),
        frame(true, 0, &payload[301..]),
    ]
    .concat();
    for step in [1, 7, 100, 313, 650, wire.len()] {
        let mut conn = ServerConnection::new((), &config, Instant::ZERO);
        let mut got = Vec::new();
        let mut firsts = 0;
        let mut fins = 0;
        let mut pings = 0;
        for chunk in wire.chunks(step) {
            conn.handle_input(chunk);
            while let Some(e) = conn.poll_event().unwrap() {
                match e {
                    Event::TextChunk { data, first, fin } => {
                        got.extend_from_slice(data);
                        firsts += usize::from(first);
                        fins += usize::from(fin);
                    }
                    Event::Ping(_) => pings += 1,
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(
            got, payload,
            "step {step}: limits do not apply to streaming"
        );
        assert_eq!((firsts, fins, pings), (1, 1, 1), "step {step}");
        assert!(conn.memory_usage() < 512, "nothing buffered whole");
    }
}

#[test]
fn an_idle_connection_holds_under_512_bytes() {
    let mut conn = ServerConnection::new(0u64, &Config::default(), Instant::ZERO);
    assert!(conn.memory_usage() <= 512, "{}", conn.memory_usage());
    // After traffic (a large fragmented message, pings, sends) and draining, the
    // buffers are released.
    let big = vec![1u8; 300_000];
    conn.handle_input(
        &[
            frame(false, 2, &big),
            frame(true, 9, b""),
            frame(true, 0, &big),
        ]
        .concat(),
    );
    assert_eq!(collect(&mut conn).unwrap().len(), 2);
    conn.sender().send_binary(&big).unwrap();
    assert!(conn.memory_usage() > 300_000);
    drained(&mut conn);
    assert_eq!(conn.poll_event().unwrap(), None);
    assert!(conn.memory_usage() <= 512, "{}", conn.memory_usage());
    println!("idle connection: {} bytes", conn.memory_usage());
}

#[test]
fn a_huge_message_does_not_make_later_bursts_allocate_as_much() {
    // The next burst's buffer is sized from the last one, up to a cap.
    let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
    let huge = vec![7u8; 4 << 20];
    conn.handle_input(&frame(true, 2, &huge));
    assert_eq!(collect(&mut conn).unwrap(), vec![Ev::Binary(huge)]);
    assert!(conn.memory_usage() <= 512, "{}", conn.memory_usage());
    conn.handle_input(&frame(true, 2, b"x")[..3]);
    let held = conn.memory_usage();
    assert!((1 << 10..=(256 << 10) + 512).contains(&held), "{held}");
    conn.handle_input(&frame(true, 2, b"x")[3..]);
    assert_eq!(collect(&mut conn).unwrap(), vec![Ev::Binary(b"x".to_vec())]);
    assert!(conn.memory_usage() <= 512, "{}", conn.memory_usage());
}

#[test]
fn a_burst_that_starts_a_large_frame_gets_the_room_the_last_one_needed_at_once() {
    let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
    let big = vec![7u8; 1 << 20];
    let wire = frame(true, 2, &big);
    for read in wire.chunks(64 << 10) {
        conn.handle_input(read);
        collect(&mut conn).unwrap();
    }
    assert!(conn.memory_usage() <= 512, "{}", conn.memory_usage());
    // The next 1 MiB frame's first read: room for all of it, not for the read alone.
    conn.handle_input(&wire[..64 << 10]);
    assert!(conn.memory_usage() > 1 << 20, "{}", conn.memory_usage());
    for read in wire[64 << 10..].chunks(64 << 10) {
        conn.handle_input(read);
    }
    assert_eq!(collect(&mut conn).unwrap(), vec![Ev::Binary(big)]);
    // A header alone gets no more than any burst, whatever length it claims.
    let mut liar = Vec::new();
    FrameHeader::new(true, OpCode::Binary, Some([1, 2, 3, 4]), 1 << 20).write(&mut liar);
    conn.handle_input(&liar);
    assert!(
        conn.memory_usage() <= (256 << 10) + 512,
        "{}",
        conn.memory_usage()
    );
}

#[test]
fn a_long_stream_of_large_frames_keeps_the_buffer_within_a_few_frames() {
    // Reads that never line up with frame ends leave the buffer never empty. The bytes
    // consumed ahead of a waiting frame must still be dropped, or the buffer grows
    // with the stream (it once reached 2x everything received).
    for (size, read_len) in [
        (64 << 10, 65_537),
        (64 << 10, 4_099),
        (64 << 10, 200_003),
        (300 << 10, 65_537),
        (300 << 10, 9_001),
    ] {
        let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
        let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let one = frame(true, 2, &message);
        let frames = (6 << 20) / size;
        let stream = one.repeat(frames);
        let mut delivered = 0;
        let mut most = 0;
        for read in stream.chunks(read_len) {
            conn.handle_input(read);
            while let Some(event) = conn.poll_event().unwrap() {
                assert!(matches!(event, Event::Binary(b) if *b == message[..]));
                delivered += 1;
            }
            most = most.max(conn.memory_usage());
        }
        assert_eq!(delivered, frames);
        let bound = 4 * size + 2 * read_len + (256 << 10);
        assert!(
            most <= bound,
            "{size}-byte frames, {read_len}-byte reads: {most} bytes held, over {bound}"
        );
    }
}

// ---- properties ----

fn arb_opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

fn arb_len() -> impl Strategy<Value = u64> {
    prop_oneof![0..=125u64, 126..=0xFFFFu64, 0x10000..=(u64::MAX >> 1)]
}

/// A valid client message stream: messages (maybe fragmented) with pings between
#[derive(Debug, Clone)]
enum Msg {
    Text(String, Vec<usize>),
    Binary(Vec<u8>, Vec<usize>),
    Ping(Vec<u8>),
}

fn arb_msg() -> impl Strategy<Value = Msg> {
    // Some payloads reach 512 bytes, from which they are unmasked as they are copied in.
    prop_oneof![
        (".{0,40}", prop::collection::vec(0..40usize, 0..3)).prop_map(|(s, c)| Msg::Text(s, c)),
        (".{150,400}", prop::collection::vec(0..1600usize, 0..3))
            .prop_map(|(s, c)| Msg::Text(s, c)),
        (
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(0..300usize, 0..3)
        )
            .prop_map(|(b, c)| Msg::Binary(b, c)),
        (
            prop::collection::vec(any::<u8>(), 500..1500),
            prop::collection::vec(0..1500usize, 0..3)
        )
            .prop_map(|(b, c)| Msg::Binary(b, c)),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Msg::Ping),
    ]
}

fn arb_stream() -> impl Strategy<Value = (Vec<Msg>, Vec<usize>)> {
    (
        prop::collection::vec(arb_msg(), 0..8),
        prop::collection::vec(1..64usize, 1..20),
    )
}

/// Fragment `payload` at the byte offsets `cuts` (text: cut anywhere, even inside a
/// code point, as a client may); each frame takes the next key
fn encode_msg(
    opcode: u8,
    payload: &[u8],
    cuts: &[usize],
    keys: &mut impl Iterator<Item = [u8; 4]>,
) -> Vec<u8> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (payload.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut at = 0;
    let mut first = true;
    for p in points.into_iter().chain([payload.len()]) {
        let fin = p == payload.len();
        if p < at || (!fin && p == at && !first) {
            continue;
        }
        out.extend(raw_frame(
            fin,
            0,
            if first { opcode } else { 0 },
            &payload[at..p],
            keys.next(),
        ));
        first = false;
        at = p;
        if fin {
            break;
        }
    }
    out
}

/// The wire bytes of a message stream and the events it must give; each frame takes
/// the next key (the iterator must not end)
fn encode_stream(msgs: &[Msg], keys: &mut impl Iterator<Item = [u8; 4]>) -> (Vec<u8>, Vec<Ev>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for m in msgs {
        match m {
            Msg::Text(s, cuts) => {
                wire.extend(encode_msg(1, s.as_bytes(), cuts, keys));
                expected.push(Ev::Text(s.clone()));
            }
            Msg::Binary(b, cuts) => {
                wire.extend(encode_msg(2, b, cuts, keys));
                expected.push(Ev::Binary(b.clone()));
            }
            Msg::Ping(p) => {
                wire.extend(raw_frame(true, 0, 9, p, keys.next()));
                expected.push(Ev::Ping(p.clone()));
            }
        }
    }
    (wire, expected)
}

/// Streaming pieces joined back into whole messages (pieces of a message cut off by
/// an error are dropped)
fn fold(events: Vec<Ev>) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut acc: Vec<u8> = Vec::new();
    for e in events {
        match e {
            Ev::TextChunk(d, _, fin) => {
                acc.extend(d);
                if fin {
                    out.push(Ev::Text(
                        String::from_utf8(std::mem::take(&mut acc)).unwrap(),
                    ));
                }
            }
            Ev::BinaryChunk(d, _, fin) => {
                acc.extend(d);
                if fin {
                    out.push(Ev::Binary(std::mem::take(&mut acc)));
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Any frame, valid or not: RSV bits, reserved opcodes, unmasked or all-zero keys,
/// invalid UTF-8, lengths around the small limits
#[derive(Debug, Clone)]
struct RawFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: Vec<u8>,
    key: Option<[u8; 4]>,
}

fn arb_raw() -> impl Strategy<Value = RawFrame> {
    (
        prop::bool::weighted(0.8),
        prop_oneof![8 => Just(0u8), 1 => 0u8..8],
        prop_oneof![
            Just(0u8),
            Just(1),
            Just(2),
            Just(8),
            Just(9),
            Just(10),
            0u8..16
        ],
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..20),
            prop::collection::vec(prop_oneof![Just(b'a'), any::<u8>()], 100..200),
            prop::collection::vec(prop_oneof![9 => Just(b'a'), 1 => any::<u8>()], 500..1200),
        ],
        prop_oneof![8 => any::<[u8; 4]>().prop_map(Some), 1 => Just(Some([0; 4])), 1 => Just(None)],
    )
        .prop_map(|(fin, rsv, opcode, payload, key)| RawFrame {
            fin,
            rsv,
            opcode,
            payload,
            key,
        })
}

/// What a caller sees: events (streaming pieces folded), the error, the output, closed
type Seen = (Vec<Ev>, Option<Error>, Vec<u8>, bool);

/// Feed `chunks`, polling at most `polls[i]` events after chunk `i` (the rest at the
/// end); a first message is accepted as soon as it is seen
fn feed_and_poll(config: &Config, auth: bool, chunks: &[Vec<u8>], polls: &[usize]) -> Seen {
    let mut conn = if auth {
        ServerConnection::with_first_message_auth((), config, Instant::ZERO)
    } else {
        ServerConnection::new((), config, Instant::ZERO)
    };
    let mut events = Vec::new();
    let mut error = None;
    let poll =
        |conn: &mut ServerConnection<()>, events: &mut Vec<Ev>, error: &mut Option<Error>| {
            match conn.poll_event() {
                Ok(Some(Event::AuthMessage { message, text })) => {
                    events.push(Ev::Auth(message.expose().to_vec(), text));
                    conn.sender().accept_auth().unwrap();
                    true
                }
                Ok(Some(e)) => {
                    events.push(own(&e));
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    assert_eq!(conn.poll_event().unwrap_err(), e, "sticky");
                    *error = Some(e);
                    false
                }
            }
        };
    for (i, chunk) in chunks.iter().enumerate() {
        conn.handle_input(chunk);
        for _ in 0..polls[i % polls.len()] {
            if !poll(&mut conn, &mut events, &mut error) {
                break;
            }
        }
        if error.is_some() {
            break;
        }
    }
    if error.is_none() {
        while poll(&mut conn, &mut events, &mut error) {}
    }
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    (fold(events), error, out, conn.is_closed())
}

fn chunked(bytes: &[u8], steps: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = steps[i % steps.len()].min(bytes.len() - at);
        out.push(bytes[at..at + n].to_vec());
        at += n;
        i += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn header_round_trips(fin in any::<bool>(), rsv in 0u8..8, opcode in arb_opcode(),
                          mask in any::<Option<[u8; 4]>>(), len in arb_len()) {
        // Control frames are whole and short by definition.
        let (fin, len) = if opcode.is_control() { (true, len % 126) } else { (fin, len) };
        let header = FrameHeader { fin, rsv, opcode, mask, payload_len: len };
        let (bytes, n) = header.encode();
        prop_assert_eq!(n, header.encoded_len());
        prop_assert_eq!(FrameHeader::parse(&bytes[..n]), Ok(Some((header, n))));
        for cut in 0..n {
            prop_assert_eq!(FrameHeader::parse(&bytes[..cut]), Ok(None));
        }
    }

    #[test]
    fn masking_twice_is_identity(data in prop::collection::vec(any::<u8>(), 0..600),
                                 key in any::<[u8; 4]>(), offset in 0usize..16) {
        let mut buf = data.clone();
        apply_mask(&mut buf, key, offset);
        apply_mask(&mut buf, key, offset);
        prop_assert_eq!(buf, data);
    }

    #[test]
    fn any_chunking_gives_the_same_events_and_output((msgs, steps) in arb_stream(), key in any::<[u8; 4]>()) {
        let (wire, expected) = encode_stream(&msgs, &mut std::iter::repeat(key));
        let whole = run_chunks(&Config::default(), [&wire[..]]);
        prop_assert_eq!(&whole.events, &expected);
        prop_assert_eq!(whole.error, None);
        let pieces = chunked(&wire, &steps);
        let split = run_chunks(&Config::default(), pieces.iter().map(|c| &c[..]));
        prop_assert_eq!(&split, &whole);
        let bytes = run_chunks(&Config::default(), wire.chunks(1));
        prop_assert_eq!(&bytes, &whole);
    }

    #[test]
    fn feeding_ahead_of_polling_gives_the_same_events((msgs, steps) in arb_stream(), key in any::<[u8; 4]>()) {
        // Input arrives while earlier events are still unpolled: one event is polled
        // per chunk, the rest at the end.
        let (wire, expected) = encode_stream(&msgs, &mut std::iter::repeat(key));
        let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
        let mut events = Vec::new();
        for chunk in chunked(&wire, &steps) {
            conn.handle_input(&chunk);
            if let Some(e) = conn.poll_event().unwrap() {
                events.push(own(&e));
            }
        }
        events.extend(collect(&mut conn).unwrap());
        prop_assert_eq!(events, expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_agrees(bytes in prop::collection::vec(any::<u8>(), 0..400),
                                                        steps in prop::collection::vec(1..32usize, 1..8)) {
        let config = Config::builder().max_frame_bytes(200).max_message_bytes(300).build().unwrap();
        let whole = run_chunks(&config, [&bytes[..]]);
        let pieces = chunked(&bytes, &steps);
        let split = run_chunks(&config, pieces.iter().map(|c| &c[..]));
        prop_assert_eq!(&split, &whole);
        if let Some(e) = whole.error {
            prop_assert_eq!(close_code_sent(&whole.out), Some(e.close_code().0));
        }
    }

    #[test]
    fn valid_frames_after_a_valid_handshake_round_trip((msgs, steps) in arb_stream()) {
        // Handshake and frames in one byte stream, chunked arbitrarily.
        let mut wire = REQUEST.as_bytes().to_vec();
        let mut expected = Vec::new();
        for m in &msgs {
            if let Msg::Binary(b, cuts) = m {
                wire.extend(encode_msg(2, b, cuts, &mut std::iter::repeat(KEY)));
                expected.push(Ev::Binary(b.clone()));
            }
        }
        let config = Config::default();
        let mut hs = ServerHandshake::new(&config, Instant::ZERO);
        let mut out = Vec::new();
        let mut conn = None;
        let mut events = Vec::new();
        for chunk in chunked(&wire, &steps) {
            match &mut conn {
                None => {
                    if let Ok(Some(Outcome::Accepted(a))) = hs.handle_input(&chunk, &mut out, |_| Decision::accept(())) {
                        conn = Some(ServerConnection::from_accepted(a, &config, Instant::ZERO));
                    }
                }
                Some(c) => c.handle_input(&chunk),
            }
            if let Some(c) = &mut conn {
                events.extend(collect(c).unwrap());
            }
        }
        prop_assert!(conn.is_some());
        prop_assert_eq!(events, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn valid_streams_give_their_messages_in_every_mode(
        msgs in prop::collection::vec(arb_msg(), 0..8),
        auth in prop::option::of((".{0,20}|.{500,900}", prop::collection::vec(0..900usize, 0..3))),
        streaming in any::<bool>(),
        keys in prop::collection::vec(prop_oneof![Just([0u8; 4]), any::<[u8; 4]>()], 1..6),
        steps in prop::collection::vec(1..700usize, 1..20),
        polls in prop::collection::vec(0..3usize, 1..6),
    ) {
        // Streaming or not, with or without a first message, any keys (an all-zero
        // key too), any read sizes, and events polled while input is still arriving.
        let mut keys = keys.iter().copied().cycle();
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        if let Some((token, cuts)) = &auth {
            wire.extend(encode_msg(1, token.as_bytes(), cuts, &mut keys));
            expected.push(Ev::Auth(token.as_bytes().to_vec(), true));
        }
        let (rest, messages) = encode_stream(&msgs, &mut keys);
        wire.extend(rest);
        expected.extend(messages);
        let config = Config::builder().streaming(streaming).build().unwrap();
        let (events, error, _, closed) =
            feed_and_poll(&config, auth.is_some(), &chunked(&wire, &steps), &polls);
        prop_assert_eq!(error, None);
        prop_assert!(!closed);
        prop_assert_eq!(events, expected);
    }

    #[test]
    fn any_frames_give_the_same_result_however_read_and_polled(
        frames in prop::collection::vec(arb_raw(), 1..8),
        streaming in any::<bool>(),
        auth in any::<bool>(),
        small_limits in any::<bool>(),
        steps in prop::collection::vec(1..700usize, 1..10),
        polls in prop::collection::vec(0..3usize, 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(raw_frame(f.fin, f.rsv, f.opcode, &f.payload, f.key));
        }
        // Sometimes the stream stops inside the last frames.
        let keep = cut.index(wire.len() + 1);
        wire.truncate(keep.max(wire.len() * 3 / 4));
        let mut builder = Config::builder().streaming(streaming);
        if small_limits {
            builder = builder.max_frame_bytes(600).max_message_bytes(900).max_auth_message_bytes(700);
        }
        let config = builder.build().unwrap();
        let whole = feed_and_poll(&config, auth, std::slice::from_ref(&wire), &[usize::MAX]);
        let split = feed_and_poll(&config, auth, &chunked(&wire, &steps), &polls);
        let bytes = feed_and_poll(&config, auth, &chunked(&wire, &[1]), &[1]);
        prop_assert_eq!(&split, &whole);
        prop_assert_eq!(&bytes, &whole);
        if let Some(Error::Protocol(e)) = whole.1 {
            prop_assert_eq!(close_code_sent(&whole.2), Some(e.close_code().0));
        }
    }
}
