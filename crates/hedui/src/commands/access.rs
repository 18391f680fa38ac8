//! What `serve` and `sql --token` share: the authenticator, the policy engine and the audit log
//! of a lake, from the city's settings.

use std::path::Path;
use std::sync::Arc;

use hedui_audit::AuditLog;
use hedui_auth::Authenticator;
use hedui_engine::Engine;
use hedui_policy::PolicyEngine;

use crate::config::Config;
use crate::error::{Error, Result};

pub struct Access {
    pub auth: Arc<Authenticator>,
    pub policy: Arc<PolicyEngine>,
    pub audit: AuditLog,
}

pub fn authenticator(cfg: &Config, lake: &Path) -> Result<Authenticator> {
    Ok(Authenticator::from_config(&cfg.auth_config(lake))?)
}

pub async fn open(cfg: &Config, config_file: Option<&Path>, lake: &Path) -> Result<Access> {
    if !lake.join(hedui_lake::LOG_DIR).is_dir() {
        return Err(Error::NoLake(lake.to_path_buf()));
    }
    let auth = Arc::new(authenticator(cfg, lake)?);
    let engine = Arc::new(Engine::open_with(lake, &cfg.engine_options(config_file)?).await?);
    let secret = hedui_auth::load_or_create_secret(&cfg.pseudonym_key_path(lake))?;
    let audit_path = cfg.audit_path(lake);
    let policy = Arc::new(PolicyEngine::new(
        engine,
        &cfg.access,
        &secret,
        Some(audit_path.clone()),
    )?);
    let audit = cfg.open_audit(lake)?;
    Ok(Access {
        auth,
        policy,
        audit,
    })
}
