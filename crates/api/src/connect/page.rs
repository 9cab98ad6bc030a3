//! What every Connect page shares: self-contained HTML (no scripts, no external assets, every
//! interpolated value escaped), the security headers, the forgery checks on posts, and the pages
//! for errors.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use voltplan_store::StoreError;

use super::browser::{cookie, form_token_ok};
use super::text::{Lang, Text};
use crate::public_url::PublicUrl;
use crate::state::AppState;

/// Headers of every page: never cached (it carries a secret in its URL), never framed (an
/// invisible frame could trick the driver into clicking), a referrer only to this server itself
/// (the secret URL must not reach the partner's site or the cloud's with a redirect; the forms'
/// own posts then carry a real `Origin`, which the forgery check compares), and nothing but
/// inline style may load.
const PAGE_HEADERS: [(HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

/// The content security policy of every page. Forms may post only here; a page whose post is
/// redirected elsewhere adds those origins (`with_form_targets`), since Chrome applies
/// `form-action` to the redirect that follows a post too.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f4f6f8;\
color:#1f2328;line-height:1.5}\
main{max-width:32rem;margin:3rem auto;padding:2rem 1.5rem;background:#fff;border-radius:.75rem;\
box-shadow:0 1px 3px rgba(0,0,0,.08)}\
@media (max-width:36rem){main{margin:0;border-radius:0;min-height:100vh;padding:1.5rem 1rem}}\
h1{font-size:1.4rem;line-height:1.25;margin:0 0 .75rem}p{margin:.5rem 0 1rem}\
.steps{font-size:.85rem;color:#59636e;margin-bottom:1rem}\
fieldset{border:0;padding:0;margin:0 0 1rem}legend{font-weight:600;margin-bottom:.5rem;padding:0}\
.choice{display:flex;align-items:center;gap:.75rem;padding:.7rem .9rem;margin:.4rem 0;\
border:1px solid #d0d7de;border-radius:.5rem;cursor:pointer;background:#fff}\
.choice:hover{border-color:#0969da}.choice input{width:1.1rem;height:1.1rem;margin:0}\
.choice small{display:block;color:#59636e}\
label.field{display:block;margin:.6rem 0 .2rem;font-weight:600}\
input[type=email],input[type=password],input[type=text]{width:100%;font-size:1rem;\
padding:.55rem .6rem;border:1px solid #8c959f;border-radius:.4rem}\
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:1.25rem}\
button,input{font-family:inherit}\
button{font-size:1rem;padding:.65rem 1.3rem;border-radius:.45rem;border:1px solid #8c959f;\
background:#f6f8fa;color:#1f2328;cursor:pointer}\
button.primary{background:#1a7f37;border-color:#1a7f37;color:#fff}\
button:focus-visible,.choice:focus-within{outline:3px solid #0969da;outline-offset:2px}\
.note{font-size:.85rem;color:#59636e}.tag{font-size:.75rem;background:#ddf4ff;color:#0969da;\
padding:.1rem .45rem;border-radius:1rem;margin-left:.4rem}";

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page; `body_html` must already be escaped.
pub(crate) fn page(status: StatusCode, lang: Lang, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main><h1>{title}</h1>{body_html}</main></body></html>\n",
        lang = lang.code(),
        title = escape(title),
    );
    with_page_headers((status, Html(html)).into_response())
}

pub(crate) fn with_page_headers(mut response: Response) -> Response {
    for (name, value) in PAGE_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// Lets the page's form posts be redirected to the origins of `urls` (the partner's success
/// and cancel URLs, a cloud's login).
pub(crate) fn with_form_targets<'a>(
    mut response: Response,
    urls: impl IntoIterator<Item = &'a str>,
) -> Response {
    let mut policy = CSP.to_owned();
    for url in urls {
        let Ok(parsed) = url::Url::parse(url) else {
            continue;
        };
        let origin = parsed.origin().ascii_serialization();
        // A CSP source cannot name an IPv6 literal or an opaque origin ("null").
        if origin.contains('[') || origin == "null" || policy.contains(&format!(" {origin}")) {
            continue;
        }
        policy.push(' ');
        policy.push_str(&origin);
    }
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Why a post must be refused as cross-site request forgery, if it must: a browser says where a
/// form post comes from in `Sec-Fetch-Site` and `Origin`; a post another site made the driver's
/// browser send could otherwise act for the driver. A client sending neither header is no
/// browser (or one too old to send either); the forms' tokens (`csrf.rs`) still hold it.
pub(crate) fn forgery_refusal(headers: &HeaderMap, public: &PublicUrl) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Some(format!("Sec-Fetch-Site {site:?}"));
    }
    match headers.get(header::ORIGIN) {
        Some(origin) if origin.as_bytes() != public.origin().as_bytes() => Some(format!(
            "Origin {origin:?} is not the public URL's {:?} (is --public-url right?)",
            public.origin()
        )),
        _ => None,
    }
}

/// Refuses a post another site (or another browser) made: the page to answer, if any.
pub(crate) fn refuse_forgery(
    state: &AppState,
    headers: &HeaderMap,
    scope: &str,
    token: Option<&String>,
    lang: Lang,
) -> Option<Response> {
    if let Some(why) = forgery_refusal(headers, state.public_url()) {
        tracing::warn!(reason = %why, "refused a cross-site post to a connect page");
        return Some(forbidden_page(lang));
    }
    let valid = match (cookie(headers), token) {
        (Some(cookie), Some(token)) => form_token_ok(state.keys(), scope, &cookie, token),
        _ => false,
    };
    if !valid {
        tracing::warn!("refused a connect form without this browser's token");
        return Some(forbidden_page(lang));
    }
    None
}

pub(crate) fn forbidden_page(lang: Lang) -> Response {
    let t = Text::of(lang);
    page(
        StatusCode::FORBIDDEN,
        lang,
        t.refused_title,
        &format!("<p>{}</p>", escape(t.refused_body)),
    )
}

pub(crate) fn not_found_page(lang: Lang) -> Response {
    let t = Text::of(lang);
    page(
        StatusCode::NOT_FOUND,
        lang,
        t.not_found_title,
        &format!("<p>{}</p>", escape(t.not_found_body)),
    )
}

pub(crate) fn internal_error_page(lang: Lang, cause: StoreError) -> Response {
    let t = Text::of(lang);
    if cause.is_unavailable() {
        tracing::warn!(%cause, "connect page failed: database unavailable");
        let mut response = page(
            StatusCode::SERVICE_UNAVAILABLE,
            lang,
            t.busy_title,
            &format!("<p>{}</p>", escape(t.busy_body)),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::error::RETRY_AFTER_UNAVAILABLE_SECS),
        );
        return response;
    }
    tracing::error!(%cause, "connect page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        lang,
        t.error_title,
        &format!("<p>{}</p>", escape(t.error_body)),
    )
}

/// A 303 to `location` (an absolute URL this server chose: a session's own URL or a cloud's
/// login), with the page headers.
pub(crate) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => with_page_headers(
            (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        ),
        Err(_) => {
            tracing::error!("a redirect target is not a valid header value");
            with_page_headers(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
