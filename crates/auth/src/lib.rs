//! Identity: who is asking. Every interface (HTTP, Postgres wire, CLI) turns a JWT bearer token
//! into an [`Identity`] here, so the same token means the same person and the same rights
//! everywhere. Deny by default: a token that is missing, unsigned, signed with another key,
//! expired, or names an unknown role is refused with the reason.

mod roles;
mod secret;
mod token;

pub use roles::Role;
pub use secret::load_or_create_secret;
pub use token::{Algorithm, AuthConfig, Authenticator, Claims, TokenRequest, parse_duration};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client's token is not acceptable (HTTP 401). The message is safe to show.
    #[error("{0}")]
    Unauthenticated(AuthFailure),
    /// The server's own key material is missing or unusable (operator action).
    #[error("key {path}: {message}")]
    Key { path: String, message: String },
    #[error("cannot sign a token: {0}")]
    Sign(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a token was refused; recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no bearer token was given")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not yet valid")]
    NotYetValid,
    #[error("the token's signature is not valid for this server's key")]
    BadSignature,
    #[error("the token's algorithm `{0}` is not accepted")]
    Algorithm(String),
    #[error("the token was issued by `{0}`, not by this server")]
    Issuer(String),
    #[error("the token's claims are not acceptable: {0}")]
    Claims(String),
}

impl AuthFailure {
    /// A short machine-readable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed(_) => "malformed",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Algorithm(_) => "algorithm",
            AuthFailure::Issuer(_) => "issuer",
            AuthFailure::Claims(_) => "claims",
        }
    }
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// Who: the token's subject (a staff number or user name).
    pub subject: String,
    pub roles: Vec<Role>,
    /// An administrative-code prefix (`420502` a district, `4205` the city): the identity sees
    /// only rows of this region. `None` means the whole city.
    pub region: Option<String>,
    pub department: Option<String>,
    /// The token's id (`jti`), to tell two sessions of one person apart in the audit log.
    pub token_id: String,
}

impl Identity {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The identity of someone at the machine: the lake's files are theirs to read anyway, so
    /// the command line acts as an administrator under the operating system's user name.
    pub fn local_operator() -> Identity {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "local".into());
        Identity {
            subject: format!("local:{user}"),
            roles: vec![Role::Admin],
            region: None,
            department: None,
            token_id: String::new(),
        }
    }

    pub fn roles_text(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A region claim is an administrative-code prefix: 2 (province) to 12 (village) digits.
pub fn valid_region(code: &str) -> bool {
    (2..=12).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
}
