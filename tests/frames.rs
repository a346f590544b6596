//! Every frame shape and every frame-level error, each fed whole, split at every
//! offset and one byte at a time; the same events, error and output bytes each time

mod common;

use common::*;
use wsgate::frame::OpCode;
use wsgate::{Config, ProtocolError as P};

struct Case {
    name: &'static str,
    config: Config,
    input: Vec<u8>,
    events: Vec<Ev>,
    error: Option<P>,
    /// Server frames expected out: opcode and payload (for close: just the code)
    sent: Vec<(OpCode, Vec<u8>)>,
}

fn case(name: &'static str, input: Vec<u8>, events: Vec<Ev>) -> Case {
    Case {
        name,
        config: Config::default(),
        input,
        events,
        error: None,
        sent: Vec::new(),
    }
}

impl Case {
    fn error(mut self, e: P) -> Self {
        self.error = Some(e);
        self.sent
            .push((OpCode::Close, e.close_code().0.to_be_bytes().to_vec()));
        self
    }
    fn sent(mut self, opcode: OpCode, payload: &[u8]) -> Self {
        self.sent.push((opcode, payload.to_vec()));
        self
    }
    fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn t(s: &str) -> Ev {
    Ev::Text(s.into())
}

fn cases() -> Vec<Case> {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i * 31) as u8).collect();
    let small = Config::builder()
        .max_frame_bytes(100)
        .max_message_bytes(150)
        .build()
        .unwrap();
    vec![
        // Shapes
        case("text", text("Hello"), vec![t("Hello")]),
        case("empty text", text(""), vec![t("")]),
        case("utf-8 text", text("κόσμε €𝄞"), vec![t("κόσμε €𝄞")]),
        case(
            "binary 16-bit length",
            frame(true, 2, &big[..300]),
            vec![Ev::Binary(big[..300].to_vec())],
        ),
        case(
            "binary 64-bit length",
            frame(true, 2, &big),
            vec![Ev::Binary(big.clone())],
        ),
        case(
            "empty binary",
            frame(true, 2, b""),
            vec![Ev::Binary(vec![])],
        ),
        case(
            "fragmented text",
            cat(&[
                frame(false, 1, b"Hel"),
                frame(false, 0, b""),
                frame(true, 0, b"lo"),
            ]),
            vec![t("Hello")],
        ),
        case(
            "code point split across fragments",
            cat(&[
                frame(false, 1, &"€".as_bytes()[..1]),
                frame(true, 0, &"€".as_bytes()[1..]),
            ]),
            vec![t("€")],
        ),
        case(
            "fragmented binary, large fragments",
            cat(&[
                frame(false, 2, &big[..40_000]),
                frame(true, 0, &big[40_000..]),
            ]),
            vec![Ev::Binary(big.clone())],
        ),
        // Payloads of 512 bytes and more are unmasked as they are copied in; these
        // stay under 1200 bytes so that every split point is tried.
        case(
            "two large frames back to back",
            cat(&[frame(true, 2, &big[..520]), frame(true, 2, &big[1..530])]),
            vec![
                Ev::Binary(big[..520].to_vec()),
                Ev::Binary(big[1..530].to_vec()),
            ],
        ),
        case(
            "large, small, large",
            cat(&[
                frame(true, 2, &big[..512]),
                text("hi"),
                frame(true, 2, &big[3..520]),
            ]),
            vec![
                Ev::Binary(big[..512].to_vec()),
                t("hi"),
                Ev::Binary(big[3..520].to_vec()),
            ],
        ),
        case(
            "large fragments with a ping between",
            cat(&[
                frame(false, 2, &big[..515]),
                frame(true, 9, b"p"),
                frame(true, 0, &big[515..1060]),
            ]),
            vec![Ev::Ping(b"p".to_vec()), Ev::Binary(big[..1060].to_vec())],
        )
        .sent(OpCode::Pong, b"p"),
        case(
            "large text",
            text(&"é".repeat(300)),
            vec![t(&"é".repeat(300))],
        ),
        case(
            "large frame with a zero key",
            raw_frame(true, 0, 2, &big[..600], Some([0; 4])),
            vec![Ev::Binary(big[..600].to_vec())],
        ),
        case(
            "small and large text frames with zero keys",
            cat(&[
                raw_frame(true, 0, 1, b"hello", Some([0; 4])),
                raw_frame(true, 0, 1, "é".repeat(300).as_bytes(), Some([0; 4])),
            ]),
            vec![t("hello"), t(&"é".repeat(300))],
        ),
        case(
            "large frame, then a reserved opcode",
            cat(&[frame(true, 2, &big[..600]), frame(true, 3, b"")]),
            vec![Ev::Binary(big[..600].to_vec())],
        )
        .error(P::ReservedOpcode),
        case(
            "large frame with rsv1",
            raw_frame(true, 4, 2, &big[..600], Some(KEY)),
            vec![],
        )
        .error(P::ReservedBits),
        case(
            "large unmasked frame",
            raw_frame(true, 0, 2, &big[..600], None),
            vec![],
        )
        .error(P::UnmaskedFrame),
        case(
            "large text, invalid utf-8 up front",
            frame(true, 1, &[&b"\xc3\x28"[..], &[b'a'; 700][..]].concat()),
            vec![],
        )
        .error(P::InvalidUtf8),
        case(
            "ping between fragments",
            cat(&[
                frame(false, 1, b"a"),
                frame(true, 9, b"p"),
                frame(true, 0, b"b"),
            ]),
            vec![Ev::Ping(b"p".to_vec()), t("ab")],
        )
        .sent(OpCode::Pong, b"p"),
        case(
            "ping",
            frame(true, 9, b"are you there"),
            vec![Ev::Ping(b"are you there".to_vec())],
        )
        .sent(OpCode::Pong, b"are you there"),
        case(
            "ping of 125 bytes",
            frame(true, 9, &big[..125]),
            vec![Ev::Ping(big[..125].to_vec())],
        )
        .sent(OpCode::Pong, &big[..125]),
        case("pong", frame(true, 10, b"x"), vec![Ev::Pong(b"x".to_vec())]),
        case(
            "close with code and reason",
            close(1000, "bye"),
            vec![Ev::Close(Some(1000), "bye".into())],
        )
        .sent(OpCode::Close, &1000u16.to_be_bytes()),
        case(
            "close without code",
            frame(true, 8, b""),
            vec![Ev::Close(None, String::new())],
        )
        .sent(OpCode::Close, b""),
        case(
            "close 1012",
            close(1012, ""),
            vec![Ev::Close(Some(1012), String::new())],
        )
        .sent(OpCode::Close, &1012u16.to_be_bytes()),
        case(
            "close 3000",
            close(3000, ""),
            vec![Ev::Close(Some(3000), String::new())],
        )
        .sent(OpCode::Close, &3000u16.to_be_bytes()),
        case(
            "close 4999",
            close(4999, "é"),
            vec![Ev::Close(Some(4999), "é".into())],
        )
        .sent(OpCode::Close, &4999u16.to_be_bytes()),
        case(
            "bytes after close are ignored",
            cat(&[close(1001, ""), text("late"), vec![0xFF; 5]]),
            vec![Ev::Close(Some(1001), String::new())],
        )
        .sent(OpCode::Close, &1001u16.to_be_bytes()),
        case(
            "several messages",
            cat(&[text("a"), frame(true, 2, b"b"), text("c")]),
            vec![t("a"), Ev::Binary(b"b".to_vec()), t("c")],
        ),
        // 1002
        case("unmasked frame", raw_frame(true, 0, 1, b"hi", None), vec![]).error(P::UnmaskedFrame),
        case("rsv1", raw_frame(true, 4, 1, b"hi", Some(KEY)), vec![]).error(P::ReservedBits),
        case(
            "rsv3 on a ping",
            raw_frame(true, 1, 9, b"", Some(KEY)),
            vec![],
        )
        .error(P::ReservedBits),
        case("opcode 3", frame(true, 3, b""), vec![]).error(P::ReservedOpcode),
        case("opcode 0xB", frame(true, 0xB, b""), vec![]).error(P::ReservedOpcode),
        case("ping of 126 bytes", frame(true, 9, &big[..126]), vec![])
            .error(P::ControlFrameTooLong),
        case("fragmented ping", frame(false, 9, b""), vec![]).error(P::FragmentedControlFrame),
        case("continuation first", frame(true, 0, b"x"), vec![]).error(P::UnexpectedContinuation),
        case(
            "text inside a fragmented message",
            cat(&[frame(false, 1, b"a"), text("b")]),
            vec![],
        )
        .error(P::ExpectedContinuation),
        case("close of one byte", frame(true, 8, b"\x03"), vec![]).error(P::InvalidClosePayload),
        case("close 999", close(999, ""), vec![]).error(P::InvalidCloseCode),
        case("close 1004", close(1004, ""), vec![]).error(P::InvalidCloseCode),
        case("close 1005", close(1005, ""), vec![]).error(P::InvalidCloseCode),
        case("close 1006", close(1006, ""), vec![]).error(P::InvalidCloseCode),
        case("close 1015", close(1015, ""), vec![]).error(P::InvalidCloseCode),
        case("close 2999", close(2999, ""), vec![]).error(P::InvalidCloseCode),
        case("close 5000", close(5000, ""), vec![]).error(P::InvalidCloseCode),
        case(
            "64-bit length with the top bit set",
            cat(&[vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], KEY.to_vec()]),
            vec![],
        )
        .error(P::PayloadLengthOverflow),
        // 1007
        case("invalid utf-8", frame(true, 1, b"ok\xc3\x28"), vec![]).error(P::InvalidUtf8),
        case("surrogate", frame(true, 1, b"\xed\xa0\x80"), vec![]).error(P::InvalidUtf8),
        case(
            "message ends inside a code point",
            cat(&[frame(false, 1, b"\xe2\x82"), frame(true, 0, b"")]),
            vec![],
        )
        .error(P::InvalidUtf8),
        case(
            "invalid utf-8 in a close reason",
            close(1000, "\u{0}")
                .into_iter()
                .take(0)
                .chain(frame(true, 8, b"\x03\xe8\xff"))
                .collect(),
            vec![],
        )
        .error(P::InvalidUtf8),
        // Messages before an error are delivered
        case(
            "message then a broken frame",
            cat(&[
                text("first"),
                frame(true, 2, b"second"),
                raw_frame(true, 0, 2, b"x", None),
            ]),
            vec![t("first"), Ev::Binary(b"second".to_vec())],
        )
        .error(P::UnmaskedFrame),
        // 1009
        case("frame over the limit", frame(true, 2, &big[..101]), vec![])
            .config(small.clone())
            .error(P::FrameTooLarge),
        case(
            "frame at the limit",
            frame(true, 2, &big[..100]),
            vec![Ev::Binary(big[..100].to_vec())],
        )
        .config(small.clone()),
        case(
            "message over the limit",
            cat(&[frame(false, 2, &big[..100]), frame(true, 0, &big[..51])]),
            vec![],
        )
        .config(small.clone())
        .error(P::MessageTooLarge),
        case(
            "a 2^63-1 byte frame is refused from its header",
            cat(&[
                vec![0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                KEY.to_vec(),
            ]),
            vec![],
        )
        .error(P::FrameTooLarge),
    ]
}

/// Every split point for short inputs; for long ones, the first and last 300 and a
/// spread in between
fn split_points(len: usize) -> Vec<usize> {
    if len <= 1200 {
        return (0..=len).collect();
    }
    let mut v: Vec<usize> = (0..300).chain(len - 300..=len).collect();
    v.extend((300..len - 300).step_by(997));
    v
}

fn check(c: &Case, how: &str, run: &Run) {
    assert_eq!(run.events, c.events, "{}: events ({how})", c.name);
    assert_eq!(run.error, c.error, "{}: error ({how})", c.name);
    let sent: Vec<(OpCode, Vec<u8>)> = server_frames(&run.out)
        .into_iter()
        .map(|(op, fin, p)| {
            assert!(fin, "{}: server frames are whole", c.name);
            let p = if op == OpCode::Close {
                p[..p.len().min(2)].to_vec()
            } else {
                p
            };
            (op, p)
        })
        .collect();
    assert_eq!(sent, c.sent, "{}: output ({how})", c.name);
    let closes = c.error.is_some() || c.events.iter().any(|e| matches!(e, Ev::Close(..)));
    assert_eq!(run.closed, closes, "{}: is_closed ({how})", c.name);
}

#[test]
fn table_whole_split_and_byte_by_byte() {
    for c in cases() {
        let whole = run_chunks(&c.config, [&c.input[..]]);
        check(&c, "whole", &whole);
        for at in split_points(c.input.len()) {
            let (a, b) = c.input.split_at(at);
            let run = run_chunks(&c.config, [a, b]);
            assert_eq!(run, whole, "{}: split at {at}", c.name);
        }
        if c.input.len() <= 20_000 {
            let run = run_chunks(&c.config, c.input.chunks(1));
            assert_eq!(run, whole, "{}: byte by byte", c.name);
        }
    }
}

#[test]
fn invalid_utf8_fails_before_the_rest_of_the_frame_arrives() {
    // A 1000-byte text frame whose 3rd byte is invalid; only 20 bytes have arrived.
    let mut payload = vec![b'a'; 1000];
    payload[2] = 0xFF;
    let wire = frame(true, 1, &payload);
    let run = run_chunks(&Config::default(), [&wire[..20]]);
    assert_eq!(run.error, Some(P::InvalidUtf8));
    assert_eq!(close_code_sent(&run.out), Some(1007));

    // The same in the first fragment of a fragmented message.
    let first = frame(false, 1, b"fine \xc0\xaf and more");
    let run = run_chunks(&Config::default(), [&first[..]]);
    assert_eq!(run.error, Some(P::InvalidUtf8));
}

#[test]
fn a_frame_announcing_a_huge_payload_is_refused_at_once() {
    // 2^40 bytes announced, a few sent: refused from the header, nothing buffered.
    let mut wire = vec![0x82, 0xFF];
    wire.extend_from_slice(&(1u64 << 40).to_be_bytes());
    wire.extend_from_slice(&KEY);
    let run = run_chunks(&Config::default(), [&wire[..], b"abc"]);
    assert_eq!(run.error, Some(P::FrameTooLarge));
    assert_eq!(close_code_sent(&run.out), Some(1009));
}

#[test]
fn every_case_is_a_fuzz_seed() {
    let cases = cases();
    // The connection target: mode byte 0 (whole messages) or 8 (timers), then the
    // chunk size byte (chunks of 9 bytes).
    let connection: Vec<Vec<u8>> = cases
        .iter()
        .filter(|c| c.input.len() < 4096)
        .flat_map(|c| {
            [
                [&[0, 8][..], &c.input].concat(),
                [&[8, 8][..], &c.input].concat(),
            ]
        })
        .collect();
    check_seeds("connection", &connection);
    let frame: Vec<Vec<u8>> = cases
        .iter()
        .map(|c| c.input[..c.input.len().min(64)].to_vec())
        .collect();
    check_seeds("frame", &frame);
}
