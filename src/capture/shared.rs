//! Payloads that stay in the buffer their packet was read into.
//!
//! A replay sends each recorded payload from the reader's buffer: the payload is a
//! range of that buffer, which it shares (the buffer lives until its last payload is
//! dropped), so a bulk capture is played without copying its bytes once more.

use std::ops::{Deref, Range};
use std::sync::Arc;

use crate::capture::decode::Payload;

/// A buffer of whole packets as read from a capture, shared by the payloads cut from
/// it.
pub type Chunk = Arc<Vec<u8>>;

/// Payload bytes that live in a `Chunk`, or in a buffer of their own.
#[derive(Debug, Clone, Default)]
pub struct SharedPayload {
    chunk: Chunk,
    range: Range<usize>,
}

impl SharedPayload {
    /// Bytes of their own (a copy of `bytes`).
    pub fn copied(bytes: &[u8]) -> SharedPayload {
        SharedPayload {
            chunk: Arc::new(bytes.to_vec()),
            range: 0..bytes.len(),
        }
    }

    /// `bytes`, shared with `chunk` if they are part of it, else copied.
    fn within(chunk: &Chunk, bytes: &[u8]) -> SharedPayload {
        let base = chunk.as_ptr() as usize;
        let start = (bytes.as_ptr() as usize).wrapping_sub(base);
        match start.checked_add(bytes.len()) {
            Some(end) if start <= chunk.len() && end <= chunk.len() => SharedPayload {
                chunk: Arc::clone(chunk),
                range: start..end,
            },
            _ => SharedPayload::copied(bytes),
        }
    }
}

impl Deref for SharedPayload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.chunk[self.range.clone()]
    }
}

impl PartialEq for SharedPayload {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SharedPayload {}

impl Payload for SharedPayload {
    fn captured(bytes: &[u8], chunk: Option<&Chunk>) -> Self {
        match chunk {
            Some(chunk) => SharedPayload::within(chunk, bytes),
            None => SharedPayload::copied(bytes),
        }
    }

    fn len(&self) -> usize {
        self.range.len()
    }

    fn past(self, skip: usize) -> Self {
        let start = self.range.start + skip.min(self.range.len());
        SharedPayload {
            chunk: self.chunk,
            range: start..self.range.end,
        }
    }

    /// A payload that waits behind a hole gets bytes of its own, so that it does not
    /// keep a whole chunk of the file in memory while it waits.
    fn detached(self) -> Self {
        if self.range.len() == self.chunk.len() {
            self
        } else {
            SharedPayload::copied(&self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_of_the_chunk_are_shared_and_others_copied() {
        let chunk: Chunk = Arc::new(b"headerpayload".to_vec());
        let shared = SharedPayload::captured(&chunk[6..], Some(&chunk));
        assert_eq!(&*shared, b"payload");
        assert!(Arc::ptr_eq(&shared.chunk, &chunk));
        let other = b"payload".to_vec();
        let copied = SharedPayload::captured(&other, Some(&chunk));
        assert!(!Arc::ptr_eq(&copied.chunk, &chunk));
        assert_eq!(copied, shared);
        assert_eq!(&*shared.clone().past(3), b"load");
        let detached = shared.past(3).detached();
        assert!(!Arc::ptr_eq(&detached.chunk, &chunk));
        assert_eq!(&*detached, b"load");
    }
}
