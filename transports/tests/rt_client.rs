//! The `rt` glue in the client direction: hyper's HTTP/1 and HTTP/2 clients on glommio, through
//! `rt::connect`, against the receiver on the same executor.

mod common;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{grpc_frame, request, test_config, SinkMode, TestSink, EXPORT_PATH};
use http_body_util::{BodyExt, Full};
use spanpipe_codecs::CodecRegistry;
use spanpipe_transports::otlp::{OtlpReceiver, Protocol};
use spanpipe_transports::rt::{self, ConnectOptions, GlommioExecutor, GlommioTimer};

fn on_glommio<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    make: impl FnOnce() -> F + Send + 'static,
) -> T {
    glommio::LocalExecutorBuilder::default().spawn(make).expect("executor starts").join().expect("test body")
}

/// Runs `client` against a receiver on the same executor, then shuts the receiver down;
/// returns the spans the receiver took.
fn with_receiver<F>(client: impl FnOnce(SocketAddr, SocketAddr) -> F + Send + 'static) -> usize
where
    F: std::future::Future<Output = ()> + 'static,
{
    on_glommio(move || async move {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Rc::new(TestSink::new(SinkMode::Accept, Arc::clone(&received)));
        let receiver = OtlpReceiver::bind(&test_config(), sink, &CodecRegistry::with_builtins()).unwrap();
        let running = receiver.start();
        let (grpc, http) =
            (running.local_address(Protocol::Grpc).unwrap(), running.local_address(Protocol::Http).unwrap());
        client(grpc, http).await;
        running.shutdown().await;
        let spans = received.lock().unwrap().iter().map(spanpipe_core::SpanBatch::len).sum();
        spans
    })
}

#[test]
fn http1_client_with_vectored_writes_sends_small_and_large_bodies() {
    let spans = with_receiver(|_, http| async move {
        let io = rt::connect(http, &ConnectOptions::default()).await.expect("connects");
        let (mut sender, connection) =
            hyper::client::conn::http1::Builder::new().writev(true).handshake(io).await.unwrap();
        glommio::spawn_local(connection).detach();
        // The large body is more than a socket buffer takes at once, so writes block and resume
        // (and stays under the test receiver's 1 MiB limit).
        for spans in [5, 1500] {
            let body = request(spans);
            assert!(spans < 1500 || (500_000..1 << 20).contains(&body.len()), "{}", body.len());
            let request = http::Request::post(format!("http://{http}/v1/traces"))
                .header("content-type", "application/x-protobuf")
                .body(Full::new(body))
                .unwrap();
            sender.ready().await.unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            response.into_body().collect().await.unwrap();
        }
    });
    assert_eq!(spans, 1505);
}

#[test]
fn http2_client_with_keepalive_pings_exports_over_grpc() {
    let spans = with_receiver(|grpc, _| async move {
        let io = rt::connect(grpc, &ConnectOptions::default()).await.expect("connects");
        let (sender, connection) = hyper::client::conn::http2::Builder::new(GlommioExecutor::new())
            .timer(GlommioTimer::new())
            .keep_alive_interval(Duration::from_millis(50))
            .keep_alive_timeout(Duration::from_secs(1))
            .handshake(io)
            .await
            .unwrap();
        glommio::spawn_local(connection).detach();
        for _ in 0..3 {
            let request = http::Request::post(format!("http://{grpc}{EXPORT_PATH}"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(grpc_frame(false, &request(10))))
                .unwrap();
            let response = sender.clone().send_request(request).await.unwrap();
            let collected = response.into_body().collect().await.unwrap();
            assert_eq!(collected.trailers().and_then(|t| t.get("grpc-status")).unwrap(), "0");
            // Idle long enough for a few keep-alive pings, which the server answers.
            glommio::timer::sleep(Duration::from_millis(120)).await;
        }
        assert!(!sender.is_closed(), "pings were answered; the connection is alive");
    });
    assert_eq!(spans, 30);
}

#[test]
fn connect_errors_name_the_operation_and_address() {
    let message = on_glommio(|| async {
        // Bind and close a listener so the port is known to be free.
        let address = glommio::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let options = ConnectOptions { connect_timeout: Some(Duration::from_secs(2)), ..ConnectOptions::default() };
        rt::connect(address, &options).await.map(|_| ()).unwrap_err().to_string()
    });
    assert!(message.starts_with("connecting to 127.0.0.1:"), "{message}");
}

#[test]
fn with_deadline_cancels_what_overruns_it() {
    on_glommio(|| async {
        let start = std::time::Instant::now();
        let slow = glommio::timer::sleep(Duration::from_secs(60));
        let outcome = rt::with_deadline(Some(start + Duration::from_millis(20)), slow).await;
        assert_eq!(outcome, Err(rt::DeadlineElapsed));
        assert!(start.elapsed() < Duration::from_secs(60));
        assert_eq!(rt::with_deadline(None, async { 7 }).await, Ok(7));
    });
}
