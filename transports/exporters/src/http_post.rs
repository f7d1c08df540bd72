//! The part of an HTTP exporter's request that does not depend on what the body says: the fixed
//! headers (`Content-Type`, `User-Agent`, `Content-Encoding`, the configured `headers`) and the
//! compression of the body. The `zipkin` exporter builds its requests with it; a protocol only
//! chooses the `Content-Type` and turns a batch into bytes.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Method, Request};

use crate::client::ChunkedBody;
use crate::compression::compress;
use crate::network::{EncodeError, Payload};
use crate::settings::Compression;
use spanpipe_transports::config_headers::header_map;

/// How every request of one HTTP exporter is posted.
#[derive(Clone, Debug)]
pub(crate) struct HttpPost {
    headers: HeaderMap,
    compression: Compression,
    level: i32,
}

impl HttpPost {
    /// Requests of `content_type`, compressed with `compression` at `level` (0: the algorithm's
    /// default), carrying `headers` after the fixed ones (so a configured header may replace
    /// `User-Agent`, as in the Collector). Headers that are not valid HTTP are left out: config
    /// validation refuses them first.
    pub(crate) fn new(
        content_type: &'static str,
        compression: Compression,
        level: i32,
        headers: &BTreeMap<String, String>,
    ) -> Self {
        let mut fixed = HeaderMap::new();
        fixed.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        fixed.insert(USER_AGENT, HeaderValue::from_static(crate::USER_AGENT));
        if let Some(name) = compression.encoding_name() {
            fixed.insert(CONTENT_ENCODING, HeaderValue::from_static(name));
        }
        fixed.extend(header_map(headers));
        Self { headers: fixed, compression, level }
    }

    /// `body`, compressed as configured, ready to be sent (and resent) as it is.
    pub(crate) fn payload(&self, body: Bytes) -> Result<Payload, EncodeError> {
        let body = match self.compression {
            Compression::None => body,
            compression => compress(compression, self.level, &body)?,
        };
        Ok(Payload { prefix: None, body })
    }

    /// A `POST` carrying `payload`; the pool adds the URI and `Host`.
    pub(crate) fn request(&self, payload: &Payload) -> Request<ChunkedBody> {
        let mut request = Request::new(payload.to_body());
        *request.method_mut() = Method::POST;
        *request.headers_mut() = self.headers.clone();
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_the_body_and_says_so_in_the_headers() {
        let headers = BTreeMap::from([("x-api-key".to_owned(), "secret".to_owned())]);
        let post = HttpPost::new("application/json", Compression::Gzip, 0, &headers);
        let payload = post.payload(Bytes::from_static(b"[]")).unwrap();
        let decompressed = crate::compression::decompress(Compression::Gzip, &payload.body, 1024).unwrap();
        assert_eq!(decompressed, b"[]".as_slice());
        let request = post.request(&payload);
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(request.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(request.headers()["x-api-key"], "secret");
        assert_eq!(request.headers()[USER_AGENT], crate::USER_AGENT);
    }

    #[test]
    fn uncompressed_bodies_are_sent_as_they_are_without_content_encoding() {
        let post = HttpPost::new("application/x-protobuf", Compression::None, 0, &BTreeMap::new());
        let body = Bytes::from_static(b"\x0a\x00");
        let payload = post.payload(body.clone()).unwrap();
        assert_eq!(payload.body, body);
        assert!(post.request(&payload).headers().get(CONTENT_ENCODING).is_none());
    }
}
