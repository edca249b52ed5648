//! What FFmpeg's decoders may hold in memory: how many threads a decoder of
//! large pictures gets, and a budget all decoders of the process share.
//!
//! Frames vidi keeps are bounded elsewhere ([`super::FrameBound`]); this is
//! about the pictures inside the decoder itself. An 8000x8000 H.264 stream
//! with B-frames took the ffmpeg CLI 0.8 GB on one thread and 1.0 GB on two
//! (its reference and reordering pictures, 96 MB each), and every decoder
//! thread holds pictures of its own.

use std::cell::Cell;
use std::sync::{Condvar, Mutex};

/// Decoded pictures that frame threading may keep in flight, in bytes.
const THREAD_FRAME_BUDGET: u64 = 256 << 20;

/// Picture memory all open decoders of the process share, in bytes: a
/// decoder of very large pictures waits until others have closed. Ordinary
/// videos never wait (a 1080p decoder on 17 threads reserves 75 MB).
const DECODER_BUDGET: u64 = 768 << 20;

/// Pictures a decoder holds besides one per thread: references, reordering
/// delay, the picture being made (measured: 7 for that 8000x8000 stream).
const PICTURES_BESIDES_THREADS: u64 = 7;

/// Bytes of one `w x h` picture as 8-bit 4:2:0, the common case.
fn picture_bytes(w: u32, h: u32) -> u64 {
    (u64::from(w) * u64::from(h) * 3 / 2).max(1)
}

/// FFmpeg's own thread count: one per core and one more, at most 16.
fn ffmpeg_auto_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_add(1).min(16)
}

/// The decoder thread count for `requested` (0: FFmpeg chooses) and `w x h`
/// pictures: FFmpeg's choice, unless that many threads' pictures would pass
/// [`THREAD_FRAME_BUDGET`] (counted at 3 bytes a pixel, for 4:4:4 and 10-bit
/// streams). Threading never changes the decoded pictures.
pub(crate) fn decoder_threads(requested: usize, w: u32, h: u32) -> usize {
    if requested != 0 {
        return requested;
    }
    let affordable = (THREAD_FRAME_BUDGET / (picture_bytes(w, h) * 2)).max(1) as usize;
    if affordable >= ffmpeg_auto_threads() {
        0
    } else {
        affordable
    }
}

static IN_USE: Mutex<u64> = Mutex::new(0);
static RELEASED: Condvar = Condvar::new();

thread_local! {
    /// Permits this thread holds: a thread that holds one never waits for
    /// another (it could only wait for itself).
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// A share of [`DECODER_BUDGET`], held while a decoder is open.
pub(crate) struct DecoderPermit {
    bytes: u64,
}

impl DecoderPermit {
    /// Reserves what a decoder of `w x h` pictures on `threads` threads (0:
    /// FFmpeg's count) holds, waiting while the other open decoders leave
    /// too little; a reservation larger than the budget takes all of it.
    pub(crate) fn acquire(w: u32, h: u32, threads: usize) -> DecoderPermit {
        let threads = if threads == 0 { ffmpeg_auto_threads() } else { threads } as u64;
        let bytes = (picture_bytes(w, h) * (threads + PICTURES_BESIDES_THREADS)).min(DECODER_BUDGET);
        let mut used = IN_USE.lock().unwrap_or_else(|p| p.into_inner());
        if HELD.get() == 0 {
            while *used + bytes > DECODER_BUDGET {
                used = RELEASED.wait(used).unwrap_or_else(|p| p.into_inner());
            }
        }
        *used += bytes;
        HELD.set(HELD.get() + 1);
        DecoderPermit { bytes }
    }
}

impl Drop for DecoderPermit {
    fn drop(&mut self) {
        let mut used = IN_USE.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(self.bytes);
        HELD.set(HELD.get().saturating_sub(1));
        RELEASED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_pictures_get_fewer_decoder_threads() {
        assert_eq!(decoder_threads(3, 8000, 8000), 3, "an explicit count is kept");
        assert_eq!(decoder_threads(0, 1920, 1080), 0, "FFmpeg chooses for ordinary sizes");
        assert_eq!(decoder_threads(0, 8000, 8000), 1, "one 192 MB picture in the budget");
        assert_eq!(decoder_threads(0, 16384, 16384), 1);
        let t = decoder_threads(0, 4000, 4000);
        assert!(t == 5 || (t == 0 && ffmpeg_auto_threads() <= 5), "five 48 MB pictures in the budget, not {t}");
    }

    #[test]
    fn decoders_of_huge_pictures_take_turns() {
        let first = DecoderPermit::acquire(8000, 8000, 1);
        // The same thread is never made to wait for itself.
        drop(DecoderPermit::acquire(8000, 8000, 1));
        let (tx, rx) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            let p = DecoderPermit::acquire(8000, 8000, 1);
            tx.send(()).unwrap();
            drop(p);
        });
        assert!(rx.recv_timeout(std::time::Duration::from_millis(300)).is_err(), "a second huge decoder did not wait");
        drop(first);
        assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok(), "the waiting decoder never started");
        other.join().unwrap();
        // Ordinary decoders open side by side.
        let a = DecoderPermit::acquire(1920, 1080, 17);
        let b = std::thread::spawn(|| drop(DecoderPermit::acquire(1920, 1080, 17)));
        b.join().unwrap();
        drop(a);
    }
}
