//! The server handshake from the outside: one table of requests and the answer each
//! gets, every case run whole, split at every offset, byte by byte, and deferred.

mod common;

use proptest::prelude::*;
use wsgate::Instant;
use wsgate::{
    Accept, Challenge, Config, Decision, Error, Outcome, ProtocolError, Response, ServerHandshake,
    UpgradeRequest, UsageError, auth,
};

const TOKEN: &str = "s3cr3t-T0k";

/// The decision every table case runs: the echo server's rules. A right token by any
/// carrier is accepted (the subprotocol slot answered with its marker); otherwise a 401
/// with Bearer and Basic challenges. `/health` answers 200; other plain requests fall
/// through to the default 426.
fn decide(req: &UpgradeRequest<'_>) -> Decision<&'static str> {
    if !req.is_upgrade() {
        return match req.path() {
            "/health" => Decision::reject(Response::new(200).body("ok\n")),
            _ => Decision::accept("plain"),
        };
    }
    let t = TOKEN.as_bytes();
    let bearer = auth::bearer(req);
    let basic = auth::basic(req);
    let slot = auth::subprotocol_slot(req, "access_token");
    let accepted = match (&bearer, &basic) {
        (Ok(Some(b)), _) if b.ct_eq(t) => Some(Accept::new("bearer")),
        (_, Ok(Some(b))) if b.user().ct_eq(b"token") && b.password().ct_eq(t) => {
            Some(Accept::new("basic"))
        }
        _ if auth::query(req, "token").is_some_and(|s| s.ct_eq(t)) => Some(Accept::new("query")),
        _ if auth::query(req, "access_token").is_some_and(|s| s.ct_eq(t)) => {
            Some(Accept::new("query"))
        }
        _ if auth::cookie(req, "token").is_some_and(|s| s.ct_eq(t)) => Some(Accept::new("cookie")),
        _ if slot.as_ref().is_some_and(|s| s.ct_eq(t)) => {
            Some(Accept::new("subprotocol").subprotocol("access_token"))
        }
        _ => None,
    };
    if let Some(accept) = accepted {
        return accept.into();
    }
    let presented = !matches!(bearer, Ok(None)) || !matches!(basic, Ok(None)) || slot.is_some();
    let mut r = Response::unauthorized_bearer("wsgate").with_challenge(Challenge::basic("wsgate"));
    if presented {
        r = r.invalid_token();
    }
    Decision::reject(r)
}

/// What a table case expects.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// 101, accepted by this carrier
    Accept(&'static str),
    /// Any other response from the decision, with this status
    Reject(u16),
    /// Refused by the handshake itself with this error
    Fail(ProtocolError),
}

struct Case {
    name: &'static str,
    request: &'static str,
    want: Want,
    /// Substrings the response must contain
    has: &'static [&'static str],
}

macro_rules! upgrade {
    ($target:literal $(, $extra:literal)* $(,)?) => {
        concat!(
            "GET ", $target, " HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n",
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Sec-WebSocket-Version: 13\r\n", $($extra, "\r\n",)* "\r\n"
        )
    };
}

const CASES: &[Case] = &[
    Case {
        name: "bearer, RFC 6455 sample key",
        request: upgrade!("/chat", "Authorization: Bearer s3cr3t-T0k"),
        want: Want::Accept("bearer"),
        has: &[
            "HTTP/1.1 101 Switching Protocols\r\n",
            "Upgrade: websocket\r\n",
            "Connection: Upgrade\r\n",
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
        ],
    },
    Case {
        name: "bearer scheme is case-insensitive",
        request: upgrade!("/", "authorization: bEaReR   s3cr3t-T0k"),
        want: Want::Accept("bearer"),
        has: &["101"],
    },
    Case {
        name: "basic token:T",
        // base64("token:s3cr3t-T0k")
        request: upgrade!("/", "Authorization: Basic dG9rZW46czNjcjN0LVQwaw=="),
        want: Want::Accept("basic"),
        has: &["101"],
    },
    Case {
        name: "query token",
        request: upgrade!("/ws?room=1&token=s3cr3t-T0k"),
        want: Want::Accept("query"),
        has: &["101"],
    },
    Case {
        name: "query access_token, percent-encoded",
        request: upgrade!("/ws?access_token=s3cr3t%2DT0k"),
        want: Want::Accept("query"),
        has: &["101"],
    },
    Case {
        name: "cookie among others",
        request: upgrade!("/", "Cookie: theme=dark; token=s3cr3t-T0k; lang=en"),
        want: Want::Accept("cookie"),
        has: &["101"],
    },
    Case {
        name: "subprotocol slot, browser form",
        request: upgrade!("/", "Sec-WebSocket-Protocol: access_token, s3cr3t-T0k"),
        want: Want::Accept("subprotocol"),
        has: &["Sec-WebSocket-Protocol: access_token\r\n"],
    },
    Case {
        name: "subprotocol slot, node ws form",
        request: upgrade!("/", "Sec-WebSocket-Protocol: access_token,s3cr3t-T0k"),
        want: Want::Accept("subprotocol"),
        has: &["Sec-WebSocket-Protocol: access_token\r\n"],
    },
    Case {
        name: "subprotocol slot across repeated headers",
        request: upgrade!(
            "/",
            "Sec-WebSocket-Protocol: chat, access_token",
            "Sec-WebSocket-Protocol: s3cr3t-T0k"
        ),
        want: Want::Accept("subprotocol"),
        has: &["Sec-WebSocket-Protocol: access_token\r\n"],
    },
    Case {
        name: "firefox connection list, mixed-case upgrade token",
        request: concat!(
            "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n",
            "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer s3cr3t-T0k\r\n\r\n"
        ),
        want: Want::Accept("bearer"),
        has: &["Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"],
    },
    Case {
        name: "absolute-form target",
        request: upgrade!("http://example.com/chat?token=s3cr3t-T0k"),
        want: Want::Accept("query"),
        has: &["101"],
    },
    Case {
        name: "empty line before the request line is ignored",
        request: concat!("\r\n", upgrade!("/", "Authorization: Bearer s3cr3t-T0k")),
        want: Want::Accept("bearer"),
        has: &["101"],
    },
    Case {
        name: "no credential: 401 with both challenges",
        request: upgrade!("/chat"),
        want: Want::Reject(401),
        has: &[
            "HTTP/1.1 401 Unauthorized\r\n",
            "WWW-Authenticate: Bearer realm=\"wsgate\"\r\n",
            "WWW-Authenticate: Basic realm=\"wsgate\", charset=\"UTF-8\"\r\n",
            "Connection: close\r\n",
            "Content-Length: 17\r\n",
        ],
    },
    Case {
        name: "wrong bearer: invalid_token",
        request: upgrade!("/chat", "Authorization: Bearer wrong-token"),
        want: Want::Reject(401),
        has: &["WWW-Authenticate: Bearer realm=\"wsgate\", error=\"invalid_token\"\r\n"],
    },
    Case {
        name: "malformed bearer: invalid_token",
        request: upgrade!("/chat", "Authorization: Bearer a b"),
        want: Want::Reject(401),
        has: &["error=\"invalid_token\""],
    },
    Case {
        name: "wrong slot token is not echoed",
        request: upgrade!("/", "Sec-WebSocket-Protocol: access_token, wrong-token"),
        want: Want::Reject(401),
        has: &["error=\"invalid_token\""],
    },
    Case {
        name: "wrong query token",
        request: upgrade!("/?token=wrong-token"),
        want: Want::Reject(401),
        has: &["Connection: close\r\n"],
    },
    Case {
        name: "plain GET: default 426",
        request: "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer s3cr3t-T0k\r\n\r\n",
        want: Want::Reject(426),
        has: &[
            "HTTP/1.1 426 Upgrade Required\r\n",
            "Upgrade: websocket\r\n",
            "Connection: Upgrade, close\r\n",
        ],
    },
    Case {
        name: "health check answered by the decision",
        request: "GET /health HTTP/1.1\r\nHost: h\r\n\r\n",
        want: Want::Reject(200),
        has: &[
            "HTTP/1.1 200 OK\r\n",
            "Content-Length: 3\r\n",
            "\r\n\r\nok\n",
        ],
    },
    Case {
        name: "HEAD gets headers without a body",
        request: "HEAD /health HTTP/1.1\r\nHost: h\r\n\r\n",
        want: Want::Reject(200),
        has: &["Content-Length: 3\r\nConnection: close\r\n\r\n"],
    },
    Case {
        name: "plain POST reaches the decision",
        request: "POST /login HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        want: Want::Reject(426),
        has: &["426"],
    },
    Case {
        name: "HTTP/1.0 plain request without Host",
        request: "GET /health HTTP/1.0\r\n\r\n",
        want: Want::Reject(200),
        has: &["200"],
    },
    Case {
        name: "garbage",
        request: "HELLO\r\n\r\n",
        want: Want::Fail(ProtocolError::MalformedRequestLine),
        has: &["HTTP/1.1 400 Bad Request\r\n", "Connection: close\r\n"],
    },
    Case {
        name: "bad http version",
        request: "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        want: Want::Fail(ProtocolError::MalformedRequestLine),
        has: &["400"],
    },
    Case {
        name: "bare LF",
        request: "GET / HTTP/1.1\nHost: h\n\n",
        want: Want::Fail(ProtocolError::MalformedLineEnding),
        has: &["400"],
    },
    Case {
        name: "stray CR",
        request: "GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n",
        want: Want::Fail(ProtocolError::MalformedLineEnding),
        has: &["400"],
    },
    Case {
        name: "space in header name",
        request: "GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",
        want: Want::Fail(ProtocolError::MalformedHeader),
        has: &["400"],
    },
    Case {
        name: "obsolete line folding",
        request: "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
        want: Want::Fail(ProtocolError::MalformedHeader),
        has: &["400"],
    },
    Case {
        name: "missing Host",
        request: "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        want: Want::Fail(ProtocolError::MissingHost),
        has: &["400", "missing Host header"],
    },
    Case {
        name: "two Host headers",
        request: upgrade!("/", "Host: other.example"),
        want: Want::Fail(ProtocolError::DuplicateHost),
        has: &["400"],
    },
    Case {
        name: "POST upgrade",
        request: concat!(
            "POST /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
        want: Want::Fail(ProtocolError::MethodNotAllowed),
        has: &["HTTP/1.1 405 Method Not Allowed\r\n", "Allow: GET\r\n"],
    },
    Case {
        name: "upgrade over HTTP/1.0",
        request: concat!(
            "GET /chat HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
        want: Want::Fail(ProtocolError::UnsupportedHttpVersion),
        has: &["400"],
    },
    Case {
        name: "no Connection: Upgrade",
        request: concat!(
            "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
        want: Want::Fail(ProtocolError::MissingConnectionUpgrade),
        has: &["400"],
    },
    Case {
        name: "version 8",
        request: concat!(
            "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        ),
        want: Want::Fail(ProtocolError::UnsupportedVersion),
        has: &[
            "HTTP/1.1 426 Upgrade Required\r\n",
            "Upgrade: websocket\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "Connection: Upgrade, close\r\n",
        ],
    },
    Case {
        name: "no version",
        request: concat!(
            "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ),
        want: Want::Fail(ProtocolError::UnsupportedVersion),
        has: &["426", "Sec-WebSocket-Version: 13\r\n"],
    },
    Case {
        name: "no key",
        request: concat!(
            "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ),
        want: Want::Fail(ProtocolError::MissingKey),
        has: &["400"],
    },
    Case {
        name: "two keys",
        request: upgrade!("/", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
        want: Want::Fail(ProtocolError::MissingKey),
        has: &["400"],
    },
    Case {
        name: "key of 15 bytes",
        request: concat!(
            "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
        want: Want::Fail(ProtocolError::InvalidKey),
        has: &["400"],
    },
    Case {
        name: "key not base64",
        request: concat!(
            "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
        want: Want::Fail(ProtocolError::InvalidKey),
        has: &["400"],
    },
    Case {
        name: "upgrade with a body",
        request: upgrade!("/", "Content-Length: 5"),
        want: Want::Fail(ProtocolError::UnexpectedBody),
        has: &["400"],
    },
    Case {
        name: "upgrade with chunked body",
        request: upgrade!("/", "Transfer-Encoding: chunked"),
        want: Want::Fail(ProtocolError::UnexpectedBody),
        has: &["400"],
    },
];

/// The result of feeding a request: what came back, and the bytes written.
#[derive(Debug, PartialEq)]
struct Run {
    result: Result<Option<Summary>, Error>,
    out: Vec<u8>,
}

/// An outcome reduced to comparable parts.
#[derive(Debug, PartialEq)]
enum Summary {
    Accepted {
        data: &'static str,
        subprotocol: Option<String>,
        leftover: Vec<u8>,
    },
    Rejected {
        status: u16,
        leftover: Vec<u8>,
    },
}

impl Summary {
    fn leftover_mut(&mut self) -> &mut Vec<u8> {
        match self {
            Summary::Accepted { leftover, .. } | Summary::Rejected { leftover, .. } => leftover,
        }
    }
}

fn summarize(outcome: Outcome<&'static str>) -> Summary {
    match outcome {
        Outcome::Accepted(a) => Summary::Accepted {
            data: a.data(),
            subprotocol: a.subprotocol().map(str::to_owned),
            leftover: a.leftover().to_vec(),
        },
        Outcome::Rejected(r) => Summary::Rejected {
            status: r.status(),
            leftover: r.leftover().to_vec(),
        },
    }
}

/// Feed `chunks` in turn until the handshake finishes or fails. Chunks after the one
/// that finished it belong to the connection: they are appended to the leftover, so
/// that every split shows the same stream of bytes after the request.
fn feed<'c>(config: &Config, chunks: impl IntoIterator<Item = &'c [u8]>) -> Run {
    let mut hs = ServerHandshake::new(config, Instant::ZERO);
    let mut out = Vec::new();
    let mut result = Ok(None);
    let mut chunks = chunks.into_iter();
    for chunk in chunks.by_ref() {
        result = hs
            .handle_input(chunk, &mut out, decide)
            .map(|o| o.map(summarize));
        if !matches!(result, Ok(None)) {
            break;
        }
    }
    if let Ok(Some(summary)) = &mut result {
        summary.leftover_mut().extend(chunks.flatten());
    }
    Run { result, out }
}

/// The same through `handle_input_deferred` and `PendingHandshake::decide`.
fn feed_deferred<'c>(config: &Config, chunks: impl IntoIterator<Item = &'c [u8]>) -> Run {
    let mut hs = ServerHandshake::new(config, Instant::ZERO);
    let mut out = Vec::new();
    let mut chunks = chunks.into_iter();
    while let Some(chunk) = chunks.next() {
        match hs.handle_input_deferred(chunk, &mut out) {
            Ok(None) => continue,
            Ok(Some(pending)) => {
                let decision = decide(&pending.request());
                let mut result = pending
                    .decide(decision, &mut out)
                    .map(|o| Some(summarize(o)));
                if let Ok(Some(summary)) = &mut result {
                    summary.leftover_mut().extend(chunks.flatten());
                }
                return Run { result, out };
            }
            Err(e) => {
                return Run {
                    result: Err(e),
                    out,
                };
            }
        }
    }
    Run {
        result: Ok(None),
        out,
    }
}

/// Every way the table runs a request must agree with feeding it whole.
fn check_all_splits(config: &Config, bytes: &[u8]) -> Run {
    let whole = feed(config, [bytes]);
    for at in 0..=bytes.len() {
        let split = feed(config, [&bytes[..at], &bytes[at..]]);
        assert_eq!(split, whole, "split at {at}");
    }
    assert_eq!(feed(config, bytes.chunks(1)), whole, "byte by byte");
    assert_eq!(feed_deferred(config, [bytes]), whole, "deferred");
    assert_eq!(
        feed_deferred(config, bytes.chunks(1)),
        whole,
        "deferred, byte by byte"
    );
    whole
}

#[test]
fn table() {
    let config = Config::default();
    for case in CASES {
        let run = check_all_splits(&config, case.request.as_bytes());
        let text = String::from_utf8_lossy(&run.out);
        match (case.want, &run.result) {
            (Want::Accept(carrier), Ok(Some(Summary::Accepted { data, leftover, .. }))) => {
                assert_eq!(*data, carrier, "{}", case.name);
                assert!(leftover.is_empty(), "{}", case.name);
                assert!(
                    text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
                    "{}",
                    case.name
                );
            }
            (Want::Reject(status), Ok(Some(Summary::Rejected { status: got, .. }))) => {
                assert_eq!(*got, status, "{}", case.name);
                assert!(
                    text.starts_with(&format!("HTTP/1.1 {status} ")),
                    "{}: {text}",
                    case.name
                );
            }
            (Want::Fail(err), Err(Error::Protocol(got))) => {
                assert_eq!(*got, err, "{}", case.name);
                assert!(
                    text.starts_with(&format!("HTTP/1.1 {} ", err.status_hint())),
                    "{}: {text}",
                    case.name
                );
            }
            (want, got) => panic!("{}: wanted {want:?}, got {got:?}\n{text}", case.name),
        }
        for needle in case.has {
            assert!(
                text.contains(needle),
                "{}: no {needle:?} in\n{text}",
                case.name
            );
        }
        assert!(text.ends_with('\n'), "{}", case.name);
        assert!(
            !text.contains(TOKEN),
            "{}: response echoes the token",
            case.name
        );
        assert!(
            !text.contains("wrong-token"),
            "{}: response echoes a token",
            case.name
        );
        if !matches!(case.want, Want::Accept(_)) {
            let close = ["Connection: close\r\n", "Connection: Upgrade, close\r\n"];
            assert!(close.iter().any(|c| text.contains(c)), "{}", case.name);
            assert_eq!(
                text.matches("\r\n\r\n").count(),
                1,
                "{}: one head, one body",
                case.name
            );
            let head_only = case.request.starts_with("HEAD");
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap_or_else(|| panic!("{}: no Content-Length", case.name))
                .parse()
                .unwrap();
            assert_eq!(if head_only { 3 } else { body.len() }, len, "{}", case.name);
        }
    }
}

/// A config small enough to hit every cap with short requests.
fn small() -> Config {
    Config::builder()
        .max_request_bytes(256)
        .max_line_bytes(64)
        .max_headers(4)
        .build()
        .unwrap()
}

fn error_of(run: &Run) -> ProtocolError {
    match run.result {
        Err(Error::Protocol(e)) => e,
        ref other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn request_line_over_the_cap_is_414_before_it_ends() {
    let long = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(100));
    let run = check_all_splits(&small(), long.as_bytes());
    assert_eq!(error_of(&run), ProtocolError::RequestLineTooLong);
    assert!(run.out.starts_with(b"HTTP/1.1 414 URI Too Long\r\n"));
    // An unfinished request line is refused as soon as it passes the cap.
    let unfinished = &long.as_bytes()[..70];
    assert_eq!(
        error_of(&feed(&small(), [unfinished])),
        ProtocolError::RequestLineTooLong
    );
}

#[test]
fn request_line_at_the_cap_is_fine() {
    // 64 bytes of request line, CRLF excluded.
    let target = "a".repeat(64 - "GET / HTTP/1.1".len());
    let req = format!("GET /{target} HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(req.find("\r\n"), Some(64));
    let run = check_all_splits(&small(), req.as_bytes());
    assert!(matches!(
        run.result,
        Ok(Some(Summary::Rejected { status: 426, .. }))
    ));
    let one_more = format!("GET /a{target} HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        error_of(&check_all_splits(&small(), one_more.as_bytes())),
        ProtocolError::RequestLineTooLong
    );
}

#[test]
fn header_line_over_the_cap_is_431() {
    let req = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nCookie: {}\r\n\r\n",
        "c".repeat(80)
    );
    let run = check_all_splits(&small(), req.as_bytes());
    assert_eq!(error_of(&run), ProtocolError::HeaderLineTooLong);
    assert!(
        run.out
            .starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    );
}

#[test]
fn too_many_headers_is_431() {
    let at_cap = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert!(matches!(
        check_all_splits(&small(), at_cap.as_bytes()).result,
        Ok(Some(Summary::Rejected { status: 426, .. }))
    ));
    let over = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    let run = check_all_splits(&small(), over.as_bytes());
    assert_eq!(error_of(&run), ProtocolError::TooManyHeaders);
    assert!(run.out.starts_with(b"HTTP/1.1 431 "));
}

#[test]
fn head_over_the_cap_is_431() {
    let headers: String = (0..4)
        .map(|i| format!("X-{i}: {}\r\n", "v".repeat(58)))
        .collect();
    let req = format!("GET / HTTP/1.1\r\n{headers}\r\n");
    assert!(req.len() > 256);
    let run = check_all_splits(&small(), req.as_bytes());
    assert_eq!(error_of(&run), ProtocolError::RequestTooLarge);
    assert!(run.out.starts_with(b"HTTP/1.1 431 "));
}

#[test]
fn a_20_mb_header_line_is_refused_after_the_cap() {
    let mut req = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
    req.resize(20 << 20, b'a');
    let config = Config::default();
    let mut hs = ServerHandshake::new(&config, Instant::ZERO);
    let mut out = Vec::new();
    let err = hs.handle_input(&req, &mut out, decide).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::HeaderLineTooLong));
    // Sticky, and nothing more is written.
    let len = out.len();
    assert_eq!(
        hs.handle_input(b"\r\n\r\n", &mut out, decide).unwrap_err(),
        err
    );
    assert_eq!(out.len(), len);
    // In small pieces it stops at the cap too: the rest is never looked at.
    let mut hs = ServerHandshake::new(&config, Instant::ZERO);
    let mut fed = 0;
    for chunk in req.chunks(1000) {
        fed += chunk.len();
        if hs.handle_input(chunk, &mut out, decide).is_err() {
            break;
        }
    }
    assert!(fed <= config.max_line_bytes() + 1000 + 100, "fed {fed}");
}

#[test]
fn bytes_after_the_request_are_handed_back() {
    let req = upgrade!("/", "Authorization: Bearer s3cr3t-T0k");
    let frames = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"; // masked "Hello"
    let mut bytes = req.as_bytes().to_vec();
    bytes.extend_from_slice(frames);
    let run = check_all_splits(&Config::default(), &bytes);
    match run.result {
        Ok(Some(Summary::Accepted { leftover, .. })) => assert_eq!(leftover, frames),
        other => panic!("{other:?}"),
    }
    // Also when the request fills the buffer and the frames come later.
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let mut out = Vec::new();
    let (a, b) = bytes.split_at(req.len() - 3);
    assert!(hs.handle_input(a, &mut out, decide).unwrap().is_none());
    match hs.handle_input(b, &mut out, decide).unwrap() {
        Some(Outcome::Accepted(acc)) => assert_eq!(acc.into_parts(), ("bearer", frames.to_vec())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_request_body_is_handed_back_to_a_plain_request() {
    let bytes = b"POST /login HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
    let run = check_all_splits(&Config::default(), bytes);
    assert_eq!(
        run.result,
        Ok(Some(Summary::Rejected {
            status: 426,
            leftover: b"{\"a\":1}".to_vec()
        }))
    );
}

#[test]
fn input_after_the_end_is_a_usage_error() {
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let mut out = Vec::new();
    let req = upgrade!("/", "Authorization: Bearer s3cr3t-T0k");
    assert!(matches!(
        hs.handle_input(req.as_bytes(), &mut out, decide),
        Ok(Some(Outcome::Accepted(_)))
    ));
    let len = out.len();
    assert_eq!(
        hs.handle_input(b"more", &mut out, decide).unwrap_err(),
        Error::Usage(UsageError::HandshakeFinished)
    );
    assert_eq!(out.len(), len);
}

#[test]
fn accepting_a_subprotocol_not_offered_is_a_usage_error() {
    let req = upgrade!("/", "Sec-WebSocket-Protocol: chat, superchat");
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let mut out = Vec::new();
    let err = hs
        .handle_input(req.as_bytes(), &mut out, |_| {
            Accept::new(()).subprotocol("graphql").into()
        })
        .unwrap_err();
    assert_eq!(err, Error::Usage(UsageError::SubprotocolNotOffered));
    assert!(
        out.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"),
        "{out:?}"
    );
    // The offered one is echoed.
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    out.clear();
    let outcome = hs
        .handle_input(req.as_bytes(), &mut out, |_| {
            Accept::new(()).subprotocol("superchat").into()
        })
        .unwrap();
    assert!(
        matches!(outcome, Some(Outcome::Accepted(ref a)) if a.subprotocol() == Some("superchat"))
    );
    assert!(String::from_utf8_lossy(&out).contains("\r\nSec-WebSocket-Protocol: superchat\r\n"));
}

#[test]
fn header_injection_through_the_decision_is_refused() {
    let mut out = Vec::new();
    let req = upgrade!("/");
    let err = ServerHandshake::new(&Config::default(), Instant::ZERO)
        .handle_input(req.as_bytes(), &mut out, |_| {
            Accept::new(())
                .header("X-Id", "1\r\nSet-Cookie: evil=1")
                .into()
        })
        .unwrap_err();
    assert_eq!(err, Error::Usage(UsageError::InvalidHeaderValue));
    assert!(!String::from_utf8_lossy(&out).contains("evil"));
    let err = ServerHandshake::new(&Config::default(), Instant::ZERO)
        .handle_input(req.as_bytes(), &mut out, |_| {
            Accept::new(()).header("Sec-WebSocket-Accept", "x").into()
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::Usage(UsageError::ReservedHeader("sec-websocket-accept"))
    );
}

#[test]
fn extra_headers_and_bodies_are_written() {
    let mut out = Vec::new();
    ServerHandshake::new(&Config::default(), Instant::ZERO)
        .handle_input(upgrade!("/").as_bytes(), &mut out, |_| {
            Accept::new(()).header("X-Served-By", "node-1").into()
        })
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("\r\nX-Served-By: node-1\r\n\r\n"), "{text}");

    let mut out = Vec::new();
    ServerHandshake::new(&Config::default(), Instant::ZERO)
        .handle_input(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &mut out, |_| {
            Decision::<()>::reject(
                Response::new(200)
                    .header("Content-Type", "text/html")
                    .header("Set-Cookie", "token=abc; HttpOnly")
                    .body("<p>hi</p>"),
            )
        })
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("Content-Type: text/html\r\n"), "{text}");
    assert!(!text.contains("text/plain"), "{text}");
    assert!(
        text.ends_with("Content-Length: 9\r\nConnection: close\r\n\r\n<p>hi</p>"),
        "{text}"
    );

    let mut out = Vec::new();
    ServerHandshake::new(&Config::default(), Instant::ZERO)
        .handle_input(upgrade!("/").as_bytes(), &mut out, |_| {
            Decision::<()>::reject(Response::forbidden())
        })
        .unwrap();
    assert!(out.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
    assert!(out.ends_with(b"\r\n\r\n403 Forbidden\n"));
}

#[test]
fn the_view_shows_the_request() {
    let req = concat!(
        "GET /chat/room?x=1&name=J%C3%B6rg+M&flag HTTP/1.1\r\n",
        "Host: example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        "Origin: https://example.com\r\n",
        "Sec-WebSocket-Protocol: chat, superchat\r\nsec-websocket-protocol:v2.chat\r\n",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-ext; p=\"a,b\"\r\n",
        "Cookie: a=1; b=\"two\"\r\nCookie: c=3\r\nX-Multi: one\r\nx-multi:  two \r\n\r\n"
    );
    let mut seen = false;
    let mut out = Vec::new();
    ServerHandshake::new(&Config::default(), Instant::ZERO)
        .handle_input(req.as_bytes(), &mut out, |r| {
            seen = true;
            assert!(r.is_upgrade());
            assert_eq!(r.method(), "GET");
            assert_eq!(r.path(), "/chat/room");
            assert_eq!(r.query(), Some("x=1&name=J%C3%B6rg+M&flag"));
            assert_eq!(r.query_param("name").as_deref(), Some("Jörg M"));
            assert_eq!(r.query_param("flag").as_deref(), Some(""));
            assert_eq!(r.query_param("nope"), None);
            let pairs: Vec<_> = r
                .query_pairs()
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(pairs.len(), 3);
            assert_eq!(r.http_minor_version(), 1);
            assert_eq!(r.host(), Some("example.com:8080"));
            assert_eq!(r.origin(), Some("https://example.com"));
            assert_eq!(r.websocket_key(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
            assert_eq!(r.header("HOST"), Some(&b"example.com:8080"[..]));
            assert_eq!(
                r.header_all("x-multi").collect::<Vec<_>>(),
                [&b"one"[..], b"two"]
            );
            assert_eq!(
                r.subprotocols().collect::<Vec<_>>(),
                ["chat", "superchat", "v2.chat"]
            );
            assert!(r.offers_subprotocol("superchat"));
            assert!(!r.offers_subprotocol("Chat"));
            assert_eq!(
                r.extensions().collect::<Vec<_>>(),
                [
                    "permessage-deflate; client_max_window_bits",
                    "x-ext; p=\"a,b\""
                ]
            );
            assert_eq!(
                r.cookies().collect::<Vec<_>>(),
                [("a", "1"), ("b", "two"), ("c", "3")]
            );
            assert_eq!(r.cookie("c"), Some("3"));
            assert_eq!(r.headers().count(), 13);
            Decision::accept(())
        })
        .unwrap();
    assert!(seen);
}

#[test]
fn basic_credentials_are_decoded() {
    let cases: &[(&str, &[u8], &[u8])] = &[
        ("Basic dXNlcjpwYXNz", b"user", b"pass"),
        ("basic dXNlcjpwYXNz", b"user", b"pass"),
        ("Basic dXNlcjo=", b"user", b""),
        ("Basic dXNlcjo", b"user", b""), // padding omitted
        ("Basic OnBhc3M6d29yZA==", b"", b"pass:word"),
        ("Basic w6Q6w7Y=", "ä".as_bytes(), "ö".as_bytes()),
    ];
    for &(value, user, pass) in cases {
        let raw = format!("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: {value}\r\n\r\n");
        let mut out = Vec::new();
        ServerHandshake::new(&Config::default(), Instant::ZERO)
            .handle_input(raw.as_bytes(), &mut out, |r| {
                let got = auth::basic(r).unwrap().unwrap();
                assert_eq!(got.user().expose(), user, "{value}");
                assert_eq!(got.password().expose(), pass, "{value}");
                assert_eq!(auth::bearer(r), Ok(None));
                Decision::<()>::reject(Response::forbidden())
            })
            .unwrap();
    }
    for bad in ["Basic !!!", "Basic dXNlcg==" /* no colon */] {
        let raw = format!("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: {bad}\r\n\r\n");
        let mut out = Vec::new();
        ServerHandshake::new(&Config::default(), Instant::ZERO)
            .handle_input(raw.as_bytes(), &mut out, |r| {
                assert_eq!(
                    auth::basic(r),
                    Err(auth::CredentialError::Malformed),
                    "{bad}"
                );
                Decision::<()>::reject(Response::forbidden())
            })
            .unwrap();
    }
    let raw =
        "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n";
    let mut out = Vec::new();
    ServerHandshake::new(&Config::default(), Instant::ZERO)
        .handle_input(raw.as_bytes(), &mut out, |r| {
            assert_eq!(
                auth::bearer(r),
                Err(auth::CredentialError::DuplicateAuthorization)
            );
            Decision::<()>::reject(Response::forbidden())
        })
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any chunking of a table request gives the same result and the same bytes.
    #[test]
    fn any_chunking_agrees(case in 0..CASES.len(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let bytes = CASES[case].request.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for p in points {
            chunks.push(&bytes[prev..p]);
            prev = p;
        }
        chunks.push(&bytes[prev..]);
        prop_assert_eq!(feed(&small_or_default(case), chunks), feed(&small_or_default(case), [bytes]));
    }

    /// Arbitrary bytes never panic, and whole and byte-by-byte feeding agree.
    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let whole = feed(&small(), [&bytes[..]]);
        prop_assert_eq!(feed(&small(), bytes.chunks(1)), whole);
    }

    /// Mutations of valid requests: still no panic, still agreement.
    #[test]
    fn mutated_requests_agree(case in 0..CASES.len(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = CASES[case].request.as_bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let whole = feed(&Config::default(), [&bytes[..]]);
        prop_assert_eq!(feed(&Config::default(), bytes.chunks(1)), whole);
        prop_assert_eq!(feed_deferred(&Config::default(), bytes.chunks(3)), feed(&Config::default(), [&bytes[..]]));
    }
}

/// Whether our parser accepts `bytes` as a request head (later checks, such as a
/// missing Host, may still refuse it): `None` while it wants more bytes.
fn parses(bytes: &[u8]) -> Option<bool> {
    let mut out = Vec::new();
    match ServerHandshake::new(&Config::default(), Instant::ZERO)
        .handle_input(bytes, &mut out, decide)
    {
        Ok(None) => None,
        Err(Error::Protocol(
            ProtocolError::MalformedRequestLine
            | ProtocolError::MalformedHeader
            | ProtocolError::MalformedLineEnding,
        )) => Some(false),
        Ok(Some(_)) | Err(_) => Some(true),
    }
}

/// Bytes a mutation may write: the ones parsers disagree about if anywhere.
const MUTATION_BYTES: &[u8] = b" :\t\r\x00\x7f(\"/,;=aZ9~-_.?%@";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Differential test against httparse: on CRLF-framed ASCII requests both parsers
    /// agree on whether the head is well-formed.
    #[test]
    fn agrees_with_httparse(
        case in 0..CASES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..MUTATION_BYTES.len(), 0..3u8), 1..4),
    ) {
        let mut bytes = CASES[case].request.as_bytes().to_vec();
        for (at, b, op) in edits {
            let i = at.index(bytes.len());
            let b = MUTATION_BYTES[b];
            match op {
                0 => bytes[i] = b,
                1 => bytes.insert(i, b),
                _ => { bytes.remove(i); }
            }
        }
        // Outside the comparison: bare LF (httparse tolerates it, RFC 9112 allows
        // refusing it) and heads that are not complete.
        let bare_lf = bytes.iter().enumerate().any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'));
        prop_assume!(!bare_lf);
        let Some(ours) = parses(&bytes) else { return Ok(()) };
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let theirs = match httparse::Request::new(&mut headers).parse(&bytes) {
            Ok(httparse::Status::Complete(_)) => Some(true),
            Ok(httparse::Status::Partial) => None,
            Err(_) => Some(false),
        };
        if let Some(theirs) = theirs {
            prop_assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(&bytes));
        }
    }
}

fn small_or_default(case: usize) -> Config {
    if case % 2 == 0 {
        Config::default()
    } else {
        Config::builder().max_headers(8).build().unwrap()
    }
}

#[test]
fn every_case_is_a_fuzz_seed() {
    // The handshake target: lead byte 7 (chunks of 8 bytes), then the request.
    let seeds: Vec<Vec<u8>> = CASES
        .iter()
        .map(|c| [&[7][..], c.request.as_bytes()].concat())
        .collect();
    common::check_seeds("handshake", &seeds);
    let credentials: Vec<Vec<u8>> = [
        &b"Bearer s3cr3t-T0k\xfftheme=dark; token=abc123\xfftoken=q%20v&x=1\xffaccess_token, T0k3n"
            [..],
        b"Basic dG9rZW46czNjcjN0LVQwaw==\xff\xffaccess_token=a%2Bb\xffchat, access_token, x",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    common::check_seeds("credentials", &credentials);
}
