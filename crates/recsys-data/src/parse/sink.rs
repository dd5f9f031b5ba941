//! The parser's row sinks: growing columns, and one parser thread's slice of spare capacity.

use std::mem::MaybeUninit;

use super::RawColumns;

/// Where parsed rows go: growing columns, or a pre-sized slice of them.
pub(super) trait Sink {
    fn push(&mut self, user: u32, item: u32, rating: f32, ts: i64);
}

impl Sink for RawColumns {
    #[inline]
    fn push(&mut self, user: u32, item: u32, rating: f32, ts: i64) {
        self.users.push(user);
        self.items.push(item);
        self.ratings.push(rating);
        if let Some(t) = self.timestamps.as_mut() {
            t.push(ts);
        }
    }
}

/// Rows written straight into the columns' spare capacity by one parser thread.
pub(super) struct SliceSink<'a> {
    pub(super) users: &'a mut [MaybeUninit<u32>],
    pub(super) items: &'a mut [MaybeUninit<u32>],
    pub(super) ratings: &'a mut [MaybeUninit<f32>],
    pub(super) timestamps: Option<&'a mut [MaybeUninit<i64>]>,
    pub(super) len: usize,
}

impl Sink for SliceSink<'_> {
    #[inline]
    fn push(&mut self, user: u32, item: u32, rating: f32, ts: i64) {
        // Never more rows than line breaks were counted for the part (checked by the caller).
        let k = self.len;
        self.users[k].write(user);
        self.items[k].write(item);
        self.ratings[k].write(rating);
        if let Some(t) = self.timestamps.as_deref_mut() {
            t[k].write(ts);
        }
        self.len += 1;
    }
}
