//! Stopping a core's receiver: a signal every connection watches, and a count of the
//! connections still open so that shutdown can wait for them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A one-shot signal on one core: once triggered, every [`ShutdownWait`] completes.
#[derive(Debug, Default)]
pub(crate) struct ShutdownSignal {
    triggered: Cell<bool>,
    next_key: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
}

impl ShutdownSignal {
    pub(crate) fn trigger(&self) {
        self.triggered.set(true);
        for (_, waker) in self.waiters.borrow_mut().drain() {
            waker.wake();
        }
    }

    pub(crate) fn is_triggered(&self) -> bool {
        self.triggered.get()
    }

    /// A future that completes when the signal is triggered.
    pub(crate) fn wait(self: &Rc<Self>) -> ShutdownWait {
        ShutdownWait { signal: Rc::clone(self), key: None }
    }
}

/// Completes when its [`ShutdownSignal`] is triggered; polling it again and again keeps one
/// registered waker, not one per poll.
#[derive(Debug)]
pub(crate) struct ShutdownWait {
    signal: Rc<ShutdownSignal>,
    key: Option<u64>,
}

impl Future for ShutdownWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.is_triggered() {
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                let key = self.signal.next_key.get();
                self.signal.next_key.set(key + 1);
                self.key = Some(key);
                key
            }
        };
        let mut waiters = self.signal.waiters.borrow_mut();
        match waiters.get_mut(&key) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                waiters.insert(key, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for ShutdownWait {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.signal.waiters.borrow_mut().remove(&key);
        }
    }
}

/// Counts open connections; [`ConnectionTracker::all_closed`] completes when none are left.
#[derive(Debug, Default)]
pub(crate) struct ConnectionTracker {
    open: Cell<usize>,
    drained: RefCell<Option<Waker>>,
}

impl ConnectionTracker {
    /// Registers a connection until the guard is dropped.
    pub(crate) fn enter(self: &Rc<Self>) -> ConnectionGuard {
        self.open.set(self.open.get() + 1);
        ConnectionGuard { tracker: Rc::clone(self) }
    }

    pub(crate) fn open(&self) -> usize {
        self.open.get()
    }

    /// Completes once no connection is open.
    pub(crate) async fn all_closed(&self) {
        std::future::poll_fn(|cx| {
            if self.open.get() == 0 {
                return Poll::Ready(());
            }
            *self.drained.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

/// One open connection; dropping it closes the count.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    tracker: Rc<ConnectionTracker>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let open = self.tracker.open.get().saturating_sub(1);
        self.tracker.open.set(open);
        if open == 0 {
            if let Some(waker) = self.tracker.drained.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}
