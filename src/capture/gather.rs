//! The capture file's write buffer, which never copies a payload.
//!
//! A capture is mostly payload: each packet is a few dozen bytes of record and
//! headers, then up to 64 KiB of bytes the relay read. A `BufWriter` would copy every
//! payload into its buffer before the kernel copies it again into the page cache.
//! Here small pieces (records, headers, pure ACKs, short payloads) are gathered in a
//! buffer as usual, but a long piece goes to the kernel as it is, in one `writev`
//! together with the buffered bytes before it: one system call per big payload, and
//! no copy in user space.
//!
//! Every write takes all the bytes it is given (or fails), so a caller's `write_all`
//! is a single call. After a failure the buffer is dropped: the file is broken (a
//! reader cannot resync after a partly written packet), so nothing more is written.

use std::io::{self, IoSlice, Write};

/// Small pieces are gathered up to this many bytes before they are written.
pub const BUFFER: usize = 256 * 1024;

/// A piece at least this long is not copied: below it, copying costs less than the
/// system call a piece of its own would.
pub const PASS_THROUGH: usize = 16 * 1024;

/// How many pieces one `writev` gets at most here (far below Linux's `IOV_MAX`).
const GROUP: usize = 16;

/// A buffered writer that hands long pieces to `W::write_vectored` uncopied.
pub struct GatherWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> GatherWriter<W> {
    pub fn new(inner: W) -> Self {
        Self::with_capacity(BUFFER, inner)
    }

    pub fn with_capacity(capacity: usize, inner: W) -> Self {
        GatherWriter {
            inner,
            buf: Vec::with_capacity(capacity),
        }
    }

    /// The bytes gathered and not written yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Writes `parts` after the buffered bytes, in as few `writev`s as the pieces
    /// allow: the buffer and up to `GROUP - 1` pieces in each.
    fn write_through(&mut self, parts: &[IoSlice]) -> io::Result<()> {
        let mut with_buffer = !self.buf.is_empty();
        for group in parts.chunks(GROUP - 1) {
            let mut slices = [IoSlice::new(&[]); GROUP];
            let mut k = 0;
            if with_buffer {
                slices[0] = IoSlice::new(&self.buf);
                k = 1;
                with_buffer = false;
            }
            slices[k..k + group.len()].copy_from_slice(group);
            write_all_vectored(&mut self.inner, &mut slices[..k + group.len()])?;
        }
        if with_buffer {
            write_all_vectored(&mut self.inner, &mut [IoSlice::new(&self.buf)])?;
        }
        Ok(())
    }

    /// Writes the buffered bytes.
    fn drain(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = write_all_vectored(&mut self.inner, &mut [IoSlice::new(&self.buf)]);
        self.buf.clear();
        result
    }
}

impl<W: Write> Write for GatherWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(bytes)])
    }

    /// Takes every piece: small ones at the front go into the buffer while it has
    /// room, and if any are left (a long one, or the buffer is full), they are
    /// written with the buffer in front of them.
    fn write_vectored(&mut self, parts: &[IoSlice]) -> io::Result<usize> {
        let total = parts.iter().map(|part| part.len()).sum();
        let mut rest = parts;
        while let Some((first, tail)) = rest.split_first() {
            let room = self.buf.capacity() - self.buf.len();
            if first.len() >= PASS_THROUGH || first.len() > room {
                break;
            }
            self.buf.extend_from_slice(first);
            rest = tail;
        }
        if rest.is_empty() {
            return Ok(total);
        }
        let result = self.write_through(rest);
        self.buf.clear();
        result.map(|()| total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for GatherWriter<W> {
    /// What is still buffered is written, as `BufWriter` does; an error here has
    /// nobody to go to (every caller flushes before it lets go of the file).
    fn drop(&mut self) {
        let _ = self.drain();
    }
}

/// `Write::write_all_vectored`, which the standard library has not stabilised: one
/// `writev` after another until every byte is out (a pipe or a signal may take
/// fewer bytes than offered).
pub fn write_all_vectored(out: &mut impl Write, mut slices: &mut [IoSlice]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `limit` bytes per call, from the first slices only, and
    /// remembers each call's size: a pipe that is nearly full.
    struct Stingy {
        got: Vec<u8>,
        limit: usize,
        calls: Vec<usize>,
    }

    impl Write for Stingy {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(bytes)])
        }

        fn write_vectored(&mut self, slices: &[IoSlice]) -> io::Result<usize> {
            let mut n = 0;
            for slice in slices {
                let take = slice.len().min(self.limit - n);
                self.got.extend_from_slice(&slice[..take]);
                n += take;
                if n == self.limit {
                    break;
                }
            }
            self.calls.push(n);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn stingy(limit: usize) -> Stingy {
        Stingy {
            got: Vec::new(),
            limit,
            calls: Vec::new(),
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn small_pieces_wait_in_the_buffer_until_a_flush() {
        let mut out = GatherWriter::with_capacity(1024, stingy(usize::MAX));
        out.write_all(b"record").unwrap();
        out.write_all(b"headers").unwrap();
        assert!(out.get_ref().calls.is_empty());
        assert_eq!(out.buffered(), b"recordheaders");
        out.flush().unwrap();
        assert_eq!(out.get_ref().got, b"recordheaders");
        assert_eq!(out.get_ref().calls, [13]);
    }

    #[test]
    fn a_long_piece_goes_out_with_the_buffer_in_one_call() {
        let payload = pattern(PASS_THROUGH * 3, 7);
        let mut out = GatherWriter::new(stingy(usize::MAX));
        out.write_all(b"head").unwrap();
        out.write_all(&payload).unwrap();
        out.write_all(b"tail").unwrap();
        // One writev of the buffered head and the payload; the tail waits.
        assert_eq!(out.get_ref().calls, [4 + payload.len()]);
        out.flush().unwrap();
        let mut want = b"head".to_vec();
        want.extend_from_slice(&payload);
        want.extend_from_slice(b"tail");
        assert_eq!(out.get_ref().got, want);
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        // Every limit cuts the slices somewhere else: inside the buffer, at its
        // end, inside a payload, between two.
        for limit in [1, 3, 4, 5, 1000, PASS_THROUGH - 1, PASS_THROUGH + 5] {
            let mut out = GatherWriter::with_capacity(64, stingy(limit));
            let mut want = Vec::new();
            for (i, len) in [4, 40, PASS_THROUGH * 2, 9, 70, 3, PASS_THROUGH]
                .into_iter()
                .enumerate()
            {
                let piece = pattern(len, i as u8);
                let parts = [IoSlice::new(b"<>"), IoSlice::new(&piece)];
                let mut parts = parts;
                write_all_vectored(&mut out, &mut parts).unwrap();
                want.extend_from_slice(b"<>");
                want.extend_from_slice(&piece);
            }
            out.flush().unwrap();
            assert_eq!(out.get_ref().got, want, "limit {limit}");
            assert!(out.get_ref().calls.iter().all(|&n| n <= limit));
        }
    }

    #[test]
    fn many_pieces_in_one_call_keep_their_order() {
        let pieces: Vec<Vec<u8>> = (0..40)
            .map(|i| pattern(if i % 3 == 0 { PASS_THROUGH } else { 10 }, i))
            .collect();
        let slices: Vec<IoSlice> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        let mut out = GatherWriter::with_capacity(32, stingy(usize::MAX));
        out.write_all(b"first").unwrap();
        assert_eq!(
            out.write_vectored(&slices).unwrap(),
            pieces.iter().map(Vec::len).sum::<usize>()
        );
        out.flush().unwrap();
        let want: Vec<u8> = std::iter::once(&b"first".to_vec())
            .chain(&pieces)
            .flatten()
            .copied()
            .collect();
        assert_eq!(out.get_ref().got, want);
    }

    #[test]
    fn a_writer_that_takes_nothing_is_an_error() {
        let mut out = GatherWriter::with_capacity(8, stingy(0));
        let error = out.write_all(&pattern(PASS_THROUGH, 1)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
        // The broken file's bytes are dropped, not written again later.
        assert!(out.buffered().is_empty());
    }
}
