//! # spanpipe-plugins
//!
//! Extends spanpipe at run time with shared libraries: processors, sources and codecs compiled
//! against a small plugin SDK with a stable `repr(C)` ABI. This crate will check a library's
//! descriptor (ABI, SDK and compiler versions, interface hash) before calling any of its code, load
//! it with `libloading`, watch the plugin directory, swap versions at a batch boundary, and isolate
//! panics so that a failing plugin is restarted or cut off without taking the collector down.
//!
//! This crate is empty until the plugin work lands; nothing here is usable yet.
