//! The handshake allocates nothing on the heap beyond the caller's output buffer when a
//! request arrives whole: neither for a 401 nor for a 101.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use wsgate::Instant;
use wsgate::{Config, Decision, Outcome, Response, ServerHandshake, auth};

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
