//! Accepting connections, with bounds a slow or idle client cannot exhaust: at most
//! `max_connections` open at once (more wait in the kernel's listen backlog), a TLS
//! handshake and a request's headers must arrive within `header_timeout`, and a
//! connection waiting for its next request is closed after `idle_timeout`. (The body's
//! timeout is applied where the body is read.)
//!
//! Each connection moves through phases: waiting for a request (no byte of it yet),
//! reading a request's head (since its first byte), busy (head complete: the request is
//! being read, run and answered). Only the first two have a deadline; a busy connection
//! is bounded by the body timeout and the query timeout instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::config::ServerConfig;

/// The connection bounds, from [`ServerConfig`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    pub(crate) max_connections: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

impl ConnLimits {
    pub(crate) fn new(config: &ServerConfig) -> ConnLimits {
        ConnLimits {
            max_connections: config.max_connections.max(1),
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
        }
    }
}

/// Where a connection is in its request cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the next request since this instant; no byte of it has arrived.
    Waiting(Instant),
    /// The first byte of a request's head arrived at this instant.
    Head(Instant),
    /// The head is complete; the request is being handled.
    Busy,
}

/// The phase of one connection, shared by its stream, its service and its watchdog.
struct Activity(watch::Sender<Phase>);

impl Activity {
    fn set(&self, phase: Phase) {
        self.0.send_if_modified(|p| {
            let changed = *p != phase;
            *p = phase;
            changed
        });
    }

    /// Bytes arrived: a request's head starts if the connection was waiting.
    fn bytes_arrived(&self) {
        self.0.send_if_modified(|p| match *p {
            Phase::Waiting(_) => {
                *p = Phase::Head(Instant::now());
                true
            }
            _ => false,
        });
    }
}

/// A stream that reports arriving bytes to its connection's [`Activity`].
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let out = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(out, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        out
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves `app` on `listener` (through `tls` when given) until `shutdown` completes,
/// then lets the open connections finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut full_logged = false;
    loop {
        if slots.available_permits() == 0 && !full_logged {
            tracing::warn!(
                max_connections = limits.max_connections,
                "connection limit reached: new connections wait until one closes"
            );
        }
        full_logged = slots.available_permits() == 0;
        let mut stopped = stopping.clone();
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => p.expect("the semaphore is never closed"),
            () = stop_requested(&mut stopped) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop_requested(&mut stopped) => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(stream, peer, app, limits, stopping).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => connection(stream, peer, app, limits, stopping).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    // Every connection holds a slot: all slots free means all connections are done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Completes once shutdown is requested. (Awaiting `wait_for` directly would keep its
/// non-`Send` guard in the select's output.)
async fn stop_requested(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// Serves one connection until it ends, times out, or (on shutdown) finishes its request.
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (phase_tx, mut phase) = watch::channel(Phase::Waiting(Instant::now()));
    let activity = Arc::new(Activity(phase_tx));
    let io = Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    };
    let service_activity = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let activity = Arc::clone(&service_activity);
        activity.set(Phase::Busy);
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await;
            activity.set(Phase::Waiting(Instant::now()));
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The phases below replace hyper's header timeout, which also runs while idle.
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = match *phase.borrow_and_update() {
            Phase::Waiting(since) => Some((since + limits.idle_timeout, "idle")),
            Phase::Head(since) => Some((since + limits.header_timeout, "headers")),
            Phase::Busy => None,
        };
        let expired = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = phase.changed() => {}
            () = expired => {
                if phase.has_changed().unwrap_or(false) {
                    // It moved on just as the deadline came: judge the new phase.
                    continue;
                }
                let what = deadline.map_or("", |(_, w)| w);
                tracing::debug!(%peer, waiting_for = what, "closing a connection that sent no complete request in time");
                // Dropping the connection closes the socket; no request is in progress.
                return;
            }
            () = stop_requested(&mut stopping), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
