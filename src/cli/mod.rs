//! The command line: what the user typed, checked and resolved.
//!
//! Data enters as the process's arguments and leaves as a `Config` (relay) or a
//! `ReplayConfig` (replay), with every name resolved and every size checked, so
//! that nothing after this can fail on a bad argument. A bad one becomes a `Usage`:
//! one clear line and the usage, for `main` to print and exit with 2.
//!
//! The files depend on each other in one direction: `addr` and `sizes` parse single
//! values (and `colour` the `--color` rules); `args` is clap's plain data, built from them; `config` resolves `args`
//! into what runs; `usage` words what clap or `config` refused; `generated` makes
//! the completion scripts and the man page from `args`.

pub mod addr;
pub mod args;
pub mod colour;
pub mod config;
pub mod generated;
pub mod sizes;
pub mod usage;
