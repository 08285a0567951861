//! Which SIMD paths `phy`'s kernels (the Gaussian generator, the AirComp Monte-Carlo block) may
//! take. `AIRINFER_SIMD=portable|avx2|avx512` caps them, as it caps `airinfer-llm`'s kernels, so
//! one machine can test every path its CPU has; unset, each kernel takes the best path the CPU
//! has. Read once per process.

use std::sync::OnceLock;

/// Rank of the cap: 0 portable, 1 AVX2, 2 AVX-512 (an unset or unknown value does not cap).
fn cap() -> u8 {
    static C: OnceLock<u8> = OnceLock::new();
    *C.get_or_init(|| match std::env::var("AIRINFER_SIMD").as_deref() {
        Ok("portable") => 0,
        Ok("avx2") => 1,
        _ => 2,
    })
}

/// AVX2 + FMA may be used.
pub fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        cap() >= 1 && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// AVX-512F may be used.
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        cap() >= 2 && std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The path [`crate::fastrng::Normals::fill`] takes on this machine under the cap.
pub fn fastrng_path() -> &'static str {
    if avx512() {
        "avx512"
    } else if avx2() {
        "avx2"
    } else {
        "portable"
    }
}
