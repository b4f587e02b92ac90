//! The player's files, from `server.web_root`.

use std::convert::Infallible;
use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::MethodRouter;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Serves the web root; `/` is its `index.html`. Files are revalidated on every
/// load (`Cache-Control: no-cache`) so an updated player is never stale. When the
/// web root has no `index.html`, `/` explains that instead of showing nothing.
/// Dotfiles (`vendor/.installed`), `//` paths, the security headers and the
/// charset of text files are [`super::guard`]'s, in front of this.
pub fn service(web_root: PathBuf) -> MethodRouter {
    let missing = MissingPlayer {
        web_root: web_root.clone(),
    };
    let files = ServeDir::new(&web_root)
        .append_index_html_on_directories(true)
        .fallback(axum::routing::get(move || {
            let missing = missing.clone();
            async move { Ok::<_, Infallible>(missing.respond()) }
        }));
    axum::routing::get_service(files).layer(SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    ))
}

#[derive(Clone)]
struct MissingPlayer {
    web_root: PathBuf,
}

impl MissingPlayer {
    fn respond(&self) -> Response {
        if self.web_root.join("index.html").is_file() {
            return (StatusCode::NOT_FOUND, "not found\n").into_response();
        }
        let root = html_escape(&self.web_root.display().to_string());
        (
            StatusCode::NOT_FOUND,
            Html(format!(
                "<!doctype html><meta charset=utf-8><title>streamer</title>\
                 <h1>The player is missing</h1>\
                 <p>The streamer is running, but its web root <code>{root}</code> has no \
                 <code>index.html</code>. Set <code>server.web_root</code> in the configuration \
                 to the folder with the player's files. The stream itself is at <code>/ws</code>, \
                 status at <a href=\"api/status\">api/status</a>.</p>"
            )),
        )
            .into_response()
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
