//! The integration suite, one binary: every module drives real guest components through
//! a real host. One process builds each guest once and runs all modules' tests side by
//! side, instead of one process (and one link of the host) per file.

mod agent_model;
mod architecture;
mod authorize;
mod cli;
mod core_path;
mod dev;
mod dispatch;
mod edge;
mod isolation;
mod languages;
mod policy;
mod providers;
mod pyflue;
mod scale_out;
mod serve;
mod store;
mod tenants;
mod workflows;
