//! airinfer, the application: the command line ([`cli`]), experiment campaigns ([`experiment`]:
//! spec, sweep, store, kinds, stats, figures), plots ([`plot`]), asset fetching
//! ([`assets`]) and progress bars. The simulation itself is `airinfer-sim`; the planners
//! `airinfer-plan`; the model `airinfer-llm`; radios and channels `airinfer-phy`.

pub mod assets;
pub mod cli;
pub mod experiment;
pub mod plot;
pub mod progress;
