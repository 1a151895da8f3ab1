//! `/inbox`: the reviewers' page. One static file compiled into the binary (no build
//! step); it talks to the management API with the reviewer's token and stays current
//! through `/api/v1/reviews/events`.

use axum::Router;
use axum::response::Html;
use axum::routing::get;

use super::AppState;

const PAGE: &str = include_str!("../../static/inbox.html");

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/inbox", get(|| async { Html(PAGE) }))
}
