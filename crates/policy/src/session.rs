//! A caller's query session: a DataFusion context holding only the caller's views, planning
//! with the read-only, purpose and aggregate checks, executing with the query limits.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use datafusion::catalog::view::ViewTable;
use datafusion::datasource::MemTable;
use datafusion::datasource::{TableProvider, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use hedui_auth::{Identity, Role};
use hedui_engine::Engine;
use hedui_model::{Catalog, RegionScope};

use crate::config::{AccessConfig, PolicyRule};
use crate::grant::{self, AUDIT_TABLE, Grant};
use crate::masks::Masks;
use crate::planner::{self, Planner};
use crate::privacy::Privacy;
use crate::scope::{Scope, ScopedTable};
use crate::shapes::Templates;
use crate::stream::QueryStream;
use crate::suppress::{self, Suppression};
use crate::{Error, Result, audit_table, errors, functions, inspect, lineage, view};

/// Shared by every caller of a server (or one command line run).
pub struct PolicyEngine {
    /// The lake as of the last reload; swapped whole when new batches are committed.
    engine: std::sync::RwLock<Arc<Engine>>,
    policies: Vec<PolicyRule>,
    threshold: u64,
    timeout: Duration,
    max_rows: u64,
    memory: usize,
    masks: Masks,
    privacy: Arc<Privacy>,
    planner: Planner,
    max_sql_bytes: usize,
    max_depth: usize,
    audit_log: Option<PathBuf>,
    /// Contexts by what they show: callers with the same grants share one, with the plans of
    /// the statement shapes asked in it.
    cache: Mutex<HashMap<String, SharedContext>>,
    /// Who and which households belong to a region, by region, for the lake as served.
    regions: tokio::sync::Mutex<HashMap<String, Arc<RegionRows>>>,
}

/// A context callers with the same grants share, and the plans of its statement shapes.
type SharedContext = (Arc<SessionContext>, Arc<Templates>);

/// The persons registered in a region and the dibao households headed there.
struct RegionRows {
    persons: Arc<std::collections::HashSet<i64>>,
    households: Arc<std::collections::HashSet<String>>,
}

const CACHE_LIMIT: usize = 256;

/// A stated purpose: a case number or an authorisation reference, as the caller wrote it.
pub fn check_purpose(purpose: &str) -> Result<String> {
    let p = purpose.trim();
    let ok = (3..=100).contains(&p.chars().count())
        && p.chars().next().is_some_and(|c| c.is_alphanumeric())
        && p.chars()
            .all(|c| c.is_alphanumeric() || "-_./:#（）() ".contains(c));
    if ok {
        Ok(p.to_string())
    } else {
        Err(Error::Refused(format!(
            "purpose `{}` is not a case number or authorisation reference (3 to 100 letters, digits, `-_./:#`)",
            p.chars().take(100).collect::<String>()
        )))
    }
}

impl PolicyEngine {
    pub fn new(
        engine: Arc<Engine>,
        config: &AccessConfig,
        pseudonym_secret: &[u8],
        audit_log: Option<PathBuf>,
    ) -> Result<PolicyEngine> {
        let memory = hedui_engine_bytes(&config.limits.memory)?;
        Ok(PolicyEngine {
            engine: std::sync::RwLock::new(engine),
            policies: config.effective_policies(),
            threshold: config.small_cell_threshold,
            timeout: config.limits.timeout().map_err(Error::Config)?,
            max_rows: config.limits.max_rows,
            memory,
            masks: Masks::new(pseudonym_secret),
            privacy: Arc::new(Privacy::new(
                config.privacy.clone(),
                audit_log
                    .as_ref()
                    .map(|p| p.with_file_name("privacy-budget.jsonl")),
            )?),
            planner: Planner::default(),
            max_sql_bytes: config.limits.max_sql_bytes,
            max_depth: config.limits.max_expression_depth,
            audit_log,
            cache: Mutex::new(HashMap::new()),
            regions: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Differential privacy's settings, noise and budget (also for figures outside SQL).
    pub fn privacy(&self) -> &Privacy {
        &self.privacy
    }

    /// Cells describing fewer persons than this are not shown to aggregate-only roles.
    pub fn small_cell_threshold(&self) -> u64 {
        self.threshold
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.read().expect("engine lock").clone()
    }

    /// Serve the lake as it is now if batches were committed since it was opened: new sessions
    /// see them, running queries finish on the snapshot they started with. True if it changed.
    pub async fn reload(&self) -> Result<bool> {
        let current = self.engine();
        let root = current.snapshot().root().to_path_buf();
        let latest =
            hedui_lake::Snapshot::load(&root).map_err(|e| Error::Internal(e.to_string()))?;
        if latest.version() == current.snapshot().version() {
            return Ok(false);
        }
        let version = latest.version();
        let engine = Arc::new(Engine::with_snapshot(latest, current.options()).await?);
        *self.engine.write().expect("engine lock") = engine;
        self.cache.lock().expect("cache lock").clear();
        self.regions.lock().await.clear();
        tracing::info!(lake_version = version, "serving the lake's new batches");
        Ok(true)
    }

    pub fn grants(&self, identity: &Identity) -> BTreeMap<String, Grant> {
        grant::resolve(identity, &self.policies)
    }

    /// The session of `identity`, with `purpose` if one was stated.
    pub async fn session(&self, identity: &Identity, purpose: Option<&str>) -> Result<Session> {
        let purpose = purpose
            .filter(|p| !p.trim().is_empty())
            .map(check_purpose)
            .transpose()?;
        let grants = self.grants(identity);
        let has_purpose = purpose.is_some();
        let key = format!(
            "{:?}",
            grants
                .values()
                .map(|g| (g, g.masked(has_purpose)))
                .collect::<Vec<_>>()
        );
        // The audit log changes with every request: an auditor's view is never reused.
        let cacheable = !grants.contains_key(AUDIT_TABLE);
        let cached = cacheable
            .then(|| self.cache.lock().expect("cache lock").get(&key).cloned())
            .flatten();
        let (ctx, templates) = match cached {
            Some((ctx, templates)) => (ctx, Some(templates)),
            None => {
                let ctx = Arc::new(self.build(&grants, has_purpose).await?);
                if cacheable {
                    let templates = Arc::new(Templates::default());
                    let mut cache = self.cache.lock().expect("cache lock");
                    if cache.len() >= CACHE_LIMIT {
                        cache.clear();
                    }
                    cache.insert(key, (ctx.clone(), templates.clone()));
                    (ctx, Some(templates))
                } else {
                    (ctx, None)
                }
            }
        };
        // An aggregate-only caller's statement is rewritten before it is optimised (small cells
        // suppressed): always planned afresh.
        let templates = templates.filter(|_| !grants.values().any(|g| g.aggregate_only));
        Ok(Session {
            ctx,
            templates,
            identity: identity.clone(),
            purpose,
            grants: Arc::new(grants),
            threshold: self.threshold,
            privacy: self.privacy.clone(),
            planner: self.planner.clone(),
            max_sql_bytes: self.max_sql_bytes,
            max_depth: self.max_depth,
            timeout: self.timeout,
            max_rows: self.max_rows,
            memory: self.memory,
        })
    }

    /// A context that knows only the caller's views and the public functions. The views are
    /// made in a context of their own, the only one that holds the lake's tables (scoped to the
    /// caller's rows) and the policy's functions.
    async fn build(
        &self,
        grants: &BTreeMap<String, Grant>,
        purpose: bool,
    ) -> Result<SessionContext> {
        let engine = self.engine();
        let base = engine.context();
        let maker = SessionContext::new_with_config_rt(base.copied_config(), base.runtime_env());
        let ctx = SessionContext::new_with_state(functions::caller_state(
            base.copied_config(),
            base.runtime_env(),
            self.memory,
        ));
        for (name, g) in grants {
            if name == AUDIT_TABLE {
                let batch = audit_table::batch(self.audit_log.as_deref())?;
                let table =
                    MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(internal)?;
                ctx.register_table(AUDIT_TABLE, Arc::new(table))
                    .map_err(internal)?;
                continue;
            }
            let def = Catalog::builtin()
                .get(name)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let stored = base.table_provider(name.as_str()).await.map_err(internal)?;
            let source: Arc<dyn TableProvider> = match (&g.region, &def.region) {
                (None, _) => stored,
                (Some(region), Some(scope)) => {
                    let rows = self.region_rows(&engine, region).await?;
                    let scope = match scope {
                        RegionScope::Column(c) => Scope::Prefix {
                            column: c.clone(),
                            prefix: region.clone(),
                        },
                        RegionScope::Person(c) => Scope::Keys {
                            column: format!("{c}_key"),
                            keys: rows.persons.clone(),
                        },
                        RegionScope::Household(c) => Scope::Values {
                            column: c.clone(),
                            values: rows.households.clone(),
                        },
                    };
                    Arc::new(ScopedTable::new(stored, scope))
                }
                // `grant::resolve` gives no region grant on a dataset without a region.
                (Some(_), None) => continue,
            };
            let plan = view::view_plan(
                def,
                g,
                g.masked(purpose),
                provider_as_source(source),
                &self.masks,
            )
            .map_err(internal)?;
            let table = Arc::new(ViewTable::new(plan, None));
            maker
                .register_table(name.as_str(), table.clone())
                .map_err(internal)?;
            ctx.register_table(name.as_str(), table).map_err(internal)?;
        }
        let has_data = grants.keys().any(|g| g != AUDIT_TABLE);
        if has_data && let Some(batches) = base.table_provider("batches").await.ok() {
            maker
                .register_table("batches", batches.clone())
                .map_err(internal)?;
            ctx.register_table("batches", batches).map_err(internal)?;
        }
        for (name, needs, sql) in hedui_engine::system::DERIVED_VIEWS {
            let have = needs.iter().all(|n| maker.table_exist(*n).unwrap_or(false));
            if have {
                maker.sql(sql).await.map_err(internal)?;
                let view = maker.table_provider(*name).await.map_err(internal)?;
                ctx.register_table(*name, view).map_err(internal)?;
                tracing::trace!(view = name, "derived view defined");
            }
        }
        Ok(ctx)
    }

    /// The persons and households of `region`, read once per lake version.
    async fn region_rows(&self, engine: &Engine, region: &str) -> Result<Arc<RegionRows>> {
        let mut regions = self.regions.lock().await;
        if let Some(rows) = regions.get(region) {
            return Ok(rows.clone());
        }
        // `region` is digits only (checked when the token was verified): safe as a literal.
        if !hedui_auth::valid_region(region) {
            return Err(Error::Refused(
                "the token's region is not a region code".into(),
            ));
        }
        let persons = engine
            .query(&format!(
                "SELECT person_id_key FROM persons \
                 WHERE starts_with(region_code, '{region}') AND person_id_key IS NOT NULL"
            ))
            .await?;
        let households = engine
            .query(&format!(
                "SELECT DISTINCT h.household_no FROM dibao_households h \
                 JOIN persons p ON h.head_id_key = p.person_id_key \
                 WHERE starts_with(p.region_code, '{region}') AND h.household_no IS NOT NULL"
            ))
            .await?;
        let mut keys = std::collections::HashSet::new();
        for b in &persons.1 {
            let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64)
                .map_err(internal)?;
            keys.extend(
                c.as_primitive::<arrow::datatypes::Int64Type>()
                    .iter()
                    .flatten(),
            );
        }
        let mut numbers = std::collections::HashSet::new();
        for b in &households.1 {
            let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)
                .map_err(internal)?;
            numbers.extend(c.as_string::<i32>().iter().flatten().map(String::from));
        }
        let rows = Arc::new(RegionRows {
            persons: Arc::new(keys),
            households: Arc::new(numbers),
        });
        if regions.len() >= CACHE_LIMIT {
            regions.clear();
        }
        regions.insert(region.to_string(), rows.clone());
        Ok(rows)
    }
}

fn hedui_engine_bytes(s: &str) -> Result<usize> {
    hedui_engine::parse_bytes(s).ok_or_else(|| {
        Error::Config(format!(
            "[access.limits] memory: `{s}` is not a size like 512MiB or 2GiB"
        ))
    })
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// What a query touched and how, for the audit log and the caller.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueryInfo {
    pub datasets: Vec<String>,
    pub columns: Vec<String>,
    pub policies: Vec<String>,
    /// The identifying column a person-level query filtered on.
    pub person_lookup: Option<String>,
    pub purpose: Option<String>,
    /// Planned from the template of its statement's shape (see [`crate::shapes`]).
    #[serde(skip)]
    pub from_shape: bool,
}

/// A planned, checked query.
pub struct Query {
    plan: LogicalPlan,
    suppression: Option<Suppression>,
    pub info: QueryInfo,
}

/// Cheap to clone: a clone is the same session (planning moves one to a planning thread).
#[derive(Clone)]
pub struct Session {
    pub(crate) ctx: Arc<SessionContext>,
    /// The plans of statement shapes asked in this context (see [`crate::shapes`]).
    pub(crate) templates: Option<Arc<Templates>>,
    identity: Identity,
    purpose: Option<String>,
    grants: Arc<BTreeMap<String, Grant>>,
    threshold: u64,
    privacy: Arc<Privacy>,
    planner: Planner,
    max_sql_bytes: usize,
    pub(crate) max_depth: usize,
    timeout: Duration,
    max_rows: u64,
    memory: usize,
}

impl Session {
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }

    pub fn grants(&self) -> &BTreeMap<String, Grant> {
        &self.grants
    }

    pub fn max_rows(&self) -> u64 {
        self.max_rows
    }

    /// The caller's view of the catalog, for `information_schema`-like listings.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plan `sql` and check it is something this caller may run: on a planning thread, within
    /// the time limit (see [`crate::planner`]).
    pub async fn plan(&self, sql: &str) -> Result<Query> {
        planner::check_size(sql, self.max_sql_bytes)?;
        let (me, sql) = (self.clone(), sql.to_string());
        let handle = tokio::runtime::Handle::current();
        self.planner
            .run(self.timeout, move || {
                if let Some(query) = me.plan_by_shape(&handle, &sql) {
                    return query;
                }
                let plan = handle.block_on(me.parse_and_plan(&sql))?;
                me.check_here(plan)
            })
            .await
    }

    /// The caller's plan of `sql` as written, unchecked: for the Postgres extended protocol,
    /// which needs parameter types before values arrive. Run it only through [`Self::check`].
    pub async fn logical(&self, sql: &str) -> Result<LogicalPlan> {
        planner::check_size(sql, self.max_sql_bytes)?;
        let (me, sql) = (self.clone(), sql.to_string());
        let handle = tokio::runtime::Handle::current();
        self.planner
            .run(self.timeout, move || {
                handle.block_on(me.parse_and_plan(&sql))
            })
            .await
    }

    /// Parse (its size and depth bounded) and plan. Only on a planning thread.
    async fn parse_and_plan(&self, sql: &str) -> Result<LogicalPlan> {
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state
            .sql_to_statement(sql, &dialect)
            .map_err(|e| self.planning_error(e))?;
        planner::check_depth(&statement, self.max_depth)?;
        state
            .statement_to_plan(statement)
            .await
            .map_err(|e| self.planning_error(e))
    }

    /// Check a plan of this session and prepare it to run, on a planning thread.
    pub async fn check(&self, plan: LogicalPlan) -> Result<Query> {
        let me = self.clone();
        self.planner
            .run(self.timeout, move || me.check_here(plan))
            .await
    }

    /// Check a plan of this session and prepare it to run (optimising it, which folds
    /// constants: only on a planning thread).
    fn check_here(&self, plan: LogicalPlan) -> Result<Query> {
        let state = self.ctx.state();
        self.check_structure(&plan)?;
        let tables = inspect::tables(&plan);
        let optimized = state
            .optimize(&self.limited(plan.clone())?)
            .map_err(|e| self.planning_error(e))?;
        self.judge(Some(&plan), optimized, tables)
    }

    /// What a plan may be whatever its values: read-only, and EXPLAIN only for administrators.
    pub(crate) fn check_structure(&self, plan: &LogicalPlan) -> Result<()> {
        hedui_engine::read_only().verify_plan(plan).map_err(|e| {
            Error::Refused(format!(
                "only queries may run here (read-only): {}",
                first_line(&e.find_root().to_string())
            ))
        })?;
        if inspect::is_explain(plan) && !self.identity.has(Role::Admin) {
            return Err(Error::Refused(
                "EXPLAIN and DESCRIBE show how data is stored and are for administrators".into(),
            ));
        }
        Ok(())
    }

    /// The plan with the row limit on top: one row more than the limit, to know the result
    /// was cut. EXPLAIN stays the root of its plan (its rows are the plan's lines).
    pub(crate) fn limited(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
            return Ok(plan);
        }
        LogicalPlanBuilder::from(plan)
            .limit(0, Some(self.max_rows as usize + 1))
            .and_then(|b| b.build())
            .map_err(internal)
    }

    /// Judge an optimised plan (`original` is the plan as written, which an aggregate-only
    /// caller's statement is rewritten from; `None` only for a template's plan, which such a
    /// caller never gets): who it singles out, whether a purpose is needed, small cells.
    pub(crate) fn judge(
        &self,
        original: Option<&LogicalPlan>,
        mut optimized: LogicalPlan,
        tables: std::collections::BTreeSet<String>,
    ) -> Result<Query> {
        let aggregate_only = self.grants.values().any(|g| g.aggregate_only);
        // Judged on the plan as it will run: after simplification and decorrelation, whatever
        // form the SQL took.
        let unmasks_with_purpose = self.purpose.is_none()
            && !aggregate_only
            && self
                .grants
                .values()
                .any(|g| g.unmask == crate::config::Unmask::WithPurpose);
        let (_, findings) = lineage::analyse_as(&optimized, unmasks_with_purpose);
        if let Some(what) = &findings.singles_out {
            if aggregate_only {
                return Err(Error::Refused(format!(
                    "your role sees aggregates only, and `{what}` singles out a person or household"
                )));
            }
            if self.purpose.is_none() {
                return Err(Error::Refused(format!(
                    "a query about a particular person or household (`{what}`) needs a stated purpose: a case number or authorisation reference"
                )));
            }
        }
        let mut suppression = None;
        if aggregate_only {
            if let Some(group) = &findings.identifying_group {
                return Err(Error::Refused(format!(
                    "your role sees aggregates only: grouping by `{group}`, which is derived from an identifier, shows single persons"
                )));
            }
            let Some(original) = original else {
                return Err(Error::Internal(
                    "an aggregate-only statement must be planned as written".into(),
                ));
            };
            suppress::check_private_input(&optimized).map_err(Error::Refused)?;
            let (rewritten, s) = suppress::rewrite(original, self.threshold, &self.privacy)
                .map_err(Error::Refused)?;
            // (The context's state is copied only here: judging a bound template copies none.)
            optimized = self
                .ctx
                .state()
                .optimize(&self.limited(rewritten)?)
                .map_err(|e| self.planning_error(e))?;
            suppression = Some(s);
        }
        let masked_by_purpose = self.purpose.is_some();
        let mut policies: Vec<String> = tables
            .iter()
            .filter_map(|t| self.grants.get(t))
            .map(|g| {
                let mut p = format!(
                    "{} [{}]: rows {}; personal columns {}",
                    g.policy,
                    g.dataset,
                    g.region
                        .as_deref()
                        .map_or("all".to_string(), |r| format!("of region {r}")),
                    if g.masked(masked_by_purpose) {
                        "masked"
                    } else {
                        "in clear"
                    }
                );
                if !g.hide.is_empty() {
                    p.push_str(&format!(
                        "; hidden {}",
                        g.hide.iter().cloned().collect::<Vec<_>>().join(",")
                    ));
                }
                p
            })
            .collect();
        if suppression.is_some() {
            policies.push(format!(
                "small cells under {} persons suppressed; figures with Laplace noise (ε={} per answer, each person's part bounded)",
                self.threshold, self.privacy.config.epsilon_per_query
            ));
        }
        Ok(Query {
            plan: optimized.clone(),
            suppression,
            info: QueryInfo {
                datasets: tables.into_iter().collect(),
                columns: inspect::columns(&optimized).into_iter().collect(),
                policies,
                person_lookup: findings.singles_out,
                purpose: self.purpose.clone(),
                from_shape: false,
            },
        })
    }

    fn planning_error(&self, e: DataFusionError) -> Error {
        let root = e.find_root();
        let msg = first_line(&root.to_string());
        if let Some(name) = missing_table(&msg) {
            let known = Catalog::builtin().get(&name).is_ok() || name == AUDIT_TABLE;
            return if known {
                Error::Refused(format!(
                    "dataset `{name}` is not available to your role(s) ({})",
                    self.identity.roles_text()
                ))
            } else {
                Error::Query(format!("there is no table `{name}`"))
            };
        }
        // Planning reads no rows: its errors are about the query's text and the caller's own
        // tables and columns. Anything else (constant folding, the engine) is told as a fixed
        // message.
        match root {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(..)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(..)
            | DataFusionError::Configuration(..) => Error::Query(msg),
            _ => errors::execution(e),
        }
    }

    /// Run a planned query. The stream stops at the row limit, at the time limit, and when the
    /// query's memory is exhausted (after spilling what can spill).
    pub async fn execute(&self, mut query: Query) -> Result<QueryStream> {
        let started = Instant::now();
        if query.suppression.is_some() {
            // Spent before anything runs: an answer is never given on credit.
            let spent = self.privacy.budget.spend(
                &self.identity.subject,
                self.privacy.config.epsilon_per_query,
            )?;
            query.info.policies.push(spent.to_string());
        }
        let runtime = RuntimeEnvBuilder::from_runtime_env(&self.ctx.runtime_env())
            .with_memory_pool(Arc::new(FairSpillPool::new(self.memory)))
            .build_arc()
            .map_err(internal)?;
        let state = SessionStateBuilder::new_from_existing(self.ctx.state())
            .with_runtime_env(runtime)
            .build();
        let physical = tokio::time::timeout(
            self.timeout,
            state
                .query_planner()
                .create_physical_plan(&query.plan, &state),
        )
        .await
        .map_err(|_| self.time_limit())?
        .map_err(|e| self.planning_error(e))?;
        let stream = execute_stream(physical, state.task_ctx()).map_err(errors::execution)?;
        let schema = match &query.suppression {
            Some(s) => s.schema(),
            None => stream.schema(),
        };
        Ok(QueryStream {
            inner: stream,
            schema,
            suppression: query.suppression,
            deadline: tokio::time::Instant::from_std(started + self.timeout),
            timeout: self.timeout,
            sleep: None,
            max_rows: self.max_rows,
            rows: Arc::new(AtomicU64::new(0)),
            truncated: Arc::new(AtomicBool::new(false)),
            done: false,
            info: query.info,
        })
    }

    /// Plan, execute and collect: for the command line and tests.
    pub async fn run(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>, QueryInfo, bool)> {
        let query = self.plan(sql).await?;
        let mut stream = self.execute(query).await?;
        let schema = stream.schema();
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b?);
        }
        let truncated = stream.truncated();
        Ok((schema, batches, stream.info.clone(), truncated))
    }

    /// Run a query the system wrote (a rule's SQL, rendered from `rules/`) over the caller's
    /// views: the same views, region scopes, masks, checks and limits as the caller's own SQL,
    /// but planned with all the engine's functions (`generate_series` for month ranges), which
    /// a rule may use and a caller may not call. The policy's own functions are never among them.
    pub async fn run_system(&self, sql: &str) -> Result<(Vec<RecordBatch>, bool)> {
        use datafusion::execution::FunctionRegistry;
        let mut state = self.ctx.state();
        for f in datafusion::functions_table::all_default_table_functions() {
            state.register_udtf(f.name(), f.function().clone());
        }
        let scalars = datafusion::functions::all_default_functions()
            .into_iter()
            .chain(datafusion::functions_nested::all_default_nested_functions());
        for f in scalars {
            state.register_udf(f).map_err(internal)?;
        }
        for f in datafusion::functions_aggregate::all_default_aggregate_functions() {
            state.register_udaf(f).map_err(internal)?;
        }
        for f in datafusion::functions_window::all_default_window_functions() {
            state.register_udwf(f).map_err(internal)?;
        }
        let plan = state
            .create_logical_plan(sql)
            .await
            .map_err(|e| self.planning_error(e))?;
        let query = self.check(plan).await?;
        let mut stream = self.execute(query).await?;
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b?);
        }
        Ok((batches, stream.truncated()))
    }

    fn time_limit(&self) -> Error {
        Error::Limit(format!(
            "the query took longer than the limit of {}s and was stopped",
            self.timeout.as_secs()
        ))
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// `table 'datafusion.public.persons' not found` -> `persons`.
fn missing_table(msg: &str) -> Option<String> {
    let start = msg.find("table '")? + 7;
    let rest = &msg[start..];
    let end = rest.find("' not found")?;
    Some(rest[..end].rsplit('.').next()?.to_string())
}
