//! A test client: builds masked client frames, drives a connection over a chunked
//! byte stream and records owned events, the error and the output
#![allow(dead_code)] // each test file uses a different part

use wsgate::connection::{Event, ServerConnection};
use wsgate::frame::{FrameHeader, OpCode};
use wsgate::{CloseCode, Config, Error, Instant, ProtocolError};

pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: FIN, RSV bits, raw opcode, masked with `key` when given
pub fn raw_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match key {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked client frame with no RSV bits
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(fin, 0, opcode, payload, Some(KEY))
}

pub fn text(s: &str) -> Vec<u8> {
    frame(true, 1, s.as_bytes())
}

pub fn close(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    frame(true, 8, &p)
}

/// An event with owned bytes, for comparing runs
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    TextChunk(Vec<u8>, bool, bool),
    BinaryChunk(Vec<u8>, bool, bool),
    Auth(Vec<u8>, bool),
}

pub fn own(e: &Event<'_>) -> Ev {
    match e {
        Event::Text(t) => Ev::Text(t.as_str().to_string()),
        Event::Binary(b) => Ev::Binary(b.to_vec()),
        Event::Ping(b) => Ev::Ping(b.to_vec()),
        Event::Pong(b) => Ev::Pong(b.to_vec()),
        Event::Close { code, reason } => Ev::Close(code.map(|c| c.0), reason.to_string()),
        Event::TextChunk { data, first, fin } => Ev::TextChunk(data.to_vec(), *first, *fin),
        Event::BinaryChunk { data, first, fin } => Ev::BinaryChunk(data.to_vec(), *first, *fin),
        Event::AuthMessage { message, text } => Ev::Auth(message.expose().to_vec(), *text),
        _ => panic!("unknown event"),
    }
}

/// What a connection made of a byte stream
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub events: Vec<Ev>,
    pub error: Option<ProtocolError>,
    pub out: Vec<u8>,
    pub closed: bool,
}

/// Poll every event now available; false once an error stopped the connection
pub fn drain(conn: &mut ServerConnection<()>, run: &mut Run) -> bool {
    loop {
        match conn.poll_event() {
            Ok(Some(e)) => run.events.push(own(&e)),
            Ok(None) => return true,
            Err(Error::Protocol(e)) => {
                run.error = Some(e);
                // Sticky: the same error again, and no further output.
                assert_eq!(conn.poll_event().unwrap_err(), Error::Protocol(e));
                return false;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// Feed `chunks` one after another, polling after each
pub fn run_chunks<'a>(config: &Config, chunks: impl IntoIterator<Item = &'a [u8]>) -> Run {
    let conn = ServerConnection::new((), config, Instant::ZERO);
    run_conn(conn, chunks)
}

/// Feed `chunks` to `conn` one after another, polling after each
pub fn run_conn<'a>(
    mut conn: ServerConnection<()>,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Run {
    let mut run = Run {
        events: Vec::new(),
        error: None,
        out: Vec::new(),
        closed: false,
    };
    for chunk in chunks {
        conn.handle_input(chunk);
        if !drain(&mut conn, &mut run) {
            break;
        }
        conn.poll_transmit(&mut run.out);
    }
    conn.poll_transmit(&mut run.out);
    run.closed = conn.is_closed();
    run
}

/// The frames in server output: opcode, FIN, payload (server frames are unmasked)
pub fn server_frames(out: &[u8]) -> Vec<(OpCode, bool, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let (h, n) = FrameHeader::parse(&out[at..])
            .unwrap()
            .expect("whole frame");
        assert_eq!(h.mask, None, "server frames are not masked");
        let end = at + n + h.payload_len as usize;
        frames.push((h.opcode, h.fin, out[at + n..end].to_vec()));
        at = end;
    }
    frames
}

/// The code of the close frame ending the server output (1005 for an empty close)
pub fn close_code_sent(out: &[u8]) -> Option<u16> {
    match server_frames(out).last() {
        Some((OpCode::Close, _, p)) if p.len() >= 2 => Some(u16::from_be_bytes([p[0], p[1]])),
        Some((OpCode::Close, _, _)) => Some(CloseCode::NO_STATUS.0),
        _ => None,
    }
}

/// The fuzz seed corpus holds every case of a test table, as
/// `fuzz/seeds/<target>/<FNV-1a hash>`; with `WSGATE_BLESS_SEEDS=1` the missing ones
/// are written instead of failing
pub fn check_seeds(target: &str, seeds: &[Vec<u8>]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let bless = std::env::var_os("WSGATE_BLESS_SEEDS").is_some();
    let mut missing = Vec::new();
    for seed in seeds {
        let hash = seed.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let path = dir.join(format!("{hash:016x}"));
        if std::fs::read(&path).ok().as_ref() != Some(seed) {
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, seed).unwrap();
            } else {
                missing.push(path);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} table cases are not fuzz seeds (run the test with WSGATE_BLESS_SEEDS=1): {missing:?}",
        missing.len()
    );
}
