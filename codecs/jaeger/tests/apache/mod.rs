//! Apache Thrift's Rust library running the code its compiler generated from jaeger-idl
//! (`benches/thrift_gen/`): an independent writer and reader to check spanpipe's against.
//!
//! The generated modules must sit at the crate root (`agent.rs` names `crate::jaeger`), so each
//! test file that uses this module declares them:
//! `#[path = "../benches/thrift_gen/jaeger.rs"] mod jaeger;` and the same for `agent`.

use std::cell::RefCell;

use spanpipe_jaeger::Protocol;
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol, TInputProtocol,
    TOutputProtocol,
};
use thrift::server::TProcessor;

use crate::agent::{AgentSyncClient, AgentSyncHandler, AgentSyncProcessor, TAgentSyncClient};
use crate::jaeger::Batch;

/// Writes an `emitBatch` message as a Jaeger client using Apache Thrift would.
pub fn emit_batch(protocol: Protocol, batch: &Batch) -> Vec<u8> {
    let mut out = Vec::new();
    let input: &[u8] = &[];
    match protocol {
        Protocol::Compact => {
            let mut client =
                AgentSyncClient::new(TCompactInputProtocol::new(input), TCompactOutputProtocol::new(&mut out));
            client.emit_batch(batch.clone()).expect("Apache Thrift writes the batch");
        }
        Protocol::Binary => {
            let mut client = AgentSyncClient::new(
                TBinaryInputProtocol::new(input, true),
                TBinaryOutputProtocol::new(&mut out, true),
            );
            client.emit_batch(batch.clone()).expect("Apache Thrift writes the batch");
        }
    }
    out
}

/// A handler that keeps the batch it is given.
#[derive(Default)]
struct Keep(RefCell<Option<Batch>>);

impl AgentSyncHandler for &Keep {
    fn handle_emit_batch(&self, batch: Batch) -> thrift::Result<()> {
        *self.0.borrow_mut() = Some(batch);
        Ok(())
    }
}

/// Reads an `emitBatch` message as the Jaeger agent's generated processor would.
pub fn read_emit_batch(protocol: Protocol, message: &[u8]) -> thrift::Result<Batch> {
    let keep = Keep::default();
    let processor = AgentSyncProcessor::new(&keep);
    let mut sink = Vec::new();
    let (mut input, mut output): (Box<dyn TInputProtocol + '_>, Box<dyn TOutputProtocol + '_>) = match protocol {
        Protocol::Compact => {
            (Box::new(TCompactInputProtocol::new(message)), Box::new(TCompactOutputProtocol::new(&mut sink)))
        }
        Protocol::Binary => {
            (Box::new(TBinaryInputProtocol::new(message, false)), Box::new(TBinaryOutputProtocol::new(&mut sink, true)))
        }
    };
    processor.process(&mut *input, &mut *output)?;
    drop((input, output));
    let batch = keep.0.borrow_mut().take();
    batch.ok_or_else(|| thrift::Error::from("the processor did not call the handler".to_owned()))
}
