//! Masking (RFC 6455 §5.3): XOR with a repeating four-byte key

use alloc::vec::Vec;

/// XOR `buf` with `key`, where `buf` starts `offset` bytes into the payload
///
/// Masking twice with the same key and offset gives the original bytes back. The
/// offset lets a payload that arrives in pieces be unmasked piece by piece.
///
/// Works a 64-byte block at a time as eight `u64` XORs, which the compiler turns into
/// vector instructions, then 8 bytes at a time; the last 0-7 bytes one by one. An
/// all-zero key changes nothing and returns at once.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    if key == [0; 4] {
        return;
    }
    let key = key_at(key, offset);
    #[cfg(feature = "std")]
    if buf.len() >= WIDE_MIN {
        // The same loop, compiled for the widest vectors the CPU has.
        return pulp::Arch::new().dispatch(XorBlocks { buf, key });
    }
    xor_blocks(buf, key);
}

/// The shortest payload worth the run-time choice of vector width.
#[cfg(feature = "std")]
const WIDE_MIN: usize = 512;

/// [`xor_blocks`] as an operation to compile for several instruction sets
#[cfg(feature = "std")]
struct XorBlocks<'a> {
    buf: &'a mut [u8],
    key: [u8; 4],
}

#[cfg(feature = "std")]
impl pulp::WithSimd for XorBlocks<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        xor_blocks(self.buf, self.key);
    }
}

/// XOR `buf` with `key` at offset 0: 64-byte blocks as eight `u64` XORs, which the
/// compiler turns into vector instructions, then the rest
#[inline(always)]
fn xor_blocks(buf: &mut [u8], key: [u8; 4]) {
    let mut blocks = buf.chunks_exact_mut(64);
    for block in &mut blocks {
        xor_lanes(block, key);
    }
    // 64 is a multiple of 4: the key phase is the same for the rest.
    mask_short(blocks.into_remainder(), key);
}

/// The key as it applies `offset` bytes into the payload
#[inline(always)]
fn key_at(key: [u8; 4], offset: usize) -> [u8; 4] {
    let shift = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
}

/// [`apply_mask`] at offset 0 for a short `buf` (a few lanes): small enough to inline
/// into a per-frame hot path
#[inline(always)]
pub(crate) fn mask_short(buf: &mut [u8], key: [u8; 4]) {
    let mut lanes = buf.chunks_exact_mut(8);
    for lane in &mut lanes {
        xor_lanes(lane, key);
    }
    // 8 is a multiple of 4 too.
    for (i, byte) in lanes.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

/// XOR every whole 8-byte lane of `buf` with the key
#[inline(always)]
fn xor_lanes(buf: &mut [u8], key: [u8; 4]) {
    let word = key_word(key);
    for lane in buf.chunks_exact_mut(8) {
        let unmasked = xor_word(lane, word);
        lane.copy_from_slice(&unmasked);
    }
}

/// The key twice over, to XOR eight bytes at a time: one load and a shift, where
/// building the word byte by byte costs a dozen instructions, which counts for a
/// 16-byte frame
#[inline(always)]
fn key_word(key: [u8; 4]) -> u64 {
    let half = u64::from(u32::from_ne_bytes(key));
    half | (half << 32)
}

/// An 8-byte `lane` XORed with `word`
#[inline(always)]
fn xor_word(lane: &[u8], word: u64) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(lane);
    (u64::from_ne_bytes(bytes) ^ word).to_ne_bytes()
}

/// The length of the key stream [`extend_unmasked`] XORs with: long enough that the
/// per-block overhead vanishes, short enough to build for every frame.
const KEY_STREAM: usize = 256;

/// Append `src` unmasked to `dst`, where `src` starts `offset` bytes into the payload
///
/// One pass: each byte is read once and written once, already unmasked, where copying
/// and then unmasking in place would write it twice. The XOR runs against a key
/// stream of [`KEY_STREAM`] bytes, which the compiler turns into vector loads.
pub(crate) fn extend_unmasked(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    if src.len() < KEY_STREAM {
        // Too short to pay for building the key stream.
        let start = dst.len();
        dst.extend_from_slice(src);
        apply_mask(&mut dst[start..], key, offset);
        return;
    }
    let key = key_at(key, offset);
    let mut stream = [0u8; KEY_STREAM];
    for k in stream.chunks_exact_mut(4) {
        k.copy_from_slice(&key);
    }
    dst.reserve(src.len());
    // KEY_STREAM is a multiple of 4, so every block starts at the same key phase.
    for block in src.chunks(KEY_STREAM) {
        dst.extend(block.iter().zip(&stream).map(|(b, k)| b ^ k));
    }
}

/// Write `src` unmasked over `dst` (the same length), where `src` starts `offset`
/// bytes into the payload
///
/// [`extend_unmasked`] for room that is already initialized: storing into a slice
/// needs no length update per block, and runs at about the speed of a plain copy.
pub(crate) fn copy_unmasked(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    debug_assert_eq!(dst.len(), src.len());
    let key = key_at(key, offset);
    let word = key_word(key);
    let mut dst_blocks = dst.chunks_exact_mut(64);
    let mut src_blocks = src.chunks_exact(64);
    for (d, s) in (&mut dst_blocks).zip(&mut src_blocks) {
        for (d, s) in d.chunks_exact_mut(8).zip(s.chunks_exact(8)) {
            d.copy_from_slice(&xor_word(s, word));
        }
    }
    // 64 is a multiple of 4: the key phase is the same for the rest.
    let rest = dst_blocks.into_remainder();
    rest.copy_from_slice(src_blocks.remainder());
    mask_short(rest, key);
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
    fn extend_unmasked_equals_copy_then_unmask() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in [
            0,
            1,
            5,
            64,
            KEY_STREAM - 1,
            KEY_STREAM + 3,
            3 * KEY_STREAM + 7,
        ] {
            for offset in 0..4 {
                let src: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
                let mut want = vec![0xEE];
                want.extend_from_slice(&src);
                naive(&mut want[1..], key, offset);
                let mut got = vec![0xEE];
                extend_unmasked(&mut got, &src, key, offset);
                assert_eq!(got, want, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn copy_unmasked_equals_copy_then_unmask() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in [0, 1, 7, 8, 63, 64, 65, 130, 1000] {
            for offset in 0..5 {
                let src: Vec<u8> = (0..len).map(|i| (i * 11 + 5) as u8).collect();
                let mut want = src.clone();
                naive(&mut want, key, offset);
                let mut got = vec![0xEE; len];
                copy_unmasked(&mut got, &src, key, offset);
                assert_eq!(got, want, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn a_zero_key_changes_nothing() {
        let mut buf: Vec<u8> = (0..100).collect();
        apply_mask(&mut buf, [0; 4], 3);
        assert_eq!(buf, (0..100).collect::<Vec<u8>>());
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
