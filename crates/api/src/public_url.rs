//! The address browsers reach this server at, for links handed to drivers (the consent page of
//! `auth_session`). It is configured, never taken from a request's `Host` header: a client
//! controls that header and could make the server hand out links to a host of its choosing.

use std::fmt;
use std::net::SocketAddr;

/// An absolute `http`/`https` URL without query, fragment or credentials, stored without a
/// trailing slash (`https://ev.example.com` or `https://example.com/voltplan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

#[derive(Debug, thiserror::Error)]
#[error("invalid public URL {url:?}: {reason}")]
pub struct InvalidPublicUrl {
    url: String,
    reason: &'static str,
}

impl PublicUrl {
    pub fn parse(input: &str) -> Result<Self, InvalidPublicUrl> {
        let invalid = |reason| InvalidPublicUrl {
            url: input.to_owned(),
            reason,
        };
        let url = url::Url::parse(input.trim())
            .map_err(|_| invalid("expected an absolute URL such as https://ev.example.com"))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(invalid("the scheme must be http or https, with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a query or fragment is not allowed"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("credentials are not allowed"));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// `http://<addr>`: right when browsers reach the server at its listen address.
    pub fn from_bind(addr: SocketAddr) -> Self {
        // A socket address prints as `1.2.3.4:80` or `[::1]:80`, both valid URL authorities.
        Self(format!("http://{addr}"))
    }

    /// This base followed by `path`, which starts with `/`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This base as a WebSocket URL (`ws://` for `http`, `wss://` for `https`) followed by
    /// `path`, which starts with `/`: where chargers reach the OCPP central system.
    pub fn websocket(&self, path: &str) -> String {
        let base = match self.0.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => self.0.clone(),
        };
        format!("{base}{path}")
    }

    /// `scheme://host[:port]`, as browsers send it in `Origin`.
    pub fn origin(&self) -> String {
        url::Url::parse(&self.0)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

impl Default for PublicUrl {
    /// The CLI's default listen address.
    fn default() -> Self {
        Self("http://127.0.0.1:8080".to_owned())
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PublicUrl {
    type Err = InvalidPublicUrl;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_absolute_and_lose_their_trailing_slash() {
        assert_eq!(
            PublicUrl::parse("https://ev.example.com/")
                .unwrap()
                .as_str(),
            "https://ev.example.com"
        );
        assert_eq!(
            PublicUrl::parse("https://example.com/voltplan/")
                .unwrap()
                .join("/connect/x"),
            "https://example.com/voltplan/connect/x"
        );
        for bad in [
            "/relative",
            "ev.example.com",
            "ftp://example.com",
            "https://example.com/?a=1",
            "https://user:pw@example.com",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            PublicUrl::parse("https://Example.com:443/voltplan/")
                .unwrap()
                .origin(),
            "https://example.com"
        );
        assert_eq!(
            PublicUrl::parse("https://example.com/voltplan")
                .unwrap()
                .websocket("/ocpp"),
            "wss://example.com/voltplan/ocpp"
        );
        assert_eq!(
            PublicUrl::default().websocket("/ocpp"),
            "ws://127.0.0.1:8080/ocpp"
        );
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(PublicUrl::from_bind(v6).as_str(), "http://[::1]:8080");
        assert!(PublicUrl::parse(PublicUrl::from_bind(v6).as_str()).is_ok());
    }
}
