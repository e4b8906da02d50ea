//! The web console's files, embedded in the binary: one page, its script and its styles
//! (`src/http/console/`). Plain HTML, CSS and JavaScript with no build step and nothing
//! fetched from elsewhere; the page talks to `/api/`.

use super::response::Response;

const INDEX_HTML: &str = include_str!("console/index.html");
const CONSOLE_JS: &str = include_str!("console/console.js");
const CONSOLE_CSS: &str = include_str!("console/console.css");

/// The file at `path` (`read`: the request is a GET or HEAD).
pub fn asset(path: &str, read: bool) -> Response {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/console.js" => ("text/javascript; charset=utf-8", CONSOLE_JS),
        "/console.css" => ("text/css; charset=utf-8", CONSOLE_CSS),
        _ => return Response::not_found(),
    };
    if !read {
        return Response::method_not_allowed("GET, HEAD");
    }
    Response::new(200, content_type, body)
}
