//! airinfer-phy: the physical layer. Fading multiple-access channels, over-the-air computation
//! (AirComp) transceivers, digital links. Knows nothing of LLMs: it takes per-device real vectors
//! and returns what the receiver estimates, with the airtime it took.
