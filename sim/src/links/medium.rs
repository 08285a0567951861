//! How the wireless pipeline links share the air: each directed link on a channel of its own
//! (the papers' view), or all of them on one channel — scheduled by an access point (TDMA) or
//! contended for with 802.11 CSMA/CA.

use crate::des::Time;
use airinfer_phy::csma::wifi_channel_time_s;
use serde::{Deserialize, Serialize};

/// The channel access of wireless hand-offs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Medium {
    /// Every directed link has a channel of its own: transfers on different links overlap.
    #[default]
    Dedicated,
    /// One channel for every wireless link, scheduled by the access point: one transfer at a
    /// time, first come first served, no contention.
    Tdma,
    /// One 802.11ax channel: one transfer at a time, first come first served, each paying the
    /// DCF's contention for the stations that have frames queued at its start (Bianchi's
    /// saturation throughput for that many stations, [`wifi_channel_time_s`]: a mean-field
    /// model, ours).
    Csma,
}

/// The shared channel's state in a timed run.
#[derive(Debug, Clone)]
pub(crate) struct SharedAir {
    medium: Medium,
    free: Time,
    /// (end, sender) of the transfers booked and not over.
    queued: Vec<(Time, usize)>,
}

impl SharedAir {
    pub(crate) fn new(medium: Medium) -> SharedAir {
        SharedAir {
            medium,
            free: Time::ZERO,
            queued: Vec::new(),
        }
    }

    /// Whether wireless links share one channel.
    pub(crate) fn shared(&self) -> bool {
        self.medium != Medium::Dedicated
    }

    /// When the channel is next free.
    pub(crate) fn free(&self) -> Time {
        self.free
    }

    /// Book a transfer of `airtime_s` (the link's own airtime, alone on the channel) from
    /// `sender`, ready at `now`: its start and end on the channel. Call in order of `now`.
    pub(crate) fn book(&mut self, sender: usize, now: Time, airtime_s: f64) -> (Time, Time) {
        self.queued.retain(|&(end, _)| end > now);
        let start = now.max(self.free);
        let held = match self.medium {
            Medium::Dedicated | Medium::Tdma => airtime_s,
            Medium::Csma => {
                // the stations with frames waiting: those with transfers not over, and this one
                let mut senders: Vec<usize> = self.queued.iter().map(|q| q.1).collect();
                senders.push(sender);
                senders.sort_unstable();
                senders.dedup();
                wifi_channel_time_s(airtime_s, senders.len() as u32)
                    .expect("airtime and station count are valid")
            }
        };
        let end = start.after(Time::from_secs(held));
        self.free = end;
        self.queued.push((end, sender));
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_channel_serves_one_transfer_at_a_time() {
        let ms = |x: f64| Time::from_secs(x * 1e-3);
        let mut t = SharedAir::new(Medium::Tdma);
        assert_eq!(t.book(0, ms(0.0), 2e-3), (ms(0.0), ms(2.0)));
        // a second sender waits for the first
        assert_eq!(t.book(1, ms(1.0), 1e-3), (ms(2.0), ms(3.0)));
        // an idle channel starts at once
        assert_eq!(t.book(1, ms(5.0), 1e-3), (ms(5.0), ms(6.0)));
        // CSMA: alone, a transfer pays one station's DCF overheads; with another station's
        // transfer still queued, two stations' contention
        let mut c = SharedAir::new(Medium::Csma);
        let (_, e1) = c.book(0, ms(0.0), 1e-3);
        let alone = wifi_channel_time_s(1e-3, 1).unwrap();
        assert_eq!(e1, Time::from_secs(alone));
        let (s2, e2) = c.book(1, ms(0.5), 1e-3);
        assert_eq!(s2, e1);
        let two = wifi_channel_time_s(1e-3, 2).unwrap();
        assert!(two > alone);
        assert_eq!(e2, e1.after(Time::from_secs(two)));
        // the same sender twice is one station
        let mut c = SharedAir::new(Medium::Csma);
        c.book(3, ms(0.0), 1e-3);
        let (s, e) = c.book(3, ms(0.1), 1e-3);
        assert_eq!(e, s.after(Time::from_secs(alone)));
    }
}
