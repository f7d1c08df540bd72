//! Computes the compatibility facts a plugin carries in its descriptor: the interface hash (a
//! digest of the ABI's type definitions, so any change to them is noticed) and the compiler
//! version.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/abi.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let abi = std::fs::read_to_string("src/abi.rs").expect("src/abi.rs is readable");
    println!("cargo:rustc-env=SPANPIPE_PLUGIN_INTERFACE_HASH={}", interface_hash(&abi));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SPANPIPE_PLUGIN_RUSTC_VERSION={version}");
}

/// FNV-1a (64-bit) of the file's code: comments dropped, whitespace runs folded to one space, so
/// editing documentation or formatting leaves the hash alone and changing a type does not.
fn interface_hash(source: &str) -> u64 {
    let mut code = String::with_capacity(source.len());
    for line in source.lines() {
        let line = line.split("//").next().unwrap_or_default();
        for word in line.split_whitespace() {
            code.push_str(word);
            code.push(' ');
        }
    }
    code.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}
