//! Device profiles and the roofline compute-time model.
//!
//! A shard's compute time is `max(FLOPs / (peak · compute_efficiency), bytes / (bandwidth ·
//! bandwidth_efficiency)) + kernels · kernel_overhead_s`. The shipped profiles
//! (`sim/plan/data/devices.toml`, each figure with its public source) cover Jetson AGX Orin, Orin NX,
//! Orin Nano, TX2, Raspberry Pi 5, a flagship and a mid-range phone, and an RTX 3090 server;
//! experiment files add their own with the same fields.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The shipped profiles.
pub const BUILTIN_TOML: &str = include_str!("../data/devices.toml");

/// Arithmetic the model's matrix products run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// FP32.
    F32,
    /// FP16 / BF16 (tensor cores where present).
    #[default]
    F16,
    /// INT8 dot products.
    Int8,
}

fn default_compute_eff() -> f64 {
    0.5
}
fn default_bw_eff() -> f64 {
    0.7
}
fn default_overhead() -> f64 {
    5e-6
}

/// One device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// Peak FP32 FLOP/s.
    pub peak_flops_f32: f64,
    /// Peak FP16 FLOP/s.
    pub peak_flops_f16: f64,
    /// Peak INT8 op/s.
    pub peak_ops_int8: f64,
    /// Memory bandwidth, bytes/s.
    pub mem_bandwidth: f64,
    /// Memory capacity, bytes.
    pub mem_capacity: f64,
    /// Compute energy, J per FLOP.
    pub energy_per_flop: f64,
    /// Maximum transmit power, dBm.
    pub max_tx_power_dbm: f64,
    /// Antennas.
    pub antennas: usize,
    /// Fraction of the peak FLOP/s reached by the model's kernels (default 0.5).
    #[serde(default = "default_compute_eff")]
    pub compute_efficiency: f64,
    /// Fraction of the memory bandwidth reached (default 0.7; airinfer's own decode reaches
    /// 0.53 of the measured bandwidth here, llama.cpp 0.6–0.7).
    #[serde(default = "default_bw_eff")]
    pub bandwidth_efficiency: f64,
    /// Fixed cost per kernel launch / matrix product, s (default 5 µs).
    #[serde(default = "default_overhead")]
    pub kernel_overhead_s: f64,
    /// Device-side cost of each message sent or received over a pipeline link, fixed part, s
    /// (serialisation, the runtime's locks and copies, the network stack): the device is busy
    /// for it, so it competes with compute (default 0). Ours, to express what runtimes such as
    /// MDI-LLM's pay per hop.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub msg_overhead_s: f64,
    /// Device-side cost per byte of each message sent or received, s/byte (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub msg_overhead_s_per_byte: f64,
    /// Sequential read rate of the storage the weights are loaded from, bytes/s (0: not
    /// given; a run that starts cold needs it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub storage_bandwidth: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Invalid profile data.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DeviceError {
    /// The TOML does not parse or has unknown fields.
    #[error("{source_name}: {message}")]
    Parse {
        /// File or origin.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A field is out of range.
    #[error("{source_name}: device '{device}', field '{field}' = {value}: {reason}")]
    Invalid {
        /// File or origin.
        source_name: String,
        /// Profile name.
        device: String,
        /// Field.
        field: &'static str,
        /// Value.
        value: f64,
        /// Why.
        reason: &'static str,
    },
    /// No such profile.
    #[error("unknown device profile '{0}' (known: {1})")]
    Unknown(String, String),
}

impl DeviceProfile {
    /// Peak rate for `p`.
    pub fn peak(&self, p: Precision) -> f64 {
        match p {
            Precision::F32 => self.peak_flops_f32,
            Precision::F16 => self.peak_flops_f16,
            Precision::Int8 => self.peak_ops_int8,
        }
    }

    /// Roofline time of `flops` and `bytes` moved in `kernels` kernels.
    pub fn compute_time_s(&self, flops: f64, bytes: f64, kernels: usize, p: Precision) -> f64 {
        let c = flops / (self.peak(p) * self.compute_efficiency);
        let m = bytes / (self.mem_bandwidth * self.bandwidth_efficiency);
        c.max(m) + kernels as f64 * self.kernel_overhead_s
    }

    /// Device time to send or receive one message of `bytes` (0 for no message).
    pub fn message_s(&self, bytes: f64) -> f64 {
        if bytes > 0.0 {
            self.msg_overhead_s + self.msg_overhead_s_per_byte * bytes
        } else {
            0.0
        }
    }

    /// Compute energy of `flops`, J.
    pub fn compute_energy_j(&self, flops: f64) -> f64 {
        flops * self.energy_per_flop
    }

    /// Maximum transmit power, W.
    pub fn max_tx_power_w(&self) -> f64 {
        10f64.powf((self.max_tx_power_dbm - 30.0) / 10.0)
    }

    /// Check every field's range; errors name `source_name`, the device and the field.
    pub fn validate(&self, source_name: &str, device: &str) -> Result<(), DeviceError> {
        let bad = |field: &'static str, value: f64, reason: &'static str| DeviceError::Invalid {
            source_name: source_name.into(),
            device: device.into(),
            field,
            value,
            reason,
        };
        for (field, v) in [
            ("peak_flops_f32", self.peak_flops_f32),
            ("peak_flops_f16", self.peak_flops_f16),
            ("peak_ops_int8", self.peak_ops_int8),
            ("mem_bandwidth", self.mem_bandwidth),
            ("mem_capacity", self.mem_capacity),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(field, v, "must be a positive number"));
            }
        }
        for (field, v) in [
            ("energy_per_flop", self.energy_per_flop),
            ("kernel_overhead_s", self.kernel_overhead_s),
            ("msg_overhead_s", self.msg_overhead_s),
            ("msg_overhead_s_per_byte", self.msg_overhead_s_per_byte),
            ("storage_bandwidth", self.storage_bandwidth),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(field, v, "must be finite and ≥ 0"));
            }
        }
        for (field, v) in [
            ("compute_efficiency", self.compute_efficiency),
            ("bandwidth_efficiency", self.bandwidth_efficiency),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(bad(field, v, "must be in (0, 1]"));
            }
        }
        if !self.max_tx_power_dbm.is_finite() {
            return Err(bad(
                "max_tx_power_dbm",
                self.max_tx_power_dbm,
                "must be finite",
            ));
        }
        if self.antennas == 0 {
            return Err(bad("antennas", 0.0, "need at least one antenna"));
        }
        Ok(())
    }
}

/// A set of named profiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profiles(pub BTreeMap<String, DeviceProfile>);

impl Profiles {
    /// The shipped library.
    pub fn builtin() -> Profiles {
        Profiles::parse(BUILTIN_TOML, "sim/plan/data/devices.toml")
            .expect("the shipped profiles are valid")
    }

    /// Parse a TOML table of profiles (`[name]` sections) from `source_name`.
    pub fn parse(text: &str, source_name: &str) -> Result<Profiles, DeviceError> {
        let map: BTreeMap<String, DeviceProfile> =
            toml::from_str(text).map_err(|e| DeviceError::Parse {
                source_name: source_name.into(),
                message: e.to_string().trim().replace('\n', " "),
            })?;
        for (name, p) in &map {
            p.validate(source_name, name)?;
        }
        Ok(Profiles(map))
    }

    /// Add (or replace) profiles.
    pub fn extend(&mut self, other: Profiles) {
        self.0.extend(other.0);
    }

    /// A profile by name.
    pub fn get(&self, name: &str) -> Result<&DeviceProfile, DeviceError> {
        self.0.get(name).ok_or_else(|| {
            DeviceError::Unknown(
                name.into(),
                self.0.keys().cloned().collect::<Vec<_>>().join(", "),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_parse_and_cover_the_issue_list() {
        let p = Profiles::builtin();
        for name in [
            "jetson-agx-orin",
            "jetson-orin-nx",
            "jetson-orin-nano",
            "jetson-tx2",
            "raspberry-pi-5",
            "phone-flagship",
            "phone-midrange",
            "rtx-3090-server",
        ] {
            let d = p.get(name).unwrap();
            assert!(d.peak_flops_f16 >= d.peak_flops_f32, "{name}");
            // machine balance (FLOP per byte) of real devices lies between 5 and 500
            let balance = d.peak_flops_f16 / d.mem_bandwidth;
            assert!((5.0..500.0).contains(&balance), "{name}: {balance}");
        }
        // every figure has a source comment in the file
        let text = BUILTIN_TOML;
        for section in text.split("\n[").skip(1) {
            assert!(
                section.contains("# "),
                "profile without a source: {section}"
            );
        }
        assert!(matches!(p.get("nope"), Err(DeviceError::Unknown(..))));
    }

    #[test]
    fn roofline_hand_cases() {
        let d = DeviceProfile {
            description: String::new(),
            peak_flops_f32: 1e12,
            peak_flops_f16: 2e12,
            peak_ops_int8: 4e12,
            mem_bandwidth: 100e9,
            mem_capacity: 8e9,
            energy_per_flop: 1e-12,
            max_tx_power_dbm: 20.0,
            antennas: 1,
            compute_efficiency: 0.5,
            bandwidth_efficiency: 0.5,
            kernel_overhead_s: 1e-6,
            msg_overhead_s: 0.0,
            msg_overhead_s_per_byte: 0.0,
            storage_bandwidth: 0.0,
        };
        // decode-like: 1 GFLOP, 1 GB → memory-bound: 1e9 / 50e9 = 20 ms, + 10 kernels × 1 µs
        let t = d.compute_time_s(1e9, 1e9, 10, Precision::F16);
        // closed forms below: a few f64 operations on O(1) values, rounding ~1e-16
        assert!((t - (0.02 + 1e-5)).abs() < 1e-12);
        // prefill-like: 1 TFLOP, 1 GB in FP32 → compute-bound: 1e12 / 0.5e12 = 2 s
        let t = d.compute_time_s(1e12, 1e9, 0, Precision::F32);
        assert!((t - 2.0).abs() < 1e-12);
        assert!((d.max_tx_power_w() - 0.1).abs() < 1e-12);
        assert!((d.compute_energy_j(1e12) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_profiles_name_file_device_and_field() {
        let text = BUILTIN_TOML.replacen("mem_bandwidth = 204.8e9", "mem_bandwidth = -1.0", 1);
        let e = Profiles::parse(&text, "my.toml").unwrap_err().to_string();
        assert!(
            e.contains("my.toml") && e.contains("jetson-agx-orin") && e.contains("mem_bandwidth"),
            "{e}"
        );
        let e = Profiles::parse("[x]\npeak_flops_f32 = 1.0\nbogus = 2\n", "u.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("u.toml") && e.contains("bogus"), "{e}");
        let e = Profiles::parse(
            &BUILTIN_TOML.replacen("antennas = 2", "antennas = 0", 1),
            "a.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("antennas"), "{e}");
    }
}
