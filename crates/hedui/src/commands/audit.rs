//! `hedui audit verify` and `hedui audit export`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::Config;
use crate::error::{Error, Result};

/// The checkpoint files of `log`: beside it, and in each configured copy.
fn checkpoint_files(cfg: &Config, log: &Path) -> Vec<PathBuf> {
    let name = log.file_name().unwrap_or_default();
    std::iter::once(hedui_audit::checkpoint_path(log))
        .chain(
            cfg.audit
                .checkpoint_copies
                .iter()
                .map(|d| hedui_audit::checkpoint_path(&d.join(name))),
        )
        .collect()
}

pub fn verify(cfg: &Config, log: &Path, public_key: Option<&Path>) -> Result<ExitCode> {
    let result = match public_key {
        Some(key) => {
            let key = hedui_audit::read_public_key(key)?;
            let files = checkpoint_files(cfg, log);
            hedui_audit::verify_signed(
                log,
                &hedui_audit::SignedCheck {
                    public_key: &key,
                    checkpoints: &files,
                    window: cfg.audit.checkpoint_window.unwrap_or(512),
                },
            )?
        }
        None => hedui_audit::verify(log)?,
    };
    match result {
        Ok(v) => {
            println!(
                "审计日志完整 audit log intact: {} entries, last hash {}{}",
                v.entries,
                v.last_hash,
                if public_key.is_some() {
                    "; every signed checkpoint matches"
                } else {
                    " (chain only: give --public-key to check the signed checkpoints)"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => Err(Error::Tampered {
            path: log.to_path_buf(),
            problem: problem.to_string(),
        }),
    }
}

pub fn export(cfg: &Config, lake: &Path, log: &Path, out: &Path) -> Result<ExitCode> {
    let io = |path: &Path, source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let target = out.join("hedui-audit.log");
    // Checkpoints first: entries written meanwhile are then merely past the last checkpoint.
    let mut lines = std::collections::BTreeSet::new();
    for f in checkpoint_files(cfg, log) {
        for c in hedui_audit::checkpoint::read_checkpoints(&f)? {
            lines.insert((
                c.seq,
                serde_json::to_string(&c).expect("checkpoint serialises"),
            ));
        }
    }
    let checkpoints: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
    let cp = hedui_audit::checkpoint_path(&target);
    std::fs::write(&cp, checkpoints).map_err(|e| io(&cp, e))?;
    std::fs::copy(log, &target).map_err(|e| io(log, e))?;
    let public = cfg.audit_signing_key(lake).with_extension("pub");
    let public_out = out.join("hedui-audit-signing.pub");
    std::fs::copy(&public, &public_out).map_err(|e| io(&public, e))?;
    println!(
        "审计日志摘录 audit extract written to {}: check with `hedui audit verify --log {} --public-key {}` (compare the public key with the one published by the hub)",
        out.display(),
        target.display(),
        public_out.display()
    );
    Ok(ExitCode::SUCCESS)
}
