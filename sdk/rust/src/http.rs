//! A small blocking HTTP client over `wasi:http`, for exporters and notifiers.
//!
//! ```no_run
//! use pharos_sdk::http::{self, Request};
//! use pharos_sdk::PluginError;
//! use std::time::Duration;
//!
//! fn fetch() -> Result<serde_json::Value, PluginError> {
//!     // GET with the defaults: 10 s deadline, 4 MiB body cap.
//!     let stats = http::get("http://queue.internal:8080/stats")?.error_for_status()?;
//!     let document: serde_json::Value = stats.json()?;
//!
//!     // POST a JSON body with a header, a tighter deadline and cap.
//!     let reply = Request::post("https://hooks.example.com/alert")
//!         .header("authorization", "Bearer s3cr3t")
//!         .json(&serde_json::json!({"text": "disk full"}))
//!         .timeout(Duration::from_secs(3))
//!         .max_body_bytes(64 * 1024)
//!         .send()?
//!         .error_for_status()?;
//!     pharos_sdk::debug!("hook answered {}", reply.status);
//!     Ok(document)
//! }
//! ```
//!
//! Every failure is an [`HttpError`], which converts into the
//! [`PluginError`] the host expects (so `?` works in `collect` and `notify`):
//!
//! | failure | [`PluginError`] |
//! |---|---|
//! | the host refused the destination (`HTTP-request-denied`: not on the plugin's allow-list), an invalid URL, method or header, a TLS certificate problem | `permanent` |
//! | a response body over the cap | `permanent` |
//! | the deadline passed, DNS failed, the connection was refused or reset, the response was cut short | `transient` |
//! | [`error_for_status`](Response::error_for_status) on 408, 425, 429 and 5xx | `transient` |
//! | [`error_for_status`](Response::error_for_status) on any other 4xx | `permanent` |
//!
//! The host only lets a request through to hosts the plugin's configuration
//! allows. A relabeler has no network; only the `exporter` and `notifier`
//! worlds may use this module. Compiled natively (unit tests),
//! [`Request::send`] fails with a permanent error instead of calling a host.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::exporter::wasi::http::types::ErrorCode;
use crate::types::PluginError;

/// How long a request may take, connecting and reading the body included,
/// unless [`Request::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response body read unless [`Request::max_body_bytes`] says
/// otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// An HTTP request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

/// A request under construction; [`send`](Request::send) performs it.
#[derive(Clone, Debug)]
pub struct Request {
    // Read by the wasm32 transport only.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
    max_body_bytes: usize,
    /// A problem found while building (a body that does not serialize),
    /// reported by `send`.
    invalid: Option<String>,
}

impl Request {
    /// A request with `method` to `url` (`http://` or `https://`).
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            invalid: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Request::new(Method::Post, url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Request::new(Method::Put, url)
    }

    /// Adds a header; a repeated name sends the header several times.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and, unless already set, `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body = body,
            Err(error) => self.invalid = Some(format!("cannot encode the JSON body: {error}")),
        }
        if self.header_value("content-type").is_none() {
            self.headers
                .push(("content-type".to_owned(), "application/json".to_owned()));
        }
        self
    }

    /// The deadline for the whole exchange: connecting, sending, waiting for
    /// the response and reading its body.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted; a longer one fails the request.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Performs the request, blocking until the whole response body is read,
    /// the deadline passes or the exchange fails.
    ///
    /// Any status is a successful exchange; use
    /// [`Response::error_for_status`] to fail on 4xx and 5xx.
    pub fn send(self) -> Result<Response, HttpError> {
        if let Some(reason) = self.invalid {
            return Err(HttpError::permanent(reason));
        }
        let url = Url::parse(&self.url)?;
        transport::send(&self, &url)
    }
}

/// Checks that `url` is one [`Request`] can send to (`http://` or
/// `https://`, a host, no credentials, no spaces), for validating a
/// configured URL in `configure` rather than on the first request.
///
/// ```
/// assert!(pharos_sdk::http::check_url("https://api.example.com/v1?x=1").is_ok());
/// assert!(pharos_sdk::http::check_url("api.example.com").is_err());
/// ```
pub fn check_url(url: &str) -> Result<(), HttpError> {
    Url::parse(url).map(|_| ())
}

/// Checks a configured URL that is a secret (a webhook URL holding its token): unset
/// (empty) is left to the caller, and a bad one is refused at `field` without
/// repeating it in the error.
///
/// # Errors
///
/// `url` is set and not an http:// or https:// URL.
pub fn check_secret_url(field: &str, url: &str) -> Result<(), crate::PluginError> {
    if url.is_empty() || check_url(url).is_ok() {
        Ok(())
    } else {
        Err(crate::config::invalid(
            field,
            "not an http:// or https:// URL",
        ))
    }
}

/// `GET url` with the default deadline and body cap.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// A complete response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in the order received; values
    /// that are not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The response itself for a 2xx or 3xx status, else an error whose
    /// kind follows the status: 408, 425, 429 and 5xx are worth retrying
    /// (transient), other 4xx are not (permanent). The error message carries
    /// the start of the body, which often says what went wrong.
    ///
    /// ```
    /// use pharos_sdk::http::Response;
    /// use pharos_sdk::PluginError;
    ///
    /// let response = |status| Response { status, headers: vec![], body: b"slow down".to_vec() };
    /// assert!(response(204).error_for_status().is_ok());
    /// let busy = PluginError::from(response(429).error_for_status().unwrap_err());
    /// assert_eq!(busy, PluginError::transient("HTTP status 429: slow down"));
    /// let rejected = response(400).error_for_status().unwrap_err();
    /// assert!(!rejected.is_transient());
    /// assert_eq!(rejected.status(), Some(400));
    /// ```
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.status < 400 {
            return Ok(self);
        }
        let transient = matches!(self.status, 408 | 425 | 429) || self.status >= 500;
        let excerpt = body_excerpt(&self.body);
        let message = if excerpt.is_empty() {
            format!("HTTP status {}", self.status)
        } else {
            format!("HTTP status {}: {excerpt}", self.status)
        };
        Err(HttpError {
            transient,
            timeout: false,
            status: Some(self.status),
            message,
        })
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|error| {
            HttpError::permanent(format!("the response body is not UTF-8: {error}"))
        })
    }

    /// The body parsed as JSON into `T`; a body that does not parse is a
    /// permanent error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            HttpError::permanent(format!(
                "the response body is not the expected JSON: {error}"
            ))
        })
    }
}

/// At most 200 characters of the body, on one line, for error messages.
fn body_excerpt(body: &[u8]) -> String {
    const LIMIT: usize = 200;
    let text = String::from_utf8_lossy(body);
    let mut excerpt: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(LIMIT)
        .collect();
    if text.chars().count() > LIMIT {
        excerpt.push('…');
    }
    excerpt.trim().to_owned()
}

/// Why a request failed, and whether trying again may help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    transient: bool,
    timeout: bool,
    status: Option<u16>,
    message: String,
}

impl HttpError {
    fn permanent(message: impl Into<String>) -> Self {
        HttpError {
            transient: false,
            timeout: false,
            status: None,
            message: message.into(),
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    fn timed_out(message: impl Into<String>) -> Self {
        HttpError {
            transient: true,
            timeout: true,
            status: None,
            message: message.into(),
        }
    }

    /// The error for a `wasi:http` error code, classified as the module
    /// documentation's table says.
    pub fn from_error_code(code: &ErrorCode) -> Self {
        use ErrorCode as E;
        let timeout = matches!(
            code,
            E::DnsTimeout
                | E::ConnectionTimeout
                | E::ConnectionReadTimeout
                | E::ConnectionWriteTimeout
                | E::HttpResponseTimeout
        );
        let permanent = matches!(
            code,
            E::DestinationIpProhibited
                | E::TlsCertificateError
                | E::HttpRequestDenied
                | E::HttpRequestLengthRequired
                | E::HttpRequestBodySize(_)
                | E::HttpRequestMethodInvalid
                | E::HttpRequestUriInvalid
                | E::HttpRequestUriTooLong
                | E::HttpRequestHeaderSectionSize(_)
                | E::HttpRequestHeaderSize(_)
                | E::HttpRequestTrailerSectionSize(_)
                | E::HttpRequestTrailerSize(_)
                | E::HttpResponseBodySize(_)
                | E::LoopDetected
                | E::ConfigurationError
        );
        let message = match code {
            E::HttpRequestDenied => {
                "the host denied the request: its destination is not on the plugin's allow-list"
                    .to_owned()
            }
            other => format!("HTTP request failed: {other:?}"),
        };
        HttpError {
            transient: !permanent,
            timeout,
            status: None,
            message,
        }
    }

    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// Whether the request ran out of time.
    pub fn is_timeout(&self) -> bool {
        self.timeout
    }

    /// The response status, for errors from
    /// [`Response::error_for_status`].
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for PluginError {
    fn from(error: HttpError) -> Self {
        if error.transient {
            PluginError::transient(error.message)
        } else {
            PluginError::permanent(error.message)
        }
    }
}

/// The parts of a URL `wasi:http` wants separately.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    https: bool,
    authority: &'a str,
    path_with_query: &'a str,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Result<Self, HttpError> {
        let invalid = |why: &str| HttpError::permanent(format!("invalid URL {url:?}: {why}"));
        let (https, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (false, rest)
        } else {
            return Err(invalid("it must start with http:// or https://"));
        };
        // The fragment never goes to the server.
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(invalid("it has no host"));
        }
        if authority.contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported; send an authorization header",
            ));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
            || path.contains(' ')
        {
            return Err(invalid("it contains spaces or control characters"));
        }
        let path_with_query = if path.is_empty() { "/" } else { path };
        Ok(Url {
            https,
            authority,
            path_with_query,
        })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(target_arch = "wasm32")]
mod transport {
    //! The `wasi:http` exchange. Resources are dropped children first (a
    //! stream before its body, a pollable before what it watches), as the
    //! component model requires.

    use super::{HttpError, Method, Request, Response, Url};
    use crate::bindings::exporter::wasi::clocks::monotonic_clock;
    use crate::bindings::exporter::wasi::http::outgoing_handler;
    use crate::bindings::exporter::wasi::http::types::{
        self as wasi, Fields, FutureIncomingResponse, IncomingBody, OutgoingBody, OutgoingRequest,
        RequestOptions, Scheme,
    };
    use crate::bindings::exporter::wasi::io::poll::{Pollable, poll};
    use crate::bindings::exporter::wasi::io::streams::StreamError;

    /// Largest chunk `blocking-write-and-flush` accepts.
    const WRITE_CHUNK: usize = 4096;
    /// Bytes asked for per read.
    const READ_CHUNK: u64 = 64 * 1024;

    pub(super) fn send(request: &Request, url: &Url<'_>) -> Result<Response, HttpError> {
        let timeout_ns = u64::try_from(request.timeout.as_nanos()).unwrap_or(u64::MAX);
        let deadline = monotonic_clock::now().saturating_add(timeout_ns);
        let late =
            || HttpError::timed_out(format!("no complete response within {:?}", request.timeout));

        let entries: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec()))
            .collect();
        let headers = Fields::from_list(&entries)
            .map_err(|error| HttpError::permanent(format!("invalid request header: {error:?}")))?;
        let outgoing = OutgoingRequest::new(headers);
        let method = match request.method {
            Method::Get => wasi::Method::Get,
            Method::Head => wasi::Method::Head,
            Method::Post => wasi::Method::Post,
            Method::Put => wasi::Method::Put,
            Method::Patch => wasi::Method::Patch,
            Method::Delete => wasi::Method::Delete,
        };
        let refused = |what: &str| HttpError::permanent(format!("the host refused the {what}"));
        outgoing
            .set_method(&method)
            .map_err(|()| refused("method"))?;
        let scheme = if url.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| refused("scheme"))?;
        outgoing
            .set_authority(Some(url.authority))
            .map_err(|()| refused("host"))?;
        outgoing
            .set_path_with_query(Some(url.path_with_query))
            .map_err(|()| refused("path"))?;

        // The host's own timeouts back up the deadline kept here; a host that
        // does not support one of them just leaves it unset.
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(timeout_ns));
        let _ = options.set_first_byte_timeout(Some(timeout_ns));
        let _ = options.set_between_bytes_timeout(Some(timeout_ns));

        let body = outgoing
            .body()
            .map_err(|()| HttpError::permanent("the request body was already taken"))?;
        let future = outgoing_handler::handle(outgoing, Some(options))
            .map_err(|code| HttpError::from_error_code(&code))?;
        write_body(&body, &request.body)?;
        OutgoingBody::finish(body, None).map_err(|code| HttpError::from_error_code(&code))?;

        let response = wait_for_response(&future, deadline).ok_or_else(late)??;
        drop(future);

        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| HttpError::permanent("the response body was already taken"))?;
        let body = read_body(&incoming, deadline, request.max_body_bytes, late)?;
        drop(incoming);
        drop(response);
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let stream = body
            .write()
            .map_err(|()| HttpError::permanent("the request body stream was already taken"))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|error| stream_error(error, "sending the request body"))?;
        }
        drop(stream);
        Ok(())
    }

    /// `None` when the deadline passed first.
    fn wait_for_response(
        future: &FutureIncomingResponse,
        deadline: u64,
    ) -> Option<Result<wasi::IncomingResponse, HttpError>> {
        loop {
            match future.get() {
                Some(Ok(Ok(response))) => return Some(Ok(response)),
                Some(Ok(Err(code))) => return Some(Err(HttpError::from_error_code(&code))),
                Some(Err(())) => {
                    return Some(Err(HttpError::permanent("the response was already taken")));
                }
                None => {
                    let ready = future.subscribe();
                    if !wait(&ready, deadline) {
                        return None;
                    }
                }
            }
        }
    }

    /// Blocks until `pollable` is ready (true) or the deadline passes (false).
    fn wait(pollable: &Pollable, deadline: u64) -> bool {
        let timer = monotonic_clock::subscribe_instant(deadline);
        let ready = poll(&[pollable, &timer]);
        ready.contains(&0)
    }

    fn read_body(
        incoming: &IncomingBody,
        deadline: u64,
        limit: usize,
        late: impl Fn() -> HttpError,
    ) -> Result<Vec<u8>, HttpError> {
        let stream = incoming
            .stream()
            .map_err(|()| HttpError::permanent("the response body stream was already taken"))?;
        let mut body = Vec::new();
        loop {
            match stream.read(READ_CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    let ready = stream.subscribe();
                    if !wait(&ready, deadline) {
                        return Err(late());
                    }
                }
                Ok(chunk) => {
                    if body.len().saturating_add(chunk.len()) > limit {
                        return Err(HttpError::permanent(format!(
                            "the response body is larger than the {limit}-byte limit"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(error) => return Err(stream_error(error, "reading the response body")),
            }
        }
        drop(stream);
        Ok(body)
    }

    fn stream_error(error: StreamError, doing: &str) -> HttpError {
        match error {
            StreamError::Closed => HttpError {
                transient: true,
                timeout: false,
                status: None,
                message: format!("the connection closed while {doing}"),
            },
            StreamError::LastOperationFailed(io) => match wasi::http_error_code(&io) {
                Some(code) => HttpError::from_error_code(&code),
                None => HttpError {
                    transient: true,
                    timeout: false,
                    status: None,
                    message: format!("{doing} failed: {}", io.to_debug_string()),
                },
            },
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod transport {
    use super::{HttpError, Request, Response, Url};

    pub(super) fn send(_request: &Request, url: &Url<'_>) -> Result<Response, HttpError> {
        Err(HttpError::permanent(format!(
            "cannot reach {}: HTTP requests need the wasi:http host of a WebAssembly component",
            url.authority
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let url = Url::parse("https://api.example.com:8443/v1/stats?x=1#frag").unwrap();
        assert_eq!(
            url,
            Url {
                https: true,
                authority: "api.example.com:8443",
                path_with_query: "/v1/stats?x=1"
            }
        );
        let bare = Url::parse("HTTP://localhost").unwrap();
        assert_eq!(
            (bare.https, bare.authority, bare.path_with_query),
            (false, "localhost", "/")
        );
        let query = Url::parse("http://h?q=1").unwrap();
        assert_eq!((query.authority, query.path_with_query), ("h", "?q=1"));
    }

    #[test]
    fn bad_urls_are_permanent_errors() {
        for (url, why) in [
            ("ftp://h/", "must start with http"),
            ("localhost:80", "must start with http"),
            ("http:///x", "no host"),
            ("http://user:pw@h/", "credentials"),
            ("http://h/a b", "spaces"),
        ] {
            let error = Url::parse(url).unwrap_err();
            assert!(!error.is_transient(), "{url}");
            assert!(error.message().contains(why), "{url}: {error}");
        }
    }

    #[test]
    fn error_codes_are_classified() {
        let denied = HttpError::from_error_code(&ErrorCode::HttpRequestDenied);
        assert!(!denied.is_transient());
        assert!(denied.message().contains("allow-list"));
        let timeout = HttpError::from_error_code(&ErrorCode::ConnectionTimeout);
        assert!(timeout.is_transient() && timeout.is_timeout());
        assert!(HttpError::from_error_code(&ErrorCode::ConnectionRefused).is_transient());
        assert!(!HttpError::from_error_code(&ErrorCode::TlsCertificateError).is_transient());
        assert!(HttpError::from_error_code(&ErrorCode::InternalError(None)).is_transient());
        assert_eq!(
            PluginError::from(denied.clone()),
            PluginError::permanent(denied.message())
        );
        assert!(matches!(
            PluginError::from(timeout),
            PluginError::Transient(_)
        ));
    }

    #[test]
    fn statuses_are_classified() {
        let response = |status| Response {
            status,
            headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
            body: b"line one\nline two".to_vec(),
        };
        for (status, transient) in [
            (500, true),
            (503, true),
            (429, true),
            (408, true),
            (404, false),
            (401, false),
        ] {
            let error = response(status).error_for_status().unwrap_err();
            assert_eq!(error.is_transient(), transient, "{status}");
            assert_eq!(
                error.message(),
                format!("HTTP status {status}: line one line two")
            );
        }
        for status in [200, 204, 301] {
            assert!(response(status).error_for_status().is_ok());
        }
        assert_eq!(response(200).header("content-type"), Some("text/plain"));
        assert!(response(200).is_success() && !response(301).is_success());
    }

    #[test]
    fn bodies_decode_as_text_and_json() {
        let ok = Response {
            status: 200,
            headers: Vec::new(),
            body: br#"{"depth": 3}"#.to_vec(),
        };
        assert_eq!(ok.text().unwrap(), r#"{"depth": 3}"#);
        let value: serde_json::Value = ok.json().unwrap();
        assert_eq!(value["depth"], 3);
        let bad = Response {
            body: vec![0xff],
            ..ok
        };
        assert!(!bad.text().unwrap_err().is_transient());
        assert!(bad.json::<serde_json::Value>().is_err());
    }

    #[test]
    fn excerpts_are_short() {
        let long = "x".repeat(500);
        let excerpt = body_excerpt(long.as_bytes());
        assert_eq!(excerpt.chars().count(), 201);
        assert!(excerpt.ends_with('…'));
    }

    #[test]
    fn json_bodies_set_the_content_type_once() {
        let request = Request::post("http://h/")
            .header("Content-Type", "application/vnd.x+json")
            .json(&serde_json::json!({"a": 1}));
        assert_eq!(request.body, br#"{"a":1}"#);
        assert_eq!(request.headers.len(), 1);
        let plain = Request::post("http://h/").json(&[1, 2]);
        assert_eq!(plain.header_value("content-type"), Some("application/json"));
    }

    #[test]
    fn sending_natively_fails_permanently() {
        let error = get("http://localhost:9/").unwrap_err();
        assert!(!error.is_transient());
        assert!(
            Request::get("nope")
                .send()
                .unwrap_err()
                .message()
                .contains("invalid URL")
        );
    }
}
