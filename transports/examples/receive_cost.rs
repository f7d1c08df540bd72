//! Measures the receiver's CPU time per span: OTLP/gRPC and OTLP/HTTP requests of 100 spans,
//! plain and gzipped, into a sink that counts and drops. The receiver runs on one glommio
//! thread whose CPU clock is read before and after; the load comes from a tokio client thread
//! in the same process. A quick look for tuning, not the project's benchmark (that is the
//! end-to-end suite in `benches/`).
//!
//! `cargo run --release -p spanpipe-transports --example receive_cost [requests]`

// A measuring tool: printing its table is its job.
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use spanpipe_codecs::CodecRegistry;
use spanpipe_core::SpanBatch;
use spanpipe_transports::otlp::{
    Accepted, GrpcServerConfig, HttpServerConfig, OtlpReceiver, OtlpReceiverConfig, Protocol, Protocols, Refusal,
    SpanSink,
};

struct DropSink;

impl SpanSink for DropSink {
    type Admission = ();

    fn admit(&self, _: usize) -> Result<(), Refusal> {
        Ok(())
    }

    fn submit(&self, _: SpanBatch, (): ()) -> Result<Accepted, Refusal> {
        Ok(Accepted::all())
    }
}

fn thread_cpu() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

const SPANS_PER_REQUEST: usize = 100;
const CONCURRENCY: usize = 8;

fn main() {
    let requests: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(2000);
    let message = Bytes::from(spanpipe_testkit::realistic::encoded(SPANS_PER_REQUEST, 1));
    let gzipped = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&message).unwrap();
        Bytes::from(encoder.finish().unwrap())
    };
    println!(
        "{requests} requests of {SPANS_PER_REQUEST} spans ({} B, {} B gzipped), {CONCURRENCY} in flight",
        message.len(),
        gzipped.len()
    );
    println!("{:<24} {:>14} {:>12}", "load", "receiver CPU", "µs/span");
    for (name, protocol, gzip) in [
        ("gRPC", Protocol::Grpc, false),
        ("gRPC gzip", Protocol::Grpc, true),
        ("HTTP/1.1", Protocol::Http, false),
        ("HTTP/1.1 gzip", Protocol::Http, true),
    ] {
        let body = if gzip { gzipped.clone() } else { message.clone() };
        let cpu = measure(protocol, gzip, body, requests);
        let per_span = cpu.as_secs_f64() * 1e6 / (requests * SPANS_PER_REQUEST) as f64;
        println!("{name:<24} {:>12.1}ms {per_span:>12.3}", cpu.as_secs_f64() * 1e3);
    }
}

fn measure(protocol: Protocol, gzip: bool, body: Bytes, requests: usize) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop_flag = Arc::clone(&stop);
    let receiver = glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let config = OtlpReceiverConfig {
                protocols: Protocols {
                    grpc: Some(GrpcServerConfig { endpoint: "127.0.0.1:0".into(), ..Default::default() }),
                    http: Some(HttpServerConfig { endpoint: "127.0.0.1:0".into(), ..Default::default() }),
                },
            };
            let running =
                OtlpReceiver::bind(&config, Rc::new(DropSink), &CodecRegistry::with_builtins()).unwrap().start();
            let start = thread_cpu();
            ready_tx.send(running.local_address(protocol).unwrap()).unwrap();
            while !stop_flag.load(Ordering::Acquire) {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            let used = thread_cpu() - start;
            running.shutdown().await;
            used
        })
        .unwrap();
    let address = ready_rx.recv().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let mut workers = Vec::new();
        for worker in 0..CONCURRENCY {
            let body = body.clone();
            workers.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(address).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let count = requests / CONCURRENCY + usize::from(worker < requests % CONCURRENCY);
                match protocol {
                    Protocol::Grpc => {
                        let (mut sender, connection) =
                            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                                .await
                                .unwrap();
                        tokio::spawn(connection);
                        let mut framed = vec![u8::from(gzip)];
                        framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
                        framed.extend_from_slice(&body);
                        let framed = Bytes::from(framed);
                        for _ in 0..count {
                            let mut request = http::Request::post(format!(
                                "http://{address}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                            ))
                            .header("content-type", "application/grpc");
                            if gzip {
                                request = request.header("grpc-encoding", "gzip");
                            }
                            let response =
                                sender.send_request(request.body(Full::new(framed.clone())).unwrap()).await.unwrap();
                            response.into_body().collect().await.unwrap();
                        }
                    }
                    // This example measures the OTLP receiver only (see `main`).
                    _ => {
                        let (mut sender, connection) =
                            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
                        tokio::spawn(connection);
                        for _ in 0..count {
                            let mut request = http::Request::post(format!("http://{address}/v1/traces"))
                                .header("content-type", "application/x-protobuf");
                            if gzip {
                                request = request.header("content-encoding", "gzip");
                            }
                            sender.ready().await.unwrap();
                            let response =
                                sender.send_request(request.body(Full::new(body.clone())).unwrap()).await.unwrap();
                            assert_eq!(response.status(), 200);
                            response.into_body().collect().await.unwrap();
                        }
                    }
                }
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
    });
    stop.store(true, Ordering::Release);
    receiver.join().unwrap()
}
