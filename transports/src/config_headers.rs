//! Header maps written in a config (`name: value`), as the Collector's `headers` of its HTTP and
//! gRPC clients and `response_headers` of its HTTP servers are: checked at validation, then
//! turned into an `http::HeaderMap` once, when the component is built.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use spanpipe_config::FieldError;

/// The entries of `headers` as a header map; entries [`validate`] refuses are left out.
#[must_use]
pub fn header_map(headers: &BTreeMap<String, String>) -> HeaderMap {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((HeaderName::from_bytes(name.as_bytes()).ok()?, HeaderValue::from_str(value).ok()?))
        })
        .collect()
}

/// Adds an error under `key.name` to `errors` for every entry of `headers` whose name or value is
/// not valid HTTP.
pub fn validate<'a>(
    key: &str,
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
    errors: &mut Vec<FieldError>,
) {
    for (name, value) in headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(FieldError::new(format!("{key}.{name}"), "is not a valid HTTP header name"));
        } else if HeaderValue::from_str(value).is_err() {
            errors.push(FieldError::new(format!("{key}.{name}"), "value is not a valid HTTP header value"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_and_values_are_named_and_left_out() {
        let headers: BTreeMap<String, String> = [("x-ok", "1"), ("bad name", "2"), ("x-bad-value", "a\nb")]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let mut errors = Vec::new();
        validate("response_headers", &headers, &mut errors);
        let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(paths, ["response_headers.bad name", "response_headers.x-bad-value"]);
        let map = header_map(&headers);
        assert_eq!(map.len(), 1);
        assert_eq!(map["x-ok"], "1");
    }
}
