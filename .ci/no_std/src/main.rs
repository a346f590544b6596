//! wsgate without `std`: a handshake and an echoed frame, on the C library's `malloc`
//! and `main`.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};

use wsgate::Instant;
use wsgate::frame::{FrameHeader, OpCode, apply_mask};
use wsgate::{Config, Decision, Event, Outcome, ServerConnection, ServerHandshake};

#[link(name = "c")]
unsafe extern "C" {
    fn aligned_alloc(align: usize, size: usize) -> *mut u8;
    fn free(ptr: *mut u8);
    fn abort() -> !;
}

struct CAlloc;

// SAFETY: aligned_alloc/free are the C library's; the size is rounded up to a multiple
// of the alignment, as C11 requires.
unsafe impl GlobalAlloc for CAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align().max(core::mem::size_of::<usize>());
        let size = layout.size().div_ceil(align) * align;
        unsafe { aligned_alloc(align, size.max(align)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { free(ptr) }
    }
}

#[global_allocator]
static ALLOC: CAlloc = CAlloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort takes no arguments and never returns.
    unsafe { abort() }
}

/// The prebuilt `core` names the unwinding personality routine even when panics
/// abort; nothing calls it.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\n\
Upgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// 0 when the handshake and the echo came out right, else which step failed.
fn check() -> i32 {
    let config = Config::default();
    let mut out = Vec::new();
    let mut handshake = ServerHandshake::new(&config, Instant::ZERO);
    let accepted = match handshake.handle_input(REQUEST, &mut out, |_| Decision::accept(7u32)) {
        Ok(Some(Outcome::Accepted(accepted))) => accepted,
        _ => return 1,
    };
    let response = core::str::from_utf8(&out).unwrap_or("");
    if !response.starts_with("HTTP/1.1 101 ")
        || !response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")
    {
        return 2;
    }

    let mut conn = ServerConnection::from_accepted(accepted, &config, Instant::ZERO);
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Text,
        mask: Some(key),
        payload_len: 5,
    };
    let mut frame = Vec::new();
    header.write(&mut frame);
    let mut payload = *b"Hello";
    apply_mask(&mut payload, key, 0);
    frame.extend_from_slice(&payload);
    conn.handle_input(&frame);
    // Answered while it is lent: the receiver and the sender are apart.
    let (rx, tx, data) = conn.split();
    let echoed = match rx.poll_event(tx) {
        Ok(Some(Event::Text(text))) => text == "Hello" && tx.send_text(&text).is_ok(),
        _ => return 4,
    };
    if !echoed || *data != 7 {
        return 4;
    }
    out.clear();
    conn.poll_transmit(&mut out);
    if out != [0x81, 5, b'H', b'e', b'l', b'l', b'o'] {
        return 5;
    }
    0
}

#[unsafe(no_mangle)]
extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    check()
}
