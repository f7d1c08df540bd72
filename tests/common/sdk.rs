//! What the tests that drive spanpipe with real clients share: the venvs `tools/test` creates for
//! the OpenTelemetry Python SDK, running a client script (Python from tests/otel_sdk/, Node.js from
//! tests/native_clients/) with a clean environment and a deadline, and attribute values typed the
//! way the scripts print them.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::{read_export_requests, wait_for_exit, Spanpipe};

/// How long a client script may run (it loads its SDK, exports several times, and the SDK
/// retries a failed export on its own).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// The Python of the venv `venv` (a directory at the project root) that `tools/test` builds from
/// `requirements` (a path from the project root).
pub fn venv_python(venv: &str, requirements: &str) -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(venv).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tools/test, which creates the venv {venv} with the versions pinned in \
         {requirements}",
        python.display()
    );
    python
}

/// Runs tests/otel_sdk/`script` with `python` and `arguments` and reads the JSON report it
/// prints.
pub fn run_client<T: DeserializeOwned>(python: &Path, script: &str, arguments: &[OsString]) -> T {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otel_sdk").join(script);
    run_script(python.as_os_str(), &script, arguments)
}

/// Runs tests/native_clients/`script` with Node.js and `arguments` and reads the JSON report it
/// prints, after checking that the npm `packages` it needs are installed there.
pub fn run_node_client<T: DeserializeOwned>(script: &str, packages: &[&str], arguments: &[OsString]) -> T {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/native_clients");
    for package in packages {
        assert!(
            directory.join("node_modules").join(package).exists(),
            "{}/node_modules/{package} is missing: run tools/test, which installs the packages pinned in \
             its package-lock.json with `npm ci`",
            directory.display()
        );
    }
    run_script("node".as_ref(), &directory.join(script), arguments)
}

/// Checks that the Chromium the browser scripts drive is there: Debian's, or the one
/// `SPANPIPE_TEST_CHROMIUM` names (the scripts read the same variable).
pub fn require_chromium() {
    let chromium =
        std::env::var_os("SPANPIPE_TEST_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.exists(),
        "{} is missing: run tools/test, which installs Debian's chromium package",
        chromium.display()
    );
}

/// Runs `script` with `interpreter` (a path, or a program looked up on `PATH`) and `arguments`,
/// and reads the JSON report it prints on standard output.
///
/// The SDKs read OTEL_* variables (resource attributes, exporter endpoints and headers); the
/// test's environment must not change what they send, so they are removed, as are
/// REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, which would override the CA file an HTTP exporter sets.
pub fn run_script<T: DeserializeOwned>(interpreter: &OsStr, script: &Path, arguments: &[OsString]) -> T {
    let name = script.file_name().map_or_else(|| script.display().to_string(), |name| name.to_string_lossy().into());
    let output_dir = tempfile::tempdir().expect("a temporary directory");
    let stdout_path = output_dir.path().join("stdout.json");
    let stderr_path = output_dir.path().join("stderr.txt");
    let mut command = Command::new(interpreter);
    command.arg(script).args(arguments);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("OTEL_") || name_text == "REQUESTS_CA_BUNDLE" || name_text == "CURL_CA_BUNDLE" {
            command.env_remove(name);
        }
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("creating the output file"))
        .stderr(std::fs::File::create(&stderr_path).expect("creating the error file"))
        .spawn()
        .unwrap_or_else(|error| {
            panic!("starting the client {name} with {}: {error}", Path::new(interpreter).display())
        });
    let status = wait_for_exit(&mut child, CLIENT_TIMEOUT);
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("the client {name} ran over {CLIENT_TIMEOUT:?}:\n{stderr}"));
    assert!(status.success(), "the client {name} failed ({status}):\n{stderr}");
    let stdout = std::fs::read(&stdout_path).expect("reading the client's output");
    serde_json::from_slice(&stdout).unwrap_or_else(|error| {
        panic!("the report of {name} is not the expected JSON ({error}):\n{}", String::from_utf8_lossy(&stdout))
    })
}

/// An attribute value, tagged with its type as the script prints it, so that an int that
/// arrived as a double (or a string) is a difference.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Value {
    String(String),
    Bool(bool),
    Int(i64),
    /// Printed by Python as its shortest round-tripping text and read back exactly here.
    Double(#[serde(deserialize_with = "double_from_text")] f64),
    Array(Vec<Value>),
    /// The SDK's attributes cannot hold bytes or maps; a received one is shown in a difference.
    Bytes(Vec<u8>),
    KvList(Vec<(String, Value)>),
    /// An `AnyValue` with no value set.
    Empty,
}

fn double_from_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

impl From<&AnyValue> for Value {
    fn from(value: &AnyValue) -> Self {
        match &value.value {
            Some(any_value::Value::StringValue(text)) => Self::String(text.clone()),
            Some(any_value::Value::BoolValue(flag)) => Self::Bool(*flag),
            Some(any_value::Value::IntValue(number)) => Self::Int(*number),
            Some(any_value::Value::DoubleValue(number)) => Self::Double(*number),
            Some(any_value::Value::ArrayValue(array)) => Self::Array(array.values.iter().map(Self::from).collect()),
            Some(any_value::Value::BytesValue(bytes)) => Self::Bytes(bytes.clone()),
            Some(any_value::Value::KvlistValue(list)) => Self::KvList(pairs(&list.values)),
            Some(any_value::Value::StringValueStrindex(index)) => {
                panic!("a trace request carries a profiles string-table index ({index})")
            }
            None => Self::Empty,
        }
    }
}

pub fn pairs(attributes: &[KeyValue]) -> Vec<(String, Value)> {
    attributes.iter().map(|pair| (pair.key.clone(), pair.value.as_ref().map_or(Value::Empty, Value::from))).collect()
}

/// A link as the tests compare it: trace id and span id in hex, and its attributes.
pub type LinkSummary = (String, String, Vec<(String, Value)>);

/// Lowercase hex, as the scripts print ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A span as it arrived in the file exporter's output, with its resource and scope.
#[derive(Debug)]
pub struct Arrived {
    pub resource_attributes: Vec<(String, Value)>,
    pub scope_name: String,
    pub scope_version: String,
    pub span: Span,
}

pub fn arrived_spans(path: &Path) -> BTreeMap<String, Vec<Arrived>> {
    let mut spans: BTreeMap<String, Vec<Arrived>> = BTreeMap::new();
    for request in read_export_requests(path) {
        for ResourceSpans { resource, scope_spans, .. } in request.resource_spans {
            let resource_attributes = pairs(&resource.unwrap_or_default().attributes);
            for ScopeSpans { scope, spans: scope_spans, .. } in scope_spans {
                let scope = scope.unwrap_or_default();
                for span in scope_spans {
                    spans.entry(hex(&span.span_id)).or_default().push(Arrived {
                        resource_attributes: resource_attributes.clone(),
                        scope_name: scope.name.clone(),
                        scope_version: scope.version.clone(),
                        span,
                    });
                }
            }
        }
    }
    spans
}

/// A collector in `dir` whose one receiver, `receiver` with `settings` (YAML flow style), writes
/// every span to a `file` exporter, and the path of that file.
pub fn collector_into_file(dir: &Path, receiver: &str, settings: &str) -> (Spanpipe, PathBuf) {
    let output = dir.join("received.jsonl");
    let components = format!(
        "receivers:\n  {receiver}: {settings}\nexporters:\n  file:\n    path: \"{}\"\n    flush_interval: 50ms\n",
        output.display()
    );
    let pipelines = format!("traces: {{receivers: [{receiver}], exporters: [file]}}");
    (Spanpipe::start(dir, receiver, &components, &pipelines), output)
}
