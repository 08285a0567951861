//! Discrete-event core: integer-nanosecond time and an event queue with a deterministic order.
//!
//! Events are popped by (time, priority, sequence number): at equal times the lower priority
//! value first, and at equal priorities in insertion order. Nothing depends on hashing, thread
//! timing or floating-point comparisons, so a run is a pure function of its inputs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Simulated time in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Time(pub u64);

impl Time {
    /// Zero.
    pub const ZERO: Time = Time(0);
    /// The end of time (never).
    pub const MAX: Time = Time(u64::MAX);

    /// From seconds, rounded to the nearest nanosecond (negative and NaN become 0, values past
    /// u64 saturate).
    pub fn from_secs(s: f64) -> Time {
        if s.is_nan() || s <= 0.0 {
            Time(0)
        } else {
            Time((s * 1e9).round().min(u64::MAX as f64) as u64)
        }
    }

    /// In seconds.
    pub fn secs(self) -> f64 {
        self.0 as f64 * 1e-9
    }

    /// In milliseconds.
    pub fn millis(self) -> f64 {
        self.0 as f64 * 1e-6
    }

    /// `self + d`, saturating.
    pub fn after(self, d: Time) -> Time {
        Time(self.0.saturating_add(d.0))
    }
}

/// A queue of events of type `E`.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<(Time, i32, u64)>>,
    events: Vec<Option<E>>,
    now: Time,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// Empty, at time zero.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            events: Vec::new(),
            now: Time::ZERO,
            seq: 0,
        }
    }

    /// Current time (of the last popped event).
    pub fn now(&self) -> Time {
        self.now
    }

    /// Schedule `event` at `at` (not before now: earlier times are moved to now) with
    /// `priority` (lower first among equal times).
    pub fn schedule(&mut self, at: Time, priority: i32, event: E) {
        let at = at.max(self.now);
        self.heap.push(Reverse((at, priority, self.seq)));
        self.events.push(Some(event));
        self.seq += 1;
    }

    /// Pop the next event and advance the clock to it.
    pub fn pop(&mut self) -> Option<(Time, E)> {
        let Reverse((t, _, seq)) = self.heap.pop()?;
        self.now = t;
        let e = self.events[seq as usize]
            .take()
            .expect("each event is popped once");
        if self.heap.is_empty() {
            self.events.clear();
            self.seq = 0;
        }
        Some((t, e))
    }

    /// Events still queued.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// No events queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_priority_then_insertion() {
        let mut q = EventQueue::new();
        q.schedule(Time(30), 0, "c");
        q.schedule(Time(10), 5, "b2");
        q.schedule(Time(10), 1, "a");
        q.schedule(Time(10), 5, "b3");
        q.schedule(Time(20), -1, "bb");
        q.schedule(Time(10), 5, "b4");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![
                (Time(10), "a"),
                (Time(10), "b2"),
                (Time(10), "b3"),
                (Time(10), "b4"),
                (Time(20), "bb"),
                (Time(30), "c")
            ]
        );
        assert_eq!(q.now(), Time(30));
        // scheduling in the past lands at now
        q.schedule(Time(5), 0, "late");
        assert_eq!(q.pop(), Some((Time(30), "late")));
        assert!(q.is_empty());
    }

    #[test]
    fn a_simulation_is_a_function_of_its_inputs() {
        // a little M/D/1-style chain: arrivals every 7 ns, service 5 or 9 ns; the trace of two
        // runs must be identical, and events scheduled while running keep the order rules
        let run = || {
            let mut q = EventQueue::new();
            let mut trace = Vec::new();
            q.schedule(Time(0), 0, (0u32, true));
            let mut busy_until = Time(0);
            while let Some((t, (id, arrival))) = q.pop() {
                trace.push((t.0, id, arrival));
                if arrival && id < 50 {
                    q.schedule(t.after(Time(7)), 0, (id + 1, true));
                    let start = busy_until.max(t);
                    busy_until = start.after(Time(if id % 3 == 0 { 9 } else { 5 }));
                    q.schedule(busy_until, 1, (id, false));
                }
            }
            trace
        };
        let a = run();
        assert_eq!(a, run());
        assert_eq!(a.len(), 101);
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(Time::from_secs(1.5e-9), Time(2));
        assert_eq!(Time::from_secs(-1.0), Time(0));
        // one f64 division: exact here
        assert!((Time(2_500_000).millis() - 2.5).abs() < 1e-12);
    }
}
