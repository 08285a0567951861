//! Fuzz the channel-file reader (`.npy` and JSON, the files `--channels` and `channel.file`
//! take): arbitrary bytes must give channels or an error, never a panic, an abort or an
//! allocation the file's size does not justify. On success the first realisation goes through
//! the zero-forcing and MMSE designs, whose validation must hold every accepted channel.
#![no_main]
use airinfer_phy::aircomp::{mmse, zero_forcing, Problem, ReceiveDirection};
use airinfer_phy::channel::channels_from_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(channels) = channels_from_bytes(data) else {
        return;
    };
    let Some(first) = channels.first() else {
        return;
    };
    let k = first.len();
    if k == 0 || k > 16 || first[0].nrows() * first[0].ncols() > 256 {
        return;
    }
    let (sig, pow) = (vec![1.0; k], vec![1.0; k]);
    let p = Problem {
        channels: first,
        signal_var: &sig,
        power: &pow,
        noise_var: 1e-2,
        streams: 1,
    };
    if p.validate().is_ok() {
        if let Ok(t) = zero_forcing(&p, ReceiveDirection::Eigen) {
            assert!(!t.analytic_mse.is_nan(), "ZF MSE is NaN on an accepted channel");
        }
        if let Ok(t) = mmse(&p, 5) {
            assert!(!t.analytic_mse.is_nan(), "MMSE MSE is NaN on an accepted channel");
        }
    }
});
