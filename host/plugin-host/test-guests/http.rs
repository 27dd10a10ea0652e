//! A minimal blocking HTTP/1.1 client over wasi:http, shared by the guests.

use pharos_sdk::wasi::http::outgoing_handler;
use pharos_sdk::wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// Sends `body` to `url` and returns the response status, or the error code
/// the host answered with (e.g. `HttpRequestDenied`).
pub fn send(method: Method, url: &str, body: &[u8]) -> Result<u16, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!("not an http(s) URL: {url}"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_method(&method)
        .map_err(|()| "bad method".to_owned())?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme".to_owned())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "bad authority".to_owned())?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| "bad path".to_owned())?;
    let outgoing = request.body().map_err(|()| "no body".to_owned())?;
    let response = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    {
        let stream = outgoing.write().map_err(|()| "no body stream".to_owned())?;
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| format!("{e:?}"))?;
    loop {
        if let Some(result) = response.get() {
            let incoming = result
                .map_err(|()| "response taken twice".to_owned())?
                .map_err(|e| format!("{e:?}"))?;
            return Ok(incoming.status());
        }
        response.subscribe().block();
    }
}
