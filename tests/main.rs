//! End-to-end tests: they run the `hedui` binary, and the server it starts, as a data officer,
//! an analyst, a reviewer or an attacker would. One test binary (`e2e`, built with the `hedui`
//! package so that it can run the binary it builds), one folder per suite.

mod common;

/// The web UI in headless Chromium.
mod browser;
/// The command line: rules, checks and cases, SQL, errors.
mod cli;
/// The rule suite on a Ballista cluster over the lake on object storage.
mod cluster;
/// Files delivered and ingested: accounting, formats, re-deliveries, crashes.
mod ingest;
/// Attacks on the guarantees of the policies, through every interface.
mod security;
/// `hedui serve`: the HTTP API, the Postgres wire protocol, the audit log, the workflow.
mod server;
