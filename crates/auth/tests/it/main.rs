//! Tokens a caller might present, good and bad.

use std::time::Duration;

use base64::Engine as _;
use hedui_auth::{Algorithm, AuthConfig, AuthFailure, Authenticator, Claims, Role, TokenRequest};

fn request(roles: &[Role], region: Option<&str>) -> TokenRequest {
    TokenRequest {
        subject: "zhang.wei".into(),
        roles: roles.to_vec(),
        region: region.map(String::from),
        department: Some("人社局".into()),
        ttl: Duration::from_secs(3600),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn a_signed_token_gives_its_identity() {
    let auth = Authenticator::hs256(b"0123456789abcdef0123456789abcdef", "hedui");
    let token = auth
        .issue(&request(&[Role::Reviewer], Some("420502")))
        .unwrap();
    let id = auth.verify(&token).unwrap();
    assert_eq!(id.subject, "zhang.wei");
    assert_eq!(id.roles, vec![Role::Reviewer]);
    assert_eq!(id.region.as_deref(), Some("420502"));
    assert_eq!(id.department.as_deref(), Some("人社局"));
    assert_eq!(id.token_id.len(), 24, "each token has its own id");
}

#[test]
fn a_token_signed_with_another_key_is_refused() {
    let ours = Authenticator::hs256(b"0123456789abcdef0123456789abcdef", "hedui");
    let theirs = Authenticator::hs256(b"ffffffffffffffffffffffffffffffff", "hedui");
    let token = theirs.issue(&request(&[Role::Admin], None)).unwrap();
    assert_eq!(ours.verify(&token), Err(AuthFailure::BadSignature));
}

#[test]
fn an_edited_claim_breaks_the_signature() {
    let auth = Authenticator::hs256(b"0123456789abcdef0123456789abcdef", "hedui");
    let token = auth
        .issue(&request(&[Role::Reviewer], Some("420502")))
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Claims = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    claims.roles = vec!["admin".into()];
    claims.region = None;
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert_eq!(auth.verify(&forged), Err(AuthFailure::BadSignature));
}

#[test]
fn an_unsigned_none_token_is_refused_by_its_algorithm() {
    let auth = Authenticator::hs256(b"0123456789abcdef0123456789abcdef", "hedui");
    let claims = serde_json::json!({"sub": "x", "roles": ["admin"], "iss": "hedui",
        "iat": 0, "exp": 4_000_000_000u64});
    for alg in ["none", "None", "NONE"] {
        let token = format!(
            "{}.{}.",
            b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        assert_eq!(
            auth.verify(&token),
            Err(AuthFailure::Algorithm(alg.into())),
            "{alg}"
        );
    }
}

#[test]
fn an_expired_token_is_refused() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let auth = Authenticator::hs256(secret, "hedui");
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = Claims {
        sub: "x".into(),
        roles: vec!["analyst".into()],
        region: None,
        dept: None,
        iss: "hedui".into(),
        iat: now - 7200,
        exp: now - 3600,
        nbf: None,
        jti: String::new(),
    };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();
    assert_eq!(auth.verify(&token), Err(AuthFailure::Expired));
}

#[test]
fn malformed_tokens_and_bad_claims_are_refused() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let auth = Authenticator::hs256(secret, "hedui");
    assert_eq!(auth.verify(""), Err(AuthFailure::Missing));
    for junk in ["abc", "a.b", "a.b.c.d", "!!!.e30.x"] {
        assert!(
            matches!(auth.verify(junk), Err(AuthFailure::Malformed(_))),
            "{junk}"
        );
    }
    let sign = |claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let exp = 4_000_000_000u64;
    let unknown_role = sign(
        serde_json::json!({"sub": "x", "roles": ["superuser"], "iss": "hedui", "iat": 0, "exp": exp}),
    );
    assert!(
        matches!(auth.verify(&unknown_role), Err(AuthFailure::Claims(m)) if m.contains("superuser"))
    );
    let no_role =
        sign(serde_json::json!({"sub": "x", "roles": [], "iss": "hedui", "iat": 0, "exp": exp}));
    assert!(matches!(auth.verify(&no_role), Err(AuthFailure::Claims(_))));
    let bad_region = sign(
        serde_json::json!({"sub": "x", "roles": ["reviewer"], "region": "4205%", "iss": "hedui", "iat": 0, "exp": exp}),
    );
    assert!(matches!(auth.verify(&bad_region), Err(AuthFailure::Claims(m)) if m.contains("4205%")));
    let other_issuer = sign(
        serde_json::json!({"sub": "x", "roles": ["admin"], "iss": "evil", "iat": 0, "exp": exp}),
    );
    assert!(matches!(
        auth.verify(&other_issuer),
        Err(AuthFailure::Issuer(_))
    ));
    let no_exp =
        sign(serde_json::json!({"sub": "x", "roles": ["admin"], "iss": "hedui", "iat": 0}));
    assert!(auth.verify(&no_exp).is_err(), "a token must expire");
}

#[test]
fn tokens_from_the_future_forever_or_oversized_are_refused() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let auth = Authenticator::hs256(secret, "hedui");
    let sign = |claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = |iat: u64, exp: u64, nbf: Option<u64>| {
        let mut c = serde_json::json!({"sub": "x", "roles": ["analyst"], "iss": "hedui", "iat": iat, "exp": exp});
        if let Some(n) = nbf {
            c["nbf"] = n.into();
        }
        c
    };
    // A fresh, ordinary token passes, also a few seconds of clock skew either way.
    assert!(auth.verify(&sign(claims(now, now + 3600, None))).is_ok());
    assert!(
        auth.verify(&sign(claims(now + 10, now + 3600, Some(now + 10))))
            .is_ok()
    );
    // Issued in the future, not valid yet.
    assert_eq!(
        auth.verify(&sign(claims(now + 3600, now + 7200, None))),
        Err(AuthFailure::NotYetValid)
    );
    assert_eq!(
        auth.verify(&sign(claims(now, now + 7200, Some(now + 3600)))),
        Err(AuthFailure::NotYetValid)
    );
    // Valid until 2200: longer than any lifetime this server issues.
    let forever = sign(claims(now, 7_258_118_400, None));
    assert!(
        matches!(auth.verify(&forever), Err(AuthFailure::Claims(m)) if m.contains("lifetime")),
        "{:?}",
        auth.verify(&forever)
    );
    // 267 KB of padding in a claim: refused before it is parsed.
    let mut big = claims(now, now + 3600, None);
    big["pad"] = "x".repeat(267_000).into();
    assert!(
        matches!(auth.verify(&sign(big)), Err(AuthFailure::Malformed(m)) if m.contains("larger"))
    );
}

#[test]
fn hs256_key_is_made_on_first_start_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuthConfig {
        key_file: Some(dir.path().join("keys/hedui-jwt.key")),
        ..AuthConfig::default()
    };
    let first = Authenticator::from_config(&cfg).unwrap();
    let token = first.issue(&request(&[Role::Analyst], None)).unwrap();
    // A restart reads the same key: yesterday's tokens still work.
    let second = Authenticator::from_config(&cfg).unwrap();
    assert!(second.verify(&token).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys/hedui-jwt.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only the owner may read the key");
    }
}

#[test]
fn eddsa_tokens_verify_with_the_configured_public_key_and_hs256_ones_do_not() {
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let std_b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("idp.pem");
    let public = dir.path().join("idp.pub.pem");
    std::fs::write(
        &private,
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            std_b64(pkcs8.as_ref())
        ),
    )
    .unwrap();
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    std::fs::write(
        &public,
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            std_b64(&spki)
        ),
    )
    .unwrap();
    let cfg = AuthConfig {
        algorithm: Algorithm::EdDSA,
        public_key_file: Some(public.clone()),
        private_key_file: Some(private),
        ..AuthConfig::default()
    };
    let idp = Authenticator::from_config(&cfg).unwrap();
    let token = idp
        .issue(&request(&[Role::DibaoReviewer], Some("420502")))
        .unwrap();
    let verifier = Authenticator::from_config(&AuthConfig {
        private_key_file: None,
        ..cfg
    })
    .unwrap();
    assert_eq!(
        verifier.verify(&token).unwrap().roles,
        vec![Role::DibaoReviewer]
    );
    assert!(
        verifier.issue(&request(&[Role::Admin], None)).is_err(),
        "without the private key this server cannot mint tokens"
    );
    // Algorithm confusion: an HS256 token (e.g. signed with the public key's bytes) is refused.
    let hs = Authenticator::hs256(&std::fs::read(&public).unwrap(), "hedui")
        .issue(&request(&[Role::Admin], None))
        .unwrap();
    assert_eq!(
        verifier.verify(&hs),
        Err(AuthFailure::Algorithm("HS256".into()))
    );
}

#[test]
fn token_lifetimes_are_bounded_and_durations_parse() {
    let auth = Authenticator::hs256(b"0123456789abcdef0123456789abcdef", "hedui");
    let mut long = request(&[Role::Admin], None);
    long.ttl = Duration::from_secs(365 * 86400);
    assert!(auth.issue(&long).is_err());
    assert_eq!(
        hedui_auth::parse_duration("8h").unwrap(),
        Duration::from_secs(28800)
    );
    assert_eq!(
        hedui_auth::parse_duration("7d").unwrap(),
        Duration::from_secs(604800)
    );
    assert!(hedui_auth::parse_duration("soon").is_err());
}
