//! API errors: a status code, a stable code and a message for the caller (never internals).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The audit log cannot be written: no answer is given (fail closed).
    pub fn audit_unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the audit log cannot be written, so no answer is given; the operator has been told in the server log",
        )
    }

    pub fn unauthenticated(why: &hedui_auth::AuthFailure) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", why.to_string())
    }
}

impl From<hedui_policy::Error> for ApiError {
    fn from(e: hedui_policy::Error) -> Self {
        use hedui_policy::Error as E;
        let status = match &e {
            E::Refused(_) => StatusCode::FORBIDDEN,
            E::Query(_) => StatusCode::BAD_REQUEST,
            E::Limit(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::Config(_) | E::Engine(_) | E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            E::Engine(_) | E::Internal(_) | E::Config(_) => {
                tracing::error!(error = %e, "request failed inside the server");
                "the server could not answer; the server log has details".to_string()
            }
            other => other.to_string(),
        };
        ApiError::new(status, e.code(), message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"hedui\""),
            );
        }
        r
    }
}

impl From<hedui_service::Error> for ApiError {
    fn from(e: hedui_service::Error) -> Self {
        use hedui_service::Error as E;
        match e {
            E::Refused(m) => ApiError::new(StatusCode::FORBIDDEN, "refused", m),
            E::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            E::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m),
            E::Cases(c) => c.into(),
            E::Internal(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
            other @ (E::Engine(_) | E::Lake(_) | E::NotReproduced { .. }) => {
                tracing::error!(error = %other, "request failed inside the server");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server could not answer; the server log has details",
                )
            }
        }
    }
}

impl ApiError {
    /// How the audit log records this answer: a refusal (not for this caller, or nothing they
    /// may see) or an error.
    pub fn outcome(&self) -> hedui_audit::Outcome {
        if matches!(self.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND) {
            hedui_audit::Outcome::Refused
        } else {
            hedui_audit::Outcome::Error
        }
    }
}
