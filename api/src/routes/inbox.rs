//! `/inbox`: the reviewers' page. One static file compiled into the binary (no build
//! step); it talks to the management API with the reviewer's token and stays current
//! through `/api/v1/reviews/events`.

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;

use super::AppState;

const PAGE: &str = include_str!("../../static/inbox.html");

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/inbox", get(page))
}

/// The page, marked when reviewers sign in with OpenID Connect (it then offers the
/// sign-in button instead of a name field).
async fn page(State(state): State<AppState>) -> Html<std::borrow::Cow<'static, str>> {
    if state.oidc.is_some() {
        Html(
            PAGE.replacen("<body>", r#"<body data-oidc="on">"#, 1)
                .into(),
        )
    } else {
        Html(PAGE.into())
    }
}
