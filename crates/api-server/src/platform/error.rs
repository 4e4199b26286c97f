//! The api-server's error type. Every variant has a stable code, mapped to an HTTP status for REST
//! (`{"error": {"code": "...", "message": "..."}}`) and to a `tonic::Code` for gRPC.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use labwright_core::ValidationError;
pub use labwright_wire::rest::error::{ErrorBody, ErrorCode, ErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database unavailable")]
    DatabaseUnavailable,
    #[error("message broker unavailable")]
    BrokerUnavailable,
    #[error("{0}")]
    Timeout(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// Failed authentications from this source: nothing is tried for `retry_after_secs`.
    #[error("too many failed authentications; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
}

impl ApiError {
    /// The stable, machine-readable code. Clients match on this, never on the message.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The stable code of this error (`labwright_wire::rest::ErrorCode`).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthenticated => ErrorCode::Unauthenticated,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::DatabaseUnavailable => ErrorCode::DatabaseUnavailable,
            ApiError::BrokerUnavailable => ErrorCode::BrokerUnavailable,
            ApiError::Timeout(_) => ErrorCode::Timeout,
            ApiError::Internal(_) => ErrorCode::Internal,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
        }
    }

    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            ApiError::Unauthenticated => tonic::Code::Unauthenticated,
            ApiError::Forbidden(_) => tonic::Code::PermissionDenied,
            ApiError::NotFound(_) => tonic::Code::NotFound,
            ApiError::InvalidArgument(_) => tonic::Code::InvalidArgument,
            ApiError::Conflict(_) => tonic::Code::FailedPrecondition,
            ApiError::DatabaseUnavailable | ApiError::BrokerUnavailable => tonic::Code::Unavailable,
            ApiError::Timeout(_) => tonic::Code::DeadlineExceeded,
            ApiError::Internal(_) => tonic::Code::Internal,
            ApiError::RateLimited { .. } => tonic::Code::ResourceExhausted,
        }
    }

    pub fn invalid(e: ValidationError) -> Self {
        ApiError::InvalidArgument(e.to_string())
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid(e)
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Unavailable(_) => ApiError::DatabaseUnavailable,
            crate::db::DbError::Query(diesel::result::Error::NotFound) => {
                ApiError::NotFound("record".into())
            }
            crate::db::DbError::Query(q) => ApiError::Internal(q.into()),
        }
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        if let ApiError::Internal(inner) = &e {
            tracing::error!(error = %inner, "internal error");
        }
        let mut status = tonic::Status::new(e.grpc_code(), e.to_string());
        if let Ok(v) = e.code().parse() {
            status.metadata_mut().insert("labwright-error-code", v);
        }
        if let ApiError::RateLimited { retry_after_secs } = &e
            && let Ok(v) = retry_after_secs.to_string().parse()
        {
            status.metadata_mut().insert("retry-after", v);
        }
        status
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::DatabaseUnavailable | ApiError::BrokerUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(inner) = self {
            tracing::error!(error = %inner, "internal error");
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated) {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::RateLimited { retry_after_secs } = self {
            resp.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        resp.json(ErrorBody {
            error: ErrorDetail {
                code: self.code().into(),
                message: self.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_consistently_to_http_and_grpc() {
        let cases = [
            (ApiError::Unauthenticated, 401, tonic::Code::Unauthenticated),
            (
                ApiError::NotFound("host".into()),
                404,
                tonic::Code::NotFound,
            ),
            (
                ApiError::InvalidArgument("x".into()),
                400,
                tonic::Code::InvalidArgument,
            ),
            (ApiError::DatabaseUnavailable, 503, tonic::Code::Unavailable),
            (ApiError::BrokerUnavailable, 503, tonic::Code::Unavailable),
            (
                ApiError::RateLimited {
                    retry_after_secs: 3,
                },
                429,
                tonic::Code::ResourceExhausted,
            ),
        ];
        for (e, http, grpc) in cases {
            assert_eq!(e.status_code().as_u16(), http, "{}", e.code());
            let status: tonic::Status = e.into();
            assert_eq!(status.code(), grpc);
            assert!(status.metadata().get("labwright-error-code").is_some());
        }
    }
}
