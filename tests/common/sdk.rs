//! What the tests that drive spanpipe with the OpenTelemetry Python SDK share: the venvs
//! `tools/test` creates, running a client script from tests/otel_sdk/ with a clean environment
//! and a deadline, and attribute values typed the way the scripts print them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::wait_for_exit;

/// How long a client script may run (it imports its SDK, exports several times, and the SDK
/// retries a failed export on its own).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// The Python of the venv `venv` (a directory at the project root) that `tools/test` builds from
/// tests/otel_sdk/`requirements`.
pub fn venv_python(venv: &str, requirements: &str) -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(venv).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tools/test, which creates the venv {venv} with the versions pinned in \
         tests/otel_sdk/{requirements}",
        python.display()
    );
    python
}

/// Runs tests/otel_sdk/`script` with `arguments` and reads the JSON report it prints.
///
/// The SDK reads OTEL_* variables (resource attributes, exporter endpoints and headers); the
/// test's environment must not change what it sends, so they are removed, as are
/// REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, which would override the CA file an HTTP exporter sets.
pub fn run_client<T: DeserializeOwned>(python: &Path, script: &str, arguments: &[OsString]) -> T {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otel_sdk").join(script);
    let output_dir = tempfile::tempdir().expect("a temporary directory");
    let stdout_path = output_dir.path().join("stdout.json");
    let stderr_path = output_dir.path().join("stderr.txt");
    let mut command = Command::new(python);
    command.arg(&script).args(arguments);
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
        .expect("starting the Python SDK client");
    let status = wait_for_exit(&mut child, CLIENT_TIMEOUT);
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("the Python SDK client ran over {CLIENT_TIMEOUT:?}:\n{stderr}"));
    assert!(status.success(), "the Python SDK client failed ({status}):\n{stderr}");
    let stdout = std::fs::read(&stdout_path).expect("reading the client's output");
    serde_json::from_slice(&stdout).unwrap_or_else(|error| {
        panic!("the client's report is not the expected JSON ({error}):\n{}", String::from_utf8_lossy(&stdout))
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

/// Lowercase hex, as the scripts print ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
