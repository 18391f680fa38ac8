//! `hedui token`: a token signed with the server's key, for local use and tests.

use std::path::Path;
use std::process::ExitCode;

use hedui_auth::{Role, TokenRequest, parse_duration};

use crate::config::Config;
use crate::error::{Error, Result};

pub struct TokenArgs {
    pub roles: Vec<String>,
    pub region: Option<String>,
    pub ttl: String,
    pub subject: Option<String>,
    pub department: Option<String>,
}

pub fn run(args: TokenArgs, cfg: &Config, lake: &Path) -> Result<ExitCode> {
    let roles = args
        .roles
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::Usage)?;
    let ttl = parse_duration(&args.ttl).map_err(Error::Usage)?;
    let subject = args.subject.unwrap_or_else(|| {
        let user = std::env::var("USER").unwrap_or_else(|_| "local".into());
        format!("{}@{user}", roles[0])
    });
    let auth = super::access::authenticator(cfg, lake)?;
    let token = auth
        .issue(&TokenRequest {
            subject,
            roles,
            region: args.region,
            department: args.department,
            ttl,
        })
        .map_err(|e| match e {
            hedui_auth::Error::Sign(m) => Error::Usage(m),
            other => other.into(),
        })?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
