//! The engine both network exporters share: a bounded queue, `num_consumers` sender tasks that
//! retry with backoff, endpoint failover with probes of the primary, and a deadline-bound flush.
//!
//! One [`NetworkExporter`] runs per core, on that core's glommio executor, with its own queue,
//! connections and counters; nothing here is shared between cores. The protocol-specific parts —
//! encoding a batch into a request and reading the outcome from a response — are a
//! [`Protocol`]; gRPC and OTLP/HTTP are the two implementations.
//!
//! The decisions are pure state machines ([`Backoff`], [`Failover`], [`BoundedQueue`]) tested on
//! their own; this module only drives them: it feeds them `Instant::now()`, sleeps for the delays
//! they return, and moves batches between them and the wire. Every batch that enters the queue
//! leaves it delivered or counted as dropped with a [`DropReason`].

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use spanpipe_core::SpanBatch;
use spanpipe_health::{HealthRecord, HealthSink};
use spanpipe_transports::rt::with_deadline;

use crate::backoff::{Backoff, BackoffPolicy};
use crate::client::{ChunkedBody, ClientError, ClientResponse, Endpoint, Pool, PoolSettings};
use crate::compression::CompressionError;
use crate::failover::{Failover, FailoverEvent};
use crate::queue::BoundedQueue;
use crate::settings::{FailoverConfig, QueueConfig, RetryConfig};
use crate::stats::{DropReason, ExporterStats};
use crate::{FlushReport, SendError};

/// A request body ready to send: an optional prefix (the gRPC frame header) and the payload.
/// Built once per batch and shared by every attempt.
#[derive(Clone, Debug, Default)]
pub(crate) struct Payload {
    pub prefix: Option<Bytes>,
    pub body: Bytes,
}

impl Payload {
    pub(crate) fn len(&self) -> usize {
        self.prefix.as_ref().map_or(0, Bytes::len) + self.body.len()
    }

    pub(crate) fn to_body(&self) -> ChunkedBody {
        ChunkedBody::new(self.prefix.iter().cloned().chain([self.body.clone()]))
    }
}

/// Why one attempt failed, for logs. Nothing branches on these: whether to retry is decided with
/// the error, by the protocol that read the answer.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No HTTP answer: the connection could not be made or broke.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No answer within `timeout`.
    #[error("no answer from {endpoint} within {timeout:?}")]
    Timeout {
        /// The endpoint as configured.
        endpoint: String,
        /// The configured `timeout`.
        timeout: Duration,
    },
    /// The gRPC status was not OK.
    #[error("{endpoint} answered gRPC status {code} ({name}): {message}")]
    Grpc {
        /// The endpoint as configured.
        endpoint: String,
        /// The `grpc-status` code.
        code: i32,
        /// Its name.
        name: &'static str,
        /// `grpc-message`, percent-decoded.
        message: String,
    },
    /// The HTTP status was not 2xx.
    #[error("{endpoint} answered HTTP {status}: {message}")]
    Http {
        /// The endpoint as configured.
        endpoint: String,
        /// The status code.
        status: u16,
        /// The message of the `google.rpc.Status` body, or the body as text.
        message: String,
    },
    /// The answer could not be understood.
    #[error("malformed answer from {endpoint}: {reason}")]
    MalformedResponse {
        /// The endpoint as configured.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },
}

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The backend took the batch; it may have rejected some spans (`partial_success`).
    Delivered { rejected_spans: u64, message: String },
    /// Try again later, after at least `server_delay` if the server asked for one.
    Retryable { error: ExportError, server_delay: Option<Duration> },
    /// Trying again would fail the same way.
    Permanent { error: ExportError },
}

/// Why a batch could not be turned into a request body.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The codec failed.
    #[error("encoding the batch: {0}")]
    Codec(#[from] spanpipe_codecs::CodecError),
    /// Compression failed.
    #[error("compressing the batch: {0}")]
    Compression(#[from] CompressionError),
    /// The batch is larger than the protocol can frame.
    #[error("a batch of {0} bytes is larger than a gRPC message can be (4 GiB)")]
    TooLarge(usize),
}

/// What differs between OTLP/gRPC and OTLP/HTTP.
pub(crate) trait Protocol: 'static {
    /// The body for `batch`.
    fn encode(&self, batch: &SpanBatch) -> Result<Payload, EncodeError>;

    /// The body of a probe: an export request without spans, which receivers answer with success.
    fn probe_payload(&self) -> Payload;

    /// The request carrying `payload`: method, headers and body (the connection pool adds the
    /// URI and `Host` its endpoint and HTTP version need).
    fn request(&self, payload: &Payload) -> http::Request<ChunkedBody>;

    /// What the response means.
    fn outcome(&self, endpoint: &Endpoint, response: ClientResponse) -> Outcome;
}

/// Everything a network exporter needs besides its protocol, as validated config made it.
#[derive(Clone, Debug)]
pub(crate) struct NetworkSettings {
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    pub pool: PoolSettings,
    pub timeout: Duration,
    pub retry: RetryConfig,
    pub queue: QueueConfig,
    pub failover: FailoverConfig,
    /// Where failovers and failbacks are recorded, besides the log and the metrics.
    pub health: Option<Arc<dyn HealthSink>>,
}

struct Inner<P> {
    name: String,
    protocol: P,
    pools: Vec<Pool>,
    timeout: Duration,
    /// `None` when `retry_on_failure.enabled` is false.
    retry: Option<BackoffPolicy>,
    queue: RefCell<BoundedQueue>,
    queue_enabled: bool,
    block_on_overflow: bool,
    /// Senders waiting for a batch; the capacity of a disabled queue.
    idle_senders: Cell<u64>,
    /// Sender tasks that have not exited.
    running_senders: Cell<usize>,
    failover: RefCell<Failover>,
    /// `failover.failures` and `failover.window`, for the health log's threshold of a failover.
    failover_threshold: String,
    /// `failover.healthy_for`, for the health log's threshold of a failback.
    failback_threshold: String,
    health: Option<Arc<dyn HealthSink>>,
    stats: Arc<ExporterStats>,
    random: RefCell<fastrand::Rng>,
    batch_queued: event_listener::Event,
    room_freed: event_listener::Event,
    failover_changed: event_listener::Event,
    sender_exited: event_listener::Event,
    abort: event_listener::Event,
    closing: Cell<bool>,
    aborted: Cell<bool>,
    /// Set by [`NetworkExporter::hand_over`]: a batch whose attempt fails is handed back instead
    /// of retried, and senders waiting out a backoff hand theirs back at once.
    handing_over: Cell<bool>,
    handover: event_listener::Event,
    handed_back: RefCell<Vec<SpanBatch>>,
}

/// An OTLP exporter instance for one core: see the module docs.
pub(crate) struct NetworkExporter<P: Protocol> {
    inner: Rc<Inner<P>>,
    tasks: RefCell<Vec<glommio::Task<()>>>,
}

impl<P: Protocol> std::fmt::Debug for NetworkExporter<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkExporter")
            .field("name", &self.inner.name)
            .field("pools", &self.inner.pools)
            .field("queued", &self.inner.queue.borrow().len())
            .field("active_endpoint", &self.inner.failover.borrow().active())
            .finish_non_exhaustive()
    }
}

impl<P: Protocol> NetworkExporter<P> {
    /// Starts the senders (and, with several endpoints, the prober) on the current glommio
    /// executor.
    pub(crate) fn start(settings: NetworkSettings, protocol: P, stats: Arc<ExporterStats>) -> Self {
        let consumers = settings.queue.num_consumers.max(1);
        let capacity = if settings.queue.enabled { settings.queue.queue_size } else { consumers as u64 };
        let endpoint_count = settings.endpoints.len();
        let inner = Rc::new(Inner {
            name: settings.name,
            protocol,
            pools: settings.endpoints.into_iter().map(|endpoint| Pool::new(endpoint, settings.pool.clone())).collect(),
            timeout: settings.timeout,
            retry: settings.retry.enabled.then(|| BackoffPolicy::from(&settings.retry)),
            queue: RefCell::new(BoundedQueue::new(settings.queue.sizer, capacity)),
            queue_enabled: settings.queue.enabled,
            block_on_overflow: settings.queue.block_on_overflow,
            idle_senders: Cell::new(consumers as u64),
            running_senders: Cell::new(consumers),
            failover: RefCell::new(Failover::new(endpoint_count, &settings.failover)),
            failover_threshold: format!("{} failures within {}", settings.failover.failures, settings.failover.window),
            failback_threshold: format!("probes succeeded for {}", settings.failover.healthy_for),
            health: settings.health,
            stats,
            random: RefCell::new(fastrand::Rng::new()),
            batch_queued: event_listener::Event::new(),
            room_freed: event_listener::Event::new(),
            failover_changed: event_listener::Event::new(),
            sender_exited: event_listener::Event::new(),
            abort: event_listener::Event::new(),
            closing: Cell::new(false),
            aborted: Cell::new(false),
            handing_over: Cell::new(false),
            handover: event_listener::Event::new(),
            handed_back: RefCell::new(Vec::new()),
        });
        let mut tasks: Vec<_> = (0..consumers).map(|_| glommio::spawn_local(run_sender(Rc::clone(&inner)))).collect();
        if endpoint_count > 1 {
            tasks.push(glommio::spawn_local(run_prober(Rc::clone(&inner))));
        }
        Self { inner, tasks: RefCell::new(tasks) }
    }

    /// Queues `batch` without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`] when the queue has no room (the caller keeps the batch and pushes
    /// back), [`SendError::Closed`] once [`Self::flush`] has begun.
    pub fn try_send(&self, batch: SpanBatch) -> Result<(), SendError> {
        self.inner.push(batch).inspect_err(|error| {
            if let SendError::Full(batch) = error {
                self.inner.stats.refused(batch);
            }
        })
    }

    /// Queues `batch`, waiting for room while the queue is full.
    ///
    /// # Errors
    /// [`SendError::Closed`] once [`Self::flush`] has begun.
    pub async fn send(&self, mut batch: SpanBatch) -> Result<(), SendError> {
        loop {
            let room = self.inner.room_freed.listen();
            match self.inner.push(batch) {
                Err(SendError::Full(back)) => batch = back,
                other => return other,
            }
            room.await;
        }
    }

    /// Whether callers should wait for room ([`Self::send`]) rather than be refused
    /// (`sending_queue.block_on_overflow`).
    #[must_use]
    pub fn blocks_on_overflow(&self) -> bool {
        self.inner.block_on_overflow
    }

    /// A listener woken when room may have been made: a batch left the queue, a sender finished
    /// one, or shutdown began.
    #[must_use]
    pub fn listen_for_room(&self) -> event_listener::EventListener {
        self.inner.room_freed.listen()
    }

    /// This instance's counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<ExporterStats> {
        &self.inner.stats
    }

    /// The endpoint requests go to now (0 is the primary).
    #[must_use]
    pub fn active_endpoint(&self) -> usize {
        self.inner.failover.borrow().active()
    }

    /// Stops taking batches and gives back everything not yet delivered, for an exporter that
    /// replaces this one: the queue, and each batch being sent whose current attempt fails or
    /// that waits out a retry backoff. An attempt under way is let finish (bounded by `timeout`)
    /// rather than cut off, so that a batch the backend is taking is not sent twice.
    pub async fn hand_over(&self) -> Vec<SpanBatch> {
        let inner = &self.inner;
        inner.closing.set(true);
        inner.handing_over.set(true);
        for event in [&inner.batch_queued, &inner.room_freed, &inner.failover_changed, &inner.handover] {
            event.notify(usize::MAX);
        }
        let mut batches: Vec<SpanBatch> = inner.queue.borrow_mut().drain().collect();
        for _ in &batches {
            inner.stats.dequeued();
        }
        inner.senders_exited().await;
        batches.append(&mut inner.handed_back.borrow_mut());
        self.tasks.borrow_mut().clear();
        batches
    }

    /// Stops accepting batches and delivers what is queued or in flight until `deadline`; then
    /// abandons the rest, counting it as dropped for [`DropReason::Shutdown`].
    pub async fn flush(&self, deadline: Instant) -> FlushReport {
        let inner = &self.inner;
        let before = inner.stats.snapshot();
        inner.closing.set(true);
        for event in [&inner.batch_queued, &inner.room_freed, &inner.failover_changed] {
            event.notify(usize::MAX);
        }
        if with_deadline(Some(deadline), inner.senders_exited()).await.is_err() {
            inner.aborted.set(true);
            inner.abort.notify(usize::MAX);
            // Every await of a sender races the abort, so they exit at once; the bound only
            // guards against a bug turning shutdown into a hang.
            let grace = Instant::now() + Duration::from_secs(1);
            if with_deadline(Some(grace), inner.senders_exited()).await.is_err() {
                tracing::error!(exporter = %inner.name, "senders did not stop after the shutdown deadline");
            }
        }
        for batch in inner.queue.borrow_mut().drain() {
            inner.stats.dequeued();
            inner.stats.dropped(DropReason::Shutdown, batch.len());
        }
        self.tasks.borrow_mut().clear();
        let after = inner.stats.snapshot();
        let report = FlushReport {
            undelivered_batches: after.dropped_batches_for(DropReason::Shutdown)
                - before.dropped_batches_for(DropReason::Shutdown),
            undelivered_spans: after.dropped_spans_for(DropReason::Shutdown)
                - before.dropped_spans_for(DropReason::Shutdown),
        };
        if report.undelivered_batches > 0 {
            tracing::warn!(
                exporter = %inner.name,
                batches = report.undelivered_batches,
                spans = report.undelivered_spans,
                "shutdown deadline passed before everything was delivered"
            );
        }
        report
    }
}

impl<P: Protocol> Drop for NetworkExporter<P> {
    fn drop(&mut self) {
        // Dropping the tasks cancels them; mark the state so nothing is left waiting on it.
        self.inner.closing.set(true);
        self.inner.aborted.set(true);
    }
}

impl<P: Protocol> Inner<P> {
    fn push(&self, batch: SpanBatch) -> Result<(), SendError> {
        if self.closing.get() {
            return Err(SendError::Closed(batch));
        }
        self.queue.borrow_mut().try_push(batch).map_err(SendError::Full)?;
        self.stats.enqueued();
        self.batch_queued.notify(1);
        Ok(())
    }

    /// Takes the next batch, waiting for one; `None` when the exporter is closing and the queue
    /// is empty.
    async fn next_batch(&self) -> Option<SpanBatch> {
        loop {
            let queued = self.batch_queued.listen();
            let next = self.queue.borrow_mut().pop();
            if let Some(batch) = next {
                self.stats.dequeued();
                self.set_idle(self.idle_senders.get() - 1);
                self.room_freed.notify(usize::MAX);
                return Some(batch);
            }
            if self.closing.get() || self.aborted.get() {
                return None;
            }
            queued.await;
        }
    }

    fn set_idle(&self, idle: u64) {
        self.idle_senders.set(idle);
        if !self.queue_enabled {
            self.queue.borrow_mut().set_capacity(idle);
        }
    }

    fn sender_done_with_batch(&self) {
        self.set_idle(self.idle_senders.get() + 1);
        self.room_freed.notify(usize::MAX);
    }

    async fn senders_exited(&self) {
        loop {
            let exited = self.sender_exited.listen();
            if self.running_senders.get() == 0 {
                return;
            }
            exited.await;
        }
    }

    /// Runs `future` unless the shutdown deadline passes first.
    async fn unless_aborted<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        let abort = self.abort.listen();
        if self.aborted.get() {
            return None;
        }
        futures_lite::future::or(async { Some(future.await) }, async {
            abort.await;
            None
        })
        .await
    }

    async fn attempt(&self, endpoint: usize, payload: &Payload) -> Outcome {
        let pool = &self.pools[endpoint];
        let request = self.protocol.request(payload);
        match with_deadline(Some(Instant::now() + self.timeout), pool.send(request)).await {
            Ok(Ok(response)) => self.protocol.outcome(pool.endpoint(), response),
            Ok(Err(error)) => {
                if matches!(error, ClientError::Tls { .. }) {
                    // Retried like any connection failure (as the Collector does: the server's
                    // certificate may be renewed, and failover may find an endpoint that
                    // works), bounded by `retry_on_failure`; counted and shown, since a refused
                    // certificate is usually a configuration to fix.
                    self.stats.tls_handshake_failed();
                    tracing::warn!(exporter = %self.name, %error, "TLS failed");
                }
                Outcome::Retryable { error: error.into(), server_delay: None }
            }
            Err(_) => Outcome::Retryable {
                error: ExportError::Timeout { endpoint: pool.endpoint().label.clone(), timeout: self.timeout },
                server_delay: None,
            },
        }
    }

    /// Sends one batch until it is delivered, refused for good, or given up.
    async fn deliver(&self, batch: SpanBatch) {
        let spans = batch.len();
        let payload = match self.protocol.encode(&batch) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(exporter = %self.name, %error, spans, "dropping a batch that cannot be encoded");
                self.stats.dropped(DropReason::Encode, spans);
                return;
            }
        };
        let mut backoff = self.retry.map(|policy| Backoff::new(policy, Instant::now()));
        loop {
            let endpoint = self.failover.borrow().active();
            self.stats.attempt_started();
            let started = Instant::now();
            let outcome = self.unless_aborted(self.attempt(endpoint, &payload)).await;
            self.stats.attempt_finished(started.elapsed());
            let (error, server_delay) = match outcome {
                None => return self.stats.dropped(DropReason::Shutdown, spans),
                // Successes are not fed to the failover state: it counts failures per window,
                // so that an endpoint that fails often is left even if requests pass in between.
                Some(Outcome::Delivered { rejected_spans, message }) => {
                    self.stats.delivered(&batch, payload.len());
                    if rejected_spans > 0 || !message.is_empty() {
                        self.stats.rejected_by_backend(rejected_spans);
                        tracing::warn!(
                            exporter = %self.name, endpoint = %self.pools[endpoint].endpoint(), rejected_spans,
                            %message, "the backend accepted the batch but rejected part of it"
                        );
                    }
                    return;
                }
                Some(Outcome::Permanent { error }) => {
                    tracing::error!(exporter = %self.name, %error, spans, "dropping a batch the backend refused");
                    return self.stats.dropped(DropReason::Rejected, spans);
                }
                Some(Outcome::Retryable { error, server_delay }) => (error, server_delay),
            };
            let switched = self.record_failure(endpoint);
            let Some(backoff) = backoff.as_mut() else {
                tracing::error!(exporter = %self.name, %error, spans, "dropping a batch: the attempt failed and retry_on_failure is disabled");
                return self.stats.dropped(DropReason::RetryDisabled, spans);
            };
            // After a switch the next endpoint is tried at once: waiting would only delay a
            // batch that a healthy endpoint can take now.
            let delay = if switched {
                Some(Duration::ZERO)
            } else {
                let mut random = self.random.borrow_mut();
                backoff.next_delay(Instant::now(), server_delay, &mut || random.f64())
            };
            let Some(delay) = delay else {
                tracing::error!(exporter = %self.name, %error, spans, "dropping a batch: retries exhausted (retry_on_failure.max_elapsed_time)");
                return self.stats.dropped(DropReason::RetriesExhausted, spans);
            };
            // Listening before the check: a hand-over that starts in between still wakes the wait.
            let handover = self.handover.listen();
            if self.handing_over.get() {
                return self.handed_back.borrow_mut().push(batch);
            }
            tracing::debug!(exporter = %self.name, %error, ?delay, "export attempt failed; retrying");
            self.stats.retried();
            let waited = self.unless_aborted(futures_lite::future::or(
                async {
                    glommio::timer::sleep(delay).await;
                    true
                },
                async {
                    handover.await;
                    false
                },
            ));
            match waited.await {
                None => return self.stats.dropped(DropReason::Shutdown, spans),
                Some(false) => return self.handed_back.borrow_mut().push(batch),
                Some(true) => {}
            }
        }
    }

    /// Feeds a retryable failure to the failover state; whether it switched endpoints. Every
    /// attempt without a usable answer comes here: a retryable status, a timeout, and every
    /// [`ClientError`] (connection refused or reset, a connection dropped mid-request or
    /// mid-response, a failed TLS or HTTP/2 handshake).
    fn record_failure(&self, endpoint: usize) -> bool {
        let event = self.failover.borrow_mut().on_failure(endpoint, Instant::now());
        let Some(FailoverEvent::SwitchedTo { from, to }) = event else {
            return false;
        };
        self.stats.failed_over();
        tracing::warn!(
            exporter = %self.name, from = %self.pools[from].endpoint(), to = %self.pools[to].endpoint(),
            "endpoint failed repeatedly; failing over"
        );
        self.record_health("endpoint_failures", "failover", Some(self.failover_threshold.clone()), from, to);
        self.failover_changed.notify(usize::MAX);
        true
    }

    /// Writes an endpoint change to the health log, when there is one.
    fn record_health(&self, trigger: &str, action: &str, threshold: Option<String>, from: usize, to: usize) {
        if let Some(health) = &self.health {
            let record = HealthRecord::new(format!("exporters/{}", self.name), trigger, action)
                .before(self.pools[from].endpoint().to_string())
                .after(self.pools[to].endpoint().to_string());
            health.record(match threshold {
                Some(threshold) => record.threshold(threshold),
                None => record,
            });
        }
    }

    /// Probes the primary whenever the failover state asks for it, until the exporter closes.
    async fn probe_primary_while_away(&self) {
        let probe = self.protocol.probe_payload();
        while !self.closing.get() {
            let changed = self.failover_changed.listen();
            let next_probe = self.failover.borrow().next_probe_at();
            let Some(at) = next_probe else {
                changed.await;
                continue;
            };
            let now = Instant::now();
            if now < at {
                futures_lite::future::or(glommio::timer::sleep(at - now), changed).await;
                continue;
            }
            let outcome = self.attempt(0, &probe).await;
            let healthy = matches!(outcome, Outcome::Delivered { .. });
            if let Some(FailoverEvent::ReturnedToPrimary { from }) =
                self.failover.borrow_mut().on_probe(healthy, Instant::now())
            {
                self.stats.failed_back();
                tracing::info!(
                    exporter = %self.name, from = %self.pools[from].endpoint(), to = %self.pools[0].endpoint(),
                    "primary endpoint answered every probe for failover.healthy_for; returning to it"
                );
                self.record_health("primary_healthy", "failback", Some(self.failback_threshold.clone()), from, 0);
            }
        }
    }
}

async fn run_sender<P: Protocol>(inner: Rc<Inner<P>>) {
    while let Some(batch) = inner.next_batch().await {
        inner.deliver(batch).await;
        inner.sender_done_with_batch();
    }
    inner.running_senders.set(inner.running_senders.get() - 1);
    inner.sender_exited.notify(usize::MAX);
}

async fn run_prober<P: Protocol>(inner: Rc<Inner<P>>) {
    // The prober is not a sender: flush does not wait for it, and an in-flight probe is simply
    // cancelled with the task.
    inner.unless_aborted(inner.probe_primary_while_away()).await;
}
