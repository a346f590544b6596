//! The client role of the receiving and sending sides (the client handshake builds on
//! them): masking by role, keys from the caller's source

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use super::send::{Auth, Role};
use super::timer::Timers;
use super::{Event, MessageKind, Receiver, Sender};
use crate::config::Config;
use crate::error::{Error, ProtocolError, UsageError};
use crate::frame::{CloseCode, FrameHeader, OpCode, apply_mask};
use crate::time::Instant;

/// A client's two sides, whose mask keys count up from 1
fn client() -> (Receiver, Sender) {
    let config = Config::default();
    let mut next = 0u32;
    let source = move || {
        next += 1;
        next.to_be_bytes()
    };
    (
        Receiver::new(&config, false),
        Sender::new(
            Role::Client(Box::new(source)),
            Timers::new(&config, Instant::ZERO, false),
            Auth::Done,
        ),
    )
}

/// Every frame in `out`: header and unmasked payload
fn frames(out: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let (h, n) = FrameHeader::parse(&out[at..]).unwrap().unwrap();
        let mut payload = out[at + n..at + n + h.payload_len as usize].to_vec();
        apply_mask(&mut payload, h.mask.unwrap_or([0; 4]), 0);
        at += n + payload.len();
        frames.push((h, payload));
    }
    frames
}

#[test]
fn a_client_masks_every_frame_with_a_fresh_key_from_its_source() {
    let (_, mut tx) = client();
    tx.send_text("hello").unwrap();
    tx.send_binary_owned(vec![9u8; 4096]).unwrap();
    tx.send_ping(b"p").unwrap();
    tx.close(Instant::ZERO, CloseCode::MANDATORY_EXTENSION, "")
        .unwrap();
    let mut out = Vec::new();
    tx.poll_transmit(&mut out);
    let frames = frames(&out);
    let keys: Vec<_> = frames.iter().map(|(h, _)| h.mask).collect();
    assert_eq!(
        keys,
        [1u32, 2, 3, 4].map(|k| Some(k.to_be_bytes())).to_vec()
    );
    assert_eq!(frames[0].1, b"hello");
    assert_eq!(frames[1].1, vec![9u8; 4096]);
    assert_eq!(frames[3].1, 1010u16.to_be_bytes());
    // A client's payloads are masked, so they cannot go out as the caller's slice.
    let (_, mut tx) = client();
    assert_eq!(
        tx.frame_head(MessageKind::Binary, 10, true),
        Err(Error::Usage(UsageError::MaskRequired))
    );
}

#[test]
fn a_client_takes_unmasked_frames_and_refuses_masked_ones() {
    let (mut rx, mut tx) = client();
    let mut wire = Vec::new();
    FrameHeader::new(true, OpCode::Text, None, 2).write(&mut wire);
    wire.extend_from_slice(b"hi");
    let big = vec![5u8; 70_000];
    FrameHeader::new(true, OpCode::Binary, None, big.len() as u64).write(&mut wire);
    wire.extend_from_slice(&big);
    for piece in wire.chunks(1000) {
        rx.handle_input(piece, &mut tx);
    }
    assert!(matches!(rx.poll_event(&mut tx), Ok(Some(Event::Text(t))) if t == "hi"));
    assert!(matches!(rx.poll_event(&mut tx), Ok(Some(Event::Binary(b))) if *b == big[..]));
    assert_eq!(rx.poll_event(&mut tx).unwrap(), None);

    let mut masked = Vec::new();
    FrameHeader::new(true, OpCode::Text, Some([1, 2, 3, 4]), 0).write(&mut masked);
    rx.handle_input(&masked, &mut tx);
    let err = Error::Protocol(ProtocolError::MaskedFrame);
    assert_eq!(rx.poll_event(&mut tx).unwrap_err(), err);
    assert_eq!(rx.poll_event(&mut tx).unwrap_err(), err);
    let mut out = Vec::new();
    tx.poll_transmit(&mut out);
    let frames = frames(&out);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].0.mask.is_some(), "the client's close is masked");
    assert_eq!(frames[0].1[..2], 1002u16.to_be_bytes());
}

#[test]
fn connections_and_their_sides_move_between_threads() {
    fn send<T: Send + 'static>() {}
    send::<super::ServerConnection<alloc::string::String>>();
    send::<Receiver>();
    send::<Sender>();
    send::<crate::handshake::PendingHandshake>();
    send::<crate::Accepted<u32>>();
}
