//! JWT bearer tokens: HS256 with a secret made on first start (the embedded default), or RS256 /
//! EdDSA with a configured public key (tokens then come from the city's identity provider).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::{AuthFailure, Error, Identity, Result, Role, load_or_create_secret, valid_region};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum Algorithm {
    #[default]
    HS256,
    RS256,
    EdDSA,
}

impl Algorithm {
    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// `[auth]` of `hedui.toml`. Paths are resolved by the caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub algorithm: Algorithm,
    /// HS256: the shared secret (hex), created on first start if missing.
    pub key_file: Option<PathBuf>,
    /// RS256 / EdDSA: the PEM public key that verifies tokens.
    pub public_key_file: Option<PathBuf>,
    /// RS256 / EdDSA: the PEM private key `hedui token` signs with (optional: without it,
    /// tokens come only from the identity provider).
    pub private_key_file: Option<PathBuf>,
    /// The `iss` claim tokens must carry.
    pub issuer: String,
    /// The longest lifetime `hedui token` will sign, e.g. `12h`.
    pub max_ttl: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            algorithm: Algorithm::HS256,
            key_file: None,
            public_key_file: None,
            private_key_file: None,
            issuer: "hedui".into(),
            max_ttl: "30d".into(),
        }
    }
}

/// The claims of a hedui token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub roles: Vec<String>,
    /// Administrative-code prefix the holder is limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept: Option<String>,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
    /// Not before: a token is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub jti: String,
}

/// Larger than any token this server or an identity provider issues; a bigger one is refused
/// before it is parsed.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What `hedui token` is asked to sign.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub subject: String,
    pub roles: Vec<Role>,
    pub region: Option<String>,
    pub department: Option<String>,
    pub ttl: Duration,
}

pub struct Authenticator {
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    issuer: String,
    max_ttl: Duration,
}

impl std::fmt::Debug for Authenticator {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn read_pem(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Key {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

impl Authenticator {
    pub fn from_config(cfg: &AuthConfig) -> Result<Authenticator> {
        let key_err = |path: &PathBuf, e: jsonwebtoken::errors::Error| Error::Key {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let (decoding, encoding) = match cfg.algorithm {
            Algorithm::HS256 => {
                let path = cfg
                    .key_file
                    .clone()
                    .unwrap_or_else(|| "hedui-jwt.key".into());
                let secret = load_or_create_secret(&path)?;
                (
                    DecodingKey::from_secret(&secret),
                    Some(EncodingKey::from_secret(&secret)),
                )
            }
            alg => {
                let path = cfg.public_key_file.clone().ok_or_else(|| Error::Key {
                    path: "[auth] public_key_file".into(),
                    message: format!("{alg:?} needs the identity provider's public key"),
                })?;
                let pem = read_pem(&path)?;
                let decoding = match alg {
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
                    _ => DecodingKey::from_ed_pem(&pem),
                }
                .map_err(|e| key_err(&path, e))?;
                let encoding = match &cfg.private_key_file {
                    None => None,
                    Some(path) => {
                        let pem = read_pem(path)?;
                        Some(
                            match alg {
                                Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
                                _ => EncodingKey::from_ed_pem(&pem),
                            }
                            .map_err(|e| key_err(path, e))?,
                        )
                    }
                };
                (decoding, encoding)
            }
        };
        // Exactly one algorithm: a token naming another (or `none`) is refused before its
        // signature is even looked at.
        let mut validation = Validation::new(cfg.algorithm.jwt());
        validation.set_issuer(&[cfg.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 30;
        validation.validate_nbf = true;
        let max_ttl = parse_duration(&cfg.max_ttl).map_err(|m| Error::Key {
            path: "[auth] max_ttl".into(),
            message: m,
        })?;
        Ok(Authenticator {
            algorithm: cfg.algorithm,
            decoding,
            encoding,
            validation,
            issuer: cfg.issuer.clone(),
            max_ttl,
        })
    }

    /// An HS256 authenticator over a given secret (tests and embedded use).
    pub fn hs256(secret: &[u8], issuer: &str) -> Authenticator {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 30;
        validation.validate_nbf = true;
        Authenticator {
            algorithm: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            validation,
            issuer: issuer.into(),
            max_ttl: Duration::from_secs(30 * 86400),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Check a token and say who it is, or why it is refused.
    pub fn verify(&self, token: &str) -> std::result::Result<Identity, AuthFailure> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthFailure::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthFailure::Malformed(format!(
                "a token of {} bytes is larger than the {MAX_TOKEN_BYTES} accepted",
                token.len()
            )));
        }
        let header_alg = header_algorithm(token)?;
        if header_alg != format!("{:?}", self.algorithm) {
            return Err(AuthFailure::Algorithm(header_alg));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthFailure::Expired,
                ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidRsaKey(_) => AuthFailure::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthFailure::Algorithm(header_alg.clone())
                }
                ErrorKind::InvalidIssuer => AuthFailure::Issuer("another issuer".into()),
                ErrorKind::MissingRequiredClaim(c) => {
                    AuthFailure::Claims(format!("the `{c}` claim is missing"))
                }
                ErrorKind::Json(e) => AuthFailure::Claims(e.to_string()),
                other => AuthFailure::Malformed(format!("{other:?}")),
            })?;
        let c = data.claims;
        if c.sub.trim().is_empty() {
            return Err(AuthFailure::Claims("the subject is empty".into()));
        }
        if c.roles.is_empty() {
            return Err(AuthFailure::Claims("the token grants no role".into()));
        }
        let roles = c
            .roles
            .iter()
            .map(|r| r.parse::<Role>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(AuthFailure::Claims)?;
        if let Some(region) = &c.region
            && !valid_region(region)
        {
            return Err(AuthFailure::Claims(format!(
                "region `{region}` is not an administrative-code prefix (2 to 12 digits)"
            )));
        }
        // Time: not issued in the future, not valid before `nbf`, and no longer-lived than this
        // server would issue (a token valid until 2200 is a leaked key's token), each with the
        // same small clock skew.
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let skew = self.validation.leeway;
        if c.iat > now + skew || c.nbf.is_some_and(|nbf| nbf > now + skew) {
            return Err(AuthFailure::NotYetValid);
        }
        if c.exp.saturating_sub(c.iat) > self.max_ttl.as_secs() + skew {
            return Err(AuthFailure::Claims(format!(
                "a lifetime of {}s is longer than the {}s this server accepts ([auth] max_ttl)",
                c.exp.saturating_sub(c.iat),
                self.max_ttl.as_secs()
            )));
        }
        Ok(Identity {
            subject: c.sub,
            roles,
            region: c.region,
            department: c.dept,
            token_id: c.jti,
        })
    }

    /// Sign a token with this server's key.
    pub fn issue(&self, req: &TokenRequest) -> Result<String> {
        let key = self.encoding.as_ref().ok_or_else(|| {
            Error::Sign("no signing key: set [auth] private_key_file, or use HS256".into())
        })?;
        if req.roles.is_empty() {
            return Err(Error::Sign("a token needs at least one role".into()));
        }
        if req.ttl > self.max_ttl {
            return Err(Error::Sign(format!(
                "a lifetime of {}s is longer than [auth] max_ttl ({}s)",
                req.ttl.as_secs(),
                self.max_ttl.as_secs()
            )));
        }
        if let Some(region) = &req.region
            && !valid_region(region)
        {
            return Err(Error::Sign(format!(
                "region `{region}` is not an administrative-code prefix (2 to 12 digits)"
            )));
        }
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let mut jti = [0u8; 12];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| Error::Sign("the system random source failed".into()))?;
        let claims = Claims {
            sub: req.subject.clone(),
            roles: req.roles.iter().map(|r| r.as_str().to_string()).collect(),
            region: req.region.clone(),
            dept: req.department.clone(),
            iss: self.issuer.clone(),
            iat: now,
            exp: now + req.ttl.as_secs(),
            nbf: None,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm.jwt()), &claims, key)
            .map_err(|e| Error::Sign(e.to_string()))
    }
}

/// The `alg` a token's header names, read before anything else so that `none` and algorithm
/// confusion are refused by name.
fn header_algorithm(token: &str) -> std::result::Result<String, AuthFailure> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthFailure::Malformed(
            "a JWT has three dot-separated parts".into(),
        ));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| AuthFailure::Malformed("the header is not base64url".into()))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| AuthFailure::Malformed("the header is not JSON".into()))?;
    v.get("alg")
        .and_then(|a| a.as_str())
        .map(str::to_string)
        .ok_or_else(|| AuthFailure::Malformed("the header names no algorithm".into()))
}

/// `90s`, `30m`, `8h`, `7d`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30m, 8h or 7d"))?;
    let secs = match unit.trim() {
        "s" | "" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("`{s}` is not a duration like 30m, 8h or 7d")),
    };
    Ok(Duration::from_secs(secs))
}
