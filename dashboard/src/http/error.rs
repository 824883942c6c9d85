//! The one error type of the web layer. Internal errors are logged in full and answered with a
//! generic body: no patient data or SQL in error responses.

use crate::BackendError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no or invalid credentials.
    #[error("authentication required")]
    Unauthorized,
    /// 400: the request is malformed; the message says why.
    #[error("{0}")]
    BadRequest(String),
    /// 403: authenticated, but not allowed (a clinician on an admin route, a missing CSRF token).
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0} not found")]
    NotFound(String),
    /// 409: the state does not allow this (e.g. acknowledging a resolved alert).
    #[error("{0}")]
    Conflict(String),
    /// 500: logged, answered generically.
    #[error("internal error")]
    Internal(String),
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NotFound(w) => ApiError::NotFound(w),
            BackendError::Conflict(m) => ApiError::Conflict(m),
            BackendError::Invalid(m) => ApiError::BadRequest(m),
            BackendError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut res = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"vigil\""),
            );
        }
        res
    }
}
