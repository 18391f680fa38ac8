//! `hedui audit verify`.

use std::path::Path;
use std::process::ExitCode;

use crate::error::{Error, Result};

pub fn verify(log: &Path) -> Result<ExitCode> {
    match hedui_audit::verify(log)? {
        Ok(v) => {
            println!(
                "审计日志完整 audit log intact: {} entries, last hash {}",
                v.entries, v.last_hash
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => Err(Error::Tampered {
            path: log.to_path_buf(),
            problem: problem.to_string(),
        }),
    }
}
