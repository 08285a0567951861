//! Radios: what carries a waveform. The [`Radio`] trait is the seam between the waveform-level
//! AirComp path and whatever moves the samples: the software channel emulator (the simulated
//! path, always built) or real hardware through SoapySDR (cargo feature `soapy`).
//!
//! A radio has one or more transmit channels and one receive channel. An over-the-air
//! all-reduce hands it one burst per transmitting device; with a single TX channel the bursts
//! are summed after each device's own channel (the emulator applies the channels; on hardware
//! the caller passes already-summed baseband) and sent through one RF chain, with several TX
//! channels each burst goes out on its own.

use crate::C64;

#[cfg(feature = "soapy")]
pub mod soapy;

/// Centre frequency, sample rate and gains.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadioSettings {
    /// Centre frequency, Hz.
    pub frequency_hz: f64,
    /// Sample rate, samples/s.
    pub sample_rate: f64,
    /// Transmit gain, dB.
    pub tx_gain_db: f64,
    /// Receive gain, dB.
    pub rx_gain_db: f64,
}

impl Default for RadioSettings {
    fn default() -> Self {
        RadioSettings {
            frequency_hz: 2.45e9,
            sample_rate: 1e6,
            tx_gain_db: 0.0,
            rx_gain_db: 0.0,
        }
    }
}

/// What went wrong in a radio.
#[derive(Debug, thiserror::Error)]
pub enum RadioError {
    /// A setting the radio cannot take.
    #[error("radio setting {setting}: {reason}")]
    Setting {
        /// Which one.
        setting: String,
        /// Why.
        reason: String,
    },
    /// The device or driver failed.
    #[error("radio device: {0}")]
    Device(String),
    /// A stream timed out, overflowed or underflowed.
    #[error("radio stream: {0}")]
    Stream(String),
}

/// A received burst.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Complex baseband samples.
    pub samples: Vec<C64>,
    /// Hardware time of the first sample, ns (None when the radio has no clock).
    pub time_ns: Option<i64>,
}

/// A radio front end.
pub trait Radio {
    /// A short name for reports (`emulator`, `soapy:driver=uhd`, …).
    fn name(&self) -> String;
    /// Apply settings.
    fn configure(&mut self, s: &RadioSettings) -> Result<(), RadioError>;
    /// Transmit channels available.
    fn tx_channels(&self) -> usize;
    /// Send `bursts` (one per TX channel in use, at most [`Radio::tx_channels`]) and receive
    /// `rx_len` samples that start at the same instant as the transmission (the receive window
    /// must cover the bursts plus any delay; samples past the bursts are noise).
    fn transceive(&mut self, bursts: &[Vec<C64>], rx_len: usize) -> Result<Received, RadioError>;
}
