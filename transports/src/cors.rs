//! Cross-origin resource sharing for the HTTP receivers: the Collector's `confighttp` `cors`
//! section, so a web page served from one origin can send its spans to a receiver at another
//! (OpenTelemetry's browser SDK with its OTLP/HTTP exporter, zipkin-js in a browser).
//!
//! Browsers enforce CORS, not servers: a page may send a request to any origin, but reads the
//! answer only when the server says its origin may. For a request a form could not have sent
//! (OTLP's `Content-Type: application/json`, `application/x-protobuf`), the browser first asks
//! with a preflight `OPTIONS` request, and sends the real one only if that answer allows the
//! method and headers. So the receiver answers preflights for the paths it serves, and marks
//! its answers to allowed origins, as the Collector does with `rs/cors`:
//! - an origin is allowed when it matches an `allowed_origins` entry, compared without regard to
//!   case; an entry may hold one `*`, which stands for zero or more characters
//!   (`https://*.example.com`), and `*` alone allows every origin;
//! - the CORS-safelisted headers (`Accept`, `Accept-Language`, `Content-Language`,
//!   `Content-Type`) are always allowed, `X-Requested-With` too when `allowed_headers` is empty,
//!   and `*` there allows any;
//! - answers allow credentials (`Access-Control-Allow-Credentials: true`), as the Collector's
//!   do, and name the request's own origin, except under a plain `*`, which is answered `*`
//!   (browsers refuse that with credentials, which is why the Collector's documentation advises
//!   `https://*` and `http://*` instead);
//! - a request from an origin not allowed is still served: refusing it is the browser's part.
//!
//! Where spanpipe differs: a preflight is allowed `POST` only, the one method the routes take
//! (`rs/cors` also allows `GET` and `HEAD`, which the Collector's receivers then answer 405);
//! a preflight for a path the listener does not serve is answered 404 like any request there;
//! and answers expose `Retry-After`, so a page's exporter can read how long to wait after a 429
//! or 503 (a browser hides that header from a cross-origin page otherwise). The WebSocket
//! receiver's `allowed_origins` takes the same origin lists (`AllowedOrigins`).

use http::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::Method;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::FieldError;

/// The `cors` section of an HTTP server (the Collector's `confighttp.CORSConfig`). CORS is on
/// when `allowed_origins` lists at least one origin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins (`scheme://host[:port]`) whose pages may send requests. An entry may contain one
    /// `*` standing for zero or more characters (`https://*.example.com`); `*` alone allows
    /// every origin. Compared without regard to case. Empty: CORS is off. Defaults to empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// Request headers a page may send beyond the CORS-safelisted ones (`Accept`,
    /// `Accept-Language`, `Content-Language`, `Content-Type`, always allowed); `*` allows any.
    /// When empty, `X-Requested-With` is allowed too. Defaults to empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// How long, in seconds, a browser may cache a preflight's answer
    /// (`Access-Control-Max-Age`); 0 sends no such header (browsers then cache it for 5 s), a
    /// negative number sends 0 (no caching). Defaults to 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_age: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// Headers a browser may send to any origin without asking first; always allowed.
const SAFELISTED_HEADERS: [&str; 4] = ["accept", "accept-language", "content-language", "content-type"];

/// The only method the receivers' routes take.
const ALLOWED_METHOD: Method = Method::POST;

impl CorsConfig {
    /// Adds what is wrong with the section to `errors`, each under its key.
    pub(crate) fn validate_into(&self, errors: &mut Vec<FieldError>) {
        AllowedOrigins::validate_into(&self.allowed_origins, "allowed_origins", errors);
        for (index, header) in self.allowed_headers.iter().enumerate() {
            if header != "*" && http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                errors.push(FieldError::new(
                    format!("allowed_headers[{index}]"),
                    format!("`{header}` is not an HTTP header name"),
                ));
            }
        }
    }

    /// The policy this section sets, `None` when CORS is off (no `allowed_origins`). Call on a
    /// validated section: entries that validation refuses are left out.
    #[must_use]
    pub fn policy(&self) -> Option<CorsPolicy> {
        if self.allowed_origins.is_empty() {
            return None;
        }
        let origins = AllowedOrigins::new(&self.allowed_origins);
        let any_header = self.allowed_headers.iter().any(|header| header == "*");
        let mut headers: Vec<String> = SAFELISTED_HEADERS.iter().map(|header| (*header).to_owned()).collect();
        if self.allowed_headers.is_empty() {
            headers.push("x-requested-with".to_owned());
        }
        headers.extend(self.allowed_headers.iter().map(|header| header.to_ascii_lowercase()));
        let max_age = match self.max_age {
            0 => None,
            seconds => Some(HeaderValue::from(seconds.max(0))),
        };
        Some(CorsPolicy { origins, any_header, headers, max_age })
    }

    /// Whether the section lists headers but no origin, so it does nothing (the Collector warns
    /// about this too).
    #[must_use]
    pub fn has_headers_without_origins(&self) -> bool {
        self.allowed_origins.is_empty() && !self.allowed_headers.is_empty()
    }
}

/// A list of web origins, as `allowed_origins` entries give them (the `cors` section's, the
/// WebSocket receiver's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AllowedOrigins(Vec<OriginPattern>);

impl AllowedOrigins {
    /// The list of `entries`, leaving out those [`Self::validate_into`] refuses.
    pub(crate) fn new(entries: &[String]) -> Self {
        Self(entries.iter().filter_map(|entry| OriginPattern::parse(entry)).collect())
    }

    /// Adds what is wrong with `entries` to `errors`, each under `key[index]`.
    pub(crate) fn validate_into(entries: &[String], key: &str, errors: &mut Vec<FieldError>) {
        for (index, origin) in entries.iter().enumerate() {
            let problem = if origin.is_empty() {
                Some("an empty origin matches no page; leave it out".to_owned())
            } else if origin.matches('*').count() > 1 {
                Some(format!("`{origin}` has more than one `*`; an origin may hold one wildcard"))
            } else {
                None
            };
            if let Some(problem) = problem {
                errors.push(FieldError::new(format!("{key}[{index}]"), problem));
            }
        }
    }

    /// The entry `origin` (an `Origin` header's value) matches first, if any.
    fn find(&self, origin: &HeaderValue) -> Option<&OriginPattern> {
        let lowered = origin.to_str().ok()?.to_ascii_lowercase();
        self.0.iter().find(|pattern| pattern.matches(&lowered))
    }

    /// Whether `origin` matches an entry.
    pub(crate) fn allows(&self, origin: &HeaderValue) -> bool {
        self.find(origin).is_some()
    }
}

/// One `allowed_origins` entry, lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OriginPattern {
    /// `*`: every origin.
    Any,
    /// An origin without a wildcard.
    Exact(String),
    /// An origin with one `*`: what comes before it and after it.
    Wildcard { prefix: String, suffix: String },
}

impl OriginPattern {
    fn parse(entry: &str) -> Option<Self> {
        let entry = entry.to_ascii_lowercase();
        match entry.split_once('*') {
            _ if entry.is_empty() => None,
            None => Some(Self::Exact(entry)),
            Some(("", "")) => Some(Self::Any),
            Some((_, suffix)) if suffix.contains('*') => None,
            Some((prefix, suffix)) => Some(Self::Wildcard { prefix: prefix.to_owned(), suffix: suffix.to_owned() }),
        }
    }

    /// Whether `origin` (lower-cased) matches; the wildcard stands for zero or more characters,
    /// so prefix and suffix must not overlap.
    fn matches(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => exact == origin,
            Self::Wildcard { prefix, suffix } => {
                origin.len() >= prefix.len() + suffix.len() && origin.starts_with(prefix) && origin.ends_with(suffix)
            }
        }
    }
}

/// What a listener's `cors` section allows, ready to answer requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: AllowedOrigins,
    /// `allowed_headers` holds `*`.
    any_header: bool,
    /// Allowed request headers, lower-cased: the safelisted ones and those configured.
    headers: Vec<String>,
    /// The `Access-Control-Max-Age` value of a preflight's answer, if any.
    max_age: Option<HeaderValue>,
}

/// How a request's `Origin` stands with a policy.
enum Verdict {
    /// No `Origin`, or one not allowed: the answer carries no permission.
    NotAllowed,
    /// Allowed under a plain `*`.
    AnyOrigin,
    /// Allowed by name or pattern: the answer names it.
    Named(HeaderValue),
}

impl CorsPolicy {
    fn verdict(&self, headers: &HeaderMap) -> Verdict {
        let Some(origin) = headers.get(ORIGIN) else { return Verdict::NotAllowed };
        match self.origins.find(origin) {
            None => Verdict::NotAllowed,
            Some(OriginPattern::Any) => Verdict::AnyOrigin,
            Some(_) => Verdict::Named(origin.clone()),
        }
    }

    /// Whether `request` is a CORS preflight: `OPTIONS` asking for a method.
    #[must_use]
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The headers of the answer to a preflight with `request_headers`: permission to `POST`
    /// with the headers asked for, when the origin, the method and every header are allowed;
    /// only `Vary` otherwise, which the browser takes as a refusal. The answer is `204`
    /// either way, as the Collector's.
    #[must_use]
    pub fn preflight_headers(&self, request_headers: &HeaderMap) -> HeaderMap {
        let mut answer = HeaderMap::new();
        answer.insert(
            VARY,
            HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        );
        let method_allowed = request_headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|method| method.as_bytes().eq_ignore_ascii_case(ALLOWED_METHOD.as_str().as_bytes()));
        let asked = request_headers.get(ACCESS_CONTROL_REQUEST_HEADERS);
        let headers_allowed = asked.is_none_or(|asked| self.headers_allowed(asked));
        if !(method_allowed && headers_allowed) {
            return answer;
        }
        if !self.allow_origin(request_headers, &mut answer) {
            return answer;
        }
        answer.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHOD.as_str()));
        if let Some(asked) = asked.filter(|asked| !asked.is_empty()) {
            answer.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        if let Some(max_age) = &self.max_age {
            answer.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        answer
    }

    /// Adds to `response` the headers an answer to an ordinary (not preflight) request with
    /// `request_headers` carries: `Vary: Origin` always (the answer depends on it), and the
    /// permission when its origin is allowed.
    pub fn mark_response(&self, request_headers: &HeaderMap, response: &mut HeaderMap) {
        response.append(VARY, HeaderValue::from_static("Origin"));
        if self.allow_origin(request_headers, response) {
            response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Retry-After"));
        }
    }

    /// Writes `Access-Control-Allow-Origin` and `-Credentials` when the request's origin is
    /// allowed; returns whether it is.
    fn allow_origin(&self, request_headers: &HeaderMap, answer: &mut HeaderMap) -> bool {
        let origin = match self.verdict(request_headers) {
            Verdict::NotAllowed => return false,
            Verdict::AnyOrigin => HeaderValue::from_static("*"),
            Verdict::Named(origin) => origin,
        };
        answer.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        answer.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        true
    }

    /// Whether every header named in an `Access-Control-Request-Headers` value is allowed.
    fn headers_allowed(&self, asked: &HeaderValue) -> bool {
        if self.any_header {
            return true;
        }
        let Ok(asked) = asked.to_str() else { return false };
        asked.split(',').map(str::trim).filter(|name| !name.is_empty()).all(|name| {
            let name = name.to_ascii_lowercase();
            self.headers.contains(&name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str], headers: &[&str], max_age: i64) -> CorsPolicy {
        let config = CorsConfig {
            allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            allowed_headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            max_age,
        };
        let mut errors = Vec::new();
        config.validate_into(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        config.policy().expect("origins are listed")
    }

    fn request(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (http::HeaderName::from_static(name), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    fn preflight(origin: &str, method: &str, headers: Option<&str>) -> HeaderMap {
        let mut pairs = vec![("origin", origin), ("access-control-request-method", method)];
        pairs.extend(headers.map(|headers| ("access-control-request-headers", headers)));
        request(&pairs)
    }

    fn header<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a str> {
        headers.get(name).map(|value| value.to_str().unwrap())
    }

    #[test]
    fn origins_match_by_name_by_one_wildcard_or_all_without_regard_to_case() {
        let named = policy(&["https://app.example.com", "https://*.shop.example", "http://localhost:*"], &[], 0);
        for (origin, allowed) in [
            ("https://app.example.com", true),
            ("HTTPS://APP.Example.com", true),
            ("https://app.example.com:8443", false),
            ("http://app.example.com", false),
            ("https://eu.shop.example", true),
            ("https://a.b.shop.example", true),
            // The wildcard stands for zero or more characters, but prefix and suffix may not overlap.
            ("https://.shop.example", true),
            ("https://shop.example", false),
            ("http://localhost:3000", true),
            ("http://localhost:", true),
            ("http://localhost", false),
            ("null", false),
        ] {
            let answer = named.preflight_headers(&preflight(origin, "POST", None));
            assert_eq!(header(&answer, &ACCESS_CONTROL_ALLOW_ORIGIN).is_some(), allowed, "{origin}");
            if allowed {
                assert_eq!(header(&answer, &ACCESS_CONTROL_ALLOW_ORIGIN), Some(origin), "the origin is named as sent");
            }
        }
        let any = policy(&["*"], &[], 0);
        let answer = any.preflight_headers(&preflight("https://anything.example", "POST", None));
        assert_eq!(header(&answer, &ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
    }

    #[test]
    fn a_preflight_is_allowed_post_with_the_headers_it_asks_for() {
        let policy = policy(&["https://app.example.com"], &["X-Tenant"], 7200);
        let answer =
            policy.preflight_headers(&preflight("https://app.example.com", "POST", Some("content-type,x-tenant")));
        assert_eq!(header(&answer, &ACCESS_CONTROL_ALLOW_ORIGIN), Some("https://app.example.com"));
        assert_eq!(header(&answer, &ACCESS_CONTROL_ALLOW_METHODS), Some("POST"));
        assert_eq!(header(&answer, &ACCESS_CONTROL_ALLOW_HEADERS), Some("content-type,x-tenant"));
        assert_eq!(header(&answer, &ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
        assert_eq!(header(&answer, &ACCESS_CONTROL_MAX_AGE), Some("7200"));
        assert_eq!(
            header(&answer, &VARY),
            Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        );
    }

    #[test]
    fn a_preflight_for_another_method_or_header_or_origin_gets_no_permission() {
        let policy = policy(&["https://app.example.com"], &["X-Tenant"], 0);
        for refused in [
            preflight("https://app.example.com", "PUT", None),
            preflight("https://app.example.com", "POST", Some("content-type, authorization")),
            // X-Requested-With is allowed only when no headers are listed.
            preflight("https://app.example.com", "POST", Some("x-requested-with")),
            preflight("https://evil.example", "POST", Some("content-type")),
            request(&[("access-control-request-method", "POST")]),
        ] {
            let answer = policy.preflight_headers(&refused);
            assert_eq!(answer.len(), 1, "only Vary: {answer:?} for {refused:?}");
            assert!(answer.contains_key(VARY));
        }
    }

    #[test]
    fn safelisted_headers_are_always_allowed_and_a_star_allows_any() {
        let default = policy(&["https://a.example"], &[], 0);
        let asked = Some("Accept, Content-Type, Content-Language, Accept-Language, X-Requested-With");
        let answer = default.preflight_headers(&preflight("https://a.example", "post", asked));
        assert!(answer.contains_key(ACCESS_CONTROL_ALLOW_HEADERS), "{answer:?}");
        assert!(!answer.contains_key(ACCESS_CONTROL_MAX_AGE), "max_age 0 sends no header");
        let any = policy(&["https://a.example"], &["*"], -1);
        let answer = any.preflight_headers(&preflight("https://a.example", "POST", Some("x-anything, traceparent")));
        assert_eq!(header(&answer, &ACCESS_CONTROL_ALLOW_HEADERS), Some("x-anything, traceparent"));
        assert_eq!(header(&answer, &ACCESS_CONTROL_MAX_AGE), Some("0"), "a negative max_age forbids caching");
    }

    #[test]
    fn a_response_names_an_allowed_origin_and_varies_on_it() {
        let policy = policy(&["https://app.example.com"], &[], 0);
        let mut allowed = HeaderMap::new();
        allowed.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        policy.mark_response(&request(&[("origin", "https://app.example.com")]), &mut allowed);
        assert_eq!(header(&allowed, &ACCESS_CONTROL_ALLOW_ORIGIN), Some("https://app.example.com"));
        assert_eq!(header(&allowed, &ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
        assert_eq!(header(&allowed, &ACCESS_CONTROL_EXPOSE_HEADERS), Some("Retry-After"));
        let varies: Vec<&str> = allowed.get_all(VARY).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(varies, ["Accept-Encoding", "Origin"], "an existing Vary is kept");
        for request_headers in [request(&[("origin", "https://other.example")]), HeaderMap::new()] {
            let mut response = HeaderMap::new();
            policy.mark_response(&request_headers, &mut response);
            assert_eq!(response.len(), 1, "only Vary: {response:?}");
        }
    }

    #[test]
    fn the_section_is_off_without_origins_and_refuses_what_cannot_match() {
        assert_eq!(CorsConfig::default().policy(), None);
        let headers_only = CorsConfig { allowed_headers: vec!["X-Tenant".into()], ..CorsConfig::default() };
        assert!(headers_only.has_headers_without_origins());
        assert_eq!(headers_only.policy(), None);
        let bad = CorsConfig {
            allowed_origins: vec!["https://*.*.example".into(), String::new(), "https://ok.example".into()],
            allowed_headers: vec!["Bad Header".into(), "*".into(), "X-Ok".into()],
            max_age: 0,
        };
        let mut errors = Vec::new();
        bad.validate_into(&mut errors);
        let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(paths, ["allowed_origins[0]", "allowed_origins[1]", "allowed_headers[0]"], "{errors:?}");
        assert!(errors[0].message.contains("more than one `*`"), "{}", errors[0].message);
    }

    #[test]
    fn only_options_asking_for_a_method_is_a_preflight() {
        let asking = request(&[("access-control-request-method", "POST")]);
        assert!(CorsPolicy::is_preflight(&Method::OPTIONS, &asking));
        assert!(!CorsPolicy::is_preflight(&Method::OPTIONS, &HeaderMap::new()));
        assert!(!CorsPolicy::is_preflight(&Method::POST, &asking));
    }
}
