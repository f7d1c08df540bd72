//! Why a plugin library was not loaded.

use std::fmt;
use std::path::PathBuf;

use crate::PluginKind;

/// The fields of a descriptor's [`spanpipe_plugin_sdk::abi::Compatibility`], in the order the host
/// checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompatibilityField {
    /// `magic`: the library's descriptor is not spanpipe's at all.
    Magic,
    /// `abi_version`: built against another version of the interface.
    AbiVersion,
    /// `interface_hash`: built against different ABI type definitions.
    InterfaceHash,
    /// `sdk_version`: built against another release of the SDK.
    SdkVersion,
    /// `rustc_version`: built by another compiler.
    RustcVersion,
}

impl CompatibilityField {
    /// The field's name in the descriptor, for logs and metric labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Magic => "magic",
            Self::AbiVersion => "abi_version",
            Self::InterfaceHash => "interface_hash",
            Self::SdkVersion => "sdk_version",
            Self::RustcVersion => "rustc_version",
        }
    }
}

impl fmt::Display for CompatibilityField {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a plugin library was not loaded. Every variant names the file (`file`: its name, as the
/// user put it in the plugin directory); none of them leaves anything of the library running.
///
/// `Clone` so that one error can travel in a [`crate::PluginEvent`] to logs, metrics and the
/// health log alike; underlying I/O and loader errors are kept as their messages for that reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be copied to the host's private path (`state_dir`).
    #[error("plugin {file}: cannot copy it to {private_path}: {message}")]
    Copy {
        /// The plugin file.
        file: String,
        /// Where the host wanted the private copy.
        private_path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The dynamic loader refused the file: not an ELF shared object, truncated, built for another
    /// machine, or missing a library it needs.
    #[error("plugin {file} cannot be loaded: {message}")]
    Open {
        /// The plugin file.
        file: String,
        /// The loader's (`dlopen`'s) message.
        message: String,
    },
    /// The file is an ELF object whose headers describe more bytes than it has: a partial copy.
    /// Checked before `dlopen`, which would map the missing part and crash the process (`SIGBUS`)
    /// when relocating it.
    #[error("plugin {file} refused: it is truncated ({size} bytes, its ELF headers need {needed}); was it still being copied?")]
    Truncated {
        /// The plugin file.
        file: String,
        /// Its size.
        size: u64,
        /// The size its headers describe.
        needed: u64,
    },
    /// The library does not export `spanpipe_plugin_descriptor`: it was not built with the SDK's
    /// export macro.
    #[error(
        "plugin {file} has no spanpipe_plugin_descriptor symbol (build it with the SDK's export macro): {message}"
    )]
    MissingDescriptor {
        /// The plugin file.
        file: String,
        /// The loader's (`dlsym`'s) message.
        message: String,
    },
    /// The descriptor function returned a null pointer.
    #[error("plugin {file} refused: its descriptor function returned null")]
    NullDescriptor {
        /// The plugin file.
        file: String,
    },
    /// A compatibility field differs from the host's: the plugin must be rebuilt against this
    /// host's SDK with this host's compiler.
    #[error("plugin {file} refused: {field} differs (expected {expected}, found {found})")]
    Refused {
        /// The plugin file.
        file: String,
        /// The first field that differs.
        field: CompatibilityField,
        /// The host's value.
        expected: String,
        /// The plugin's value.
        found: String,
    },
    /// The descriptor is compatible but malformed: a name or content type that is not UTF-8, an
    /// unknown kind, or a null table of entry points.
    #[error("plugin {file} refused: {problem}")]
    Malformed {
        /// The plugin file.
        file: String,
        /// What is wrong.
        problem: String,
    },
}

impl LoadError {
    /// The compatibility field that caused a refusal, if that is what happened.
    #[must_use]
    pub fn refused_field(&self) -> Option<CompatibilityField> {
        match self {
            Self::Refused { field, .. } => Some(*field),
            _ => None,
        }
    }
}

/// Why a plugin host could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The plugin directory cannot be read.
    #[error("plugin directory {dir} cannot be read (set `plugins.dir`): {source}")]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The directory cannot be watched (inotify limits, permissions).
    #[error("plugin directory {dir} cannot be watched: {source}")]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// The watcher's error.
        source: notify::Error,
    },
    /// The watcher thread could not be started.
    #[error("cannot start the plugin watcher thread: {0}")]
    Thread(std::io::Error),
}

/// What a call into a plugin instance came to, when it was not [`spanpipe_plugin_sdk::abi::STATUS_OK`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin refused (`STATUS_ERROR`); the instance is still usable.
    #[error("plugin refused the call: {0}")]
    Refused(String),
    /// The plugin panicked (`STATUS_PANIC`); the instance may only be destroyed.
    #[error("plugin panicked: {0}")]
    Panicked(String),
    /// The plugin returned a status the ABI does not define; treated as a panic.
    #[error("plugin returned unknown status {0}")]
    UnknownStatus(u32),
    /// The published plugin is of another kind than the stage asks for.
    #[error("plugin is a {found}, not a {expected}")]
    WrongKind {
        /// What the stage needs.
        expected: PluginKind,
        /// What was published under the name.
        found: PluginKind,
    },
}

impl CallError {
    /// Whether the instance must be destroyed (a panic, or a status nobody can interpret).
    #[must_use]
    pub fn poisons_instance(&self) -> bool {
        matches!(self, Self::Panicked(_) | Self::UnknownStatus(_))
    }
}
