//! The over-the-air sum of real vectors through the fading MAC (normalise, precode, channel and
//! noise, combine, de-normalise) and the all-reduce built on it.

use super::{bad, deliver, mse, AirCompError, Downlink, Problem, Transceiver};
use crate::channel::cn_matrix;
use crate::{CMat, C64};

/// The uplink an over-the-air sum goes through.
#[derive(Debug, Clone, Copy)]
pub struct OtaLink<'a> {
    /// True channel of each device (N_r × N_t): what the signals go through.
    pub channels: &'a [CMat],
    /// What the transceiver design is computed from (imperfect CSI, e.g. from
    /// [`crate::channel::estimate`]); `None` means perfect CSI.
    pub csi: Option<&'a [CMat]>,
    /// Power budget of each device per channel use.
    pub power: &'a [f64],
    /// Receiver noise variance σ².
    pub noise_var: f64,
    /// Streams L.
    pub streams: usize,
}

/// Result of one over-the-air sum of real vectors.
#[derive(Debug, Clone)]
pub struct OtaOutcome {
    /// The AP's estimate of Σ_k x_k.
    pub estimate: Vec<f32>,
    /// Channel uses (complex symbols per stream; 2L reals per use).
    pub channel_uses: usize,
    /// Side-information bytes sent digitally (each device's mean and scale as f32).
    pub side_info_bytes: usize,
    /// The design's analytic MSE per complex symbol (of the normalised sum), as the design
    /// believes it from its CSI.
    pub analytic_mse: f64,
    /// The same closed form evaluated on the true channels (equal to `analytic_mse` with
    /// perfect CSI): the MSE the estimate actually has in expectation.
    pub true_mse: f64,
}

/// Over-the-air sum of K real vectors: each device removes its mean (sent digitally as side
/// information, with its variance), packs pairs of reals into complex symbols spread over L
/// streams, precodes with the design computed from the CSI for the devices' variances and
/// budgets; the signals cross the true channels; the AP combines, adds the means back and unpacks.
/// `true_mse` is exact in expectation when the packed symbols are circular and uncorrelated
/// across devices; with zero-forcing and perfect CSI only the noise term remains, which holds
/// for any signal.
pub fn over_the_air_sum<R: rand::Rng + ?Sized>(
    partials: &[&[f32]],
    link: &OtaLink,
    mut design: impl FnMut(&Problem) -> Result<Transceiver, AirCompError>,
    rng: &mut R,
) -> Result<OtaOutcome, AirCompError> {
    let channels = link.channels;
    let k = partials.len();
    let (n, csi) = check_partials(partials, link)?;
    let l = link.streams.max(1);
    let uses = n.div_ceil(2).div_ceil(l);
    let (means, var) = centre_stats(partials);
    let believed = Problem {
        channels: csi,
        signal_var: &var,
        power: link.power,
        noise_var: link.noise_var,
        streams: l,
    };
    let t = design(&believed)?;
    let truth = Problem {
        channels,
        ..believed
    };
    truth.validate()?;
    let true_mse = mse(&truth, &t.receive_beamformer, &t.precoders);
    let nr = channels[0].nrows();
    let mut y = cn_matrix(nr, uses, rng) * C64::new(link.noise_var.sqrt(), 0.0);
    for ((x, &m), (h, bk)) in partials
        .iter()
        .zip(&means)
        .zip(channels.iter().zip(&t.precoders))
    {
        y += (h * bk) * pack(x, m, l, uses);
    }
    let est = t.receive_beamformer.adjoint() * y;
    let estimate = unpack(&est, means.iter().sum(), n);
    Ok(OtaOutcome {
        estimate,
        channel_uses: uses,
        side_info_bytes: 8 * k,
        analytic_mse: t.analytic_mse,
        true_mse,
    })
}

/// Check the partial vectors against the link: one per channel, equal lengths, CSI of the
/// channels' shape. Returns the length and the CSI the design sees.
pub(crate) fn check_partials<'a>(
    partials: &[&[f32]],
    link: &OtaLink<'a>,
) -> Result<(usize, &'a [CMat]), AirCompError> {
    let channels = link.channels;
    let k = partials.len();
    if k != channels.len() {
        return bad(format!(
            "{k} partial vectors for {} channels",
            channels.len()
        ));
    }
    let csi = link.csi.unwrap_or(channels);
    if csi.len() != k
        || csi
            .iter()
            .zip(channels)
            .any(|(a, b)| a.shape() != b.shape())
    {
        return bad("the CSI does not have the shape of the channels");
    }
    let n = partials.first().map_or(0, |v| v.len());
    if partials.iter().any(|v| v.len() != n) {
        return bad("partial vectors differ in length");
    }
    Ok((n, csi))
}

/// Each device's mean, and the variance of its centred complex symbols (two real components
/// each of the device's variance); both 0 for empty vectors.
pub fn centre_stats(partials: &[&[f32]]) -> (Vec<f64>, Vec<f64>) {
    partials
        .iter()
        .map(|v| {
            if v.is_empty() {
                return (0.0, 0.0);
            }
            let n = v.len() as f64;
            let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = 2.0 * v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
            (m, var)
        })
        .unzip()
}

/// `x − mean` as complex symbols on L streams: symbol q = use·L + stream carries reals 2q and
/// 2q + 1 (zero past the end).
pub(crate) fn pack(x: &[f32], mean: f64, l: usize, uses: usize) -> CMat {
    CMat::from_fn(l, uses, |st, u| {
        let q = u * l + st;
        let re = x.get(2 * q).map_or(0.0, |&v| v as f64 - mean);
        let im = x.get(2 * q + 1).map_or(0.0, |&v| v as f64 - mean);
        C64::new(re, im)
    })
}

/// The inverse of [`pack`] for an estimate of a sum: n reals, `offset` (the summed means) added.
pub(crate) fn unpack(est: &CMat, offset: f64, n: usize) -> Vec<f32> {
    let l = est.nrows();
    (0..n)
        .map(|i| {
            let q = i / 2;
            let z = est[(q % l, q / l)];
            ((if i % 2 == 0 { z.re } else { z.im }) + offset) as f32
        })
        .collect()
}

/// One over-the-air all-reduce: the uplink sum ([`over_the_air_sum`]) then the downlink
/// ([`deliver`]) back to every device.
#[derive(Debug, Clone)]
pub struct AllReduceOutcome {
    /// The uplink part.
    pub uplink: OtaOutcome,
    /// What each device ends up with.
    pub per_device: Vec<Vec<f32>>,
    /// Downlink airtime, s.
    pub downlink_airtime_s: f64,
}

/// Uplink over the air, then `downlink` to all K devices.
pub fn over_the_air_all_reduce<R: rand::Rng + ?Sized>(
    partials: &[&[f32]],
    link: &OtaLink,
    design: impl FnMut(&Problem) -> Result<Transceiver, AirCompError>,
    downlink: &Downlink,
    rng: &mut R,
) -> Result<AllReduceOutcome, AirCompError> {
    let uplink = over_the_air_sum(partials, link, design, rng)?;
    let d = deliver(&uplink.estimate, partials.len(), downlink, rng)?;
    Ok(AllReduceOutcome {
        uplink,
        per_device: d.per_device,
        downlink_airtime_s: d.airtime_s,
    })
}
