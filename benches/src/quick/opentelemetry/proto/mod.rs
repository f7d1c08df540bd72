// Automatically generated mod.rs
pub mod collector;
pub mod trace;
pub mod common;
pub mod resource;
