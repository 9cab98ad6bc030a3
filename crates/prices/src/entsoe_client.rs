//! HTTP client for the ENTSO-E Transparency Platform RESTful API, day-ahead prices (A44).
//!
//! One call fetches one window; retries and scheduling belong to the caller (the worker), which
//! gets enough from [`FetchError`] to decide: [`FetchError::is_retryable`] and the server's
//! `Retry-After`. "Not published yet" is a normal answer ([`EntsoeDocument::NotYetPublished`]),
//! whether the platform sends it with HTTP 200 or as a 4xx acknowledgement.
//!
//! The security token travels as a query parameter (the platform offers no header), so it is
//! kept out of every error message and `Debug` output.

use crate::entsoe::{self, EntsoeDocument, EntsoeParseError, SDAC_SEQUENCE};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use std::fmt;
use std::time::Duration;

/// Production endpoint of the Transparency Platform API.
pub const ENTSOE_API_URL: &str = "https://web-api.tp.entsoe.eu/api";

/// ENTSO-E's query timestamp format: `yyyyMMddHHmm`, UTC.
const PERIOD_FORMAT: &str = "%Y%m%d%H%M";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The platform is slow at times; A44 answers are small, so a long wait means trouble.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Enough of an error body to recognise it in logs without flooding them.
const BODY_EXCERPT_CHARS: usize = 300;

/// When the server asked us to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    At(DateTime<Utc>),
}

impl RetryAfter {
    /// Parses both `Retry-After` forms: delta-seconds and an HTTP date.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(RetryAfter::Seconds(seconds));
        }
        DateTime::parse_from_rfc2822(value)
            .ok()
            .map(|instant| RetryAfter::At(instant.with_timezone(&Utc)))
    }
}

/// Why a fetch produced no document.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The server answered with an error status and no usable acknowledgement.
    #[error("ENTSO-E answered HTTP {status}{}: {body_excerpt}", retry_after.map(|r| format!(" (retry after {r:?})")).unwrap_or_default())]
    Status {
        status: u16,
        retry_after: Option<RetryAfter>,
        body_excerpt: String,
    },
    /// Connection, TLS, timeout or body read failure. The URL (with the token) is stripped.
    #[error("cannot reach ENTSO-E: {0}")]
    Transport(#[source] reqwest::Error),
    /// The answer was not a usable A44 document, or an acknowledgement rejecting the query.
    #[error("ENTSO-E answer (HTTP {status}) is unusable: {source}")]
    Parse {
        status: u16,
        #[source]
        source: EntsoeParseError,
    },
}

impl FetchError {
    /// Whether the same request may succeed later: rate limits, server errors, network trouble.
    /// Rejections (bad token, bad EIC) and malformed answers will not fix themselves.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS.as_u16() || *status >= 500
            }
            FetchError::Transport(_) => true,
            FetchError::Client(_) | FetchError::Parse { .. } => false,
        }
    }

    pub fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Fetches A44 day-ahead price documents.
#[derive(Clone)]
pub struct EntsoeClient {
    http: reqwest::Client,
    base_url: String,
    token: String,
    sequence: u32,
}

impl fmt::Debug for EntsoeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntsoeClient")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("sequence", &self.sequence)
            .finish()
    }
}

impl EntsoeClient {
    /// `base_url` is the API endpoint, normally [`ENTSOE_API_URL`]; tests point it at a fake.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("voltplan/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(FetchError::Client)?;
        Ok(Self::with_http_client(base_url, token, http))
    }

    /// Uses a caller-configured client (shared connection pool, proxy, custom timeouts).
    pub fn with_http_client(
        base_url: impl Into<String>,
        token: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            http,
            base_url: base_url.into(),
            token: token.into(),
            sequence: SDAC_SEQUENCE,
        }
    }

    /// Reads classification sequence `sequence` instead of the SDAC default ([`SDAC_SEQUENCE`]):
    /// `2` for EXAA, or as an escape hatch should ENTSO-E renumber the DE-LU/AT series.
    pub fn with_sequence(mut self, sequence: u32) -> Self {
        self.sequence = sequence;
        self
    }

    /// Fetches day-ahead prices of bidding zone `eic` for `[delivery_day_utc_start, end)`.
    ///
    /// For a delivery day pass the UTC instants of local midnight to midnight (23, 24 or 25 h).
    /// DE-LU/AT documents carry SDAC and EXAA; only the SDAC series is returned.
    pub async fn fetch_day(
        &self,
        eic: &str,
        delivery_day_utc_start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<EntsoeDocument, FetchError> {
        let period_start = delivery_day_utc_start.format(PERIOD_FORMAT).to_string();
        let period_end = end.format(PERIOD_FORMAT).to_string();
        let response = self
            .http
            .get(&self.base_url)
            .query(&[
                ("documentType", "A44"),
                ("in_Domain", eic),
                ("out_Domain", eic),
                ("periodStart", period_start.as_str()),
                ("periodEnd", period_end.as_str()),
                ("securityToken", self.token.as_str()),
            ])
            .send()
            .await
            .map_err(|error| FetchError::Transport(error.without_url()))?;

        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(RetryAfter::parse);
        let body = response
            .text()
            .await
            .map_err(|error| FetchError::Transport(error.without_url()))?;

        if status.is_success() {
            let document = entsoe::parse_with_sequence(&body, self.sequence).map_err(|source| {
                FetchError::Parse {
                    status: status.as_u16(),
                    source,
                }
            })?;
            return Ok(within_window(document, delivery_day_utc_start, end));
        }
        // Rate limits and server errors are retried as they are, whatever their body says.
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(status_error(status, retry_after, &body));
        }
        // Other 4xx answers usually carry an acknowledgement saying why; "no matching data" is
        // the platform's way of saying "not published yet".
        match entsoe::parse_with_sequence(&body, self.sequence) {
            Ok(document @ EntsoeDocument::NotYetPublished { .. }) => Ok(document),
            Err(source @ EntsoeParseError::Rejected { .. }) => Err(FetchError::Parse {
                status: status.as_u16(),
                source,
            }),
            _ => Err(status_error(status, retry_after, &body)),
        }
    }
}

/// The platform may answer with whole days around the asked window; keep only what was asked for
/// so a caller storing "the day" never overwrites a neighbour with a different revision.
fn within_window(
    document: EntsoeDocument,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> EntsoeDocument {
    match document {
        EntsoeDocument::Prices(mut slots) => {
            slots.retain(|slot| slot.start >= start && slot.end <= end);
            EntsoeDocument::Prices(slots)
        }
        not_yet @ EntsoeDocument::NotYetPublished { .. } => not_yet,
    }
}

fn status_error(status: StatusCode, retry_after: Option<RetryAfter>, body: &str) -> FetchError {
    FetchError::Status {
        status: status.as_u16(),
        retry_after,
        body_excerpt: body.chars().take(BODY_EXCERPT_CHARS).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use wiremock::matchers::{method, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "test-token-3f9a";
    const DE_LU: &str = "10Y1001A1001A82H";

    fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    fn shared_xml(name: &str) -> String {
        let path = format!(
            "{}/../../../shared/data/prices/entsoe_xml/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("shared test data missing: cannot read {path}: {error}"))
    }

    fn no_matching_data() -> String {
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
  <mRID>5d2a8c0e-5b1e-4d6f-9c1a-0f3e2b7a6d41</mRID>
  <createdDateTime>2025-10-30T09:14:02Z</createdDateTime>
  <Reason>
    <code>999</code>
    <text>No matching data found for Data item Energy Prices [12.1.D] (10Y1001A1001A82H, 10Y1001A1001A82H) and interval 2025-10-30T23:00:00.000Z/2025-10-31T23:00:00.000Z.</text>
  </Reason>
</Acknowledgement_MarketDocument>"#
            .to_owned()
    }

    fn xml_response(status: u16, body: String) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_raw(body, "application/xml")
    }

    async fn client_for(server: &MockServer) -> EntsoeClient {
        EntsoeClient::new(format!("{}/api", server.uri()), TOKEN).unwrap()
    }

    /// A fake platform answering every GET with `response`.
    async fn answering(response: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(response)
            .mount(&server)
            .await;
        server
    }

    /// The delivery day most tests ask for: DE_LU on 31 October 2025.
    async fn fetch_oct_31(client: &EntsoeClient) -> Result<EntsoeDocument, FetchError> {
        client
            .fetch_day(DE_LU, utc(2025, 10, 30, 23), utc(2025, 10, 31, 23))
            .await
    }

    #[tokio::test]
    async fn published_day_sends_the_a44_query_and_returns_sdac_prices() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(query_param("documentType", "A44"))
            .and(query_param("in_Domain", DE_LU))
            .and(query_param("out_Domain", DE_LU))
            .and(query_param("periodStart", "202510302300"))
            .and(query_param("periodEnd", "202510312300"))
            .and(query_param("securityToken", TOKEN))
            .respond_with(xml_response(
                200,
                shared_xml("entsoe_A44_DE_LU_PT15M_2025-10-31.xml"),
            ))
            .expect(2)
            .mount(&server)
            .await;

        let client = client_for(&server).await;
        let document = fetch_oct_31(&client).await.unwrap();
        let EntsoeDocument::Prices(slots) = document else {
            panic!("expected prices")
        };
        // The fake returns the whole two-day document; only the asked day comes back.
        assert_eq!(slots.len(), 96);
        assert_eq!(slots[0].price_eur_mwh, 102.81);
        assert_eq!(slots[0].start, utc(2025, 10, 30, 23));
        assert_eq!(slots[95].end, utc(2025, 10, 31, 23));
        assert_eq!(slots[95].price_eur_mwh, 42.37);

        // The same answer read for EXAA (sequence 2) gives the other series.
        let exaa = fetch_oct_31(&client.clone().with_sequence(2))
            .await
            .unwrap();
        assert!(matches!(&exaa, EntsoeDocument::Prices(slots) if slots[0].price_eur_mwh == 91.45));
    }

    #[tokio::test]
    async fn no_matching_data_is_not_yet_published_with_200_or_400() {
        for status in [200, 400] {
            let server = answering(xml_response(status, no_matching_data())).await;
            let document = fetch_oct_31(&client_for(&server).await).await.unwrap();
            assert!(
                matches!(&document, EntsoeDocument::NotYetPublished { reason } if reason.starts_with("No matching data found")),
                "HTTP {status}: {document:?}"
            );
        }
    }

    #[tokio::test]
    async fn service_unavailable_is_retryable_and_carries_retry_after() {
        let server = answering(
            ResponseTemplate::new(503)
                .insert_header("Retry-After", "120")
                .set_body_string("<html>Service Unavailable</html>"),
        )
        .await;
        let error = fetch_oct_31(&client_for(&server).await).await.unwrap_err();
        assert!(
            matches!(error, FetchError::Status { status: 503, .. }),
            "{error}"
        );
        assert!(error.is_retryable());
        assert_eq!(error.retry_after(), Some(RetryAfter::Seconds(120)));
        assert!(!error.to_string().contains(TOKEN));
    }

    #[tokio::test]
    async fn too_many_requests_is_retryable_with_an_http_date() {
        let server = answering(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "Thu, 26 Nov 2026 12:00:30 GMT"),
        )
        .await;
        let error = fetch_oct_31(&client_for(&server).await).await.unwrap_err();
        assert!(
            matches!(error, FetchError::Status { status: 429, .. }),
            "{error}"
        );
        assert!(error.is_retryable());
        assert_eq!(
            error.retry_after(),
            Some(RetryAfter::At(
                Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 30).unwrap()
            ))
        );
    }

    #[tokio::test]
    async fn late_publication_first_acknowledges_then_delivers() {
        let server = MockServer::start().await;
        // wiremock tries mounted mocks in order; the first answers once and then steps aside.
        Mock::given(method("GET"))
            .respond_with(xml_response(200, no_matching_data()))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(xml_response(
                200,
                shared_xml("entsoe_A44_CH_PT60M_2025-11-26.xml"),
            ))
            .expect(1)
            .mount(&server)
            .await;

        let client = client_for(&server).await;
        let eic = "10YCH-SWISSGRIDZ";
        let first = client
            .fetch_day(eic, utc(2025, 11, 25, 23), utc(2025, 11, 26, 23))
            .await
            .unwrap();
        assert!(matches!(first, EntsoeDocument::NotYetPublished { .. }));
        let second = client
            .fetch_day(eic, utc(2025, 11, 25, 23), utc(2025, 11, 26, 23))
            .await
            .unwrap();
        let EntsoeDocument::Prices(slots) = second else {
            panic!("expected prices")
        };
        assert_eq!(slots.len(), 24);
        assert_eq!(slots[0].price_eur_mwh, 104.06);
    }

    #[tokio::test]
    async fn rejections_and_garbage_are_permanent_errors() {
        let server = MockServer::start().await;
        let unauthorized = r#"<Acknowledgement_MarketDocument><Reason><code>999</code><text>Unauthorized. Missing or invalid security token</text></Reason></Acknowledgement_MarketDocument>"#;
        Mock::given(method("GET"))
            .respond_with(xml_response(401, unauthorized.to_owned()))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(xml_response(200, "<html>maintenance</html>".to_owned()))
            .mount(&server)
            .await;
        let client = client_for(&server).await;
        let rejected = fetch_oct_31(&client).await.unwrap_err();
        assert!(
            matches!(
                &rejected,
                FetchError::Parse {
                    status: 401,
                    source: EntsoeParseError::Rejected { .. }
                }
            ),
            "{rejected}"
        );
        assert!(!rejected.is_retryable());
        let garbage = fetch_oct_31(&client).await.unwrap_err();
        assert!(
            matches!(
                &garbage,
                FetchError::Parse {
                    status: 200,
                    source: EntsoeParseError::UnexpectedRoot(_)
                }
            ),
            "{garbage}"
        );
    }

    #[tokio::test]
    async fn transport_errors_do_not_leak_the_token() {
        // Port 9 (discard) on localhost is not listening in test environments.
        let client = EntsoeClient::new("http://127.0.0.1:9/api", TOKEN).unwrap();
        let error = fetch_oct_31(&client).await.unwrap_err();
        assert!(matches!(error, FetchError::Transport(_)), "{error}");
        assert!(error.is_retryable());
        assert!(!format!("{error} {error:?}").contains(TOKEN), "{error:?}");
        assert!(!format!("{client:?}").contains(TOKEN));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(RetryAfter::parse(" 30 "), Some(RetryAfter::Seconds(30)));
        assert_eq!(
            RetryAfter::parse("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(RetryAfter::At(
                Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap()
            ))
        );
        assert_eq!(RetryAfter::parse("soon"), None);
    }
}
