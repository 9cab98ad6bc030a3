//! One delivery attempt: a signed POST to a partner's endpoint, bounded in time and in what it
//! reads back.
//!
//! Following the spec's "Delivery success and failure" section: a 2xx is a success, anything else
//! a failure, redirects included (they are not followed: the partner should update the URL, and a
//! redirect must not lead a request past the URL policy). A `Retry-After` on 429 and 503 is
//! returned for the schedule ([`crate::retry`]). Errors never carry the secret, the signature or
//! the URL's query string (which partners sometimes use for their own tokens), so they can be
//! stored and shown to the partner.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant, SystemTime};

use chrono::{DateTime, Duration, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, redirect};

use crate::sign::{SigningSecret, signature_header};
use crate::target::{PublicOnlyResolver, UrlPolicy};

/// How much of a response body is read before the connection is dropped: enough to take in a
/// typical error page, little enough that a receiver cannot make us download a file.
pub const RESPONSE_READ_LIMIT: usize = 64 * 1024;

/// How much of the response body is kept for the partner to see in the attempt's record.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// The longest `Retry-After` honoured; a longer one would end the retries by itself.
pub const RETRY_AFTER_CAP: Duration = Duration::hours(24);

/// The `User-Agent` of every delivery, so receivers can tell Voltplan's requests apart.
pub const USER_AGENT: &str = concat!("Voltplan-Webhooks/", env!("CARGO_PKG_VERSION"));

/// Sends deliveries. One per process: it holds the connection pool.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: UrlPolicy,
}

/// The HTTP client could not be built (its TLS set-up failed).
#[derive(Debug, thiserror::Error)]
#[error("the webhook HTTP client could not be built: {0}")]
pub struct SenderError(#[from] reqwest::Error);

/// One attempt at sending one message to one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The endpoint's URL; checked against the policy again before sending.
    pub url: &'a str,
    /// The message's `webhook-id`: the same on every attempt, the receiver's idempotency key.
    pub msg_id: &'a str,
    /// This attempt's `webhook-timestamp` (sent as Unix seconds): a new one on every attempt, as
    /// receivers refuse old timestamps to stop replays.
    pub timestamp: DateTime<Utc>,
    /// The JSON body, sent exactly as signed.
    pub body: &'a str,
    /// The endpoint's signing secrets, newest first (two during a rotation).
    pub secrets: &'a [&'a SigningSecret],
}

/// What an attempt led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// Anything else: no answer (`status` is `None`: refused URL, DNS, connection, TLS, timeout)
    /// or a non-2xx status.
    Failed {
        status: Option<u16>,
        /// What went wrong, to show to the partner: never the secret, the signature or the
        /// URL's query string.
        error: String,
        /// The receiver's `Retry-After` on 429 or 503, at most [`RETRY_AFTER_CAP`].
        retry_after: Option<Duration>,
    },
}

/// The record of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    /// From just before the request until the response was read (or the attempt failed).
    pub duration_ms: u32,
    /// The first [`RESPONSE_EXCERPT_BYTES`] of the response body as lossy UTF-8, when there was
    /// a response with a body.
    pub response_excerpt: Option<String>,
}

impl Sender {
    /// A sender for URLs that `policy` accepts, each attempt bounded by `timeout` in total
    /// (connecting, sending and reading the response). The spec suggests 15 to 30 seconds.
    ///
    /// The client resolves host names with [`PublicOnlyResolver`] (SSRF), follows no redirects,
    /// uses no proxy from the environment (a proxy would resolve the host itself, past the
    /// resolver's check) and sends `User-Agent: Voltplan-Webhooks/<version>`.
    pub fn new(policy: UrlPolicy, timeout: StdDuration) -> Result<Self, SenderError> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PublicOnlyResolver {
                allow_loopback: policy.allow_insecure_loopback,
            }))
            .redirect(redirect::Policy::none())
            .no_proxy()
            .https_only(!policy.allow_insecure_loopback)
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .build()?;
        Ok(Self { client, policy })
    }

    /// Makes one attempt. It never panics and never returns early without a record: every
    /// failure is an [`AttemptOutcome::Failed`].
    pub async fn deliver(&self, d: &Delivery<'_>) -> Attempt {
        let started = Instant::now();
        let failed = |error: String| Attempt {
            outcome: AttemptOutcome::Failed {
                status: None,
                error,
                retry_after: None,
            },
            duration_ms: elapsed_ms(started),
            response_excerpt: None,
        };
        // Checked again: the policy may be stricter than when the URL was stored, and IP-literal
        // hosts never reach the resolver.
        let url = match self.policy.check(d.url) {
            Ok(url) => url,
            Err(refusal) => return failed(refusal.to_string()),
        };
        if d.secrets.is_empty() {
            return failed("the endpoint has no signing secret".to_owned());
        }
        let timestamp = d.timestamp.timestamp();
        let headers = match webhook_headers(d, timestamp) {
            Ok(headers) => headers,
            Err(error) => return failed(error),
        };
        let sent = self
            .client
            .post(url.clone())
            .headers(headers)
            .body(d.body.to_owned())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return failed(describe_transport_error(error, &url)),
        };
        let status = response.status();
        let retry_after = retry_after(status, response.headers(), SystemTime::now());
        let excerpt = read_excerpt(&mut response).await;
        let outcome = if status.is_success() {
            AttemptOutcome::Delivered {
                status: status.as_u16(),
            }
        } else {
            let error = if status.is_redirection() {
                format!(
                    "the endpoint answered {} and redirects are not followed: update the webhook URL to the final address",
                    describe_status(status)
                )
            } else {
                format!("the endpoint answered {}", describe_status(status))
            };
            AttemptOutcome::Failed {
                status: Some(status.as_u16()),
                error,
                retry_after,
            }
        };
        Attempt {
            outcome,
            duration_ms: elapsed_ms(started),
            response_excerpt: excerpt,
        }
    }
}

/// `content-type` and the three Standard Webhooks headers.
fn webhook_headers(d: &Delivery<'_>, timestamp: i64) -> Result<HeaderMap, String> {
    // The spec: the id must not contain `.`, which delimits the signed content.
    if d.msg_id.is_empty() || d.msg_id.contains('.') {
        return Err("the message id is empty or contains a full stop".to_owned());
    }
    let id = HeaderValue::from_str(d.msg_id)
        .map_err(|_| "the message id is not a valid header value".to_owned())?;
    let signature = signature_header(d.secrets, d.msg_id, timestamp, d.body.as_bytes());
    let mut signature = HeaderValue::from_str(&signature).expect("base64 is a valid header value");
    signature.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("webhook-id", id);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert("webhook-signature", signature);
    Ok(headers)
}

fn elapsed_ms(started: Instant) -> u32 {
    u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX)
}

fn describe_status(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

/// The transport error's text with its causes, naming the URL without its query string (reqwest
/// would print the whole URL).
fn describe_transport_error(error: reqwest::Error, url: &url::Url) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut shown = url.clone();
    shown.set_query(None);
    let error = error.without_url();
    let mut text = format!("the request to {shown} {what}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and reqwest sometimes repeat a cause's text one level down.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The receiver's `Retry-After` on 429 and 503 (the statuses that define it for this purpose), as
/// delay seconds or an HTTP date, capped at [`RETRY_AFTER_CAP`]; a date in the past is no delay.
fn retry_after(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate huge numbers rather than refuse them: they mean "much later".
        let seconds = value.parse::<i64>().unwrap_or(i64::MAX);
        Duration::seconds(seconds.min(RETRY_AFTER_CAP.num_seconds()))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        let wait = at.duration_since(now).unwrap_or(StdDuration::ZERO);
        Duration::from_std(wait).unwrap_or(RETRY_AFTER_CAP)
    };
    Some(delay.min(RETRY_AFTER_CAP))
}

/// Reads at most [`RESPONSE_READ_LIMIT`] of the body and keeps the first
/// [`RESPONSE_EXCERPT_BYTES`]. A body that fails midway (timeout, reset) keeps what arrived.
async fn read_excerpt(response: &mut reqwest::Response) -> Option<String> {
    let mut kept: Vec<u8> = Vec::new();
    let mut read = 0usize;
    while read < RESPONSE_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                let room = RESPONSE_EXCERPT_BYTES - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    if kept.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&kept).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_as_seconds_or_date_on_429_and_503_only() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let busy = StatusCode::TOO_MANY_REQUESTS;
        let down = StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(
            retry_after(busy, &headers("120"), now),
            Some(Duration::minutes(2))
        );
        assert_eq!(
            retry_after(down, &headers(" 0 "), now),
            Some(Duration::zero())
        );
        assert_eq!(
            retry_after(down, &headers("Sun, 06 Nov 1994 08:59:37 GMT"), now),
            Some(Duration::minutes(10))
        );
        // A date in the past is no delay; more than a day is capped.
        assert_eq!(
            retry_after(busy, &headers("Sun, 06 Nov 1994 08:00:00 GMT"), now),
            Some(Duration::zero())
        );
        assert_eq!(
            retry_after(busy, &headers("86401"), now),
            Some(Duration::hours(24))
        );
        assert_eq!(
            retry_after(busy, &headers("99999999999999999999999"), now),
            Some(Duration::hours(24))
        );
        assert_eq!(
            retry_after(busy, &headers("Mon, 07 Nov 1994 08:49:38 GMT"), now),
            Some(Duration::hours(24))
        );
        // Not a number or a date, negative, or on another status: ignored.
        assert_eq!(retry_after(busy, &headers("soon"), now), None);
        assert_eq!(retry_after(busy, &headers("-5"), now), None);
        assert_eq!(retry_after(busy, &headers("1.5"), now), None);
        assert_eq!(
            retry_after(StatusCode::INTERNAL_SERVER_ERROR, &headers("120"), now),
            None
        );
        assert_eq!(
            retry_after(StatusCode::MOVED_PERMANENTLY, &headers("120"), now),
            None
        );
        assert_eq!(retry_after(busy, &HeaderMap::new(), now), None);
    }

    #[test]
    fn user_agent_names_the_version() {
        assert_eq!(
            USER_AGENT,
            format!("Voltplan-Webhooks/{}", env!("CARGO_PKG_VERSION"))
        );
    }
}
