//! The user-space buffer of one direction: a byte ring, as the original's circular
//! buffer.
//!
//! The reader thread reads from the producer straight into the ring's free space; the
//! writer thread writes to the consumer straight from its filled space; the bytes are
//! never copied in between, and nothing is allocated after the ring itself. At most
//! `-b` bytes wait in it for the consumer, whatever the size of each read: a read asks
//! the socket for no more than the free space, so the backlog climbs to `-b` exactly
//! when the consumer stalls, as "B is N bytes behind" says.
//!
//! ```text
//!   stream position:  ... written ....... filled ........ written + -b
//!                          │ waits for the │ free: the reader │
//!                          │ consumer      │ reads into this  │
//! ```
//!
//! Three positions in the direction's byte stream say who owns which bytes: `filled`
//! (the reader has read up to here), `written` (the writer has written up to here)
//! and, when the logger shows the bytes, `shown` (the logger is done up to here).
//! Each is advanced by one side only and read by the others, so the ring needs no
//! lock: bytes in `[written, filled)` belong to the writer, bytes past `filled` to
//! the reader. A side that runs out of work waits on a one-slot wake-up channel that
//! the other side pokes after each advance.
//!
//! Why positions and not a channel of spans: a bounded channel of spans caps the
//! backlog at its capacity times the read size (a thousand 1-byte reads would stop a
//! 64 KiB buffer at 1000 bytes), and one big enough for any `-b` would cost memory in
//! proportion to it. The positions carry any number of reads in three words.
//!
//! The logger reads each chunk after the reader has read it, while the writer may
//! already have written it, so a byte's space is free again only when both are done
//! with it. The logger's lag must not eat into `-b` (the backlog is about the
//! consumer, not about us), so a watched ring has a little more memory than `-b`:
//! `SLACK` bytes at most, in which the reader may run ahead of a slow logger. Without
//! a logger watching the chunks (`-q`, no files) the ring is exactly `-b` bytes.

use std::cell::UnsafeCell;
use std::fmt;
use std::io::{self, Read};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, bounded, select};

/// No single read asks for more than this, so that the logger gets the bytes of a
/// big transfer in pieces it can show as they come.
const MAX_READ: usize = 64 * 1024;

/// Where in a page the ring starts: half-way.
///
/// The kernel copies a read's bytes from socket buffers whose data mostly starts at
/// page boundaries; a destination at the same offset in its page makes that copy
/// twice as slow on the machines measured (the stores and the loads of the copy
/// alias in the processor's store buffer). A ring from `malloc` lands anywhere, but
/// one bigger than the allocator's mmap threshold (128 KiB: any watched ring, and
/// `-b` beyond that) lands exactly on a page boundary: `-q -b 1048576` took 0.86 to
/// 1.16 s of CPU per GiB so, 0.54 to 0.58 s half a page in. See
/// docs/ARCHITECTURE.md, "The ring's place in memory".
const PAGE_OFFSET: usize = 2048;
const PAGE: usize = 4096;

/// How far the reader may run ahead of a logger still showing earlier chunks.
/// (Under Miri, which checks every byte it copies, a smaller one keeps the tests
/// short; the logic is the same.)
const SLACK: usize = if cfg!(miri) { 4096 } else { 4 * MAX_READ };

/// The memory of a ring, and the positions that say who may touch which part of it.
struct Ring {
    /// The ring's bytes starting at `skew`, zeroed (so a huge `-b` costs address
    /// space, not memory, until it is used), and one page more for the skew.
    bytes: Box<[UnsafeCell<u8>]>,
    /// Where the ring starts in `bytes` (see `PAGE_OFFSET`).
    skew: usize,
    /// `-b`: at most this many bytes wait for the consumer.
    limit: u64,
    /// Whether the logger holds chunks (and so `shown` counts).
    watched: bool,
    filled: AtomicU64,
    written: AtomicU64,
    shown: AtomicU64,
    /// Chunks let go before those ahead of them (see `release`).
    early: Mutex<Vec<(u64, u64)>>,
    /// Set when the reader is done: no more bytes will be filled.
    reader_done: AtomicBool,
    /// Set when the writer is gone: nobody will free space any more.
    writer_done: AtomicBool,
    /// Pokes the writer: `filled` moved, or the reader is done.
    to_writer: (Sender<()>, Receiver<()>),
    /// Pokes the reader: space was freed, or the writer is gone.
    to_reader: (Sender<()>, Receiver<()>),
}

// SAFETY: the ring's bytes are shared between threads through `UnsafeCell`, but each
// byte has one writer at a time: the reader only writes into the free space (past
// `filled`, before every position that still holds bytes), and nobody else touches
// the free space. Readers of filled bytes (the writer, the logger's chunks) only read
// them, and only between the `Release` store that published them and their own
// advance past them, after which the reader may reuse them. See `Filler::free`.
unsafe impl Sync for Ring {}

impl Ring {
    fn cap(&self) -> usize {
        self.bytes.len() - PAGE
    }

    /// A raw pointer to the byte at stream position `at`, from which the bytes up to
    /// the ring's end may be reached. (Taken from the whole slice, not from that one
    /// byte's cell, so that it may reach the bytes after it.)
    fn at(&self, at: u64) -> *mut u8 {
        let index = (at % self.cap() as u64) as usize;
        let base = UnsafeCell::raw_get(self.bytes.as_ptr());
        // SAFETY: `index` is less than `cap` and `skew` less than `PAGE`, and the
        // allocation is `cap + PAGE` long, so the result stays within it.
        unsafe { base.add(self.skew + index) }
    }

    /// The bytes at `[at, at + len)`, which must not wrap.
    ///
    /// # Safety
    /// Nobody may write them while the returned slice lives: they must be filled and
    /// not yet free for the reader.
    unsafe fn filled(&self, at: u64, len: usize) -> &[u8] {
        // SAFETY: in bounds (the caller does not wrap), and not written meanwhile
        // (the caller's promise).
        unsafe { std::slice::from_raw_parts(self.at(at), len) }
    }

    /// Wakes the other side if it waits. One token is enough to wake, and a token
    /// already there will do: the waiter takes it, then looks again.
    ///
    /// The fence pairs with the one in `Ring::settle`, taken by the waiter after a
    /// token and before it looks. Without the two, a poke that finds an older token
    /// still there could be lost: the waiter takes the older token, looks, and may
    /// not yet see the position we moved before this poke (the older token orders
    /// only what came before *it*), then sleeps with no token left. With them, either
    /// the waiter's look comes after our fence and sees the move, or it comes before,
    /// and then the token it took was gone before our `try_send`, which succeeds.
    /// (Miri found this lost wake-up; `threads_move_a_stream_through_a_tiny_ring_intact`
    /// under `cargo +nightly miri test` checks it.)
    fn poke(side: &(Sender<()>, Receiver<()>)) {
        fence(Ordering::SeqCst);
        let _ = side.0.try_send(());
    }

    /// Before a side looks at the positions: see `poke`.
    fn settle() {
        fence(Ordering::SeqCst);
    }

    /// The logger is done with `[start, start + len)`. The logger lets chunks go in
    /// order; one let go before those ahead of it (which nothing here does, but
    /// nothing prevents either) waits in `early` until they are, since `shown` may
    /// only pass bytes that nobody looks at any more.
    fn release(&self, start: u64, len: usize) {
        let end = start + len as u64;
        {
            let mut early = self
                .early
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Only moved under this lock.
            let mut upto = self.shown.load(Ordering::Relaxed);
            if upto != start {
                early.push((start, end));
                return;
            }
            upto = end;
            while let Some(i) = early.iter().position(|&(s, _)| s == upto) {
                upto = early.swap_remove(i).1;
            }
            self.shown.store(upto, Ordering::Release);
        }
        Ring::poke(&self.to_reader);
    }
}

/// A direction's buffer of `limit` bytes (`-b`): its reader's end and its writer's.
/// `watched`: the logger is given every chunk the reader reads (see `Filler::show`).
pub fn user_space_buffer(limit: usize, watched: bool) -> (Filler, Drainer) {
    let limit = limit.max(1);
    let cap = if watched { limit + SLACK } else { limit };
    // Zeroed memory comes from the system as untouched pages, so this is cheap for
    // any size: RSS grows only as far as the stream really reaches into the ring.
    let bytes: Box<[u8]> = vec![0; cap + PAGE].into_boxed_slice();
    let skew = (PAGE + PAGE_OFFSET - bytes.as_ptr().addr() % PAGE) % PAGE;
    // SAFETY: `UnsafeCell<u8>` has the same layout as `u8` (it is `repr(transparent)`),
    // so a boxed slice of one is a boxed slice of the other, allocated the same way.
    let bytes = unsafe { Box::from_raw(Box::into_raw(bytes) as *mut [UnsafeCell<u8>]) };
    let ring = Arc::new(Ring {
        bytes,
        skew,
        limit: limit as u64,
        watched,
        filled: AtomicU64::new(0),
        written: AtomicU64::new(0),
        shown: AtomicU64::new(0),
        early: Mutex::new(Vec::new()),
        reader_done: AtomicBool::new(false),
        writer_done: AtomicBool::new(false),
        to_writer: bounded(1),
        to_reader: bounded(1),
    });
    let filler = Filler {
        ring: ring.clone(),
        filled: 0,
        fresh: 0,
    };
    (filler, Drainer { ring })
}

/// The reader's end of a ring: it reads into the free space, then hands the bytes on.
pub struct Filler {
    ring: Arc<Ring>,
    /// Our copy of `ring.filled` (we are the only one to move it).
    filled: u64,
    /// Bytes read by the last `read_from`, not yet committed.
    fresh: usize,
}

impl Filler {
    /// Free space: what `-b` allows beyond the bytes waiting for the consumer, and
    /// what the memory allows beyond the bytes somebody still reads.
    fn free(&self) -> usize {
        let written = self.ring.written.load(Ordering::Acquire);
        let waiting = self.filled - written;
        let mut in_use = waiting;
        if self.ring.watched {
            let shown = self.ring.shown.load(Ordering::Acquire);
            in_use = self.filled - written.min(shown);
        }
        let by_limit = self.ring.limit.saturating_sub(waiting);
        let by_memory = (self.ring.cap() as u64).saturating_sub(in_use);
        by_limit.min(by_memory) as usize
    }

    /// Waits until there is free space. False when `stop` is closed while waiting, or
    /// the writer is gone (it failed: nothing read now could be delivered).
    pub fn wait_for_space(&self, stop: &Receiver<()>) -> bool {
        loop {
            Ring::settle();
            if self.ring.writer_done.load(Ordering::Acquire) {
                return false;
            }
            if self.free() > 0 {
                return true;
            }
            select! {
                recv(self.ring.to_reader.1) -> _ => {},
                recv(stop) -> _ => return false,
            }
        }
    }

    /// One `read(2)` into the free space (call `wait_for_space` first); Ok(0) is
    /// end-of-stream. The bytes read are ours until `commit`.
    pub fn read_from(&mut self, mut producer: impl Read) -> io::Result<usize> {
        let start = (self.filled % self.ring.cap() as u64) as usize;
        let room = self.free().min(self.ring.cap() - start).min(MAX_READ);
        // SAFETY: `[filled, filled + room)` is free space, which only we touch (see
        // `free`): the writer stops at `filled`, and everything before
        // `filled + room - cap` is written and shown. It does not wrap.
        let space = unsafe { std::slice::from_raw_parts_mut(self.ring.at(self.filled), room) };
        let n = producer.read(space)?;
        self.fresh = n.min(room);
        Ok(self.fresh)
    }

    /// Whether nothing waits for the writer: everything committed is written.
    pub fn is_idle(&self) -> bool {
        self.ring.written.load(Ordering::Acquire) == self.filled
    }

    /// The bytes of the last read, for delivering them ourselves.
    pub fn fresh(&self) -> &[u8] {
        // SAFETY: read by us and not yet committed: nobody else touches them, and we
        // do not write them while this borrow of `self` lives.
        unsafe { self.ring.filled(self.filled, self.fresh) }
    }

    /// The bytes of the last read as a chunk for the logger: their space stays taken
    /// until the chunk is dropped. Only for a watched ring.
    pub fn show(&self) -> Chunk {
        debug_assert!(self.ring.watched, "a chunk of a ring nobody watches");
        Chunk {
            ring: self.ring.clone(),
            start: self.filled,
            len: self.fresh,
        }
    }

    /// Hands the last read on: its first `delivered` bytes were written to the
    /// consumer already (only when idle, see `Reader` in `relay`), the rest is for
    /// the writer.
    pub fn commit(&mut self, delivered: usize) {
        let n = std::mem::take(&mut self.fresh);
        debug_assert!(delivered <= n);
        if delivered > 0 {
            debug_assert!(self.is_idle(), "delivered past bytes the writer holds");
            // The writer does not move `written` while it has nothing to write, and
            // it has nothing until `filled` moves below.
            self.ring
                .written
                .store(self.filled + delivered as u64, Ordering::Release);
        }
        self.filled += n as u64;
        self.ring.filled.store(self.filled, Ordering::Release);
        if delivered < n {
            Ring::poke(&self.ring.to_writer);
        }
    }

    /// Where the stream stands: every byte read and committed so far.
    pub fn position(&self) -> u64 {
        self.filled
    }
}

impl Drop for Filler {
    /// The reader hung up: the writer writes what is left, then ends.
    fn drop(&mut self) {
        self.ring.reader_done.store(true, Ordering::Release);
        Ring::poke(&self.ring.to_writer);
    }
}

/// The writer's end of a ring: it writes out the filled bytes and frees their space.
pub struct Drainer {
    ring: Arc<Ring>,
}

impl Drainer {
    /// Waits for bytes to write, up to stream position `until` at most, and gives
    /// the first contiguous run of them. `None` once the reader has hung up and every
    /// byte it read is written (or `until` is reached).
    pub fn pending(&self, until: Option<u64>) -> Option<&[u8]> {
        loop {
            Ring::settle();
            let done = self.ring.reader_done.load(Ordering::Acquire);
            let filled = self.ring.filled.load(Ordering::Acquire);
            let written = self.ring.written.load(Ordering::Acquire);
            let end = until.map_or(filled, |until| until.min(filled));
            if end > written {
                let start = (written % self.ring.cap() as u64) as usize;
                let len = ((end - written) as usize).min(self.ring.cap() - start);
                // SAFETY: `[written, filled)` is filled, and the reader leaves it
                // alone until we advance `written`, which `consumed` does with `self`
                // borrowed mutably: not while this slice lives. It does not wrap.
                return Some(unsafe { self.ring.filled(written, len) });
            }
            if done || until.is_some_and(|until| written >= until) {
                return None;
            }
            let _ = self.ring.to_writer.1.recv();
        }
    }

    /// `n` more bytes were written to the consumer: their space is free again.
    pub fn consumed(&mut self, n: usize) {
        self.ring.written.fetch_add(n as u64, Ordering::AcqRel);
        Ring::poke(&self.ring.to_reader);
    }

    /// Every byte written so far.
    pub fn position(&self) -> u64 {
        self.ring.written.load(Ordering::Acquire)
    }
}

impl Drop for Drainer {
    /// The writer is gone: the reader must not wait for space.
    fn drop(&mut self) {
        self.ring.writer_done.store(true, Ordering::Release);
        Ring::poke(&self.ring.to_reader);
    }
}

/// Bytes read from one side, lent to the logger: their space in the ring is free
/// again once the chunk is dropped.
pub struct Chunk {
    ring: Arc<Ring>,
    start: u64,
    len: usize,
}

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the reader filled a chunk's bytes before it made the chunk (and sent
        // it to the logger, which orders the two), and their space is not free for it
        // again until the chunk is dropped: `free` counts `shown`.
        unsafe { self.ring.filled(self.start, self.len) }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.ring.release(self.start, self.len);
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chunk({} bytes at {})", self.len, self.start)
    }
}

#[cfg(test)]
impl Chunk {
    /// A chunk of these bytes, in a ring of its own: for tests of what shows chunks.
    pub fn of(bytes: &[u8]) -> Chunk {
        let (mut filler, _drainer) = user_space_buffer(bytes.len(), true);
        filler.read_from(bytes).expect("a read from a slice");
        let chunk = filler.show();
        filler.commit(0);
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn never() -> Receiver<()> {
        crossbeam_channel::never()
    }

    #[test]
    fn the_ring_starts_half_way_into_a_page_whatever_its_size() {
        for (limit, watched) in [(1, false), (2048, true), (65536, false), (1 << 20, true)] {
            let (filler, _drainer) = user_space_buffer(limit, watched);
            let ring = &filler.ring;
            assert_eq!(ring.at(0).addr() % PAGE, PAGE_OFFSET, "-b {limit}");
            // The whole ring is inside the allocation, wherever the skew put it.
            assert!(ring.skew + ring.cap() <= ring.bytes.len(), "-b {limit}");
            assert_eq!(ring.at(ring.cap() as u64), ring.at(0), "-b {limit}");
        }
    }

    /// Reads one message into the ring and commits it, as the relay's reader does.
    fn read(filler: &mut Filler, data: &[u8]) -> usize {
        assert!(filler.wait_for_space(&never()));
        let n = filler.read_from(data).unwrap();
        filler.commit(0);
        n
    }

    fn closed() -> Receiver<()> {
        let (tx, rx) = bounded::<()>(0);
        drop(tx);
        rx
    }

    #[test]
    fn a_read_never_asks_for_more_than_the_free_space() {
        let (mut filler, mut drainer) = user_space_buffer(10, false);
        assert_eq!(read(&mut filler, &[1; 64]), 10);
        // No space left: waiting must block, and a closed stop ends it.
        assert!(!filler.wait_for_space(&closed()));
        assert_eq!(drainer.pending(None), Some(&[1; 10][..]));
        drainer.consumed(10);
        assert_eq!(read(&mut filler, &[2; 64]), 10);
        assert_eq!(drainer.pending(None), Some(&[2; 10][..]));
    }

    #[test]
    fn small_reads_fill_the_buffer_to_the_byte() {
        // (Under Miri, only the small ones: it checks every byte.)
        let limits: &[usize] = if cfg!(miri) {
            &[1, 7, 100]
        } else {
            &[1, 7, 100, 2048, 65536]
        };
        for &limit in limits {
            let (mut filler, _drainer) = user_space_buffer(limit, false);
            let mut held = 0;
            while filler.free() > 0 {
                held += read(&mut filler, &[9; 3]);
            }
            assert_eq!(held, limit);
        }
    }

    #[test]
    fn freed_space_is_reused_across_the_wrap() {
        let (mut filler, mut drainer) = user_space_buffer(10, false);
        assert_eq!(read(&mut filler, b"abcdefg"), 7);
        assert_eq!(drainer.pending(None), Some(&b"abcdefg"[..]));
        drainer.consumed(5);
        // 3 free at the end, then 5 at the start: two reads, the first up to the end.
        assert_eq!(read(&mut filler, b"hijklmnop"), 3);
        assert_eq!(read(&mut filler, b"klmnop"), 5);
        assert_eq!(filler.free(), 0);
        assert_eq!(drainer.pending(None), Some(&b"fghij"[..]));
        drainer.consumed(5);
        assert_eq!(drainer.pending(None), Some(&b"klmno"[..]));
    }

    #[test]
    fn a_watched_ring_keeps_bytes_until_the_logger_is_done() {
        let limit = 4096;
        let (mut filler, mut drainer) = user_space_buffer(limit, true);
        assert!(filler.wait_for_space(&never()));
        filler.read_from(&[1; 4096][..]).unwrap();
        let chunk = filler.show();
        filler.commit(0);
        drainer.consumed(limit);
        // Written, so -b allows more, and the slack holds it while the logger still
        // looks at the first chunk: until the slack is used up too.
        let mut held = 0;
        while filler.free() > 0 {
            assert!(filler.wait_for_space(&never()));
            held += filler.read_from(&[2; 4096][..]).unwrap();
            let shown = filler.show();
            filler.commit(0);
            drainer.consumed((filler.position() - drainer.position()) as usize);
            drop(shown);
        }
        assert_eq!(held, SLACK);
        assert_eq!(&chunk[..], &[1; 4096][..]);
        drop(chunk);
        assert_eq!(filler.free(), limit);
    }

    #[test]
    fn chunks_let_go_out_of_order_free_space_in_order() {
        let (mut filler, mut drainer) = user_space_buffer(2, true);
        let mut chunks = Vec::new();
        for byte in [b"a", b"b", b"c", b"d"] {
            assert!(filler.wait_for_space(&never()));
            filler.read_from(&byte[..]).unwrap();
            chunks.push(filler.show());
            filler.commit(0);
            drainer.consumed(1);
        }
        let shown = |filler: &Filler| filler.ring.shown.load(Ordering::Acquire);
        let first = chunks.remove(0);
        drop(chunks);
        assert_eq!(shown(&filler), 0, "the first chunk still holds its byte");
        drop(first);
        assert_eq!(shown(&filler), 4);
    }

    #[test]
    fn the_reader_delivers_itself_only_what_it_commits_as_delivered() {
        let (mut filler, mut drainer) = user_space_buffer(8, false);
        assert!(filler.wait_for_space(&never()));
        filler.read_from(&b"12345"[..]).unwrap();
        assert!(filler.is_idle());
        assert_eq!(filler.fresh(), b"12345");
        filler.commit(3);
        assert_eq!(drainer.pending(None), Some(&b"45"[..]));
        drainer.consumed(2);
        assert!(filler.is_idle());
        assert_eq!(drainer.position(), 5);
    }

    #[test]
    fn the_writer_ends_when_the_reader_hangs_up_and_all_is_written() {
        let (mut filler, mut drainer) = user_space_buffer(16, false);
        read(&mut filler, b"last");
        drop(filler);
        assert_eq!(drainer.pending(None), Some(&b"last"[..]));
        drainer.consumed(4);
        assert_eq!(drainer.pending(None), None);
    }

    #[test]
    fn the_reader_stops_waiting_when_the_writer_is_gone() {
        let (mut filler, drainer) = user_space_buffer(1, false);
        read(&mut filler, b"x");
        drop(drainer);
        assert!(!filler.wait_for_space(&never()));
    }

    #[test]
    fn pending_stops_at_a_given_position() {
        let (mut filler, mut drainer) = user_space_buffer(16, false);
        read(&mut filler, b"0123456789");
        assert_eq!(drainer.pending(Some(4)), Some(&b"0123"[..]));
        drainer.consumed(4);
        assert_eq!(drainer.pending(Some(4)), None);
    }

    #[test]
    fn threads_move_a_stream_through_a_tiny_ring_intact() {
        // Miri checks every access, slowly: a shorter stream is enough for it.
        let len = if cfg!(miri) { 2_000 } else { 20_000 };
        let data: Vec<u8> = (0..len).map(|i: u32| (i * 7 % 251) as u8).collect();
        for watched in [false, true] {
            let (mut filler, mut drainer) = user_space_buffer(5, watched);
            let sent = data.clone();
            let reader = thread::spawn(move || {
                let mut rest = &sent[..];
                let mut shown = Vec::new();
                while !rest.is_empty() {
                    assert!(filler.wait_for_space(&never()));
                    let take = rest.len().min(3);
                    let n = filler.read_from(&rest[..take]).unwrap();
                    if watched {
                        shown.push(filler.show());
                    }
                    filler.commit(0);
                    rest = &rest[n..];
                    // The logger lets go of chunks a little behind the reader.
                    if shown.len() > 2 {
                        shown.remove(0);
                    }
                }
            });
            let mut got = Vec::new();
            while let Some(bytes) = drainer.pending(None) {
                let n = bytes.len().min(4);
                got.extend_from_slice(&bytes[..n]);
                drainer.consumed(n);
            }
            reader.join().unwrap();
            assert_eq!(got, data);
        }
    }
}
