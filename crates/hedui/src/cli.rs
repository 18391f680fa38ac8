use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "hedui",
    version,
    about = "hedui 核对: cross-department data sharing and verification hub"
)]
pub struct Cli {
    /// More log output (-v info, -vv debug). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Logs as JSON lines.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// The city's settings (default: ./hedui.toml if present). `HEDUI_*` variables override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a synthetic city: department exports, planted cases and truth.json.
    Generate {
        /// Number of persons.
        #[arg(long, default_value_t = 20_000)]
        persons: u64,
        /// Seed: the same seed gives the same city.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory (data/ and truth.json are written there).
        #[arg(long, default_value = "city")]
        out: PathBuf,
    },
    /// Ingest department exports into the lake through mapping files.
    Ingest {
        /// A mapping file or a directory of them.
        #[arg(long, default_value = "connectors")]
        connectors: PathBuf,
        /// The directory mapping file patterns are relative to.
        #[arg(long, default_value = ".")]
        data: PathBuf,
        /// The lake directory (default: hedui.toml's lake.path, HEDUI_LAKE, or ./lake).
        #[arg(long)]
        lake: Option<PathBuf>,
        /// Write the ingest report as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Files read at the same time (default 0: one per core); the commit order is the same.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Pull one live source (a department database) into the lake now, through its mapping.
    Pull {
        /// The source's id (its mapping's `[source] id`).
        source: String,
        /// A mapping file or a directory of them.
        #[arg(long, default_value = "connectors")]
        connectors: PathBuf,
        /// The lake directory (default: hedui.toml's lake.path, HEDUI_LAKE, or ./lake).
        #[arg(long)]
        lake: Option<PathBuf>,
        /// Write the pull report as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Accept the source's changed columns (after checking the mapping still fits them).
        #[arg(long)]
        accept_schema: bool,
        /// Compare every key with the source now (find deleted rows), whatever the mapping's
        /// `compare_keys_every` says.
        #[arg(long)]
        compare_keys: bool,
    },
    /// Copy the lake to object storage (S3 protocol) for a cluster's executors to read: the
    /// data files, then the commits that list them. Safe to repeat (only what is missing goes).
    Publish {
        /// The local lake (default: hedui.toml's lake.path, HEDUI_LAKE, or ./lake).
        #[arg(long)]
        lake: Option<PathBuf>,
        /// Where: s3://bucket/prefix. Credentials and endpoint come from the AWS_* environment
        /// variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT).
        #[arg(long)]
        to: String,
    },
    /// Run a read-only SQL query over the lake's datasets.
    Sql {
        /// The query, e.g. "SELECT count(*) FROM persons".
        query: String,
        /// The lake directory, or s3://bucket/prefix for one published to object storage
        /// (default: hedui.toml's lake.path, HEDUI_LAKE, or ./lake).
        #[arg(long)]
        lake: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Run as the holder of this token, with its policies (also `HEDUI_TOKEN`). Without
        /// one the query runs as the local operator, who can read the lake's files anyway.
        #[arg(long, env = "HEDUI_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A case number or authorisation reference, for queries about particular persons.
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Serve the HTTP API and the Postgres wire protocol over the lake.
    Serve {
        /// The lake directory (default: hedui.toml's lake.path, HEDUI_LAKE, or ./lake).
        #[arg(long)]
        lake: Option<PathBuf>,
        /// The HTTP address (default: hedui.toml's server.http, 127.0.0.1:8080).
        #[arg(long)]
        http: Option<String>,
        /// The Postgres wire protocol's address (default: server.pg, 127.0.0.1:5433); `off`
        /// turns it off.
        #[arg(long)]
        pg: Option<String>,
        /// The mapping files; live sources with a `schedule` are pulled on it (default:
        /// hedui.toml's sources.connectors).
        #[arg(long)]
        connectors: Option<PathBuf>,
    },
    /// Print a token signed with this server's key, for local use.
    Token {
        /// A role (repeatable): admin, analyst, reviewer, dibao_reviewer, connector, auditor,
        /// statistician.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Limit the holder to an administrative-code prefix, e.g. 420502.
        #[arg(long)]
        region: Option<String>,
        /// Lifetime, e.g. 30m, 8h, 7d.
        #[arg(long, default_value = "8h")]
        ttl: String,
        /// Who the token is for (default: the role and the operating-system user).
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        department: Option<String>,
        /// The lake the server serves (its key file lives beside it by default).
        #[arg(long)]
        lake: Option<PathBuf>,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Run the cross-matching rules over the lake: one line per hit.
    Check {
        /// Run only these rules (repeatable): R1 ... R7 or a city rule's id.
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// The lake directory, or s3://bucket/prefix for one published to object storage
        /// (default: hedui.toml's lake.path, HEDUI_LAKE, or ./lake).
        #[arg(long)]
        lake: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Write the hits here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A directory of the city's own rules, added to (or replacing) the built-in ones.
        #[arg(long)]
        rules_dir: Option<PathBuf>,
        /// Set a rule parameter, e.g. `--param dibao_line=850` (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// The case store: `sqlite://FILE` or `postgres://...` (default: hedui.toml's cases.url,
        /// HEDUI_CASES_URL, or hedui-cases.db beside the lake).
        #[arg(long)]
        cases: Option<String>,
        /// Run a recorded run again, on the lake as it was, and check the hits are the same.
        #[arg(long, value_name = "RUN_ID", conflicts_with = "changed")]
        rerun: Option<String>,
        /// Verify only what changed since the case store's last run, as `hedui serve` does after
        /// every new lake version: the rules reading a changed dataset, for the persons and
        /// households whose rows changed (a store with no run yet gets a full check).
        #[arg(long, conflicts_with = "rules")]
        changed: bool,
    },
    /// The rules this city runs (built in, plus its rules directory): list them or show one.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Generate a small city, ingest it with the shipped connectors and show what was loaded.
    Demo {
        /// Working directory for the demo city and its lake.
        #[arg(long, default_value = "hedui-demo")]
        dir: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        persons: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop after the checks instead of serving the UI.
        #[arg(long)]
        no_serve: bool,
        /// The UI's and API's address (default: hedui.toml's server.http, 127.0.0.1:8080).
        #[arg(long)]
        http: Option<String>,
        /// The Postgres wire protocol's address, or `off`.
        #[arg(long)]
        pg: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check that no entry was edited, removed or reordered; name the first that was. With
    /// `--public-key`, also every signed checkpoint (beside the log and in hedui.toml's
    /// `audit.checkpoint_copies`): an entry dropped and the rest hashed again, or entries cut
    /// from the end, fail too.
    Verify {
        /// The log (default: hedui.toml's audit.path, or hedui-audit.log beside the lake).
        #[arg(long)]
        log: Option<PathBuf>,
        #[arg(long)]
        lake: Option<PathBuf>,
        /// The audit key's public half (`hedui-audit-signing.pub`, 64 hex digits).
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Write a verifiable extract for an outside auditor: the log, its head, every signed
    /// checkpoint and the public key, into a directory that `hedui audit verify --log
    /// DIR/hedui-audit.log --public-key DIR/hedui-audit-signing.pub` checks on its own.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        log: Option<PathBuf>,
        #[arg(long)]
        lake: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RulesAction {
    /// One line per rule: id, version, subject kind, title and where it came from.
    List {
        /// A directory of the city's own rules (default: hedui.toml's rules.dir).
        #[arg(long)]
        rules_dir: Option<PathBuf>,
    },
    /// A rule's metadata, parameters (with the values this city uses) and SQL.
    Show {
        /// The rule id, e.g. R1.
        id: String,
        #[arg(long)]
        rules_dir: Option<PathBuf>,
        /// Set a rule parameter, e.g. `--param dibao_line=850` (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Print only the SQL with the parameters filled in.
        #[arg(long)]
        sql: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

pub fn init_logging(verbose: u8, json: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEDUI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a file or a log collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
