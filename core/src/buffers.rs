//! Recycled buffers for batch-sized byte strings.
//!
//! The batch processor builds a new batch of a few MiB (the Collector's default 8192 spans of
//! ~500 B is 4.6 MB) many times a second, and each lives only until its export finishes. Handed
//! to the allocator and back every time, such buffers cost fresh page faults on every use and
//! stay resident, freed but not yet returned to the kernel, for the allocator's purge delay —
//! measured on the end-to-end forwarding probe, that garbage was the larger part of the peak
//! resident set. So buffers of at least [`POOLED_MIN`] bytes are kept, up to [`MAX_POOLED`] of
//! them, and the next batch of a similar size reuses one: the resident set follows the batches
//! alive at a time, and their pages are already mapped.
//!
//! The pool is process-wide (a batch may be dropped on another thread than the one that built
//! it) behind a mutex taken once per multi-MiB buffer, which is nothing beside copying it.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

/// Smallest buffer worth recycling: below this the allocator's own size classes do as well.
pub const POOLED_MIN: usize = 256 << 10;

/// Most buffers the pool keeps; more are freed as usual.
pub const MAX_POOLED: usize = 8;

/// Headroom added to a new pooled buffer's capacity, as a fraction (1/8): batches built by the
/// same processor differ by a few percent in size, and a buffer that fits the next one is reused.
const HEADROOM_DIVISOR: usize = 8;

/// Buffers waiting to be reused.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

/// The pool [`crate::Reframer`] builds batches in.
pub(crate) static BATCH_BUFFERS: BufferPool = BufferPool::new();

impl BufferPool {
    /// An empty pool.
    #[must_use]
    pub const fn new() -> Self {
        Self { free: Mutex::new(Vec::new()) }
    }

    /// An empty buffer with room for at least `capacity` bytes: the smallest pooled one that
    /// fits, or a new one.
    #[must_use]
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity < POOLED_MIN {
            return Vec::with_capacity(capacity);
        }
        let reused = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            let best = free
                .iter()
                .enumerate()
                .filter(|(_, buffer)| buffer.capacity() >= capacity)
                .min_by_key(|(_, buffer)| buffer.capacity())
                .map(|(position, _)| position);
            best.map(|position| free.swap_remove(position))
        };
        reused.unwrap_or_else(|| Vec::with_capacity(capacity + capacity / HEADROOM_DIVISOR))
    }

    /// Freezes `buffer` into [`Bytes`] that hand it back to this pool when the last reference is
    /// dropped (small buffers are frozen as usual).
    #[must_use]
    pub fn freeze(&'static self, buffer: Vec<u8>) -> Bytes {
        if buffer.capacity() < POOLED_MIN {
            return Bytes::from(buffer);
        }
        Bytes::from_owner(Pooled { buffer, pool: self })
    }

    /// Buffers waiting in the pool.
    #[must_use]
    pub fn pooled(&self) -> usize {
        self.free.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn give_back(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < MAX_POOLED {
            free.push(buffer);
        }
    }
}

/// The owner of pooled bytes: returns its buffer to the pool when dropped.
struct Pooled {
    buffer: Vec<u8>,
    pool: &'static BufferPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frozen(pool: &'static BufferPool, len: usize, fill: u8) -> Bytes {
        let mut buffer = pool.take(len);
        buffer.resize(len, fill);
        pool.freeze(buffer)
    }

    #[test]
    fn a_dropped_buffer_is_reused_for_the_next_similar_size() {
        static POOL: BufferPool = BufferPool::new();
        let first = frozen(&POOL, 1 << 20, 1);
        let address = first.as_ptr();
        assert_eq!(POOL.pooled(), 0);
        let shared = first.clone();
        drop(first);
        assert_eq!(POOL.pooled(), 0, "a buffer still referenced stays out of the pool");
        drop(shared);
        assert_eq!(POOL.pooled(), 1);
        // A few percent larger still fits the headroom; the contents are the new ones.
        let second = frozen(&POOL, (1 << 20) + (1 << 15), 2);
        assert_eq!(second.as_ptr(), address);
        assert!(second.iter().all(|&byte| byte == 2));
        assert_eq!(POOL.pooled(), 0);
    }

    #[test]
    fn small_and_too_large_requests_get_new_buffers() {
        static POOL: BufferPool = BufferPool::new();
        drop(frozen(&POOL, 1 << 20, 1));
        assert_eq!(POOL.pooled(), 1);
        drop(frozen(&POOL, 1000, 1));
        assert_eq!(POOL.pooled(), 1, "small buffers are not pooled");
        let larger = frozen(&POOL, 4 << 20, 1);
        assert_eq!(POOL.pooled(), 1, "the pooled buffer was too small and stays");
        drop(larger);
        assert_eq!(POOL.pooled(), 2);
    }

    #[test]
    fn the_pool_keeps_at_most_max_pooled_buffers() {
        static POOL: BufferPool = BufferPool::new();
        let alive: Vec<Bytes> = (0..MAX_POOLED + 3).map(|n| frozen(&POOL, POOLED_MIN, n as u8)).collect();
        drop(alive);
        assert_eq!(POOL.pooled(), MAX_POOLED);
    }
}
