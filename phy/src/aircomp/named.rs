//! The transceiver designs by name, with the settings both fronts use (`airinfer aircomp design
//! --design …` and the Python package's `airinfer.aircomp.design`): the same name, inputs and
//! seed give the same bits from either.

use super::{mmse, sca, sdr, zero_forcing, AirCompError, Problem, ReceiveDirection, Transceiver};
use crate::rng::{self, component};

/// A design that returns one receive beamformer (uncoded FDMA, with one combiner per device, is
/// not one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedDesign {
    /// Zero-forcing, receive beamformer = principal eigenvector of Σ H_kH_kᴴ.
    Zf,
    /// Zero-forcing, receive beamformer = normalised sum of channel directions.
    ZfSum,
    /// MMSE transceivers by alternating optimisation (100 iterations).
    Mmse,
    /// Successive convex approximation (100 iterations).
    Sca,
    /// Semidefinite relaxation + Gaussian randomisation (100 candidates).
    Sdr,
}

impl NamedDesign {
    /// Every design with its name.
    pub const ALL: [(&'static str, NamedDesign); 5] = [
        ("zf", NamedDesign::Zf),
        ("zf_sum", NamedDesign::ZfSum),
        ("mmse", NamedDesign::Mmse),
        ("sca", NamedDesign::Sca),
        ("sdr", NamedDesign::Sdr),
    ];

    /// From its name (`zf-sum` and `zf_sum` alike); the error lists the names.
    pub fn parse(name: &str) -> Result<NamedDesign, String> {
        if name == "fast" {
            return Err("design \"fast\" is now called \"sca\"".into());
        }
        let norm = name.replace('-', "_");
        Self::ALL
            .iter()
            .find(|(n, _)| *n == norm)
            .map(|&(_, d)| d)
            .ok_or_else(|| {
                let names: Vec<String> = Self::ALL.iter().map(|(n, _)| format!("`{n}`")).collect();
                format!(
                    "unknown design `{name}`, expected one of {}",
                    names.join(", ")
                )
            })
    }

    /// Design for `p`; SDR's randomisation draws from the stream (seed, RANDOMISATION, index).
    pub fn run(self, p: &Problem, seed: u64, index: u64) -> Result<Transceiver, AirCompError> {
        match self {
            NamedDesign::Zf => zero_forcing(p, ReceiveDirection::Eigen),
            NamedDesign::ZfSum => zero_forcing(p, ReceiveDirection::SumDirections),
            NamedDesign::Mmse => mmse(p, 100),
            NamedDesign::Sca => sca(p, 100),
            NamedDesign::Sdr => sdr(
                p,
                100,
                &mut rng::stream(seed, &[component::RANDOMISATION, index]),
            )
            .map(|d| d.transceiver),
        }
    }
}
