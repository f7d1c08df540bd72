//! Bounding a future by a point in time.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Instant;

use glommio::timer::Timer;

/// The deadline passed before the future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct DeadlineElapsed;

/// Runs `future` until it completes or `deadline` passes, whichever comes first; the future is
/// dropped at the deadline. `None` means no deadline. Must run on a glommio executor.
///
/// # Errors
/// [`DeadlineElapsed`] when the deadline came first.
pub async fn with_deadline<F: Future>(deadline: Option<Instant>, future: F) -> Result<F::Output, DeadlineElapsed> {
    let Some(deadline) = deadline else {
        return Ok(future.await);
    };
    let mut future = pin!(future);
    let mut timer = pin!(Timer::new(deadline.saturating_duration_since(Instant::now())));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        timer.as_mut().poll(cx).map(|_| Err(DeadlineElapsed))
    })
    .await
}
