//! Request bodies must keep coming: the body of a request that has sent its head gets
//! `body_read_timeout`, plus a second for every `body_min_rate` bytes it delivers. A body that
//! stalls or trickles past that ends with [`TooSlow`], which the handler answers 408, and the
//! socket is closed (its body was not read to the end). Without it, a client could hold a
//! socket for ever by sending its body a byte a minute, as a slowloris does with its head
//! (which hyper's header-read timeout covers). The same rule as Apache's `mod_reqtimeout`
//! (`body=20,MinRate=500`), so a big import on a slow link is not cut off.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::state::AppState;

/// How slow a body may be: see the module's comment.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub grace: Duration,
    /// Bytes per second that earn the body another second (at least 1).
    pub min_rate: u64,
}

/// The request body came slower than its [`Pace`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body came slower than {} bytes/s after the first {} s", .0.min_rate, .0.grace.as_secs_f64())]
pub struct TooSlow(pub Pace);

/// The middleware: every request's body, paced.
pub async fn paced(State(app): State<AppState>, request: Request) -> Request {
    let config = &app.shared.config;
    let pace = Pace { grace: config.body_read_timeout, min_rate: config.body_min_rate.max(1) };
    request.map(|body| Body::new(Paced::new(body, pace)))
}

/// A body with a deadline that moves on as its bytes arrive.
struct Paced {
    body: Body,
    pace: Pace,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
}

impl Paced {
    fn new(body: Body, pace: Pace) -> Paced {
        let started = Instant::now();
        Paced { body, pace, started, received: 0, deadline: Box::pin(tokio::time::sleep(pace.grace)) }
    }
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            if let Some(data) = frame.as_ref().and_then(|f| f.as_ref().ok()?.data_ref()) {
                this.received += data.len() as u64;
                let earned = Duration::from_secs_f64(this.received as f64 / this.pace.min_rate as f64);
                this.deadline.as_mut().reset(this.started + this.pace.grace + earned);
            }
            return Poll::Ready(frame);
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Some(Err(axum::Error::new(TooSlow(this.pace)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The [`TooSlow`] behind `error` (a body's rejection), if a slow body caused it.
pub fn too_slow(error: &(dyn std::error::Error + 'static)) -> Option<TooSlow> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(slow) = error.downcast_ref::<TooSlow>() {
            return Some(*slow);
        }
        next = error.source();
    }
    None
}
