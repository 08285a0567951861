//! Real hardware through SoapySDR (cargo feature `soapy`, needs the SoapySDR C library and
//! pkg-config at build time).
//!
//! One RX channel (0) and the device's TX channels, CF32 on the wire. A transceive is timed
//! when the device has a hardware clock: the receive stream is armed and the bursts are
//! scheduled at the same instant `t0 = now + lead`, and the receive window is cut from the
//! sample timestamps so that its first sample is the one at `t0`. Without a clock the receive
//! stream is started, the bursts written at once and the window taken as it comes
//! (`time_ns: None`): alignment is then up to the caller.
//!
//! Tests run against the `airinfer-loopback` SoapySDR module (a device that loops TX back to
//! RX with a delay, gain and noise), e.g. `SoapyRadio::open("driver=airinfer-loopback,delay=7")`.

use std::time::{Duration, Instant};

use num_complex::Complex;
use soapysdr::{Device, Direction, ErrorCode, RxStream, TxStream};

use super::{Radio, RadioError, RadioSettings, Received};
use crate::C64;

/// The sample type on the wire (SoapySDR's `CF32`).
type Wire = Complex<f32>;

/// Per-call stream timeout.
const CALL_TIMEOUT_US: i64 = 100_000;
/// Allowed relative difference between the requested and the device's sample rate.
const RATE_TOLERANCE: f64 = 1e-6;

/// A SoapySDR device as a [`Radio`].
pub struct SoapyRadio {
    args: String,
    device: Device,
    tx_channels: usize,
    has_time: bool,
    timed: bool,
    lead_ns: i64,
    sample_rate: f64,
    rx: Option<RxStream<Wire>>,
    /// The TX stream and how many channels (0..n) it carries.
    tx: Option<(usize, TxStream<Wire>)>,
}

impl std::fmt::Debug for SoapyRadio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoapyRadio")
            .field("args", &self.args)
            .field("tx_channels", &self.tx_channels)
            .field("timed", &self.timed)
            .field("sample_rate", &self.sample_rate)
            .finish_non_exhaustive()
    }
}

impl SoapyRadio {
    /// Open the device that SoapySDR finds for `args` (`key=value,…`, e.g. `driver=uhd` or
    /// `driver=airinfer-loopback,delay=7`).
    pub fn open(args: &str) -> Result<Self, RadioError> {
        // The crate's Args::from(&str) panics on NUL bytes: refuse them here.
        if args.contains('\0') {
            return Err(RadioError::Setting {
                setting: "device args".into(),
                reason: "contains a NUL byte".into(),
            });
        }
        let device = Device::new(args).map_err(|e| device_err(&format!("open `{args}`"), e))?;
        let rx_channels = device
            .num_channels(Direction::Rx)
            .map_err(|e| device_err("count RX channels", e))?;
        if rx_channels == 0 {
            return Err(RadioError::Device(format!("`{args}` has no RX channel")));
        }
        let tx_channels = device
            .num_channels(Direction::Tx)
            .map_err(|e| device_err("count TX channels", e))?;
        let has_time = device
            .has_hardware_time(None)
            .map_err(|e| device_err("ask for hardware time", e))?;
        let sample_rate = device
            .sample_rate(Direction::Rx, 0)
            .map_err(|e| device_err("read sample rate (RX 0)", e))?;
        Ok(SoapyRadio {
            args: args.to_string(),
            device,
            tx_channels,
            has_time,
            timed: has_time,
            lead_ns: 100_000_000,
            sample_rate,
            rx: None,
            tx: None,
        })
    }

    /// How far ahead of the device clock a timed transceive is scheduled (default 100 ms).
    pub fn set_lead_time(&mut self, lead: Duration) {
        self.lead_ns = i64::try_from(lead.as_nanos()).unwrap_or(i64::MAX / 4);
    }

    /// Use timed transceives (the default when the device has a hardware clock) or not.
    pub fn set_timed(&mut self, timed: bool) -> Result<(), RadioError> {
        if timed && !self.has_time {
            return Err(RadioError::Setting {
                setting: "timed transceive".into(),
                reason: format!("`{}` has no hardware time", self.args),
            });
        }
        self.timed = timed;
        Ok(())
    }

    /// The device's sample rate, as it reported it.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// The hardware time now, ns (None without a hardware clock).
    pub fn hardware_time_ns(&self) -> Result<Option<i64>, RadioError> {
        if !self.has_time {
            return Ok(None);
        }
        self.device
            .get_hardware_time(None)
            .map(Some)
            .map_err(|e| device_err("read hardware time", e))
    }

    /// The cached RX stream on channel 0, inactive.
    fn rx_stream(&mut self) -> Result<&mut RxStream<Wire>, RadioError> {
        if self.rx.is_none() {
            let s = self
                .device
                .rx_stream::<Wire>(&[0])
                .map_err(|e| device_err("set up RX stream", e))?;
            self.rx = Some(s);
        }
        let rx = self
            .rx
            .as_mut()
            .ok_or_else(|| RadioError::Device("RX stream missing".into()))?;
        if rx.active() {
            rx.deactivate(None)
                .map_err(|e| stream_err("deactivate RX stream", e))?;
        }
        Ok(rx)
    }

    /// The cached TX stream on channels 0..n, active.
    fn tx_stream(&mut self, n: usize) -> Result<&mut TxStream<Wire>, RadioError> {
        if self.tx.as_ref().map(|(k, _)| *k) != Some(n) {
            self.tx = None; // dropping deactivates and closes the old one
            let channels: Vec<usize> = (0..n).collect();
            let mut s = self
                .device
                .tx_stream::<Wire>(&channels)
                .map_err(|e| device_err(&format!("set up TX stream on {n} channel(s)"), e))?;
            s.activate(None)
                .map_err(|e| stream_err("activate TX stream", e))?;
            self.tx = Some((n, s));
        }
        self.tx
            .as_mut()
            .map(|(_, s)| s)
            .ok_or_else(|| RadioError::Device("TX stream missing".into()))
    }

    /// Read `rx_len` samples from the active RX stream. With `t0`, the window starts at the
    /// sample stamped `t0`: earlier samples are dropped, a gap is an error.
    fn read_window(
        &mut self,
        rx_len: usize,
        t0: Option<i64>,
        deadline: Instant,
    ) -> Result<Vec<Wire>, RadioError> {
        let rate = self.sample_rate;
        let rx = self
            .rx
            .as_mut()
            .ok_or_else(|| RadioError::Device("RX stream missing".into()))?;
        let mut out: Vec<Wire> = Vec::with_capacity(rx_len);
        let mut chunk = vec![Wire::new(0.0, 0.0); rx_len.clamp(1, 1 << 16)];
        while out.len() < rx_len {
            let want = (rx_len - out.len()).min(chunk.len());
            let n = match rx.read(&mut [&mut chunk[..want]], CALL_TIMEOUT_US) {
                Ok(n) => n,
                Err(e) if e.code == ErrorCode::Timeout && Instant::now() < deadline => continue,
                Err(e) => {
                    return Err(stream_err(
                        &format!("read RX after {} of {rx_len} samples", out.len()),
                        e,
                    ))
                }
            };
            let mut got = &chunk[..n];
            if let Some(t0) = t0 {
                // Index of this chunk's first sample in the window.
                let at = ((rx.time_ns() - t0) as f64 * rate / 1e9).round() as i64;
                if at < 0 && out.is_empty() {
                    got = &got[got.len().min(at.unsigned_abs() as usize)..];
                } else if at != out.len() as i64 {
                    return Err(RadioError::Stream(format!(
                        "RX samples missing: chunk stamped at window sample {at}, expected {} (late start or overflow)",
                        out.len()
                    )));
                }
            }
            out.extend_from_slice(&got[..got.len().min(rx_len - out.len())]);
            if Instant::now() > deadline && out.len() < rx_len {
                return Err(RadioError::Stream(format!(
                    "RX gave {} of {rx_len} samples before the deadline",
                    out.len()
                )));
            }
        }
        Ok(out)
    }
}

impl Radio for SoapyRadio {
    fn name(&self) -> String {
        format!("soapy:{}", self.args)
    }

    fn configure(&mut self, s: &RadioSettings) -> Result<(), RadioError> {
        let bad = |setting: &str, reason: String| RadioError::Setting {
            setting: setting.into(),
            reason,
        };
        if !(s.sample_rate.is_finite() && s.sample_rate > 0.0) {
            return Err(bad(
                "sample_rate",
                format!("{} is not a positive rate", s.sample_rate),
            ));
        }
        if !(s.frequency_hz.is_finite() && s.frequency_hz >= 0.0) {
            return Err(bad(
                "frequency_hz",
                format!("{} is not a frequency", s.frequency_hz),
            ));
        }
        if !(s.tx_gain_db.is_finite() && s.rx_gain_db.is_finite()) {
            return Err(bad("gain", "gains must be finite".into()));
        }
        let chains = std::iter::once((Direction::Rx, 0, s.rx_gain_db))
            .chain((0..self.tx_channels).map(|c| (Direction::Tx, c, s.tx_gain_db)));
        for (dir, ch, gain) in chains {
            let chain = format!("{dir:?} {ch}");
            let fail =
                |what: &str, e: soapysdr::Error| bad(&format!("{what} ({chain})"), soapy_msg(&e));
            self.device
                .set_sample_rate(dir, ch, s.sample_rate)
                .map_err(|e| fail("sample_rate", e))?;
            self.device
                .set_frequency(dir, ch, s.frequency_hz, ())
                .map_err(|e| fail("frequency_hz", e))?;
            self.device
                .set_gain(dir, ch, gain)
                .map_err(|e| fail("gain", e))?;
            let rate = self
                .device
                .sample_rate(dir, ch)
                .map_err(|e| fail("sample_rate read-back", e))?;
            if ((rate - s.sample_rate) / s.sample_rate).abs() > RATE_TOLERANCE {
                return Err(bad(
                    &format!("sample_rate ({chain})"),
                    format!(
                        "asked for {} S/s, the device runs at {rate} S/s",
                        s.sample_rate
                    ),
                ));
            }
            self.sample_rate = rate;
        }
        Ok(())
    }

    fn tx_channels(&self) -> usize {
        self.tx_channels
    }

    fn transceive(&mut self, bursts: &[Vec<C64>], rx_len: usize) -> Result<Received, RadioError> {
        if bursts.len() > self.tx_channels {
            return Err(RadioError::Setting {
                setting: "tx channels".into(),
                reason: format!(
                    "{} bursts but `{}` has {} TX channel(s): sum the bursts (each after its own channel) \
                     into one per TX channel before transceive",
                    bursts.len(),
                    self.args,
                    self.tx_channels
                ),
            });
        }
        if !(self.sample_rate.is_finite() && self.sample_rate > 0.0) {
            return Err(RadioError::Setting {
                setting: "sample_rate".into(),
                reason: "unknown: configure first".into(),
            });
        }
        // One equal-length buffer per channel (the crate asserts equal lengths): pad with zeros.
        let width = bursts.iter().map(Vec::len).max().unwrap_or(0);
        let mut wire: Vec<Vec<Wire>> = Vec::with_capacity(bursts.len());
        for (i, b) in bursts.iter().enumerate() {
            let mut w = Vec::with_capacity(width);
            for z in b {
                let (re, im) = (z.re as f32, z.im as f32);
                if !(re.is_finite() && im.is_finite()) {
                    return Err(RadioError::Setting {
                        setting: format!("burst {i}"),
                        reason: format!("sample {z} is not finite in f32"),
                    });
                }
                w.push(Wire::new(re, im));
            }
            w.resize(width, Wire::new(0.0, 0.0));
            wire.push(w);
        }

        let t0 = if self.timed {
            let now = self
                .device
                .get_hardware_time(None)
                .map_err(|e| device_err("read hardware time", e))?;
            Some(now.saturating_add(self.lead_ns))
        } else {
            None
        };
        let airtime_s = (width.max(rx_len) as f64) / self.sample_rate + self.lead_ns as f64 / 1e9;
        let deadline = Instant::now() + Duration::from_secs_f64(airtime_s.min(3600.0) + 1.0);

        // Arm RX first, then send; the stream is deactivated whatever happens.
        self.rx_stream()?
            .activate(t0)
            .map_err(|e| stream_err("activate RX stream", e))?;
        let result = (|| {
            if width > 0 {
                let tx = self.tx_stream(wire.len())?;
                let refs: Vec<&[Wire]> = wire.iter().map(Vec::as_slice).collect();
                // at_ns sets SOAPY_SDR_HAS_TIME, end_burst sets SOAPY_SDR_END_BURST.
                tx.write_all(&refs, t0, true, 1_000_000)
                    .map_err(|e| stream_err("write TX burst", e))?;
            }
            self.read_window(rx_len, t0, deadline)
        })();
        let stop = match self.rx.as_mut() {
            Some(rx) if rx.active() => rx
                .deactivate(None)
                .map_err(|e| stream_err("deactivate RX stream", e)),
            _ => Ok(()),
        };
        let samples = result?;
        stop?;
        Ok(Received {
            samples: samples
                .iter()
                .map(|w| C64::new(f64::from(w.re), f64::from(w.im)))
                .collect(),
            time_ns: t0,
        })
    }
}

/// A SoapySDR error's text (its message is often empty for stream return codes).
fn soapy_msg(e: &soapysdr::Error) -> String {
    if e.message.is_empty() {
        format!("{:?}", e.code)
    } else {
        format!("{:?}: {}", e.code, e.message)
    }
}

/// A device-level failure in operation `op`.
fn device_err(op: &str, e: soapysdr::Error) -> RadioError {
    RadioError::Device(format!("{op}: {}", soapy_msg(&e)))
}

/// A failure in stream operation `op`: timeouts, overflows, late bursts and the like are
/// stream errors, anything else is the device's.
fn stream_err(op: &str, e: soapysdr::Error) -> RadioError {
    match e.code {
        ErrorCode::Timeout
        | ErrorCode::StreamError
        | ErrorCode::Corruption
        | ErrorCode::Overflow
        | ErrorCode::TimeError
        | ErrorCode::Underflow => RadioError::Stream(format!("{op}: {}", soapy_msg(&e))),
        _ => device_err(op, e),
    }
}
