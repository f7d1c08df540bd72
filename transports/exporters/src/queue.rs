//! The sending queue's bookkeeping: a bounded FIFO of batches measured by a [`QueueSizer`], as a
//! pure data structure. The exporter's I/O loop wraps it with wake-ups; this part decides only
//! what fits.
//!
//! Rules:
//! - a batch is accepted when its size fits in the room left;
//! - a batch larger than the whole capacity is accepted when the queue is empty (and its capacity
//!   is not zero), so that one big batch cannot wedge the pipeline (it is still sent whole);
//! - with the queue disabled (`sending_queue.enabled: false`) the capacity is the number of idle
//!   senders, in batches: a batch is accepted only if a sender can take it at once.
//!
//! Refusing returns the batch to the caller: nothing is dropped here.

use std::collections::VecDeque;

use spanpipe_core::SpanBatch;

use crate::settings::QueueSizer;

/// A bounded FIFO of batches.
#[derive(Debug)]
pub struct BoundedQueue {
    batches: VecDeque<SpanBatch>,
    sizer: QueueSizer,
    capacity: u64,
    used: u64,
}

impl BoundedQueue {
    /// An empty queue holding up to `capacity` units of `sizer`.
    #[must_use]
    pub fn new(sizer: QueueSizer, capacity: u64) -> Self {
        Self { batches: VecDeque::new(), sizer, capacity, used: 0 }
    }

    /// The size of `batch` in this queue's unit.
    #[must_use]
    pub fn size_of(&self, batch: &SpanBatch) -> u64 {
        match self.sizer {
            QueueSizer::Requests => 1,
            QueueSizer::Items => batch.len() as u64,
            QueueSizer::Bytes => batch.encoded_len() as u64,
        }
    }

    /// Whether `batch` would be accepted now.
    #[must_use]
    pub fn has_room_for(&self, batch: &SpanBatch) -> bool {
        let fits = self.used + self.size_of(batch) <= self.capacity;
        fits || (self.batches.is_empty() && self.capacity > 0)
    }

    /// Appends `batch`, or gives it back when it does not fit.
    ///
    /// # Errors
    /// The batch itself, untouched, when the queue is full.
    pub fn try_push(&mut self, batch: SpanBatch) -> Result<(), SpanBatch> {
        if !self.has_room_for(&batch) {
            return Err(batch);
        }
        self.used += self.size_of(&batch);
        self.batches.push_back(batch);
        Ok(())
    }

    /// Takes the oldest batch.
    pub fn pop(&mut self) -> Option<SpanBatch> {
        let batch = self.batches.pop_front()?;
        self.used -= self.size_of(&batch);
        Some(batch)
    }

    /// Batches waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// Whether no batch waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Units in use.
    #[must_use]
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Changes the capacity (for a disabled queue: the number of idle senders). Batches already
    /// queued stay.
    pub fn set_capacity(&mut self, capacity: u64) {
        self.capacity = capacity;
    }

    /// Takes every waiting batch, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = SpanBatch> + '_ {
        self.used = 0;
        self.batches.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;

    fn batch(spans: usize, seed: u64) -> SpanBatch {
        SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(spans, seed))).unwrap()
    }

    #[test]
    fn refuses_when_full_and_gives_the_batch_back() {
        let mut queue = BoundedQueue::new(QueueSizer::Requests, 2);
        queue.try_push(batch(1, 1)).unwrap();
        queue.try_push(batch(1, 2)).unwrap();
        let refused = queue.try_push(batch(3, 3)).unwrap_err();
        assert_eq!(refused.len(), 3);
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn measures_items_and_bytes() {
        let big = batch(5, 1);
        let mut by_items = BoundedQueue::new(QueueSizer::Items, 7);
        by_items.try_push(big.clone()).unwrap();
        assert_eq!(by_items.used(), 5);
        assert!(by_items.try_push(batch(3, 2)).is_err());
        assert!(by_items.try_push(batch(2, 3)).is_ok());

        let mut by_bytes = BoundedQueue::new(QueueSizer::Bytes, big.encoded_len() as u64);
        by_bytes.try_push(big.clone()).unwrap();
        assert!(by_bytes.try_push(batch(1, 4)).is_err());
        assert_eq!(by_bytes.pop().unwrap().encoded_len(), big.encoded_len());
        assert_eq!(by_bytes.used(), 0);
    }

    #[test]
    fn an_oversized_batch_is_accepted_into_an_empty_queue_only() {
        let mut queue = BoundedQueue::new(QueueSizer::Items, 2);
        queue.try_push(batch(10, 1)).unwrap();
        assert!(queue.try_push(batch(1, 2)).is_err());
    }

    #[test]
    fn zero_capacity_accepts_nothing_even_when_empty() {
        let mut queue = BoundedQueue::new(QueueSizer::Items, 0);
        assert!(queue.try_push(batch(1, 1)).is_err());
        queue.set_capacity(1);
        queue.try_push(batch(4, 1)).unwrap();
        queue.set_capacity(0);
        assert!(queue.try_push(batch(1, 2)).is_err());
    }

    proptest! {
        /// Vector's batcher property, for the queue: never over its limit (but for one oversized
        /// batch alone), nothing lost, nothing duplicated, order kept.
        #[test]
        fn never_over_capacity_nothing_lost_nothing_duplicated(
            capacity in 1u64..40,
            operations in prop::collection::vec((any::<bool>(), 1usize..12), 0..80),
        ) {
            let mut queue = BoundedQueue::new(QueueSizer::Items, capacity);
            let (mut accepted, mut popped) = (Vec::new(), Vec::new());
            for (seed, (push, spans)) in operations.into_iter().enumerate() {
                if push {
                    let candidate = batch(spans, seed as u64);
                    let id = candidate.bytes().clone();
                    match queue.try_push(candidate) {
                        Ok(()) => accepted.push(id),
                        Err(back) => prop_assert_eq!(back.bytes(), &id),
                    }
                } else if let Some(batch) = queue.pop() {
                    popped.push(batch.bytes().clone());
                }
                prop_assert!(queue.used() <= capacity || queue.len() == 1);
                prop_assert_eq!(queue.used(), queue.batches.iter().map(|b| b.len() as u64).sum::<u64>());
            }
            popped.extend(queue.drain().map(|batch| batch.bytes().clone()));
            prop_assert_eq!(popped, accepted);
        }
    }
}
