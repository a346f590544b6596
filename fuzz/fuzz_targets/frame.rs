//! The frame codec alone: parsing any header never panics; what parses re-encodes to a
//! header that parses the same; masking is an involution at any offset; close payloads
//! are judged without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgate::frame::{FrameHeader, apply_mask, parse_close_payload};

fuzz_target!(|data: &[u8]| {
    match FrameHeader::parse(data) {
        Ok(Some((header, len))) => {
            assert!(len <= data.len() && len <= wsgate::frame::MAX_HEADER_LEN);
            let (bytes, n) = header.encode();
            assert_eq!(n, header.encoded_len());
            assert!(n <= len, "the shortest form is never longer");
            assert_eq!(FrameHeader::parse(&bytes[..n]), Ok(Some((header, n))));
            let payload = &data[len..];
            let key = header.mask.unwrap_or([1, 2, 3, 4]);
            let offset = usize::from(data[0]);
            let mut buf = payload.to_vec();
            apply_mask(&mut buf, key, offset);
            // Piecewise with offsets equals whole.
            let mut pieces = payload.to_vec();
            let cut = pieces.len() / 3;
            apply_mask(&mut pieces[..cut], key, offset);
            apply_mask(&mut pieces[cut..], key, offset + cut);
            assert_eq!(pieces, buf);
            apply_mask(&mut buf, key, offset);
            assert_eq!(buf, payload);
            let _ = parse_close_payload(&payload[..payload.len().min(125)]);
        }
        Ok(None) => assert!(data.len() < wsgate::frame::MAX_HEADER_LEN),
        Err(e) => assert_eq!(e.close_code().0, 1002),
    }
});
