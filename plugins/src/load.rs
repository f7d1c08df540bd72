//! Opening a plugin library and deciding whether to trust it.
//!
//! ## Why a private copy
//!
//! `dlopen` keys libraries by path (and inode): opening a path that is already open returns the
//! handle of the library mapped the first time, even when a new file has since replaced it — a
//! "new version" would silently be the old one. And a user who overwrites the file in place under a
//! mapped library changes the code under a running plugin. So the host first copies the file to a
//! path of its own that is never reused (`<state_dir>/<stem>.<seq>.so`) and opens the copy. The copy
//! is unlinked right after `dlopen`: the mapping keeps the inode alive, and the state directory
//! does not fill up with old versions.
//!
//! ## What runs before the checks
//!
//! Only the descriptor function (`spanpipe_plugin_descriptor`), which the ABI requires to return a
//! pointer to static memory and do nothing else, and the library's ELF initialisers, which
//! `dlopen` runs and nobody can skip (Rust code has none unless it asks for them). The library is
//! opened with `RTLD_NOW` so that an unresolved symbol is a load error here, not a crash at the
//! first call, and `RTLD_LOCAL` so that two plugins never see each other's symbols.
//!
//! ## Lifetime
//!
//! [`LoadedPlugin`] owns the library and is itself shared as an `Arc<LoadedPlugin>` by the
//! registry, by every instance created from it and by its codec: reference counting decides when
//! the library is unmapped (`dlclose`), which happens only when the last of them is gone: replacing a plugin publishes a new [`LoadedPlugin`], instances of the old one
//! finish their current batch and are destroyed at the next batch boundary, and only then does
//! the old code leave memory. Nothing can call into an unmapped library.

use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use libloading::Library;
use spanpipe_plugin_sdk::abi::{
    self, BatchRef, ByteSink, BytesRef, CreateFn, DescriptorFn, DestroyFn, MessageSink, PluginDescriptor,
    ProcessorOutput, RequestSink, Status, StrRef,
};

use crate::error::{CompatibilityField, LoadError};

/// What a plugin provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// A processor stage ([`crate::PluginProcessor`]).
    Processor,
    /// A source of spans ([`crate::PluginSource`]).
    Source,
    /// A codec ([`crate::PluginCodec`]).
    Codec,
}

impl PluginKind {
    /// A short stable name, for logs and metric labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processor => "processor",
            Self::Source => "source",
            Self::Codec => "codec",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

pub(crate) type ProcessFn =
    unsafe extern "C" fn(*mut c_void, *const BatchRef, *mut ProcessorOutput, *const MessageSink) -> Status;
pub(crate) type EmitFn = unsafe extern "C" fn(*mut c_void, *const RequestSink, *const MessageSink) -> Status;
pub(crate) type DecodeFn =
    unsafe extern "C" fn(*mut c_void, BytesRef, *const RequestSink, *const MessageSink) -> Status;
pub(crate) type EncodeFn =
    unsafe extern "C" fn(*mut c_void, *const BatchRef, *const ByteSink, *const MessageSink) -> Status;

/// The entry points of a loaded plugin, copied out of its vtable at load time so that nothing
/// reads the plugin's memory again to find them. They are valid while the library is mapped,
/// which holding the [`LoadedPlugin`] guarantees.
#[derive(Clone, Copy, Debug)]
pub(crate) enum EntryPoints {
    Processor { create: CreateFn, process: ProcessFn, destroy: DestroyFn },
    Source { create: CreateFn, emit: EmitFn, destroy: DestroyFn },
    Codec { create: CreateFn, decode: DecodeFn, encode: EncodeFn, destroy: DestroyFn },
}

impl EntryPoints {
    fn kind(&self) -> PluginKind {
        match self {
            Self::Processor { .. } => PluginKind::Processor,
            Self::Source { .. } => PluginKind::Source,
            Self::Codec { .. } => PluginKind::Codec,
        }
    }

    pub(crate) fn create(&self) -> CreateFn {
        match *self {
            Self::Processor { create, .. } | Self::Source { create, .. } | Self::Codec { create, .. } => create,
        }
    }

    pub(crate) fn destroy(&self) -> DestroyFn {
        match *self {
            Self::Processor { destroy, .. } | Self::Source { destroy, .. } | Self::Codec { destroy, .. } => destroy,
        }
    }
}

/// A plugin library that passed every check, ready to create instances.
pub struct LoadedPlugin {
    name: String,
    version: String,
    path: PathBuf,
    entry_points: EntryPoints,
    content_types: Vec<String>,
    /// Declared last so it is dropped (unmapped) after everything else; never read, only held:
    /// see the module docs on lifetime.
    _library: Library,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("kind", &self.kind())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// The plugin's name, from its descriptor: what configs call it by.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's own version, from its descriptor.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// What it provides.
    #[must_use]
    pub fn kind(&self) -> PluginKind {
        self.entry_points.kind()
    }

    /// The file it was loaded from (the user's path, not the private copy).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A codec's media types, lower case; empty for other kinds.
    #[must_use]
    pub fn content_types(&self) -> &[String] {
        &self.content_types
    }

    pub(crate) fn entry_points(&self) -> EntryPoints {
        self.entry_points
    }
}

/// Private copies get a number nobody else uses in this process, so a path is never opened twice.
static NEXT_COPY: AtomicU64 = AtomicU64::new(1);

/// Where private copies go when the caller names no state directory: one directory per process
/// under the system's temporary directory.
#[must_use]
pub fn default_state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("spanpipe-plugins-{}", std::process::id()))
}

/// Loads the plugin library at `path`: copies it into `state_dir`, opens the copy, reads its
/// descriptor and checks it. Nothing of the plugin but its descriptor function runs before the
/// checks pass.
///
/// # Errors
/// A [`LoadError`] naming the file: [`LoadError::Open`] for a file the loader refuses (truncated,
/// not ELF), [`LoadError::Refused`] for the first compatibility field that differs (checked in the
/// order magic, abi_version, interface_hash, sdk_version, rustc_version), and the other variants
/// for the remaining faults.
pub fn load(path: &Path, state_dir: &Path) -> Result<LoadedPlugin, LoadError> {
    let file = path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned());
    let stem = path.file_stem().map_or_else(|| "plugin".to_owned(), |stem| stem.to_string_lossy().into_owned());
    let private_path = state_dir.join(format!("{stem}.{}.so", NEXT_COPY.fetch_add(1, Ordering::Relaxed)));
    let copy_error = |error: std::io::Error| LoadError::Copy {
        file: file.clone(),
        private_path: private_path.clone(),
        message: error.to_string(),
    };
    std::fs::create_dir_all(state_dir).map_err(copy_error)?;
    std::fs::copy(path, &private_path).map_err(copy_error)?;
    // Checked on the private copy, which nobody else writes: what is checked is what is opened.
    let opened = match elf_extent(&private_path) {
        Ok(Some((size, needed))) if needed > size => {
            let _ = std::fs::remove_file(&private_path);
            return Err(LoadError::Truncated { file, size, needed });
        }
        Ok(_) => open_library(&private_path),
        Err(error) => {
            let _ = std::fs::remove_file(&private_path);
            return Err(copy_error(error));
        }
    };
    // The mapping keeps the file's contents; the name is not needed any more (see module docs).
    let _ = std::fs::remove_file(&private_path);
    let library = opened.map_err(|error| LoadError::Open { file: file.clone(), message: error.to_string() })?;
    let descriptor = descriptor_of(&library, &file)?;
    // SAFETY: `descriptor` is non-null and points into the library's static memory, which stays
    // mapped while `library` lives (it is moved into the result below). The compatibility block is
    // read first and alone: its layout is frozen across every version of the interface.
    let compatibility = unsafe { (*descriptor).compatibility };
    check_compatibility(&compatibility, &file)?;
    // SAFETY: the compatibility check passed, so the descriptor has this build's layout.
    let descriptor = unsafe { &*descriptor };
    let malformed = |problem: String| LoadError::Malformed { file: file.clone(), problem };
    let name = read_text(descriptor.name).filter(|name| !name.is_empty());
    let name = name.ok_or_else(|| malformed("its name is empty or not UTF-8".to_owned()))?;
    let version = read_text(descriptor.version).ok_or_else(|| malformed("its version is not UTF-8".to_owned()))?;
    let (entry_points, content_types) = entry_points_of(descriptor).map_err(malformed)?;
    Ok(LoadedPlugin { name, version, path: path.to_path_buf(), entry_points, content_types, _library: library })
}

/// For a 64-bit little-endian ELF file (what this host loads), its size and the size its headers
/// describe: the end of the furthest program header table, segment or section header table.
/// `None` for anything else, which `dlopen` refuses safely by itself with its own message.
///
/// Why: `dlopen` maps segments by the offsets in the program headers, past the end of a truncated
/// file too, and touching those pages during relocation raises `SIGBUS`, which ends the process.
fn elf_extent(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    use std::io::{Read, Seek, SeekFrom};
    const HEADER: usize = 64;
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut header = [0u8; HEADER];
    if size < HEADER as u64 {
        let mut start = Vec::new();
        file.read_to_end(&mut start)?;
        let elf64 = start.len() >= 6 && start[..4] == *b"\x7fELF" && start[4] == 2 && start[5] == 1;
        return Ok(elf64.then_some((size, HEADER as u64)));
    }
    file.read_exact(&mut header)?;
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(None);
    }
    let u16_at = |bytes: &[u8], at: usize| u64::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    let u64_at = |bytes: &[u8], at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let (program_headers, program_header_size, program_header_count) =
        (u64_at(&header, 0x20), u16_at(&header, 0x36), u16_at(&header, 0x38));
    let (section_headers, section_header_size, section_header_count) =
        (u64_at(&header, 0x28), u16_at(&header, 0x3a), u16_at(&header, 0x3c));
    let program_table_end = program_headers.saturating_add(program_header_size * program_header_count);
    let section_table_end = section_headers.saturating_add(section_header_size * section_header_count);
    let mut needed = program_table_end.max(section_table_end).max(HEADER as u64);
    if program_table_end <= size && program_header_size >= 0x28 {
        let mut table = vec![0u8; (program_header_size * program_header_count) as usize];
        file.seek(SeekFrom::Start(program_headers))?;
        file.read_exact(&mut table)?;
        for entry in table.chunks_exact(program_header_size as usize) {
            // p_offset at 0x08, p_filesz at 0x20.
            needed = needed.max(u64_at(entry, 0x08).saturating_add(u64_at(entry, 0x20)));
        }
    }
    Ok(Some((size, needed)))
}

fn open_library(path: &Path) -> Result<Library, libloading::Error> {
    use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: opening a library runs its ELF initialisers; that is the one thing about a plugin
    // that must be trusted before any check (see the module docs).
    unsafe { UnixLibrary::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Library::from)
}

fn descriptor_of(library: &Library, file: &str) -> Result<*const PluginDescriptor, LoadError> {
    // SAFETY: the symbol is declared by the ABI as a `DescriptorFn`; a library that exports
    // something else under this name is broken beyond what any check could find.
    let function = unsafe { library.get::<DescriptorFn>(abi::DESCRIPTOR_SYMBOL) }
        .map_err(|error| LoadError::MissingDescriptor { file: file.to_owned(), message: error.to_string() })?;
    // SAFETY: the ABI requires the descriptor function to do nothing but return a static pointer.
    let descriptor = unsafe { function() };
    if descriptor.is_null() {
        return Err(LoadError::NullDescriptor { file: file.to_owned() });
    }
    Ok(descriptor)
}

/// Compares the descriptor's compatibility block with the host's, field by field, in the order the
/// ABI documents; the first difference refuses the plugin.
pub(crate) fn check_compatibility(found: &abi::Compatibility, file: &str) -> Result<(), LoadError> {
    let refuse = |field, expected: String, found: String| {
        Err(LoadError::Refused { file: file.to_owned(), field, expected, found })
    };
    let hex = |value: u64| format!("{value:#018x}");
    if found.magic != abi::DESCRIPTOR_MAGIC {
        return refuse(CompatibilityField::Magic, hex(abi::DESCRIPTOR_MAGIC), hex(found.magic));
    }
    if found.abi_version != abi::ABI_VERSION {
        return refuse(CompatibilityField::AbiVersion, abi::ABI_VERSION.to_string(), found.abi_version.to_string());
    }
    if found.interface_hash != spanpipe_plugin_sdk::INTERFACE_HASH {
        return refuse(
            CompatibilityField::InterfaceHash,
            hex(spanpipe_plugin_sdk::INTERFACE_HASH),
            hex(found.interface_hash),
        );
    }
    let quoted = |text: StrRef| read_text(text).map_or_else(|| "<not UTF-8>".to_owned(), |text| format!("{text:?}"));
    if read_text(found.sdk_version).as_deref() != Some(spanpipe_plugin_sdk::SDK_VERSION) {
        return refuse(
            CompatibilityField::SdkVersion,
            format!("{:?}", spanpipe_plugin_sdk::SDK_VERSION),
            quoted(found.sdk_version),
        );
    }
    if read_text(found.rustc_version).as_deref() != Some(spanpipe_plugin_sdk::RUSTC_VERSION) {
        return refuse(
            CompatibilityField::RustcVersion,
            format!("{:?}", spanpipe_plugin_sdk::RUSTC_VERSION),
            quoted(found.rustc_version),
        );
    }
    Ok(())
}

fn entry_points_of(descriptor: &PluginDescriptor) -> Result<(EntryPoints, Vec<String>), String> {
    let missing = |table: &str| format!("its kind is {table} but its {table} table is null");
    match descriptor.kind {
        abi::KIND_PROCESSOR => {
            // SAFETY: a non-null table pointer in a compatible descriptor points to a static table
            // of this build's layout, readable while the library is mapped.
            let table = unsafe { descriptor.processor.as_ref() }.ok_or_else(|| missing("processor"))?;
            Ok((
                EntryPoints::Processor { create: table.create, process: table.process, destroy: table.destroy },
                Vec::new(),
            ))
        }
        abi::KIND_SOURCE => {
            // SAFETY: a non-null table pointer in a compatible descriptor points to a static table
            // of this build's layout, readable while the library is mapped.
            let table = unsafe { descriptor.source.as_ref() }.ok_or_else(|| missing("source"))?;
            Ok((EntryPoints::Source { create: table.create, emit: table.emit, destroy: table.destroy }, Vec::new()))
        }
        abi::KIND_CODEC => {
            // SAFETY: a non-null table pointer in a compatible descriptor points to a static table
            // of this build's layout, readable while the library is mapped.
            let table = unsafe { descriptor.codec.as_ref() }.ok_or_else(|| missing("codec"))?;
            let content_types = if table.content_type_count == 0 {
                Vec::new()
            } else if table.content_types.is_null() {
                return Err("its codec table lists content types through a null pointer".to_owned());
            } else {
                // SAFETY: a non-null array of `content_type_count` entries in static memory.
                let types = unsafe { std::slice::from_raw_parts(table.content_types, table.content_type_count) };
                types
                    .iter()
                    .map(|text| read_text(*text).map(|text| text.to_ascii_lowercase()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| "one of its content types is not UTF-8".to_owned())?
            };
            let entry_points = EntryPoints::Codec {
                create: table.create,
                decode: table.decode,
                encode: table.encode,
                destroy: table.destroy,
            };
            Ok((entry_points, content_types))
        }
        other => Err(format!("its kind {other} is unknown (1 processor, 2 source, 3 codec)")),
    }
}

/// Copies borrowed text out of the plugin; `None` for a null pointer with a length, or bytes that
/// are not UTF-8.
pub(crate) fn read_text(text: StrRef) -> Option<String> {
    if text.len == 0 {
        return Some(String::new());
    }
    if text.ptr.is_null() {
        return None;
    }
    // SAFETY: the ABI lends `len` readable bytes at `ptr` for the duration of the call (or, for a
    // descriptor, for as long as the library is mapped).
    let bytes = unsafe { std::slice::from_raw_parts(text.ptr, text.len) };
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_compatibility() -> abi::Compatibility {
        abi::Compatibility {
            magic: abi::DESCRIPTOR_MAGIC,
            abi_version: abi::ABI_VERSION,
            reserved: 0,
            interface_hash: spanpipe_plugin_sdk::INTERFACE_HASH,
            sdk_version: text(spanpipe_plugin_sdk::SDK_VERSION),
            rustc_version: text(spanpipe_plugin_sdk::RUSTC_VERSION),
        }
    }

    fn text(value: &'static str) -> StrRef {
        StrRef { ptr: value.as_ptr(), len: value.len() }
    }

    #[test]
    fn accepts_the_hosts_own_compatibility_block() {
        assert_eq!(check_compatibility(&host_compatibility(), "libok.so"), Ok(()));
    }

    #[test]
    fn refuses_on_the_first_differing_field_in_documented_order() {
        let mut block = host_compatibility();
        block.rustc_version = text("rustc 0.0.1");
        block.interface_hash ^= 1;
        let error = check_compatibility(&block, "libx.so").unwrap_err();
        assert_eq!(error.refused_field(), Some(CompatibilityField::InterfaceHash));
        let message = error.to_string();
        assert!(message.starts_with("plugin libx.so refused: interface_hash differs (expected 0x"), "{message}");

        block.interface_hash = spanpipe_plugin_sdk::INTERFACE_HASH;
        let error = check_compatibility(&block, "libx.so").unwrap_err();
        assert_eq!(error.refused_field(), Some(CompatibilityField::RustcVersion));
        assert!(error.to_string().contains("found \"rustc 0.0.1\""), "{error}");

        block.magic = 0;
        block.abi_version = 99;
        assert_eq!(
            check_compatibility(&block, "libx.so").unwrap_err().refused_field(),
            Some(CompatibilityField::Magic)
        );
        block.magic = abi::DESCRIPTOR_MAGIC;
        let error = check_compatibility(&block, "libx.so").unwrap_err();
        assert_eq!(error.refused_field(), Some(CompatibilityField::AbiVersion));
        assert!(error.to_string().contains("(expected 1, found 99)"), "{error}");
    }

    #[test]
    fn a_truncated_elf_file_is_refused_before_dlopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libtruncated.so");
        let own_executable = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        std::fs::write(&path, &own_executable[..4096]).unwrap();
        let error = load(&path, &dir.path().join("state")).unwrap_err();
        assert!(matches!(error, LoadError::Truncated { size: 4096, needed, .. } if needed > 4096), "{error:?}");
        let whole = dir.path().join("whole");
        std::fs::write(&whole, &own_executable).unwrap();
        let (size, needed) = elf_extent(&whole).unwrap().unwrap();
        assert!(needed <= size, "a complete file needs no more than it has: {needed} > {size}");
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused_with_the_loaders_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libjunk.so");
        std::fs::write(&path, b"not an elf file at all").unwrap();
        let error = load(&path, &dir.path().join("state")).unwrap_err();
        match &error {
            LoadError::Open { file, message } => {
                assert_eq!(file, "libjunk.so");
                assert!(!message.is_empty());
            }
            other => panic!("expected an Open error, got {other:?}"),
        }
        let copies = std::fs::read_dir(dir.path().join("state")).unwrap().count();
        assert_eq!(copies, 0, "the private copy is removed even when dlopen fails");
    }
}
