//! `hedui.toml`: one file for a city's settings, every field with a default. Environment variables
//! override the file, command-line flags override both.
//!
//! ```toml
//! [lake]
//! path = "lake"
//!
//! [sources]
//! connectors = "connectors"  # live sources with a `schedule` are pulled by `hedui serve`
//!
//! [engine]
//! memory_limit = "4GiB"      # beyond it, queries and rules spill to disk
//! spill_dir = "/var/tmp/hedui-spill"
//! target_partitions = 0      # 0: one per core
//! mode = "local"             # "ballista": whole rule runs on a Ballista cluster
//! scheduler = "df://scheduler:50050"  # with mode = "ballista"; "standalone": one in-process
//!
//! [rules]
//! dir = "city-rules"         # the city's own rules, added to the built-in ones
//! [rules.parameters]
//! dibao_line = "850"
//!
//! [server]
//! http = "127.0.0.1:8080"
//! pg = "127.0.0.1:5433"      # empty: no Postgres wire protocol
//! precompute_person_checks = true
//!
//! [cases]
//! url = "postgres://hedui@db/hub"   # default: sqlite hedui-cases.db beside the lake
//! [cases.workflow]           # see hedui_cases::WorkflowConfig
//! default_deadline_days = 30
//! escalation_days = 7
//! deadline_days = { R1 = 15 }
//! dispatch = [{ region = "420502", assignee = "xiling-dibao-team" }]
//!
//! [auth]                     # see hedui_auth::AuthConfig
//! algorithm = "HS256"
//!
//! [access]                   # see hedui_policy::AccessConfig
//! small_cell_threshold = 5
//! [[access.policy]]
//! roles = ["analyst"]
//! datasets = ["*"]
//! rows = "all"
//! unmask = "never"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hedui_engine::{Cluster, EngineOptions, parse_bytes};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Where the files that belong with a lake (its case store, keys, audit log) are by default: the
/// lake directory's parent, or the working directory for a lake on object storage.
pub fn beside_lake(lake: &Path) -> &Path {
    if hedui_lake::object_store_url(lake).is_some() {
        return Path::new(".");
    }
    lake.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Whether `lake` is one: a directory with a commit log, or a URL on object storage (whose
/// log is read when the engine opens it).
pub fn lake_exists(lake: &Path) -> bool {
    hedui_lake::object_store_url(lake).is_some() || lake.join(hedui_lake::LOG_DIR).is_dir()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub lake: LakeConfig,
    pub sources: SourcesConfig,
    pub engine: EngineConfig,
    pub rules: RulesConfig,
    pub cases: CasesConfig,
    pub server: ServerConfig,
    pub auth: hedui_auth::AuthConfig,
    pub access: hedui_policy::AccessConfig,
    pub audit: AuditConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The HTTP API's address.
    pub http: String,
    /// The Postgres wire protocol's address; empty turns it off.
    pub pg: String,
    /// The secret behind pseudonymous ID keys (made on first start; default beside the lake).
    pub pseudonym_key_file: Option<PathBuf>,
    /// Run the person rules over the whole city once per lake version, so that a person check
    /// at application time is a lookup (milliseconds) instead of five rule queries.
    pub precompute_person_checks: bool,
    /// A client must send a request's headers within this (idle keep-alive connections
    /// included), e.g. `10s`; else the connection is closed.
    pub header_timeout: String,
    /// Connections held at once per listener; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http: "127.0.0.1:8080".into(),
            pg: "127.0.0.1:5433".into(),
            pseudonym_key_file: None,
            precompute_person_checks: true,
            header_timeout: "10s".into(),
            max_connections: 512,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The audit log (default: `hedui-audit.log` beside the lake).
    pub path: Option<PathBuf>,
    /// The Ed25519 key that signs checkpoints (default: `hedui-audit-signing.key` beside the
    /// lake; keep it where those who can write the log cannot). Its public half is written
    /// beside it (`.pub`).
    pub signing_key_file: Option<PathBuf>,
    /// Directories that get a copy of every checkpoint (another disk, a mount of another
    /// machine), so that cutting the checkpoints beside the log hides nothing.
    pub checkpoint_copies: Vec<PathBuf>,
    /// Entries that may follow the last checkpoint (a crash between writing entries and their
    /// checkpoint).
    pub checkpoint_window: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CasesConfig {
    /// `sqlite://FILE` or `postgres://user@host/db`; empty: `hedui-cases.db` beside the lake.
    pub url: String,
    /// Deadlines, escalation and dispatch (`[cases.workflow]`).
    pub workflow: hedui_cases::WorkflowConfig,
}

/// The city's sources: `hedui serve` pulls the live ones that have a `schedule`, and shows
/// every source's freshness.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// The mapping files (a directory or one file); none: nothing is pulled on schedule.
    pub connectors: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    pub path: PathBuf,
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            path: PathBuf::from("lake"),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// `4GiB`, `512MiB`, `2000000000`; empty: no limit.
    pub memory_limit: String,
    pub spill_dir: Option<PathBuf>,
    pub target_partitions: usize,
    /// Where whole rule runs go.
    pub mode: EngineMode,
    /// With `mode = "ballista"`: the scheduler, `df://host:50050`, or `standalone` for a
    /// scheduler and an executor inside this process.
    pub scheduler: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineMode {
    /// This process's DataFusion engine.
    #[default]
    Local,
    /// A Ballista cluster (the lake must be on object storage every executor reaches, unless
    /// the cluster is standalone).
    Ballista,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    pub dir: Option<PathBuf>,
    pub parameters: BTreeMap<String, String>,
}

impl Config {
    /// Read `path` (it must exist), or `./hedui.toml` if there is one, or the defaults; then apply
    /// the `HEDUI_*` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("hedui.toml")).filter(|p| p.exists()),
        };
        let mut config = match &file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| Error::Io {
                    path: p.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| Error::Config {
                    file: p.clone(),
                    line: e.span().map_or(1, |s| {
                        text[..s.start.min(text.len())].matches('\n').count() + 1
                    }),
                    message: e.message().to_string(),
                })?
            }
            None => Config::default(),
        };
        if let Ok(v) = std::env::var("HEDUI_LAKE") {
            config.lake.path = PathBuf::from(v);
        }
        if let Ok(v) = std::env::var("HEDUI_CONNECTORS") {
            config.sources.connectors = Some(PathBuf::from(v));
        }
        if let Ok(v) = std::env::var("HEDUI_ENGINE_MEMORY_LIMIT") {
            config.engine.memory_limit = v;
        }
        if let Ok(v) = std::env::var("HEDUI_ENGINE_SCHEDULER") {
            config.engine.mode = EngineMode::Ballista;
            config.engine.scheduler = v;
        }
        if let Ok(v) = std::env::var("HEDUI_ENGINE_SPILL_DIR") {
            config.engine.spill_dir = Some(PathBuf::from(v));
        }
        if let Ok(v) = std::env::var("HEDUI_CASES_URL") {
            config.cases.url = v;
        }
        if let Ok(v) = std::env::var("HEDUI_AUDIT_LOG") {
            config.audit.path = Some(PathBuf::from(v));
        }
        if let Ok(v) = std::env::var("HEDUI_RULES_DIR") {
            config.rules.dir = Some(PathBuf::from(v));
        }
        config.engine_options(file.as_deref())?;
        Ok(config)
    }

    /// A file that lives beside the lake unless the settings say otherwise.
    pub fn beside_lake(&self, lake: &Path, name: &str) -> PathBuf {
        beside_lake(lake).join(name)
    }

    /// The audit key, beside the lake by default.
    pub fn audit_signing_key(&self, lake: &Path) -> PathBuf {
        self.audit
            .signing_key_file
            .clone()
            .unwrap_or_else(|| self.beside_lake(lake, "hedui-audit-signing.key"))
    }

    /// The audit log, writing signed checkpoints.
    pub fn open_audit(&self, lake: &Path) -> Result<hedui_audit::AuditLog, hedui_audit::Error> {
        let path = self.audit_path(lake);
        let signer = hedui_audit::Signer::open(
            &self.audit_signing_key(lake),
            &path,
            &self.audit.checkpoint_copies,
        )?;
        hedui_audit::AuditLog::open_signed(&path, signer)
    }

    pub fn audit_path(&self, lake: &Path) -> PathBuf {
        self.audit
            .path
            .clone()
            .unwrap_or_else(|| self.beside_lake(lake, "hedui-audit.log"))
    }

    /// `[auth]` with its key file placed beside the lake by default.
    pub fn auth_config(&self, lake: &Path) -> hedui_auth::AuthConfig {
        let mut auth = self.auth.clone();
        if auth.key_file.is_none() {
            auth.key_file = Some(self.beside_lake(lake, "hedui-jwt.key"));
        }
        auth
    }

    pub fn pseudonym_key_path(&self, lake: &Path) -> PathBuf {
        self.server
            .pseudonym_key_file
            .clone()
            .unwrap_or_else(|| self.beside_lake(lake, "hedui-pseudonym.key"))
    }

    pub fn engine_options(&self, file: Option<&Path>) -> Result<EngineOptions> {
        let memory_limit = match self.engine.memory_limit.trim() {
            "" => None,
            s => Some(parse_bytes(s).ok_or_else(|| Error::Config {
                file: file.map_or_else(
                    || PathBuf::from("HEDUI_ENGINE_MEMORY_LIMIT"),
                    Path::to_path_buf,
                ),
                line: 1,
                message: format!("engine.memory_limit `{s}` is not a size like 4GiB or 512MiB"),
            })?),
        };
        let cluster = match self.engine.mode {
            EngineMode::Local => None,
            EngineMode::Ballista => Some(Cluster::parse(&self.engine.scheduler).ok_or_else(|| {
                Error::Config {
                    file: file.map_or_else(
                        || PathBuf::from("HEDUI_ENGINE_SCHEDULER"),
                        Path::to_path_buf,
                    ),
                    line: 1,
                    message: format!(
                        "engine.scheduler `{}` is neither `standalone` nor a scheduler address like df://scheduler:50050 (mode = \"ballista\" needs one)",
                        self.engine.scheduler
                    ),
                }
            })?),
        };
        Ok(EngineOptions {
            memory_limit,
            spill_dir: self.engine.spill_dir.clone(),
            target_partitions: self.engine.target_partitions,
            cluster,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The production settings shipped in `deploy/` are valid settings.
    #[test]
    fn the_production_settings_parse() {
        let text = include_str!("../../../deploy/hedui.toml");
        let c: Config = toml::from_str(text).unwrap();
        let engine = c.engine_options(None).unwrap();
        assert_eq!(engine.memory_limit, Some(4 << 30));
        assert!(engine.cluster.is_none());
        c.access.privacy.validate().unwrap();
        assert!(c.cases.url.starts_with("postgres://"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("4GiB"), Some(4 << 30));
        assert_eq!(parse_bytes("512 MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.lake.path, PathBuf::from("lake"));
        assert!(c.engine_options(None).unwrap().memory_limit.is_none());
        let c: Config = toml::from_str(
            "[engine]\nmemory_limit = \"2GiB\"\n[rules.parameters]\ndibao_line = \"850\"\n",
        )
        .unwrap();
        assert_eq!(c.engine_options(None).unwrap().memory_limit, Some(2 << 30));
        assert_eq!(c.rules.parameters["dibao_line"], "850");
        assert!(toml::from_str::<Config>("[engine]\nmemory = \"2GiB\"\n").is_err());
        let c: Config =
            toml::from_str("[engine]\nmode = \"ballista\"\nscheduler = \"df://sched:50050\"\n")
                .unwrap();
        assert_eq!(
            c.engine_options(None).unwrap().cluster,
            Some(Cluster::Scheduler("df://sched:50050".into()))
        );
        // Ballista without a scheduler is a settings error, not a silent local run.
        let c: Config = toml::from_str("[engine]\nmode = \"ballista\"\n").unwrap();
        assert!(c.engine_options(None).is_err());
        assert!(toml::from_str::<Config>("[engine]\nmode = \"spark\"\n").is_err());
    }
}
