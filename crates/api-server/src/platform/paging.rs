//! `limit`/`offset` of the list endpoints: the bounds every listing accepts.

use super::error::ApiError;

/// Most items one list call returns.
pub const MAX_PAGE: i64 = 500;
pub const DEFAULT_PAGE: i64 = 50;

/// `limit`/`offset` validation shared by list endpoints.
pub fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidArgument(format!(
            "limit: must be between 1 and {MAX_PAGE}"
        )));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::InvalidArgument(
            "offset: must not be negative".into(),
        ));
    }
    Ok((limit, offset))
}
