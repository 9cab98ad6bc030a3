//! Deliveries to a receiver of the test's own on 127.0.0.1: a plain tokio TCP listener speaking
//! just enough HTTP/1.1, so the test sees every connection, every request's bytes and can answer
//! anything (or nothing).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use voltplan_webhooks::send::{Attempt, AttemptOutcome, Delivery, Sender};
use voltplan_webhooks::sign::{SigningSecret, verify_signature};
use voltplan_webhooks::target::UrlPolicy;

/// A request as the receiver read it.
#[derive(Debug, Clone)]
struct Captured {
    method: String,
    /// The request target, with its query.
    target: String,
    /// Names in lower case, in the order sent.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Seen {
    connections: usize,
    requests: Vec<Captured>,
}

struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    /// Listens on 127.0.0.1 and answers by path:
    /// `/ok` 200, `/fail` 500, `/busy` 429 with `Retry-After: 120`, `/redirect` 302 to `/target`,
    /// `/target` 200, `/big` 200 with 100 kB, `/slow` never answers, anything else 404.
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                shared.lock().unwrap().connections += 1;
                tokio::spawn(serve(stream, addr, shared.clone()));
            }
        });
        Self { addr, seen }
    }

    fn url(&self, scheme: &str, host: &str, path: &str) -> String {
        format!("{scheme}://{host}:{}{path}", self.addr.port())
    }

    fn requests(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().requests.clone()
    }

    /// Asserts that nothing has connected yet, without waiting for time to pass: a connection of
    /// the test's own is accepted after any earlier one, so once it is answered, every earlier
    /// connection has been counted.
    async fn assert_never_connected(&self) {
        let mut marker = TcpStream::connect(self.addr).await.unwrap();
        marker
            .write_all(b"GET /marker HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        marker.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"));
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.connections, 1, "a delivery connected to the receiver");
        let targets: Vec<&str> = seen.requests.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(targets, ["/marker"]);
    }
}

async fn serve(mut stream: TcpStream, addr: SocketAddr, seen: Arc<Mutex<Seen>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let path = request.target.split('?').next().unwrap_or("").to_owned();
    seen.lock().unwrap().requests.push(request);
    let big = format!("a{}", "é".repeat(50_000));
    let location = format!("location: http://{addr}/target\r\n");
    let (status, extra, body): (&str, &str, &str) = match path.as_str() {
        "/ok" | "/target" | "/marker" => ("200 OK", "", "thanks"),
        "/fail" => ("500 Internal Server Error", "", "boom"),
        "/busy" => ("429 Too Many Requests", "retry-after: 120\r\n", "slow down"),
        "/redirect" => ("302 Found", &location, ""),
        "/big" => ("200 OK", "", &big),
        "/slow" => {
            // Holds the connection open without answering, until the client gives up.
            let mut rest = [0u8; 1];
            let _ = stream.read(&mut rest).await;
            return;
        }
        _ => ("404 Not Found", "", "no such hook"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
        body.len()
    );
    // The client may hang up after reading enough of a big body: errors are expected then.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Captured> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap_or(0));
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Captured {
        method,
        target,
        headers,
        body,
    })
}

const LOOPBACK: UrlPolicy = UrlPolicy {
    allow_insecure_loopback: true,
};
const STRICT: UrlPolicy = UrlPolicy {
    allow_insecure_loopback: false,
};
const BODY: &str =
    r#"{"type":"ev.plugged_in","timestamp":"2025-03-01T18:04:00Z","data":{"id":"0195"}}"#;

async fn deliver(sender: &Sender, url: &str, secrets: &[&SigningSecret]) -> Attempt {
    sender
        .deliver(&Delivery {
            url,
            msg_id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            timestamp: Utc::now(),
            body: BODY,
            secrets,
        })
        .await
}

fn failure(attempt: &Attempt) -> (Option<u16>, &str, Option<Duration>) {
    match &attempt.outcome {
        AttemptOutcome::Failed {
            status,
            error,
            retry_after,
        } => (*status, error.as_str(), *retry_after),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// No part of a secret or of a signature made with it appears in `text`.
fn assert_no_secret(text: &str, secret: &SigningSecret) {
    let encoded = secret.expose().trim_start_matches("whsec_");
    assert!(!text.contains(encoded), "{text}");
}

#[tokio::test]
async fn delivers_signed_json_with_the_three_headers() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(LOOPBACK, StdDuration::from_secs(10)).unwrap();
    let secret = SigningSecret::generate();
    let before = Utc::now().timestamp();

    let attempt = deliver(
        &sender,
        &receiver.url("http", "127.0.0.1", "/ok?partner=7"),
        &[&secret],
    )
    .await;

    assert_eq!(attempt.outcome, AttemptOutcome::Delivered { status: 200 });
    assert_eq!(attempt.response_excerpt.as_deref(), Some("thanks"));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let got = &requests[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.target, "/ok?partner=7");
    assert_eq!(got.body, BODY.as_bytes());
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(
        got.header("user-agent"),
        Some(format!("Voltplan-Webhooks/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(
        got.header("webhook-id"),
        Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    );
    let timestamp: i64 = got.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!((before..=Utc::now().timestamp()).contains(&timestamp));
    let signature = got.header("webhook-signature").unwrap();
    assert!(
        signature.starts_with("v1,") && !signature.contains(' '),
        "{signature}"
    );
    assert!(verify_signature(
        &secret,
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        timestamp,
        &got.body,
        signature
    ));
}

#[tokio::test]
async fn a_rotation_sends_both_signatures_and_localhost_is_reached_when_allowed() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(LOOPBACK, StdDuration::from_secs(10)).unwrap();
    let new = SigningSecret::generate();
    let old = SigningSecret::generate();

    let attempt = deliver(
        &sender,
        &receiver.url("http", "localhost", "/ok"),
        &[&new, &old],
    )
    .await;

    assert_eq!(attempt.outcome, AttemptOutcome::Delivered { status: 200 });
    let got = &receiver.requests()[0];
    let timestamp: i64 = got.header("webhook-timestamp").unwrap().parse().unwrap();
    let signature = got.header("webhook-signature").unwrap();
    assert_eq!(signature.split(' ').count(), 2);
    for secret in [&new, &old] {
        assert!(verify_signature(
            secret,
            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            timestamp,
            &got.body,
            signature
        ));
    }
}

#[tokio::test]
async fn a_500_is_a_failure_with_its_status() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(LOOPBACK, StdDuration::from_secs(10)).unwrap();
    let secret = SigningSecret::generate();

    let attempt = deliver(
        &sender,
        &receiver.url("http", "127.0.0.1", "/fail"),
        &[&secret],
    )
    .await;

    let (status, error, retry_after) = failure(&attempt);
    assert_eq!(status, Some(500));
    assert_eq!(
        error,
        "the endpoint answered HTTP 500 Internal Server Error"
    );
    assert_eq!(retry_after, None);
    assert_eq!(attempt.response_excerpt.as_deref(), Some("boom"));
}

#[tokio::test]
async fn a_429_with_retry_after_asks_for_two_minutes() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(LOOPBACK, StdDuration::from_secs(10)).unwrap();
    let secret = SigningSecret::generate();

    let attempt = deliver(
        &sender,
        &receiver.url("http", "127.0.0.1", "/busy"),
        &[&secret],
    )
    .await;

    let (status, _, retry_after) = failure(&attempt);
    assert_eq!(status, Some(429));
    assert_eq!(retry_after, Some(Duration::minutes(2)));
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_its_target_is_never_requested() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(LOOPBACK, StdDuration::from_secs(10)).unwrap();
    let secret = SigningSecret::generate();

    let attempt = deliver(
        &sender,
        &receiver.url("http", "127.0.0.1", "/redirect"),
        &[&secret],
    )
    .await;

    let (status, error, _) = failure(&attempt);
    assert_eq!(status, Some(302));
    assert!(error.contains("redirects are not followed"), "{error}");
    let targets: Vec<String> = receiver.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/redirect"]);
}

#[tokio::test]
async fn a_slow_receiver_fails_by_timeout_and_the_error_hides_query_and_secret() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(LOOPBACK, StdDuration::from_secs(1)).unwrap();
    let secret = SigningSecret::generate();

    let url = receiver.url("http", "127.0.0.1", "/slow?token=partner-own-secret");
    let attempt = deliver(&sender, &url, &[&secret]).await;

    let (status, error, retry_after) = failure(&attempt);
    assert_eq!((status, retry_after), (None, None));
    assert!(error.contains("timed out"), "{error}");
    assert!(
        error.contains(&receiver.url("http", "127.0.0.1", "/slow")),
        "{error}"
    );
    assert!(
        !error.contains("token") && !error.contains("partner-own-secret"),
        "{error}"
    );
    assert_no_secret(error, &secret);
    assert!(!error.contains("v1,"), "{error}");
    assert!(attempt.duration_ms >= 1000, "{}", attempt.duration_ms);
    assert_eq!(attempt.response_excerpt, None);
    // The request arrived: it was the answer that never came.
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn a_big_response_is_cut_to_an_excerpt() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(LOOPBACK, StdDuration::from_secs(10)).unwrap();
    let secret = SigningSecret::generate();

    let attempt = deliver(
        &sender,
        &receiver.url("http", "127.0.0.1", "/big"),
        &[&secret],
    )
    .await;

    assert_eq!(attempt.outcome, AttemptOutcome::Delivered { status: 200 });
    let excerpt = attempt.response_excerpt.unwrap();
    // 1,024 bytes: "a" and 511 "é", then the first byte of the next "é", shown as U+FFFD.
    assert_eq!(excerpt, format!("a{}\u{fffd}", "é".repeat(511)));
}

#[tokio::test]
async fn the_strict_policy_refuses_loopback_without_connecting() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(STRICT, StdDuration::from_secs(5)).unwrap();
    let secret = SigningSecret::generate();

    let cases = [
        (
            receiver.url("http", "127.0.0.1", "/ok"),
            "Only https URLs are accepted",
        ),
        (
            receiver.url("https", "127.0.0.1", "/ok"),
            "The URL's address is not a public internet address",
        ),
        (
            receiver.url("https", "localhost", "/ok"),
            "localhost resolves to no public internet address",
        ),
        (
            receiver.url("https", "[::ffff:127.0.0.1]", "/ok"),
            "The URL's address is not a public internet address",
        ),
    ];
    for (url, expected) in &cases {
        let attempt = deliver(&sender, url, &[&secret]).await;
        let (status, error, _) = failure(&attempt);
        assert_eq!(status, None, "{url}");
        assert!(error.contains(expected), "{url}: {error}");
        assert_no_secret(error, &secret);
    }

    receiver.assert_never_connected().await;
}

#[tokio::test]
async fn a_delivery_without_a_secret_is_not_sent() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(LOOPBACK, StdDuration::from_secs(5)).unwrap();

    let attempt = deliver(&sender, &receiver.url("http", "127.0.0.1", "/ok"), &[]).await;

    let (status, error, _) = failure(&attempt);
    assert_eq!(status, None);
    assert_eq!(error, "the endpoint has no signing secret");
    receiver.assert_never_connected().await;
}
