//! From the file to the settings of a run: devices and their profiles, large-scale gains, the
//! radio, the waveform level, the links of a `systems` run, the cost preset, model and text files.

use super::check::{at_least_one, bad, non_negative, positive, Invalid};
use super::schema::{Kind, Level, QuantSpec, SharesSpec, Spec, SHARE_NAMES};
use super::system::{FadingType, GeometrySpec, LinkSpec, LinkType};
use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::presets;
use airinfer_phy::channel::{LargeScale, SmallScale, TimeModel};
use airinfer_phy::digital::Quantiser;
use airinfer_phy::rng;
use airinfer_phy::waveform::impair::Impairments;
use airinfer_phy::waveform::ofdm::OfdmConfig;
use airinfer_phy::waveform::tdl::TdlChannel;
use airinfer_sim::device::{DeviceProfile, Profiles};
use airinfer_sim::links::geometry::Geometry;
use airinfer_sim::links::handoff::{LinkFading, LinkSmallScale};
use airinfer_sim::schemes::pipeline::{Link, Network};
use airinfer_sim::schemes::tp::{Design, HeldEqual, RadioConfig, SchemeKind, WaveformLevel};
use std::path::{Path, PathBuf};

/// Largest `waveform.n_fft`: 16 times the largest FFT of 5G NR and Wi-Fi.
pub const MAX_N_FFT: usize = 65_536;

/// Largest `timing_offset_samples` of a waveform-level device: 0.1 s at 10 MHz, thousands of
/// OFDM symbols (the receiver holds every device's delayed burst).
pub const MAX_TIMING_OFFSET: f64 = 1e6;

/// A path as written in the experiment file, resolved against the directory of the file that
/// wrote it.
pub fn relative_to(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The devices of a run, resolved.
#[derive(Debug, Clone)]
pub struct Devices {
    /// Profile of each device.
    pub profiles: Vec<DeviceProfile>,
    /// Normalised model shares (equal until planned when `model.shares` names an assignment).
    pub shares: Vec<f64>,
    /// The assignment `model.shares` names (`sca`, `uniform`, `compute`, `memory`), planned by
    /// `experiment::planned`; None: the shares above are the file's numbers or equal.
    pub named: Option<String>,
}

impl Spec {
    /// Number of devices K.
    pub fn device_count(&self) -> usize {
        let d = &self.devices;
        d.count.unwrap_or(if d.profiles.len() > 1 {
            d.profiles.len()
        } else {
            match &self.model.shares {
                Some(SharesSpec::Numbers(s)) => s.len(),
                _ => 1,
            }
        })
    }

    /// The library (shipped + `profiles_file` + inline) and each device's profile; `dir(key)`
    /// gives the directory relative paths at `key` are taken from.
    pub fn devices(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<Devices, Invalid> {
        let d = &self.devices;
        let k = self.device_count();
        if k == 0 {
            return bad("devices.count", "0: need at least one device");
        }
        let mut lib = Profiles::builtin();
        if let Some(f) = &d.profiles_file {
            let path = relative_to(&dir("devices.profiles_file"), f);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                (
                    "devices.profiles_file".to_string(),
                    format!("cannot read '{}': {e}", path.display()),
                )
            })?;
            let more = Profiles::parse(&text, &path.display().to_string())
                .map_err(|e| ("devices.profiles_file".to_string(), e.to_string()))?;
            lib.extend(more);
        }
        for (name, p) in &d.custom {
            p.validate("inline profile", name)
                .map_err(|e| (format!("devices.custom.{name}"), e.to_string()))?;
            lib.0.insert(name.clone(), p.clone());
        }
        let names: Vec<&String> = match d.profiles.len() {
            0 => return bad("devices.profiles", "empty: name at least one profile"),
            1 => vec![&d.profiles[0]; k],
            n if n == k => d.profiles.iter().collect(),
            n => {
                return bad(
                    "devices.profiles",
                    format!("{n} profiles for {k} devices (give one for all, or one per device)"),
                )
            }
        };
        let mut profiles = Vec::with_capacity(k);
        for (i, n) in names.iter().enumerate() {
            let key = if d.profiles.len() == 1 {
                "devices.profiles[0]".to_string()
            } else {
                format!("devices.profiles[{i}]")
            };
            let p = lib.get(n).map_err(|_| {
                (
                    key,
                    format!(
                        "'{n}' is not in the device library (known: {}; add it under [devices.custom.{n}] or in a profiles_file)",
                        lib.0.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            let mut p = p.clone();
            if let Some(o) = d.msg_overhead_s {
                if !(o.is_finite() && o >= 0.0) {
                    return bad(
                        "devices.msg_overhead_s",
                        format!("{o}: must be finite and ≥ 0"),
                    );
                }
                p.msg_overhead_s = o;
            }
            profiles.push(p);
        }
        let mut named = None;
        let shares = match &self.model.shares {
            None => vec![1.0 / k as f64; k],
            Some(SharesSpec::Named(n)) => {
                if !SHARE_NAMES.contains(&n.as_str()) {
                    return bad(
                        "model.shares",
                        format!(
                            "'{n}': numbers (one per device) or an assignment by name ({})",
                            SHARE_NAMES.join(", ")
                        ),
                    );
                }
                if !matches!(self.kind, Kind::Eval | Kind::Latency) {
                    return bad(
                        "model.shares",
                        format!(
                            "\"{n}\": an assignment by name is planned for kinds eval and latency (kind plan compares them all itself); give numbers here"
                        ),
                    );
                }
                named = Some(n.clone());
                vec![1.0 / k as f64; k]
            }
            Some(SharesSpec::Numbers(s)) if s.len() != k => {
                return bad(
                    "model.shares",
                    format!("{} shares for {k} devices", s.len()),
                )
            }
            Some(SharesSpec::Numbers(s)) => {
                for (i, x) in s.iter().enumerate() {
                    non_negative(&format!("model.shares[{i}]"), *x)?;
                }
                let sum: f64 = s.iter().sum();
                if sum <= 0.0 {
                    return bad("model.shares", "all zero: some device must hold the model");
                }
                s.iter().map(|x| x / sum).collect()
            }
        };
        Ok(Devices {
            profiles,
            shares,
            named,
        })
    }

    /// Large-scale gain of each device, linear.
    pub fn gains(&self, k: usize) -> Result<Vec<f64>, Invalid> {
        let db = per_device("channel.gains_db", &self.channel.gains_db, k, 0.0)?;
        for (i, x) in db.iter().enumerate() {
            if !x.is_finite() {
                return bad(&format!("channel.gains_db[{i}]"), "must be finite");
            }
        }
        Ok(db.iter().map(|x| 10f64.powf(x / 10.0)).collect())
    }

    /// Each of `k` devices' standard deviation of its all-reduce values (`allreduce.device_std`).
    pub fn device_std(&self, k: usize) -> Result<Vec<f64>, Invalid> {
        let std = per_device("allreduce.device_std", &self.allreduce.device_std, k, 1.0)?;
        for (i, x) in std.iter().enumerate() {
            if !(x.is_finite() && *x >= 0.0) {
                return bad(
                    &format!("allreduce.device_std[{i}]"),
                    format!("{x}: must be finite and ≥ 0"),
                );
            }
        }
        if std.iter().all(|x| *x == 0.0) {
            return bad(
                "allreduce.device_std",
                "every device's values would be 0: nothing to sum",
            );
        }
        Ok(std)
    }

    /// The waveform-level set-up for `k` devices (None at symbol level); the hardware radio is
    /// opened by the run.
    pub fn waveform_level(&self, k: usize) -> Result<Option<WaveformLevel>, Invalid> {
        let w = &self.waveform;
        if w.level == Level::Symbol {
            // the radio serves the waveform-level points (a sweep may hold both levels)
            return Ok(None);
        }
        if !matches!(self.kind, Kind::Allreduce | Kind::Eval | Kind::Latency) {
            return bad(
                "waveform.level",
                "the waveform level applies to kinds allreduce, eval and latency",
            );
        }
        if self.scheme.kind != SchemeKind::Aircomp {
            return bad(
                "waveform.level",
                format!(
                    "the waveform level carries AirComp: set scheme.kind = \"aircomp\" (not {:?})",
                    self.scheme.kind
                ),
            );
        }
        if self.scheme.design != Design::Zf {
            return bad(
                "scheme.design",
                "the waveform level designs zero-forcing per subcarrier: set \"zf\"",
            );
        }
        for (key, v) in [
            ("channel.rx_antennas", self.channel.rx_antennas),
            ("channel.tx_antennas", self.channel.tx_antennas),
            ("channel.streams", self.channel.streams),
        ] {
            if v != 1 {
                return bad(
                    key,
                    format!("{v}: the waveform level has single-antenna devices and AP (set 1)"),
                );
            }
        }
        if self.channel.csi_error_var != 0.0 {
            return bad(
                "channel.csi_error_var",
                "the waveform level estimates the channels itself (waveform.correct): set 0",
            );
        }
        if !w.is_hardware() && w.radio.trim().is_empty() {
            return bad(
                "waveform.radio",
                "empty: \"emulator\" or SoapySDR device arguments",
            );
        }
        if w.is_hardware() && !w.radio.contains('=') {
            return bad(
                "waveform.radio",
                format!(
                    "'{}': \"emulator\" or SoapySDR device arguments such as \"driver=uhd\"",
                    w.radio
                ),
            );
        }
        if w.is_hardware() && !cfg!(feature = "soapy") {
            return bad(
                "waveform.radio",
                format!(
                    "'{}': this airinfer was built without SoapySDR; rebuild with \
                     `cargo build --release --features soapy` (needs libsoapysdr-dev)",
                    w.radio
                ),
            );
        }
        positive("waveform.frequency_hz", w.frequency_hz)?;
        for (key, v) in [
            ("waveform.tx_gain_db", w.tx_gain_db),
            ("waveform.rx_gain_db", w.rx_gain_db),
        ] {
            if !v.is_finite() {
                return bad(key, "must be finite");
            }
        }
        if !(w.amplitude > 0.0 && w.amplitude <= 1.0) {
            return bad(
                "waveform.amplitude",
                format!("{}: must be in (0, 1]", w.amplitude),
            );
        }
        let ofdm = OfdmConfig {
            n_fft: w.n_fft,
            cp_len: w.cp_len,
            n_used: w.n_used,
            pilot_spacing: w.pilot_spacing,
            sample_rate_hz: self.channel.bandwidth_hz,
        };
        // buffer sizes are bounded here, before any run allocates them (n_fft = 2^30 aborted
        // allocating 34 GB, a timing offset of 1e9 samples 23 GB)
        if w.n_fft > MAX_N_FFT {
            return bad(
                "waveform.n_fft",
                format!(
                    "{}: at most {MAX_N_FFT} (every OFDM symbol is n_fft + cp_len samples per \
                     device; 5G NR and Wi-Fi use at most 4096)",
                    w.n_fft
                ),
            );
        }
        if let Err(e) = ofdm.validate() {
            return match e {
                airinfer_phy::waveform::WaveformError::InvalidParameter { field, reason } => {
                    bad(&format!("waveform.{field}"), reason)
                }
                e => bad("waveform", e.to_string()),
            };
        }
        let devices = match w.impairments.len() {
            0 => vec![Impairments::default(); k],
            1 => vec![w.impairments[0].clone(); k],
            n if n == k => w.impairments.clone(),
            n => {
                return bad(
                    "waveform.impairments",
                    format!("{n} sets for {k} devices (one for all, or one per device)"),
                )
            }
        };
        for (i, d) in w.impairments.iter().enumerate() {
            if d.timing_offset_samples > MAX_TIMING_OFFSET {
                return bad(
                    &format!("waveform.impairments[{i}].timing_offset_samples"),
                    format!(
                        "{}: at most {MAX_TIMING_OFFSET} samples (the delayed burst is held in \
                         memory, 16 bytes a sample per device)",
                        d.timing_offset_samples
                    ),
                );
            }
            if let Err(e) = d.validate() {
                return match e {
                    airinfer_phy::waveform::WaveformError::InvalidParameter { field, reason } => {
                        bad(&format!("waveform.impairments[{i}].{field}"), reason)
                    }
                    e => bad(&format!("waveform.impairments[{i}]"), e.to_string()),
                };
            }
            if let Some(t) = &d.tdl {
                if let Err(e) =
                    TdlChannel::new(t.profile, t.delay_spread_s, self.channel.bandwidth_hz)
                {
                    return bad(&format!("waveform.impairments[{i}].tdl"), e.to_string());
                }
            }
        }
        Ok(Some(WaveformLevel {
            ofdm,
            devices,
            correct: w.correct,
            amplitude: w.amplitude,
            radio: None,
        }))
    }

    /// The radio configuration of the scheme.
    pub fn radio(&self, k: usize) -> Result<RadioConfig, Invalid> {
        let c = &self.channel;
        let s = &self.scheme;
        at_least_one("channel.rx_antennas", c.rx_antennas)?;
        at_least_one("channel.tx_antennas", c.tx_antennas)?;
        at_least_one("channel.streams", c.streams)?;
        if c.streams > c.rx_antennas.min(c.tx_antennas) {
            return bad(
                "channel.streams",
                format!(
                    "{}: need L ≤ min(rx_antennas = {}, tx_antennas = {})",
                    c.streams, c.rx_antennas, c.tx_antennas
                ),
            );
        }
        snr_in_range("channel.snr_db", c.snr_db)?;
        positive("channel.bandwidth_hz", c.bandwidth_hz)?;
        positive("channel.coherence_time_s", c.coherence_time_s)?;
        non_negative("channel.round_overhead_s", c.round_overhead_s)?;
        non_negative("channel.csi_error_var", c.csi_error_var)?;
        if let Some(f) = c.doppler_hz {
            non_negative("channel.doppler_hz", f)?;
        }
        if let Some(kf) = c.rician_k_db {
            if !kf.is_finite() {
                return bad("channel.rician_k_db", "must be finite");
            }
        }
        at_least_one("scheme.quant_block", s.quant_block)?;
        at_least_one("scheme.block_values", s.block_values)?;
        if !(0.0..1.0).contains(&s.target_bler) {
            return bad(
                "scheme.target_bler",
                format!("{}: must be in [0, 1)", s.target_bler),
            );
        }
        if s.max_tx == 0 {
            return bad("scheme.max_tx", "0: must be at least 1");
        }
        if s.kind == SchemeKind::Ring && s.held_equal != HeldEqual::Power {
            return bad(
                "scheme.held_equal",
                format!(
                    "\"{}\": the device-to-device ring has no AirComp counterpart on its links; \
                     held_equal applies to digital and fdma",
                    s.held_equal.name()
                ),
            );
        }
        Ok(RadioConfig {
            rx_antennas: c.rx_antennas,
            tx_antennas: c.tx_antennas,
            streams: c.streams,
            small_scale: match c.rician_k_db {
                None => SmallScale::Rayleigh,
                Some(k) => SmallScale::Rician {
                    k_factor_db: k,
                    aoa_deg: vec![],
                },
            },
            time: match c.doppler_hz {
                Some(f) => TimeModel::Jakes { doppler_hz: f },
                None => TimeModel::Block {
                    coherence_time_s: c.coherence_time_s,
                },
            },
            snr_db: c.snr_db,
            gains: self.gains(k)?,
            bandwidth_hz: c.bandwidth_hz,
            round_overhead_s: c.round_overhead_s,
            csi_error_var: c.csi_error_var,
            quantiser: match s.quantiser {
                QuantSpec::Fp16 => Quantiser::Fp16,
                QuantSpec::Bf16 => Quantiser::Bf16,
                QuantSpec::Int8 => Quantiser::Int8 {
                    block: s.quant_block,
                },
                QuantSpec::Int4 => Quantiser::Int4 {
                    block: s.quant_block,
                },
                QuantSpec::Int8Tensor => Quantiser::Int8 { block: usize::MAX },
            },
            access: s.access,
            block_values: s.block_values,
            target_bler: s.target_bler,
            max_tx: s.max_tx,
            rate: s.rate,
            held_equal: s.held_equal,
            downlink: s.downlink,
            ..RadioConfig::default()
        })
    }

    /// The links of a `systems` run among `k` devices (with `[system.geometry]`, each pair's
    /// mean SNR from its distance).
    pub fn network(&self, k: usize) -> Result<Network, Invalid> {
        let y = &self.system;
        let geo = match &y.geometry {
            Some(g) => Some(self.geometry_snr(g, k)?),
            None => None,
        };
        // `pair`: the link's devices when it has them (the pair's SNR from the geometry)
        let link =
            |l: &LinkSpec, key: &str, pair: Option<(usize, usize)>| -> Result<Link, Invalid> {
                let fading_keys = [
                    ("fading", l.fading.is_some()),
                    ("k_factor_db", l.k_factor_db.is_some()),
                    ("coherence_time_ms", l.coherence_time_ms.is_some()),
                    ("doppler_hz", l.doppler_hz.is_some()),
                ];
                if l.kind != LinkType::Wireless {
                    if let Some((name, _)) = fading_keys.iter().find(|f| f.1) {
                        return bad(
                            &format!("{key}.{name}"),
                            "fading applies to wireless links (type = \"wireless\")",
                        );
                    }
                }
                let link = match l.kind {
                    LinkType::Ideal => Link::Ideal,
                    LinkType::Wired => {
                        let mbps = l.bandwidth_mbps.ok_or_else(|| {
                            (
                                format!("{key}.bandwidth_mbps"),
                                "a wired link needs its rate".to_string(),
                            )
                        })?;
                        positive(&format!("{key}.bandwidth_mbps"), mbps)?;
                        non_negative(&format!("{key}.latency_ms"), l.latency_ms)?;
                        Link::Wired {
                            bandwidth: mbps * 1e6 / 8.0,
                            latency_s: l.latency_ms * 1e-3,
                        }
                    }
                    LinkType::Wireless => {
                        let bw = l.bandwidth_hz.unwrap_or(self.channel.bandwidth_hz);
                        positive(&format!("{key}.bandwidth_hz"), bw)?;
                        non_negative(&format!("{key}.latency_ms"), l.latency_ms)?;
                        let snr = match (l.snr_db, &geo, pair) {
                            (Some(s), _, _) => s,
                            (None, Some(g), Some((a, b))) => g[a][b],
                            _ => self.channel.snr_db,
                        };
                        snr_in_range(&format!("{key}.snr_db"), snr)?;
                        Link::Wireless {
                            bandwidth_hz: bw,
                            snr_db: snr,
                            bler: Default::default(),
                            target_bler: self.scheme.target_bler,
                            max_tx: self.scheme.max_tx,
                            block_bytes: l.block_bytes.unwrap_or(1024),
                            overhead_s: l.latency_ms * 1e-3,
                            fading: self.link_fading(l, key)?,
                        }
                    }
                };
                link.validate().map_err(|e| (key.to_string(), e))?;
                Ok(link)
            };
        if y.link.from.is_some() || y.link.to.is_some() {
            return bad(
                "system.link",
                "the default link joins every pair: put from/to links in [[system.links]]",
            );
        }
        let mut net = Network::uniform(k, link(&y.link, "system.link", None)?);
        net.medium = y.medium;
        if let Some(g) = &geo {
            if y.link.snr_db.is_some() && y.link.kind == LinkType::Wireless {
                return bad(
                    "system.link.snr_db",
                    "[system.geometry] gives every pair its SNR: drop one of them (an explicit \
                     snr_db on a [[system.links]] entry overrides the geometry for its pair)",
                );
            }
            for (i, row) in net.links.iter_mut().enumerate() {
                for (j, l) in row.iter_mut().enumerate() {
                    if let (Link::Wireless { snr_db, .. }, true) = (l, i != j) {
                        *snr_db = g[i][j];
                    }
                }
            }
        }
        for (i, l) in y.links.iter().enumerate() {
            let key = format!("system.links[{i}]");
            let (Some(a), Some(b)) = (l.from, l.to) else {
                return bad(&key, "needs from and to (device indices)");
            };
            if a >= k || b >= k || a == b {
                return bad(
                    &key,
                    format!("from = {a}, to = {b}: two different devices of 0..{k}"),
                );
            }
            let x = link(l, &key, Some((a, b)))?;
            net.links[a][b] = x.clone();
            if !l.one_way {
                net.links[b][a] = x;
            }
        }
        Ok(net)
    }

    /// The fading of wireless link `l` at `key` (None: `fading` not set).
    fn link_fading(&self, l: &LinkSpec, key: &str) -> Result<Option<LinkFading>, Invalid> {
        let Some(kind) = l.fading else {
            for (name, set) in [
                ("k_factor_db", l.k_factor_db.is_some()),
                ("coherence_time_ms", l.coherence_time_ms.is_some()),
                ("doppler_hz", l.doppler_hz.is_some()),
            ] {
                if set {
                    return bad(
                        &format!("{key}.{name}"),
                        "describes fading: set fading = \"rayleigh\" or \"rician\"",
                    );
                }
            }
            return Ok(None);
        };
        let small_scale = match kind {
            FadingType::Rayleigh => {
                if l.k_factor_db.is_some() {
                    return bad(
                        &format!("{key}.k_factor_db"),
                        "applies to fading = \"rician\" (a Rayleigh link has no line of sight)",
                    );
                }
                LinkSmallScale::Rayleigh
            }
            FadingType::Rician => {
                let kf = l.k_factor_db.ok_or_else(|| {
                    (
                        format!("{key}.k_factor_db"),
                        "fading = \"rician\" needs its K-factor, dB".to_string(),
                    )
                })?;
                let max = airinfer_sim::links::MAX_SNR_DB;
                if !(kf.is_finite() && kf.abs() <= max) {
                    return bad(
                        &format!("{key}.k_factor_db"),
                        format!("{kf}: must be a finite number of dB (within ±{max})"),
                    );
                }
                LinkSmallScale::Rician { k_factor_db: kf }
            }
        };
        let time = match (l.coherence_time_ms, l.doppler_hz) {
            (Some(_), Some(_)) => {
                return bad(
                    &format!("{key}.doppler_hz"),
                    "give coherence_time_ms (block fading) or doppler_hz (Jakes), not both",
                )
            }
            (Some(ms), None) => {
                positive(&format!("{key}.coherence_time_ms"), ms)?;
                TimeModel::Block {
                    coherence_time_s: ms * 1e-3,
                }
            }
            (None, Some(f)) => {
                non_negative(&format!("{key}.doppler_hz"), f)?;
                TimeModel::Jakes { doppler_hz: f }
            }
            (None, None) => match self.channel.doppler_hz {
                Some(f) => {
                    non_negative("channel.doppler_hz", f)?;
                    TimeModel::Jakes { doppler_hz: f }
                }
                None => {
                    positive("channel.coherence_time_s", self.channel.coherence_time_s)?;
                    TimeModel::Block {
                        coherence_time_s: self.channel.coherence_time_s,
                    }
                }
            },
        };
        Ok(Some(LinkFading { small_scale, time }))
    }

    /// Each ordered pair's mean SNR from `[system.geometry]` for `k` devices (the shadowing
    /// from the file's seed: one deployment for the whole campaign); the diagonal unused.
    fn geometry_snr(&self, g: &GeometrySpec, k: usize) -> Result<Vec<Vec<f64>>, Invalid> {
        let key = "system.geometry";
        if g.positions_m.len() != k {
            return bad(
                &format!("{key}.positions_m"),
                format!(
                    "{} positions for {k} devices (one [x, y] per device)",
                    g.positions_m.len()
                ),
            );
        }
        for (i, p) in g.positions_m.iter().enumerate() {
            if !(p[0].is_finite() && p[1].is_finite()) {
                return bad(
                    &format!("{key}.positions_m[{i}]"),
                    format!("{p:?}: must be finite"),
                );
            }
            if let Some(j) = (0..i).find(|&j| g.positions_m[j] == *p) {
                return bad(
                    &format!("{key}.positions_m[{i}]"),
                    format!(
                        "{p:?}: device {j} is at the same place (the path loss needs a \
                         positive distance)"
                    ),
                );
            }
        }
        snr_in_range(&format!("{key}.tx_snr_db"), g.tx_snr_db)?;
        non_negative(&format!("{key}.exponent"), g.exponent)?;
        if !g.pl0_db.is_finite() {
            return bad(
                &format!("{key}.pl0_db"),
                format!("{}: must be finite", g.pl0_db),
            );
        }
        positive(&format!("{key}.d0_m"), g.d0_m)?;
        non_negative(&format!("{key}.shadowing_db"), g.shadowing_db)?;
        let geo = Geometry {
            positions_m: g.positions_m.clone(),
            large_scale: LargeScale::LogDistance {
                pl0_db: g.pl0_db,
                d0_m: g.d0_m,
                exponent: g.exponent,
                shadowing_db: g.shadowing_db,
                distances_m: Vec::new(),
            },
            tx_snr_db: g.tx_snr_db,
        };
        let mut r = rng::stream(self.seed, &[rng::component::LARGE_SCALE, 0x6E0]);
        let snr = geo.mean_snr_db(&mut r).map_err(|e| (key.to_string(), e))?;
        for (i, row) in snr.iter().enumerate() {
            for (j, s) in row.iter().enumerate() {
                if i != j && !(s.is_finite() && s.abs() <= airinfer_sim::links::MAX_SNR_DB) {
                    return bad(
                        key,
                        format!(
                            "devices {i} and {j}: mean SNR {s:e} dB, beyond ±{} dB",
                            airinfer_sim::links::MAX_SNR_DB
                        ),
                    );
                }
            }
        }
        Ok(snr)
    }

    /// The cost preset named by `model.name` (latency, allreduce, plan).
    pub fn preset(&self) -> Result<LlamaConfig, Invalid> {
        presets::by_name(&self.model.name).ok_or_else(|| {
            (
                "model.name".to_string(),
                format!(
                    "'{}' is not a cost preset (known: {})",
                    self.model.name,
                    presets::all()
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// The GGUF of an eval run: a catalogue name (None: fetched when the run starts) or an
    /// existing file.
    pub fn model_file(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<Option<PathBuf>, Invalid> {
        let n = &self.model.name;
        if crate::assets::MODELS
            .iter()
            .any(|a| a.names.contains(&n.as_str()))
        {
            return Ok(None);
        }
        let p = relative_to(&dir("model.name"), n);
        if p.is_file() {
            Ok(Some(p))
        } else {
            bad(
                "model.name",
                format!(
                    "no such model file '{}' (and not a catalogue model: {})",
                    p.display(),
                    crate::assets::MODELS
                        .iter()
                        .map(|a| a.names[0])
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    }

    /// The model's context length, read from the GGUF header when the file is on disk (a
    /// path, or a catalogue model already in the cache); None when a catalogue model is not
    /// fetched yet (the run checks it after fetching).
    pub fn model_context(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<Option<usize>, Invalid> {
        let path = match self.model_file(dir)? {
            Some(p) => p,
            None => match crate::assets::cached(crate::assets::MODELS, &self.model.name) {
                Some(p) => p,
                None => return Ok(None),
            },
        };
        let g = airinfer_llm::gguf::GgufFile::open(&path)
            .map_err(|e| ("model.name".to_string(), format!("{}: {e}", path.display())))?;
        let cfg = airinfer_llm::model::config_from_gguf(&g)
            .map_err(|e| ("model.name".to_string(), format!("{}: {e}", path.display())))?;
        Ok(Some(cfg.context_length))
    }

    /// The evaluation text: a catalogue name (None) or an existing file.
    pub fn text_file(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<Option<PathBuf>, Invalid> {
        let n = &self.eval.text;
        if crate::assets::TEXTS
            .iter()
            .any(|a| a.names.contains(&n.as_str()))
        {
            return Ok(None);
        }
        let p = relative_to(&dir("eval.text"), n);
        if p.is_file() {
            Ok(Some(p))
        } else {
            bad(
                "eval.text",
                format!(
                    "no such text file '{}' (and not a catalogue text: lee-news, wikitext-2)",
                    p.display()
                ),
            )
        }
    }
}

/// An SNR in dB a link can compute with (|snr| ≤ `links::MAX_SNR_DB`).
fn snr_in_range(key: &str, snr_db: f64) -> Result<(), Invalid> {
    let max = airinfer_sim::links::MAX_SNR_DB;
    if snr_db.is_finite() && snr_db.abs() <= max {
        Ok(())
    } else {
        bad(
            key,
            format!("{snr_db:e} dB: must be within ±{max} dB (beyond, the noise power 10^(−snr/10) leaves the range of f64 arithmetic)"),
        )
    }
}

/// A per-device list `v` of key `key` for `k` devices: none (every device `default`), one for
/// all, or one per device.
fn per_device(key: &str, v: &[f64], k: usize, default: f64) -> Result<Vec<f64>, Invalid> {
    match v.len() {
        0 => Ok(vec![default; k]),
        1 => Ok(vec![v[0]; k]),
        n if n == k => Ok(v.to_vec()),
        n => bad(
            key,
            format!("{n} values for {k} devices (give one for all, or one per device)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        toml::from_str(&format!("kind = \"systems\"\nseed = 5\n{text}")).unwrap()
    }

    #[test]
    fn geometry_and_fading_lower_onto_the_links() {
        let s = spec(
            "[devices]\ncount = 3\n[channel]\ncoherence_time_s = 0.02\n\
             [system.link]\nfading = \"rayleigh\"\n\
             [system.geometry]\npositions_m = [[0, 0], [10, 0], [0, 100]]\n\
             tx_snr_db = 90\nexponent = 3\npl0_db = 40\n\
             [[system.links]]\nfrom = 0\nto = 2\nsnr_db = 7\nfading = \"rician\"\n\
             k_factor_db = 6\ndoppler_hz = 5\none_way = true\n",
        );
        let net = s.network(3).unwrap();
        let snr = |i: usize, j: usize| net.links[i][j].mean_snr_db().unwrap();
        // 90 − 40 − 30·log10(d), both ways
        assert!((snr(0, 1) - 20.0).abs() < 1e-9 && (snr(1, 0) - 20.0).abs() < 1e-9);
        let d12 = (100f64 * 100.0 + 100.0).sqrt();
        assert!((snr(2, 1) - (50.0 - 30.0 * d12.log10())).abs() < 1e-9);
        // the reverse of the one-way override keeps the geometry: 100 m
        assert!((snr(2, 0) + 10.0).abs() < 1e-9);
        // the explicit snr_db of a [[system.links]] entry wins, with its own fading
        assert_eq!(snr(0, 2), 7.0);
        assert_eq!(
            net.links[0][2].fading(),
            Some(&LinkFading {
                small_scale: LinkSmallScale::Rician { k_factor_db: 6.0 },
                time: TimeModel::Jakes { doppler_hz: 5.0 },
            })
        );
        // the default link's time model: the [channel]'s coherence time
        assert_eq!(
            net.links[1][0].fading(),
            Some(&LinkFading {
                small_scale: LinkSmallScale::Rayleigh,
                time: TimeModel::Block {
                    coherence_time_s: 0.02
                },
            })
        );
        // without the geometry and fading keys, the links are what they were
        let plain = spec("[devices]\ncount = 2\n[system.link]\nsnr_db = 12\n")
            .network(2)
            .unwrap();
        assert_eq!(plain.links[0][1].mean_snr_db(), Some(12.0));
        assert_eq!(plain.links[0][1].fading(), None);
        // shadowing from the file's seed: the same deployment on every call
        let shadowed = spec(
            "[devices]\ncount = 2\n[system.geometry]\npositions_m = [[0, 0], [10, 0]]\n\
             tx_snr_db = 90\nexponent = 3\npl0_db = 40\nshadowing_db = 6\n",
        );
        let a = shadowed.network(2).unwrap();
        assert_eq!(a, shadowed.network(2).unwrap());
        assert_ne!(a.links[0][1].mean_snr_db(), Some(20.0));
        assert_eq!(a.links[0][1].mean_snr_db(), a.links[1][0].mean_snr_db());
    }

    #[test]
    fn bad_fading_and_geometry_name_the_field() {
        let cases = [
            (
                "[devices]\ncount = 2\n[system.link]\nfading = \"rayleigh\"\ncoherence_time_ms = nan\n",
                "system.link.coherence_time_ms",
            ),
            (
                "[devices]\ncount = 2\n[system.link]\nfading = \"rayleigh\"\ndoppler_hz = -1\n",
                "system.link.doppler_hz",
            ),
            (
                "[devices]\ncount = 2\n[system.link]\nfading = \"rayleigh\"\nk_factor_db = 3\n",
                "system.link.k_factor_db",
            ),
            (
                "[devices]\ncount = 2\n[system.link]\nk_factor_db = 3\n",
                "system.link.k_factor_db",
            ),
            (
                "[devices]\ncount = 2\n[system.geometry]\npositions_m = [[0, 0], [1, inf]]\n\
                 tx_snr_db = 90\nexponent = 3\npl0_db = 40\n",
                "system.geometry.positions_m[1]",
            ),
            (
                "[devices]\ncount = 2\n[system.geometry]\npositions_m = [[0, 0], [1, 0]]\n\
                 tx_snr_db = 90\nexponent = 3\npl0_db = 40\nd0_m = 0\n",
                "system.geometry.d0_m",
            ),
            (
                "[devices]\ncount = 2\n[system.geometry]\npositions_m = [[0, 0], [1, 0]]\n\
                 tx_snr_db = 90\nexponent = 3\npl0_db = 40\nshadowing_db = -2\n",
                "system.geometry.shadowing_db",
            ),
            (
                "[devices]\ncount = 2\n[system.geometry]\npositions_m = [[0, 0], [1, 0]]\n\
                 tx_snr_db = nan\nexponent = 3\npl0_db = 40\n",
                "system.geometry.tx_snr_db",
            ),
        ];
        for (text, key) in cases {
            let (k, msg) = spec(text).network(2).unwrap_err();
            assert_eq!(k, key, "{text}: {msg}");
        }
    }
}
