//! How a client reaches the server: plaintext or TLS, certificates, and the bearer token.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::error::{describe, Code, Error, Result};

/// What a token function returns: the token, or why there is none.
pub type TokenResult = std::result::Result<String, Box<dyn std::error::Error + Send + Sync>>;

type TokenFn = dyn Fn() -> TokenResult + Send + Sync;

/// How [`Client::connect_with`](crate::Client::connect_with) connects. Without options, a
/// loopback address (localhost, 127.0.0.0/8, ::1) is reached in plaintext, where nothing leaves
/// the machine, and any other over TLS trusting the system's CAs.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain_name: Option<String>,
    tls: bool,
    insecure: bool,
    token: Option<Arc<TokenFn>>,
    pub(crate) watch_retries: Option<u32>,
}

impl fmt::Debug for ConnectOptions {
    // Never the token, nor the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("domain_name", &self.domain_name)
            .field("tls", &self.tls)
            .field("insecure", &self.insecure)
            .field("token", &self.token.is_some())
            .field("watch_retries", &self.watch_retries)
            .finish()
    }
}

impl ConnectOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// TLS, trusting these CA certificates (PEM) instead of the system's; TLS even to loopback.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// TLS, presenting this client certificate and key (PEM), for a server with
    /// `--tls-client-ca` (mTLS); with `--auth mtls` the certificate names the tenant.
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// The name the server's certificate must have, when it is not the address's host.
    pub fn domain_name(mut self, name: impl Into<String>) -> Self {
        self.domain_name = Some(name.into());
        self
    }

    /// TLS even to a loopback address, trusting the system's CAs (unless `ca_certificate`).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Plaintext to any address, for a server reached through a service mesh's sidecar, which
    /// does mTLS itself. It cannot go with the TLS options.
    pub fn insecure(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// Sends `authorization: Bearer <token>` on every call, e.g. a JWT for a server with
    /// `--auth jwt`.
    pub fn token(self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token_fn(move || Ok(token.clone()))
    }

    /// The same with a function called before every call (each stream, and each reconnection of
    /// a watch, included), so that it can return a renewed token. If it fails, the call fails
    /// with `Unauthenticated`. It must not block for long: read a token that something else keeps
    /// fresh (a file, a cache).
    pub fn token_fn(mut self, token: impl Fn() -> TokenResult + Send + Sync + 'static) -> Self {
        self.token = Some(Arc::new(token));
        self
    }

    /// How many times in a row a watch reconnects after `Unavailable` (a restart, a dropped
    /// connection) before it gives up with that error; 10 by default (about 15 s of backoff).
    pub fn watch_retries(mut self, retries: u32) -> Self {
        self.watch_retries = Some(retries);
        self
    }

    fn wants_tls(&self) -> bool {
        self.tls || self.ca_pem.is_some() || self.identity.is_some() || self.domain_name.is_some()
    }

    /// The endpoint for `address` (host:port, or a URL with http:// or https://).
    pub(crate) fn endpoint(&self, address: &str) -> Result<(Endpoint, TokenInterceptor)> {
        if self.insecure && self.wants_tls() {
            return Err(Error::new(
                Code::InvalidArgument,
                "insecure() cannot go with TLS options (tls, ca_certificate, client_certificate, domain_name)",
            ));
        }
        let (tls, uri) = match address.split_once("://") {
            Some(("https", _)) => (true, address.to_string()),
            Some(("http", _)) => (false, address.to_string()),
            Some((scheme, _)) => {
                return Err(Error::new(
                    Code::InvalidArgument,
                    format!("unsupported scheme {scheme:?} in {address:?}: give host:port"),
                ))
            }
            None => {
                let tls = !self.insecure && (self.wants_tls() || !is_loopback(address));
                let scheme = if tls { "https" } else { "http" };
                (tls, format!("{scheme}://{address}"))
            }
        };
        let invalid = |error: &dyn std::error::Error| {
            Error::new(
                Code::InvalidArgument,
                format!("bad address {address:?}: {}", describe(error)),
            )
        };
        let mut endpoint = Endpoint::from_shared(uri).map_err(|e| invalid(&e))?;
        if tls {
            let mut config = ClientTlsConfig::new();
            config = match &self.ca_pem {
                Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
                None => config.with_native_roots(),
            };
            if let Some((cert, key)) = &self.identity {
                config = config.identity(Identity::from_pem(cert, key));
            }
            if let Some(name) = &self.domain_name {
                config = config.domain_name(name);
            }
            endpoint = endpoint.tls_config(config).map_err(|e| invalid(&e))?;
        }
        Ok((endpoint, TokenInterceptor(self.token.clone())))
    }
}

/// Whether `address` (host:port) names this machine.
pub fn is_loopback(address: &str) -> bool {
    let host = match address.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => address,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Adds the bearer token, if there is one, to every call.
#[derive(Clone)]
pub struct TokenInterceptor(Option<Arc<TokenFn>>);

impl fmt::Debug for TokenInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenInterceptor")
            .field("token", &self.0.is_some())
            .finish()
    }
}

impl Interceptor for TokenInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        let Some(token) = &self.0 else {
            return Ok(request);
        };
        let token = token().map_err(|error| {
            tonic::Status::unauthenticated(format!("the token function failed: {error}"))
        })?;
        // The error says nothing of the token itself, which must never be logged.
        let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
            tonic::Status::unauthenticated("the token is not valid in an HTTP header")
        })?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_this_machine_only() {
        for address in [
            "localhost:1",
            "127.0.0.1:50051",
            "127.1.2.3:80",
            "[::1]:80",
            "LOCALHOST",
        ] {
            assert!(is_loopback(address), "{address}");
        }
        for address in [
            "sessions.example.com:443",
            "10.0.0.1:50051",
            "[2001:db8::1]:443",
        ] {
            assert!(!is_loopback(address), "{address}");
        }
    }

    #[test]
    fn plaintext_to_loopback_and_tls_elsewhere_unless_told() {
        let scheme = |options: ConnectOptions, address: &str| {
            let (endpoint, _) = options.endpoint(address).unwrap();
            endpoint.uri().scheme_str().unwrap().to_string()
        };
        assert_eq!(scheme(ConnectOptions::new(), "127.0.0.1:50051"), "http");
        assert_eq!(
            scheme(ConnectOptions::new(), "sessions.example.com:443"),
            "https"
        );
        assert_eq!(
            scheme(ConnectOptions::new().tls(), "localhost:50051"),
            "https"
        );
        assert_eq!(
            scheme(ConnectOptions::new().insecure(), "store:50051"),
            "http"
        );
        let error = ConnectOptions::new()
            .insecure()
            .tls()
            .endpoint("store:1")
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
    }

    #[test]
    fn the_token_goes_in_the_authorization_header() {
        let (_, mut interceptor) = ConnectOptions::new()
            .token("t0k")
            .endpoint("localhost:1")
            .unwrap();
        let request = interceptor.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer t0k"
        );
        let (_, mut failing) = ConnectOptions::new()
            .token_fn(|| Err("the identity provider is down".into()))
            .endpoint("localhost:1")
            .unwrap();
        let status = failing.call(tonic::Request::new(())).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(status.message().contains("the identity provider is down"));
    }
}
