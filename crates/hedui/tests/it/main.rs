//! End-to-end tests: they run the `hedui` binary as a data officer or analyst would.

mod common;

mod accounting;
mod cases;
mod cli_errors;
mod crash;
mod formats;
mod redelivery;
mod rules;
mod server;
mod sql;
