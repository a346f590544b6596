//! The handshake allocates nothing on the heap beyond the caller's output buffer when a
//! request arrives whole: neither for a 401 nor for a 101. A connection whose caller
//! reuses its buffers allocates nothing per message in steady state.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use wsgate::connection::{Event, ServerConnection};
use wsgate::{Config, Decision, Instant, Outcome, Response, ServerHandshake, auth};

/// Counts the allocations made by the current thread while `COUNTING` is set.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: forwards the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout in `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nOrigin: https://example.com\r\nCookie: theme=dark\r\n\r\n";

fn decide(req: &wsgate::UpgradeRequest<'_>) -> Decision<u32> {
    match auth::bearer(req) {
        Ok(Some(t)) if t.ct_eq(b"token") => Decision::accept(7),
        Ok(Some(_)) | Err(_) => {
            Decision::reject(Response::unauthorized_bearer("api").invalid_token())
        }
        Ok(None) => Decision::reject(Response::unauthorized_bearer("api")),
    }
}

#[test]
fn whole_requests_allocate_nothing_but_the_response() {
    let config = Config::default();
    let mut out = Vec::with_capacity(1024);

    let n = allocations(|| {
        let mut hs = ServerHandshake::new(&config, Instant::ZERO);
        let outcome = hs.handle_input(REQUEST, &mut out, decide);
        assert!(matches!(outcome, Ok(Some(Outcome::Rejected(ref r))) if r.status() == 401));
    });
    assert!(out.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
    assert_eq!(n, 0, "the 401 path allocated");

    let mut with_token = REQUEST[..REQUEST.len() - 2].to_vec();
    with_token.extend_from_slice(b"Authorization: Bearer token\r\n\r\n");
    out.clear();
    let n = allocations(|| {
        let mut hs = ServerHandshake::new(&config, Instant::ZERO);
        let outcome = hs.handle_input(&with_token, &mut out, decide);
        assert!(matches!(outcome, Ok(Some(Outcome::Accepted(ref a))) if *a.data() == 7));
    });
    assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert_eq!(n, 0, "the 101 path allocated");

    // The counter does count: a request split in two must be buffered.
    out.clear();
    let n = allocations(|| {
        let mut hs = ServerHandshake::new(&config, Instant::ZERO);
        assert!(matches!(
            hs.handle_input(&REQUEST[..10], &mut out, decide),
            Ok(None)
        ));
        assert!(hs.handle_input(&REQUEST[10..], &mut out, decide).is_ok());
    });
    assert!(n > 0);
}

/// Read `wire` into the connection (4 KiB at most a read) and echo every message while it is
/// lent; `out` is cleared and reused for the output
fn echo_round(conn: &mut ServerConnection<()>, wire: &[u8], out: &mut Vec<u8>) -> usize {
    let mut messages = 0;
    let mut at = 0;
    while at < wire.len() {
        let room = conn.input_buffer();
        let n = room.len().min(4096).min(wire.len() - at);
        room[..n].copy_from_slice(&wire[at..at + n]);
        at += n;
        conn.handle_read(n);
        let (rx, tx, _) = conn.split();
        while let Some(event) = rx.poll_event(tx).unwrap() {
            match event {
                Event::Binary(b) => tx.send_binary(&b).unwrap(),
                Event::Text(t) => tx.send_text(&t).unwrap(),
                other => panic!("unexpected {other:?}"),
            }
            messages += 1;
        }
        out.clear();
        conn.poll_transmit(out);
    }
    messages
}

#[test]
fn a_connection_echoing_in_steady_state_allocates_nothing_per_message() {
    // Text and binary messages of 0 B to 3 KiB, whole frames that straddle reads.
    let wire: Vec<u8> = (0..200usize)
        .flat_map(|i| {
            let len = (i * 397) % 3000;
            if i % 2 == 0 {
                common::frame(true, 2, &vec![i as u8; len])
            } else {
                common::text(&"é".repeat(len / 2))
            }
        })
        .collect();
    let mut conn = ServerConnection::new((), &Config::default(), Instant::ZERO);
    let mut out = Vec::new();
    // The buffers grow to what the traffic needs, then stay.
    for _ in 0..3 {
        assert_eq!(echo_round(&mut conn, &wire, &mut out), 200);
    }
    let mut echoed = 0;
    let n = allocations(|| echoed = echo_round(&mut conn, &wire, &mut out));
    assert_eq!(echoed, 200);
    assert_eq!(n, 0, "allocations for 200 messages in steady state");
    // The counter counts: a connection's first round allocates its buffers.
    let mut fresh = ServerConnection::new((), &Config::default(), Instant::ZERO);
    assert!(
        allocations(|| {
            echo_round(&mut fresh, &wire, &mut Vec::new());
        }) > 0
    );
}
