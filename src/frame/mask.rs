//! Masking (RFC 6455 §5.3): XOR with a repeating four-byte key

/// XOR `buf` with `key`, where `buf` starts `offset` bytes into the payload
///
/// Masking twice with the same key and offset gives the original bytes back. The
/// offset lets a payload that arrives in pieces be unmasked piece by piece.
///
/// Works a 64-byte block at a time as eight `u64` XORs, which the compiler turns into
/// vector instructions; the ragged end is done byte by byte.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let mut blocks = buf.chunks_exact_mut(64);
    if blocks.len() > 0 {
        let [a, b, c, d] = key;
        let word = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
        for block in &mut blocks {
            for lane in block.chunks_exact_mut(8) {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(lane);
                lane.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
            }
        }
    }
    // 64 is a multiple of 4, so the key phase is unchanged for the rest.
    for (i, byte) in blocks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_the_byte_at_a_time_definition() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in [0, 1, 3, 4, 7, 8, 63, 64, 65, 127, 128, 200, 1000] {
            for offset in 0..8 {
                let src: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = src.clone();
                let mut slow = src.clone();
                apply_mask(&mut fast, key, offset);
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn rfc_example() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d
        let mut masked = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut masked, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&masked, b"Hello");
    }

    #[test]
    fn pieces_with_offsets_equal_the_whole() {
        let key = [9, 8, 7, 6];
        let src: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut whole = src.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = src.clone();
        let mut at = 0;
        for step in [1, 2, 5, 64, 100, 128] {
            apply_mask(&mut pieces[at..at + step], key, at);
            at += step;
        }
        apply_mask(&mut pieces[at..], key, at);
        assert_eq!(whole, pieces);
    }
}
