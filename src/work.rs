//! A count of the bytes the state machines handle, each time counted: copied, moved,
//! scanned, unmasked or checked
//!
//! Tests bound it (linear in the input, whatever its split) with the
//! `work-counters` feature, which the crate's own tests turn on. Without the feature
//! it is nothing: no field, no additions.

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Work {
    #[cfg(feature = "work-counters")]
    bytes: u64,
}

impl Work {
    /// Count `n` more bytes
    #[inline(always)]
    pub(crate) fn add(&mut self, n: u64) {
        #[cfg(feature = "work-counters")]
        {
            self.bytes += n;
        }
        #[cfg(not(feature = "work-counters"))]
        let _ = n;
    }

    #[cfg(feature = "work-counters")]
    pub(crate) fn bytes(self) -> u64 {
        self.bytes
    }
}
