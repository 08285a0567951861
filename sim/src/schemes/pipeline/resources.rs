//! The resources of a timed run: the directed links (or the one channel they share), the routes
//! of a step between the stages, and the devices with their weights in memory.

use super::*;

/// The directed links as first-come-first-served resources.
pub(crate) struct Links<'a> {
    net: &'a Network,
    free: BTreeMap<(usize, usize), Time>,
    rng: rng::Rng,
    /// The fading links' channels in simulated time.
    fading: FadingState,
    /// The one channel wireless links share (unless each has its own).
    pub(crate) air: SharedAir,
    record: bool,
    pub(crate) timeline: Vec<Busy>,
    pub(crate) bytes_sent: f64,
}

impl<'a> Links<'a> {
    /// Idle links of `net`, random draws from `seed`; `record` keeps the busy intervals.
    pub(crate) fn new(net: &'a Network, seed: u64, record: bool) -> Links<'a> {
        Links {
            net,
            free: BTreeMap::new(),
            rng: rng::stream(seed, &[rng::component::PACKET, 0x919E]),
            fading: FadingState::new(seed),
            air: SharedAir::new(net.medium),
            record,
            timeline: Vec::new(),
            bytes_sent: 0.0,
        }
    }

    /// Send `bytes` over i → j, ready to go at `now`: the arrival time. The link is occupied
    /// from `max(now, free)` for the serialisation (or HARQ airtime, at the SNR of a fading link
    /// when the transmission starts); the propagation delays the arrival without occupying it.
    pub(crate) fn send(
        &mut self,
        i: usize,
        j: usize,
        now: Time,
        bytes: f64,
        sample: usize,
        step: usize,
    ) -> Time {
        if i == j || bytes <= 0.0 {
            return now;
        }
        let link = &self.net.links[i][j];
        let shared = self.air.shared() && matches!(link, Link::Wireless { .. });
        let free = if shared {
            self.air.free()
        } else {
            *self.free.get(&(i, j)).unwrap_or(&Time::ZERO)
        };
        let start = now.max(free);
        let snr = self.fading.snr_db(link, i, j, start.secs());
        let occ = link.occupancy_at(bytes, snr, &mut self.rng).0;
        let end = if shared {
            self.air.book(i, now, occ).1
        } else {
            let end = start.after(Time::from_secs(occ));
            self.free.insert((i, j), end);
            end
        };
        self.bytes_sent += bytes;
        if self.record {
            self.timeline.push(Busy {
                resource: format!("link {i}→{j}"),
                sample,
                step,
                start_s: start.secs(),
                end_s: end.secs(),
            });
        }
        end.after(Time::from_secs(link.propagation_s()))
    }
}

/// The hidden states one step sends between the stages of an assignment.
pub(crate) struct Routes {
    /// Per stage, the stages it sends to: the next one, then those its residual links reach.
    pub(crate) out: Vec<Vec<usize>>,
    /// Per stage, the stages it receives from (stage 0: none; it waits for the step's start).
    pub(crate) inp: Vec<Vec<usize>>,
}

impl Routes {
    pub(crate) fn new(a: &Assignment, residual: &[(usize, usize)], n: usize) -> Routes {
        let k = a.stages.len();
        let mut stage_of = vec![0; n];
        for (i, s) in a.stages.iter().enumerate() {
            for u in s.units.clone() {
                stage_of[u] = i;
            }
        }
        let mut out = vec![Vec::new(); k];
        let mut inp = vec![Vec::new(); k];
        let chain = (1..k).map(|j| (j - 1, j));
        let skips = residual.iter().map(|&(u, v)| (stage_of[u], stage_of[v]));
        for (i, j) in chain.chain(skips).filter(|(i, j)| i != j) {
            out[i].push(j);
            inp[j].push(i);
        }
        Routes { out, inp }
    }

    /// The messages stage `j`'s job waits for.
    pub(crate) fn need(&self, j: usize) -> usize {
        self.inp[j].len().max(1)
    }
}

/// The devices of a timed run as resources: when each is free, when each unit's weights are in
/// its memory ([`Time::MAX`]: not held), when its storage is free, its busy intervals.
pub(crate) struct Devices {
    pub(crate) free: Vec<Time>,
    pub(crate) loaded: Vec<Vec<Time>>,
    pub(crate) storage_free: Vec<Time>,
    pub(crate) busy: Vec<Vec<(Time, Time)>>,
    /// Units run once loaded, unit by unit (a cold start, or weights reloaded after a re-plan);
    /// otherwise every weight is resident.
    pub(crate) cold: bool,
}

/// One stage job: when it started and finished, its compute time, the bytes it sends on.
pub(crate) struct Job {
    pub(crate) start: Time,
    pub(crate) done: Time,
    pub(crate) compute_s: f64,
    /// Hidden state to each next stage.
    pub(crate) hidden: f64,
    /// What returns to the source from the last stage.
    pub(crate) back: f64,
}

impl Devices {
    /// Resident weights on `m` devices of `n` units each.
    pub(crate) fn new(m: usize, n: usize) -> Devices {
        Devices {
            free: vec![Time::ZERO; m],
            loaded: vec![vec![Time::ZERO; n]; m],
            storage_free: vec![Time::ZERO; m],
            busy: vec![Vec::new(); m],
            cold: false,
        }
    }

    /// Forget every unit a device does not hold in `a` (its weights are not in its memory).
    pub(crate) fn hold_only(&mut self, a: &Assignment) {
        let own = a.device_of_units(self.loaded.first().map_or(0, Vec::len));
        for (d, row) in self.loaded.iter_mut().enumerate() {
            for (u, t) in row.iter_mut().enumerate() {
                if own[u] != d {
                    *t = Time::MAX;
                }
            }
        }
    }

    /// Read unit `u` into device `d`'s memory from storage, from `now` or when the storage is
    /// free (if it is not already there or on its way).
    pub(crate) fn load(&mut self, cost: &CostSetup, d: usize, u: usize, now: Time) -> Time {
        if self.loaded[d][u] == Time::MAX {
            let bw = cost.profiles[d].storage_bandwidth;
            let from = self.storage_free[d].max(now);
            self.loaded[d][u] = from.after(Time::from_secs(cost.unit_weight_bytes(u) / bw));
            self.storage_free[d] = self.loaded[d][u];
        }
        self.loaded[d][u]
    }

    /// Run stage `stage` of plan `a` (routes `r`), on `cost` under `background` load, for a micro-batch of `groups` (`(count, t,
    /// past)`, see [`CostSetup::unit_time_groups_s`]) whose inputs are all in at `now`: the
    /// device's message costs for what came in and what goes out, then its units' compute
    /// (times its background factor at the start), first come first served on the device.
    pub(crate) fn run_stage(
        &mut self,
        (cost, background): (&CostSetup, &Background),
        (a, r): (&Assignment, &Routes),
        stage: usize,
        groups: &[(usize, usize, usize)],
        first_step: bool,
        now: Time,
    ) -> Job {
        let st = &a.stages[stage];
        let d = st.device;
        let source = a.stages[0].device;
        let prof = &cost.profiles[d];
        let samples: usize = groups.iter().map(|g| g.0).sum();
        let hidden = groups
            .iter()
            .fold(0.0, |x, &(n, t, _)| x + n as f64 * cost.hidden_bytes(t));
        let back = samples as f64 * cost.return_bytes();
        let last = a.stages.len() - 1;
        // device-side message costs: what came in over links, what goes out
        let mut recv = 0.0;
        if stage == 0 {
            if !first_step && a.stages[last].device != d {
                recv += prof.message_s(back);
            }
        } else {
            for &i in &r.inp[stage] {
                if a.stages[i].device != d {
                    recv += prof.message_s(hidden);
                }
            }
        }
        let mut send = 0.0;
        for &k in &r.out[stage] {
            if a.stages[k].device != d {
                send += prof.message_s(hidden);
            }
        }
        if stage == last && source != d {
            send += prof.message_s(back);
        }
        let start = now.max(self.free[d]);
        let factor = background.factor(d, start.secs());
        let unit_s = |u| cost.unit_time_groups_s(d, u, groups);
        let (compute_s, done) = if self.cold {
            // unit by unit, each once it is loaded (a unit not held is read now)
            let (mut base, mut at) = (0.0, start.after(Time::from_secs(recv)));
            for u in st.units.clone() {
                let ready = self.load(cost, d, u, now);
                let t = unit_s(u);
                base += t;
                at = at.max(ready).after(Time::from_secs(t * factor));
            }
            (base * factor, at.after(Time::from_secs(send)))
        } else {
            let compute_s = st.units.clone().map(unit_s).sum::<f64>() * factor;
            (
                compute_s,
                start.after(Time::from_secs(recv + compute_s + send)),
            )
        };
        self.free[d] = done;
        self.busy[d].push((start, done));
        Job {
            start,
            done,
            compute_s,
            hidden,
            back,
        }
    }
}
