//! airinfer-phy: the physical layer. Fading multiple-access channels, over-the-air computation
//! (AirComp) transceivers, digital links. Knows nothing of LLMs: it takes per-device real vectors
//! and returns what the receiver estimates, with the airtime it took.

pub mod aircomp;
pub mod channel;
pub mod csma;
pub mod digital;
pub mod fastrng;
pub mod montecarlo;
pub mod radio;
pub mod rng;
pub mod simd;
pub mod waveform;

/// Complex baseband sample / matrix entry.
pub type C64 = num_complex::Complex64;
/// A complex matrix, e.g. one device's channel H_k (N_r × N_t), a receive beamformer A (N_r × L)
/// or a precoder B_k (N_t × L).
pub type CMat = nalgebra::DMatrix<C64>;
/// A complex column vector.
pub type CVec = nalgebra::DVector<C64>;

// Link the system OpenBLAS/LAPACK that clarabel's SDP support calls (`--features clarabel`).
#[cfg(feature = "clarabel")]
extern crate openblas_src as _;
