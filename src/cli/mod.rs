//! The command line: what the user typed, checked and resolved.
//!
//! Data enters as the process's arguments and leaves as a `Config` (relay) or a
//! `ReplayConfig` (replay), with every name resolved and every size checked, so
//! that nothing after this can fail on a bad argument. A bad one becomes one clear
//! line and the usage, for `main` to print and exit with 2.

pub mod addr;
pub mod args;
pub mod config;
