//! `/api/v1/admin/tsdb/*`: snapshot, delete_series and clean_tombstones, served only
//! with `--web.enable-admin-api` because they let any client delete data or fill the
//! disk. Disabled, they answer as Prometheus does: 503 `unavailable`, "admin APIs
//! disabled".

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, ApiResult, blocking, db, read_params, selectors, success};
use crate::web::WebState;

fn enabled(s: &WebState) -> Result<(), ApiError> {
    if s.admin_api {
        Ok(())
    } else {
        Err(ApiError::unavailable("admin APIs disabled"))
    }
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot?skip_head=<bool>`.
pub async fn snapshot(State(s): State<WebState>, RawQuery(q): RawQuery, req: Request) -> ApiResult {
    enabled(&s)?;
    let p = read_params(q, req).await?;
    let skip_head = match p.get("skip_head") {
        None | Some("") => false,
        Some(v) => parse_bool(v)
            .ok_or_else(|| ApiError::bad_data(format!("unable to parse boolean: {v:?}")))?,
    };
    let db = db(&s)?;
    let name = snapshot_name(SystemTime::now());
    let dir = db.dir().join("snapshots").join(&name);
    blocking(move || {
        db.snapshot(&dir, !skip_head)
            .map_err(|e| ApiError::internal(format!("create snapshot: {e}")))
    })
    .await?;
    Ok(success(json!({ "name": name })))
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series?match[]=…&start=…&end=…`.
pub async fn delete_series(
    State(s): State<WebState>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult {
    enabled(&s)?;
    let p = read_params(q, req).await?;
    let sets = selectors(&p)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = (p.time_or("start", i64::MIN)?, p.time_or("end", i64::MAX)?);
    let db = db(&s)?;
    blocking(move || {
        for m in &sets {
            db.delete_series(m, start, end)?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`.
pub async fn clean_tombstones(State(s): State<WebState>) -> Result<Response, ApiError> {
    enabled(&s)?;
    let db = db(&s)?;
    blocking(move || Ok(db.clean_tombstones()?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Go's `strconv.ParseBool`, which Prometheus uses for `skip_head`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `YYYYMMDDTHHMMSSZ-<16 hex digits>` as Prometheus names snapshots: sortable by time,
/// and random so two snapshots in one second do not collide.
fn snapshot_name(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::clock::civil_from_days(days);
    // std's hasher keys are random per instance: 64 random bits without a dependency.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{random:016x}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_utc_timestamps_and_random_hex() {
        // 2021-03-04T05:06:07Z.
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_614_834_367);
        let name = snapshot_name(t);
        assert_eq!(&name[..17], "20210304T050607Z-");
        assert_eq!(name.len(), 33);
        assert!(name[17..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(snapshot_name(t), name);
        assert_eq!(crate::clock::civil_from_days(0), (1970, 1, 1));
        assert_eq!(crate::clock::civil_from_days(11_016), (2000, 2, 29));
    }
}
