//! hyper's timer on glommio.
//!
//! hyper wants `Send + Sync` sleeps; glommio's timers live in the executor's reactor and are
//! neither. A [`GlommioSleep`] therefore keeps its deadline and wakers in a small mutex-guarded
//! state, and the first poll spawns a *driver* task on the polling thread's glommio executor that
//! waits on a real glommio timer and wakes the sleep at the deadline. Resetting the sleep moves
//! the deadline and wakes the driver to re-arm; dropping the sleep wakes the driver to exit, so
//! no task waits for a sleep nobody wants (hyper creates and drops many: one per header read
//! timeout, one per keep-alive interval).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use glommio::timer::Timer;

/// hyper's [`hyper::rt::Timer`] for glommio executors: give it to the HTTP/2 builders (keep-alive
/// pings) and the HTTP/1 server builder (header read timeout).
#[derive(Clone, Copy, Debug, Default)]
pub struct GlommioTimer;

impl GlommioTimer {
    /// The timer.
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

impl hyper::rt::Timer for GlommioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(GlommioSleep::until(Instant::now() + duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(GlommioSleep::until(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<GlommioSleep>() {
            Some(ours) => ours.get_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

#[derive(Debug)]
struct SleepState {
    deadline: Instant,
    /// The task waiting for the sleep.
    sleeper: Option<Waker>,
    /// The driver task, while it waits for the deadline.
    driver: Option<Waker>,
    /// A driver task exists (it clears this when it exits).
    driver_running: bool,
    /// The sleep was dropped: the driver exits.
    dropped: bool,
}

/// A future that completes at a deadline; what [`GlommioTimer`] hands to hyper. `Send + Sync`
/// as hyper requires, but it must be polled on a glommio executor, which runs its driver task.
#[derive(Debug)]
pub struct GlommioSleep {
    state: Arc<Mutex<SleepState>>,
}

fn lock(state: &Mutex<SleepState>) -> MutexGuard<'_, SleepState> {
    // The state holds no invariant a panic could break halfway; keep going with it.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GlommioSleep {
    /// A sleep that completes at `deadline`.
    #[must_use]
    pub fn until(deadline: Instant) -> Self {
        let state = SleepState { deadline, sleeper: None, driver: None, driver_running: false, dropped: false };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// The moment the sleep completes.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        lock(&self.state).deadline
    }

    /// Moves the deadline, earlier or later.
    pub fn reset(&mut self, deadline: Instant) {
        let mut state = lock(&self.state);
        state.deadline = deadline;
        if let Some(driver) = state.driver.take() {
            driver.wake();
        }
    }
}

impl Future for GlommioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.state);
        if Instant::now() >= state.deadline {
            return Poll::Ready(());
        }
        match &mut state.sleeper {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.sleeper = Some(cx.waker().clone()),
        }
        if !state.driver_running {
            state.driver_running = true;
            drop(state);
            glommio::spawn_local(drive(Arc::clone(&self.state))).detach();
        }
        Poll::Pending
    }
}

impl Drop for GlommioSleep {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.dropped = true;
        state.sleeper = None;
        if let Some(driver) = state.driver.take() {
            driver.wake();
        }
    }
}

impl hyper::rt::Sleep for GlommioSleep {}

/// Waits on a glommio timer for the sleep's deadline (following resets) and wakes the sleeper;
/// exits early when the sleep is dropped.
async fn drive(shared: Arc<Mutex<SleepState>>) {
    let mut armed: Option<(Instant, Timer)> = None;
    std::future::poll_fn(|cx| loop {
        let mut state = lock(&shared);
        let now = Instant::now();
        if state.dropped || now >= state.deadline {
            if let Some(sleeper) = state.sleeper.take() {
                sleeper.wake();
            }
            state.driver = None;
            state.driver_running = false;
            return Poll::Ready(());
        }
        state.driver = Some(cx.waker().clone());
        let deadline = state.deadline;
        drop(state);
        if armed.as_ref().is_none_or(|(armed_for, _)| *armed_for != deadline) {
            armed = Some((deadline, Timer::new(deadline - now)));
        }
        let fired = armed.as_mut().is_some_and(|(_, timer)| Pin::new(timer).poll(cx).is_ready());
        if !fired {
            return Poll::Pending;
        }
        // The timer fired: check the deadline again (it may have moved), re-arming if needed.
        armed = None;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutorBuilder;
    use hyper::rt::Timer as _;

    fn on_glommio<F: Future<Output = ()> + 'static>(make: impl FnOnce() -> F + Send + 'static) {
        LocalExecutorBuilder::default().spawn(make).expect("executor starts").join().expect("test body");
    }

    #[test]
    fn sleep_completes_not_before_its_deadline() {
        on_glommio(|| async {
            let start = Instant::now();
            GlommioTimer.sleep(Duration::from_millis(30)).await;
            assert!(start.elapsed() >= Duration::from_millis(30));
        });
    }

    #[test]
    fn reset_moves_the_deadline_later_and_earlier() {
        on_glommio(|| async {
            let start = Instant::now();
            let mut sleep = GlommioTimer.sleep(Duration::from_millis(10));
            GlommioTimer.reset(&mut sleep, start + Duration::from_millis(40));
            sleep.as_mut().await;
            assert!(start.elapsed() >= Duration::from_millis(40));

            let start = Instant::now();
            let mut sleep = GlommioTimer.sleep(Duration::from_secs(3600));
            // Poll once so that the driver is armed for the far deadline, then pull it in.
            assert!(futures_lite::future::poll_once(sleep.as_mut()).await.is_none());
            GlommioTimer.reset(&mut sleep, start + Duration::from_millis(10));
            sleep.as_mut().await;
            assert!(start.elapsed() < Duration::from_secs(3600));
        });
    }

    #[test]
    fn a_completed_sleep_reset_later_sleeps_again() {
        on_glommio(|| async {
            let mut sleep = GlommioTimer.sleep(Duration::from_millis(5));
            sleep.as_mut().await;
            let again = Instant::now();
            GlommioTimer.reset(&mut sleep, again + Duration::from_millis(20));
            sleep.as_mut().await;
            assert!(again.elapsed() >= Duration::from_millis(20));
        });
    }

    #[test]
    fn dropping_a_pending_sleep_ends_its_driver() {
        on_glommio(|| async {
            let mut sleep = GlommioSleep::until(Instant::now() + Duration::from_secs(3600));
            assert!(futures_lite::future::poll_once(&mut sleep).await.is_none());
            let state = Arc::clone(&sleep.state);
            assert!(lock(&state).driver_running);
            drop(sleep);
            // Let the driver run and observe the drop.
            glommio::yield_if_needed().await;
            glommio::timer::sleep(Duration::from_millis(1)).await;
            assert!(!lock(&state).driver_running);
            assert_eq!(Arc::strong_count(&state), 1, "the driver released the state");
        });
    }
}
