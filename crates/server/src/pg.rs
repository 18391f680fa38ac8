//! The Postgres wire protocol (pgwire, through datafusion-postgres's handlers): `psql` and other
//! clients connect with the JWT as password. Every statement is run by the caller's policy
//! session, exactly as over HTTP; the shared DataFusion context the protocol layer holds is
//! empty, so nothing can reach data around the policies.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Set, Statement, Value as SqlValue};
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::ClientPortalStore;
use datafusion_postgres::pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{QueryResponse, Response, Tag};
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::{Sink, SinkExt, StreamExt};
use hedui_audit::{AuditEvent, Interface, Outcome};
use hedui_auth::Identity;

use crate::audited::AuditOnEnd;
use crate::{AppState, Result};

const TOKEN_KEY: &str = "hedui.token";
const PURPOSE_KEY: &str = "hedui.purpose";
/// The result formats the client asked for at Bind, for the portal being executed.
const RESULT_FORMAT_KEY: &str = "hedui.result_format";

fn encode_format(f: &Format) -> String {
    match f {
        Format::UnifiedText => "text".into(),
        Format::UnifiedBinary => "binary".into(),
        Format::Individual(codes) => codes
            .iter()
            .map(i16::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn decode_format(s: Option<&String>) -> Format {
    match s.map(String::as_str) {
        None | Some("text") | Some("") => Format::UnifiedText,
        Some("binary") => Format::UnifiedBinary,
        Some(codes) => {
            Format::Individual(codes.split(',').filter_map(|c| c.parse().ok()).collect())
        }
    }
}

pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    max_connections: usize,
) -> Result<()> {
    let handlers = Arc::new(Handlers::new(state.clone()));
    let gate = crate::Gate::new(listener, max_connections, "postgres");
    loop {
        let (slot, socket, addr) = gate.next().await?;
        let _ = socket.set_nodelay(true);
        state
            .metrics
            .inc("hedui_pg_connections_total", String::new());
        let handlers = handlers.clone();
        tokio::spawn(async move {
            if let Err(e) =
                datafusion_postgres::pgwire::tokio::process_socket(socket, None, handlers).await
            {
                tracing::info!(client = %addr, error = %e, "postgres connection ended");
            }
            drop(slot);
        });
    }
}

struct Handlers {
    extended: Arc<FormatAware>,
    simple: Arc<AuditedSimple>,
    startup: Arc<JwtStartup>,
}

/// The simple-query protocol, with statements that fail before any hook sees them (SQL the
/// parser rejects) written to the audit log too.
struct AuditedSimple {
    inner: Arc<DfSessionService>,
    state: Arc<AppState>,
}

#[async_trait]
impl SimpleQueryHandler for AuditedSimple {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo
            + datafusion_postgres::pgwire::api::ClientPortalStore
            + Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: datafusion_postgres::pgwire::api::store::PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = SimpleQueryHandler::do_query(self.inner.as_ref(), client, query).await;
        if let Err(PgWireError::ApiError(e)) = &result {
            // Hooks answer with user errors and audit them; an API error here is the parser's.
            let token = client
                .metadata()
                .get(TOKEN_KEY)
                .cloned()
                .unwrap_or_default();
            let mut event =
                AuditEvent::new(Interface::Pgwire, client.socket_addr().to_string(), "sql");
            if let Ok(id) = self.state.auth.verify(&token) {
                event.actor = id.subject;
                event.roles = id.roles.iter().map(|r| r.to_string()).collect();
                event.region = id.region;
            }
            event.statement = Some(query.to_string());
            event.outcome = Outcome::Error;
            event.reason = Some(format!("the SQL could not be parsed: {e}"));
            if let Err(err) = self.state.audit.record(event).await {
                tracing::error!(error = %err, "audit entry lost");
            }
        }
        result
    }
}

impl Handlers {
    fn new(state: Arc<AppState>) -> Handlers {
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(TransactionStatementHook),
            Arc::new(PolicyHook {
                state: state.clone(),
            }),
            Arc::new(SetShowHook),
        ];
        // Deliberately empty: statements reach data only through the policy hook.
        let empty = Arc::new(SessionContext::new());
        let service = Arc::new(DfSessionService::new_with_hooks(empty, hooks));
        Handlers {
            simple: Arc::new(AuditedSimple {
                inner: service.clone(),
                state: state.clone(),
            }),
            extended: Arc::new(FormatAware { inner: service }),
            startup: Arc::new(JwtStartup { state }),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.simple.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.extended.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
}

/// The extended protocol as datafusion-postgres serves it, except that the portal's result
/// formats (text or binary, per column, as the client asked at Bind) reach the policy hook,
/// which answers in them: psycopg asks for text, JDBC for binary, each gets what it asked.
struct FormatAware {
    inner: Arc<DfSessionService>,
}

#[async_trait]
impl ExtendedQueryHandler for FormatAware {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = <DfSessionService as ExtendedQueryHandler>::QueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.inner.query_parser()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.metadata_mut().insert(
            RESULT_FORMAT_KEY.into(),
            encode_format(&portal.result_column_format),
        );
        ExtendedQueryHandler::do_query(self.inner.as_ref(), client, portal, max_rows).await
    }
}

/// Cleartext password authentication where the password is a hedui JWT. (Use TLS or a local
/// socket in production: the token crosses the connection.)
struct JwtStartup {
    state: Arc<AppState>,
}

#[async_trait]
impl StartupHandler for JwtStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(pwd) => {
                let token = pwd.into_password()?.password;
                match self.state.auth.verify(&token) {
                    Ok(identity) => {
                        client.metadata_mut().insert(TOKEN_KEY.into(), token);
                        tracing::info!(client = %client.socket_addr(), actor = %identity.subject, "postgres client signed in");
                        finish_authentication(client, &DefaultServerParameterProvider::default())
                            .await?;
                    }
                    Err(why) => {
                        let mut e = AuditEvent::new(
                            Interface::Pgwire,
                            client.socket_addr().to_string(),
                            "connect",
                        );
                        e.outcome = Outcome::Refused;
                        e.reason = Some(format!("authentication: {why}"));
                        if let Err(err) = self.state.audit.record(e).await {
                            tracing::error!(error = %err, "audit entry lost");
                        }
                        self.state.metrics.inc(
                            "hedui_auth_failures_total",
                            format!("reason=\"{}\"", why.code()),
                        );
                        return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                            "FATAL".into(),
                            "28P01".into(),
                            format!("token refused: {why}"),
                        ))));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

struct PolicyHook {
    state: Arc<AppState>,
}

fn pg_error(e: &hedui_policy::Error) -> PgWireError {
    use hedui_policy::Error as E;
    let code = match e {
        E::Refused(_) => "42501",
        E::Query(_) => "42601",
        E::Limit(_) => "57014",
        _ => "XX000",
    };
    let message = match e {
        E::Refused(_) | E::Query(_) | E::Limit(_) => e.to_string(),
        _ => {
            tracing::error!(error = %e, "query failed inside the server");
            "the server could not answer; the server log has details".into()
        }
    };
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

/// Client settings that drivers send and that change nothing here.
const HARMLESS_SETTINGS: &[&str] = &[
    "client_encoding",
    "datestyle",
    "extra_float_digits",
    "application_name",
    "search_path",
    "timezone",
    "intervalstyle",
    "statement_timeout",
    "client_min_messages",
    "bytea_output",
    "standard_conforming_strings",
];

enum SetKind {
    Purpose(String),
    Harmless,
    Refused(String),
}

fn classify_set(statement: &Statement) -> Option<SetKind> {
    let Statement::Set(set) = statement else {
        return None;
    };
    Some(match set {
        Set::SingleAssignment {
            variable, values, ..
        } => {
            let name = variable.to_string().to_ascii_lowercase();
            if name == PURPOSE_KEY {
                let value = match values.first() {
                    Some(SqlExpr::Value(v)) => match &v.value {
                        SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => {
                            s.clone()
                        }
                        other => other.to_string(),
                    },
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                SetKind::Purpose(value)
            } else if HARMLESS_SETTINGS.contains(&name.as_str()) {
                SetKind::Harmless
            } else {
                SetKind::Refused(name)
            }
        }
        Set::SetTimeZone { .. } | Set::SetNames { .. } | Set::SetNamesDefault { .. } => {
            SetKind::Harmless
        }
        other => SetKind::Refused(other.to_string()),
    })
}

impl PolicyHook {
    fn identity(&self, client: &(dyn ClientInfo + Send + Sync)) -> PgWireResult<Identity> {
        let token = client
            .metadata()
            .get(TOKEN_KEY)
            .cloned()
            .unwrap_or_default();
        // Checked again on every statement: a token that expires ends the session's rights.
        self.state.auth.verify(&token).map_err(|why| {
            PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "28000".into(),
                format!("token refused: {why}"),
            )))
        })
    }

    fn event(
        &self,
        client: &(dyn ClientInfo + Send + Sync),
        id: &Identity,
        sql: &str,
    ) -> AuditEvent {
        let mut e = AuditEvent::new(Interface::Pgwire, client.socket_addr().to_string(), "sql");
        e.actor = id.subject.clone();
        e.roles = id.roles.iter().map(|r| r.to_string()).collect();
        e.region = id.region.clone();
        e.statement = Some(sql.to_string());
        e.purpose = client.metadata().get(PURPOSE_KEY).cloned();
        e
    }

    async fn refused(
        &self,
        mut event: AuditEvent,
        started: Instant,
        err: &hedui_policy::Error,
    ) -> PgWireError {
        event.outcome = match err {
            hedui_policy::Error::Refused(_) => Outcome::Refused,
            _ => Outcome::Error,
        };
        event.reason = Some(err.to_string());
        event.duration_ms = started.elapsed().as_millis() as u64;
        if let Err(e) = self.state.audit.record(event).await {
            tracing::error!(error = %e, "audit entry lost");
        }
        self.state.metrics.inc(
            "hedui_queries_total",
            format!("interface=\"pgwire\",outcome=\"{}\"", err.code()),
        );
        pg_error(err)
    }

    /// Run a checked query and hand its rows to the protocol; the audit entry is written when
    /// the client has read them.
    async fn respond(
        &self,
        session: &hedui_policy::Session,
        query: hedui_policy::Query,
        mut event: AuditEvent,
        started: Instant,
        format: &Format,
    ) -> PgWireResult<Response> {
        event.datasets = query.info.datasets.clone();
        event.columns = query.info.columns.clone();
        event.policies = query.info.policies.clone();
        let stream = match session.execute(query).await {
            Ok(s) => s,
            Err(e) => return Err(self.refused(event, started, &e).await),
        };
        // With what running it cost (a privacy budget spent).
        event.policies = stream.info.policies.clone();
        let fields = Arc::new(arrow_schema_to_pg_fields(&stream.schema(), format, None)?);
        // On disk before the first row is sent; the outcome follows when the client has read
        // the rows. No entry, no answer.
        let mut intent = event.clone();
        intent.outcome = hedui_audit::Outcome::Started;
        intent.duration_ms = started.elapsed().as_millis() as u64;
        if let Err(e) = self.state.audit.record(intent).await {
            tracing::error!(error = %e, "audit entry not written: answer withheld");
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".to_owned(),
                "58030".to_owned(),
                "the audit log cannot be written, so no answer is given".to_owned(),
            ))));
        }
        let (rows, truncated) = stream.counters();
        let failed = Arc::new(std::sync::Mutex::new(None));
        let guard = AuditOnEnd {
            audit: self.state.audit.clone(),
            event: Some(event),
            started,
            rows,
            truncated,
            failed: failed.clone(),
        };
        self.state.metrics.inc(
            "hedui_queries_total",
            "interface=\"pgwire\",outcome=\"ok\"".to_string(),
        );
        let f = fields.clone();
        let rows = stream
            .map(move |batch| {
                let _keep_until_done = &guard;
                let it: Box<dyn Iterator<Item = PgWireResult<_>> + Send + Sync> = match batch {
                    Ok(b) => encode_recordbatch(f.clone(), b),
                    Err(e) => {
                        *failed.lock().expect("lock") = Some(e.to_string());
                        Box::new(std::iter::once(Err(pg_error(&e))))
                    }
                };
                futures::stream::iter(it)
            })
            .flatten();
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }

    async fn simple(
        &self,
        statement: &Statement,
        client: &mut dyn HookClient,
    ) -> PgWireResult<Response> {
        let started = Instant::now();
        match classify_set(statement) {
            Some(SetKind::Purpose(p)) => {
                return match hedui_policy::check_purpose(&p) {
                    Ok(p) => {
                        client.metadata_mut().insert(PURPOSE_KEY.into(), p);
                        Ok(Response::Execution(Tag::new("SET")))
                    }
                    Err(e) => Err(pg_error(&e)),
                };
            }
            Some(SetKind::Harmless) => return Ok(Response::Execution(Tag::new("SET"))),
            Some(SetKind::Refused(_)) | None => {}
        }
        let sql = statement.to_string();
        let id = self.identity(client)?;
        let event = self.event(client, &id, &sql);
        if let Some(SetKind::Refused(name)) = classify_set(statement) {
            let err = hedui_policy::Error::Refused(format!(
                "engine settings cannot be changed here (`{name}`); only `SET hedui.purpose = '…'` and client settings are accepted"
            ));
            return Err(self.refused(event, started, &err).await);
        }
        let purpose = client.metadata().get(PURPOSE_KEY).cloned();
        let session = match self.state.policy().session(&id, purpose.as_deref()).await {
            Ok(s) => s,
            Err(e) => return Err(self.refused(event, started, &e).await),
        };
        let query = match session.plan(&sql).await {
            Ok(q) => q,
            Err(e) => return Err(self.refused(event, started, &e).await),
        };
        self.respond(&session, query, event, started, &Format::UnifiedText)
            .await
    }
}

fn is_show(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::ShowVariable { .. } | Statement::ShowVariables { .. }
    )
}

#[async_trait]
impl QueryHook for PolicyHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if is_show(statement) {
            return None;
        }
        Some(self.simple(statement, client).await)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        if is_show(statement) {
            return None;
        }
        if matches!(
            classify_set(statement),
            Some(SetKind::Purpose(_) | SetKind::Harmless)
        ) {
            // Carried out at Execute (below); nothing to plan.
            return Some(
                datafusion::logical_expr::LogicalPlanBuilder::empty(false)
                    .build()
                    .map_err(|e| PgWireError::ApiError(Box::new(e))),
            );
        }
        let started = Instant::now();
        let id = match self.identity(client) {
            Ok(id) => id,
            Err(e) => return Some(Err(e)),
        };
        let purpose = client.metadata().get(PURPOSE_KEY).cloned();
        let result = async {
            let session = self.state.policy().session(&id, purpose.as_deref()).await?;
            session.logical(&statement.to_string()).await
        }
        .await;
        match result {
            Ok(plan) => Some(Ok(plan)),
            // Refused at Parse: on the record like any other refusal.
            Err(e) => {
                let mut event = self.event(client, &id, &statement.to_string());
                event.action = "parse".into();
                Some(Err(self.refused(event, started, &e).await))
            }
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        plan: &LogicalPlan,
        params: &ParamValues,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if is_show(statement) {
            return None;
        }
        match classify_set(statement) {
            Some(SetKind::Purpose(p)) => {
                return Some(match hedui_policy::check_purpose(&p) {
                    Ok(p) => {
                        client.metadata_mut().insert(PURPOSE_KEY.into(), p);
                        Ok(Response::Execution(Tag::new("SET")))
                    }
                    Err(e) => Err(pg_error(&e)),
                });
            }
            Some(SetKind::Harmless) => return Some(Ok(Response::Execution(Tag::new("SET")))),
            Some(SetKind::Refused(_)) | None => {}
        }
        let started = Instant::now();
        let sql = statement.to_string();
        let id = match self.identity(client) {
            Ok(id) => id,
            Err(e) => return Some(Err(e)),
        };
        let mut event = self.event(client, &id, &sql);
        // Which person a `$1` named is part of what was read.
        if let ParamValues::List(values) = params
            && !values.is_empty()
        {
            let bound: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("${} = {}", i + 1, v.value))
                .collect();
            event.statement = Some(format!("{sql} -- bound: {}", bound.join(", ")));
        }
        let purpose = client.metadata().get(PURPOSE_KEY).cloned();
        let session = match self.state.policy().session(&id, purpose.as_deref()).await {
            Ok(s) => s,
            Err(e) => return Some(Err(self.refused(event, started, &e).await)),
        };
        let plan = match plan.clone().replace_params_with_values(params) {
            Ok(p) => p,
            Err(e) => {
                let err = hedui_policy::Error::Query(e.to_string());
                return Some(Err(self.refused(event, started, &err).await));
            }
        };
        let query = match session.check(plan).await {
            Ok(q) => q,
            Err(e) => return Some(Err(self.refused(event, started, &e).await)),
        };
        let format = decode_format(client.metadata().get(RESULT_FORMAT_KEY));
        Some(self.respond(&session, query, event, started, &format).await)
    }
}
