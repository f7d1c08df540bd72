//! # spanpipe-sync
//!
//! The control plane: a server that holds the desired configuration of a fleet of agents and an
//! agent-side client that follows it by revision, receiving a full snapshot once and deltas after
//! that, validated before they are applied. Leader election between control-plane replicas goes
//! through etcd.
//!
//! This crate is empty until the control-plane work lands; nothing here is usable yet.
