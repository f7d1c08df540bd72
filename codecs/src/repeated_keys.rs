//! Attribute keys given more than once in one list, and which of their entries count.
//!
//! OTLP requires the keys of one attribute list (a resource's, a span's, an event's, a key-value
//! list's) to be unique. The formats the decoders translate from do not: a JSON object may repeat
//! a member, a protobuf map may repeat an entry, a Jaeger tag list is only a list, and clients
//! that keep tags in a list (jaeger-client-node's `setTag`, for one) send such spans. The
//! OpenTelemetry Collector reads those tags into Go maps, so the **last** value of a key counts.
//! The decoders here do the same, without making every list pay for the rare one that needs it:
//! - A list's keys go through a [`KeyTable`]: each key's 64-bit hash is looked up and added, a
//!   dozen instructions or so a key, with no clearing between lists. A decoder that meets the
//!   keys one by one on its first pass gives them to a [`RepeatWatch`] there (Zipkin); one that
//!   has them in a slice when it writes asks [`KeyTable::last_of_each`] then (Jaeger). Where each
//!   decoder does it is what cost least there, measured: the check folded into the Jaeger
//!   reader's walk over a tag changed how the compiler laid that walk out and cost more than the
//!   check itself.
//! - Only when two hashes agree does [`Superseded::of`] compare the keys themselves and find
//!   exactly which entries a later entry with the same key replaces. Those are skipped, so the
//!   surviving value sits where the last entry of its key stood. Every other list is written as
//!   before: from the slice itself ([`KeyTable::last_of_each`]), through a bit mask of the
//!   decoder's own into which [`Superseded::first_64`] is merged once per list (Zipkin), or
//!   asking [`Superseded::contains`] of each entry, a test of a flag kept in a register.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;

/// Open-addressing table of the hashes of the keys of the list being checked, reused from list
/// to list. Each slot holds a hash whose low 16 bits are replaced by the stamp of the list that
/// wrote it, so a slot of an earlier list reads as empty: starting a list takes one increment,
/// not a clear of the table (which happens once every 65,535 lists).
#[derive(Clone, Debug)]
pub struct KeyTable {
    slots: Box<[u64; KeyTable::SLOTS]>,
    /// The stamp of the current list; never 0, which marks the slots of a new table.
    stamp: u16,
}

impl Default for KeyTable {
    fn default() -> Self {
        Self { slots: Box::new([0; Self::SLOTS]), stamp: 0 }
    }
}

thread_local! {
    /// The table of the last [`KeyTable::with`] on this thread, kept for the next one.
    static THREAD_TABLE: Cell<Option<KeyTable>> = const { Cell::new(None) };
}

impl KeyTable {
    /// 2 KiB of slots, for lists of a few dozen keys.
    const SLOTS: usize = 256;
    /// A key that finds this many slots in a row taken gives up and counts as a repeat, so that a
    /// list longer than the table fills it up (or a hostile one crowds it) costs bounded work per
    /// key, and [`Superseded::of`] (linear in the list's length) decides. With the table half
    /// full, a key goes this far in the order of one time in a few hundred.
    const MAX_PROBES: usize = 8;
    const STAMP_BITS: u64 = 0xFFFF;

    /// Runs `body` with this thread's table, which it keeps for the next call (a call within
    /// `body` gets a table of its own).
    pub fn with<R>(body: impl FnOnce(&mut KeyTable) -> R) -> R {
        let mut table = THREAD_TABLE.take().unwrap_or_default();
        let result = body(&mut table);
        THREAD_TABLE.set(Some(table));
        result
    }

    /// Which entries of a list a later entry with the same key replaces. `keys` walks the list's
    /// keys each time it is called: once, and twice more when two keys' hashes agree.
    #[inline]
    pub fn superseded<'k, K: Iterator<Item = &'k [u8]>>(&mut self, keys: impl Fn() -> K) -> Superseded {
        if self.may_repeat(keys()) {
            Superseded::of(keys)
        } else {
            Superseded::default()
        }
    }

    /// `entries` without those a later entry with the same key replaces: the slice itself when no
    /// key repeats (nearly always: then the caller's loop over it is what it would be without
    /// this), else a copy of the survivors, in order. A list of one entry is not looked at.
    #[inline]
    pub fn last_of_each<'s, 'k, T: Clone>(&mut self, entries: &'s [T], key: impl Fn(&T) -> &'k [u8]) -> Cow<'s, [T]>
    where
        's: 'k,
    {
        if entries.len() > 1 && self.may_repeat(entries.iter().map(&key)) {
            Cow::Owned(keep_last_of_each(entries, key))
        } else {
            Cow::Borrowed(entries)
        }
    }

    /// Whether two of `keys` may be the same key (see [`RepeatWatch`]).
    fn may_repeat<'k>(&mut self, keys: impl Iterator<Item = &'k [u8]>) -> bool {
        let mut watch = self.watch();
        for key in keys {
            watch.see(key);
            if watch.may_repeat {
                return true;
            }
        }
        false
    }

    /// Starts a list, whose keys are then given to the watch one by one: for a decoder that
    /// meets them one by one anyway.
    #[inline]
    pub fn watch(&mut self) -> RepeatWatch<'_> {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.slots.fill(0);
            self.stamp = 1;
        }
        RepeatWatch { slots: &mut self.slots, stamp: u64::from(self.stamp), may_repeat: false }
    }
}

/// The keys of one list going through a [`KeyTable`] ([`KeyTable::watch`]): says whether one of
/// them may repeat an earlier one. Never wrong when it says no; wrong when it says yes only for
/// two keys whose 48-bit hashes agree, or a key that finds [`KeyTable::MAX_PROBES`] slots taken,
/// which [`Superseded::of`] then tells apart.
#[derive(Debug)]
pub struct RepeatWatch<'t> {
    slots: &'t mut [u64; KeyTable::SLOTS],
    /// The list's stamp.
    stamp: u64,
    may_repeat: bool,
}

impl RepeatWatch<'_> {
    /// Takes note of the list's next key.
    #[inline]
    pub fn see(&mut self, key: &[u8]) {
        let hash = hash(key);
        let entry = hash & !KeyTable::STAMP_BITS | self.stamp;
        let slot = (hash >> 56) as usize;
        if self.slots[slot] & KeyTable::STAMP_BITS != self.stamp {
            self.slots[slot] = entry;
        } else if probe(self.slots, entry, slot) {
            self.may_repeat = true;
        }
    }

    /// Whether a key seen so far may repeat an earlier one.
    #[inline]
    #[must_use]
    pub fn may_repeat(&self) -> bool {
        self.may_repeat
    }
}

/// The rest of [`RepeatWatch::see`] for a key whose own slot is taken (about one key in 27 of a
/// list of 20): whether the key is already there (its hash is), or else it goes to the next free
/// slot.
#[cold]
#[inline(never)]
fn probe(slots: &mut [u64; KeyTable::SLOTS], entry: u64, first: usize) -> bool {
    let stamp = entry & KeyTable::STAMP_BITS;
    for probe in 0..KeyTable::MAX_PROBES {
        let slot = (first + probe) % KeyTable::SLOTS;
        let found = slots[slot];
        if found & KeyTable::STAMP_BITS != stamp {
            slots[slot] = entry;
            return false;
        }
        if found == entry {
            return true;
        }
    }
    true
}

#[cold]
#[inline(never)]
fn keep_last_of_each<'k, T: Clone>(entries: &'k [T], key: impl Fn(&T) -> &'k [u8]) -> Vec<T> {
    let superseded = Superseded::of(|| entries.iter().map(&key));
    let kept = entries.iter().enumerate().filter(|(position, _)| !superseded.contains(*position));
    kept.map(|(_, entry)| entry.clone()).collect()
}

/// A 64-bit hash of a key: its length and two whole words, the first eight bytes and the last
/// eight (overlapping in keys shorter than 16), mixed by one multiplication (the slot is taken
/// from the top bits, which it mixes best). A key shorter than 8 bytes is read as two
/// overlapping 4-byte words, or below 4 bytes as its first, middle and last byte: no loop over
/// bytes, whose varying length the branch predictor would miss. Keys of one list often share a
/// prefix (`http.request.method`, `http.route`) or their ends and length
/// (`messaging.operation.name` and `….type`); the middle bytes of keys longer than 16 are not
/// read, so two such keys that differ only there look alike, and [`Superseded::of`] tells them
/// apart.
#[inline]
fn hash(key: &[u8]) -> u64 {
    let (head, tail) = match (key.first_chunk::<8>(), key.last_chunk::<8>()) {
        (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
        _ => match (key.first_chunk::<4>(), key.last_chunk::<4>()) {
            (Some(head), Some(tail)) => (u64::from(u32::from_le_bytes(*head)), u64::from(u32::from_le_bytes(*tail))),
            _ => {
                let byte = |at: usize| key.get(at).map_or(0, |&byte| u64::from(byte));
                (byte(0) | byte(key.len() / 2) << 8 | byte(key.len().wrapping_sub(1)) << 16, 0)
            }
        },
    };
    (head ^ tail.rotate_left(31) ^ key.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Which entries of a list a later entry with the same key replaces: [`KeyTable::superseded`]
/// for a list in the order it is written, [`Superseded::of`] to compare the keys themselves.
/// A list written entry by entry asks [`Superseded::contains`] of each, which for the lists whose
/// keys do not repeat (nearly all) is one test of a flag the compiler keeps in a register.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Superseded {
    /// Whether any entry is replaced.
    any: bool,
    /// Bit `i` set when entry `i` (of the first [`Self::FIRST`]) is replaced.
    first: u64,
    /// For lists longer than [`Self::PAIRWISE`] entries whose keys repeat: entry `i` is replaced
    /// when `all[i]`.
    all: Option<Box<[bool]>>,
}

impl Superseded {
    /// The entries whose answer is a bit of `first`.
    const FIRST: usize = 64;
    /// Lists up to this long are compared key against key (walking the list again for each);
    /// longer ones go through a hash map, so that a hostile list (thousands of keys, or long keys
    /// that differ only where the table's hash does not look) costs time in proportion to its
    /// bytes, at most a few times over.
    const PAIRWISE: usize = 16;

    /// The entries of a list that a later entry replaces; `keys` walks the list's keys, in
    /// order, each time it is called.
    #[must_use]
    pub fn of<'k, I: Iterator<Item = &'k [u8]>>(keys: impl Fn() -> I) -> Self {
        if keys().nth(Self::PAIRWISE).is_some() {
            return Self::of_many(keys());
        }
        let mut replaced = 0u64;
        for (position, key) in keys().enumerate() {
            if keys().skip(position + 1).any(|later| later == key) {
                replaced |= 1 << position;
            }
        }
        Self { any: replaced != 0, first: replaced, all: None }
    }

    fn of_many<'k>(keys: impl Iterator<Item = &'k [u8]>) -> Self {
        let keys: Vec<&[u8]> = keys.collect();
        let mut last = HashMap::with_capacity(keys.len());
        for (position, key) in keys.iter().enumerate() {
            last.insert(*key, position);
        }
        let all: Box<[bool]> = keys.iter().enumerate().map(|(position, key)| last[key] != position).collect();
        let first = all
            .iter()
            .take(Self::FIRST)
            .enumerate()
            .fold(0, |first, (position, &replaced)| first | u64::from(replaced) << position);
        Self { any: all.contains(&true), first, all: Some(all) }
    }

    /// Whether the entry at `position` (in list order) is replaced by a later one.
    #[inline]
    #[must_use]
    pub fn contains(&self, position: usize) -> bool {
        self.any && self.replaced(position)
    }

    fn replaced(&self, position: usize) -> bool {
        if position < Self::FIRST {
            self.first >> position & 1 != 0
        } else {
            self.all.as_deref().is_some_and(|all| all.get(position).copied().unwrap_or(false))
        }
    }

    /// Bit `i` set when entry `i` of the first 64 is replaced: for a caller that merges it with
    /// other bits of its own about the same entries.
    #[inline]
    #[must_use]
    pub fn first_64(&self) -> u64 {
        self.first
    }

    /// Whether no entry is replaced.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The entries a later one replaces, the obvious way.
    fn replaced_naively(keys: &[Vec<u8>]) -> Vec<bool> {
        (0..keys.len()).map(|i| keys[i + 1..].contains(&keys[i])).collect()
    }

    /// Lists drawn from few distinct keys, so that repeats are common, some of them longer than
    /// 16 bytes and alike at both ends.
    fn keys(max_len: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
        let key = prop_oneof![
            proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0xff)], 0..4),
            "[ab]{1,3}".prop_map(|middle| format!("messaging.{middle}.operation.name").into_bytes()),
        ];
        proptest::collection::vec(key, 0..max_len)
    }

    proptest! {
        #[test]
        fn superseded_marks_exactly_the_entries_a_later_one_repeats(keys in keys(150)) {
            let superseded = Superseded::of(|| keys.iter().map(Vec::as_slice));
            let expected = replaced_naively(&keys);
            for (position, &replaced) in expected.iter().enumerate() {
                prop_assert_eq!(superseded.contains(position), replaced, "entry {}", position);
            }
            prop_assert!(!superseded.contains(keys.len()));
            prop_assert_eq!(superseded.is_empty(), !expected.contains(&true));
        }

        /// One table serves list after list: each list is flagged exactly when two of its keys
        /// hash alike, whatever the lists before it held; so every list that repeats a key is.
        #[test]
        fn a_list_may_repeat_exactly_when_two_keys_hash_alike(lists in proptest::collection::vec(keys(20), 1..8)) {
            let mut table = KeyTable::default();
            for keys in &lists {
                let may_repeat = table.may_repeat(keys.iter().map(Vec::as_slice));
                let hashes: Vec<u64> = keys.iter().map(|key| hash(key) & !KeyTable::STAMP_BITS).collect();
                let alike = (0..hashes.len()).any(|i| hashes[i + 1..].contains(&hashes[i]));
                prop_assert_eq!(may_repeat, alike, "{:?}", keys);
            }
        }

        /// What the decoders ask: through a table shared by the lists before, exactly the
        /// entries a later entry replaces.
        #[test]
        fn the_table_finds_the_superseded_entries(lists in proptest::collection::vec(keys(80), 1..4)) {
            let mut table = KeyTable::default();
            for keys in &lists {
                let superseded = table.superseded(|| keys.iter().map(Vec::as_slice));
                let replaced: Vec<bool> = (0..keys.len()).map(|position| superseded.contains(position)).collect();
                prop_assert_eq!(replaced, replaced_naively(keys));
            }
        }
    }

    #[test]
    fn the_stamp_wraps_to_a_cleared_table() {
        let mut table = KeyTable::default();
        assert!(!table.may_repeat([&b"a"[..]].into_iter()));
        for _ in 0..u16::MAX - 1 {
            table.may_repeat(std::iter::empty());
        }
        assert_eq!(table.stamp, u16::MAX);
        // The next list would reuse the first list's stamp: the table must be cleared for it.
        assert!(!table.may_repeat([&b"a"[..]].into_iter()));
        assert_eq!(table.stamp, 1);
    }

    /// A list longer than the table fills it, and is flagged rather than probed forever.
    #[test]
    fn a_list_longer_than_the_table_may_repeat() {
        let keys: Vec<String> = (0..=KeyTable::SLOTS).map(|index| index.to_string()).collect();
        assert!(KeyTable::default().may_repeat(keys.iter().map(String::as_bytes)));
    }

    /// Keys that differ only inside (same length, same first and last bytes) hash apart: a hash
    /// of the ends alone made every messaging span look as if it repeated a key.
    #[test]
    fn keys_alike_at_both_ends_hash_apart() {
        for [a, b] in [
            ["messaging.operation.name", "messaging.operation.type"],
            ["http.request.method", "http.response.methd"],
            ["a", "b"],
            ["", "\0"],
        ] {
            assert_ne!(
                hash(a.as_bytes()) & !KeyTable::STAMP_BITS,
                hash(b.as_bytes()) & !KeyTable::STAMP_BITS,
                "{a} {b}"
            );
        }
    }
}
