//! # recsys-serve
//!
//! Trained runs behind HTTP: `recsys serve`. One process serves one or more run directories,
//! each loaded through [`recsys_train::load_run`] (the one scoring path); factorised models answer
//! top-K on the host from their retrieval vectors (exact, or through the run's approximate index),
//! other models on their device. Endpoints:
//!
//! - `GET /healthz`, `GET /readyz`, `GET /v1/models`, `GET /metrics` (Prometheus text);
//! - `POST /v1/recommend` (one user, a batch of users, or a new user's history: fold-in or a
//!   popularity fallback), `POST /v1/similar`, `POST /v1/score`;
//! - `GET /v1/users`, `GET /v1/items?q=` and the page at `/`;
//! - `POST /admin/reload` (loopback, or the token of `RECSYS_ADMIN_TOKEN`).

mod api;
pub mod error;
pub mod metrics;
pub mod served;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

pub use error::ServeError;
pub use served::{LoadOptions, ServedRun};

/// The environment variable whose value, when set, is the bearer token `/admin/reload` asks for.
pub const ADMIN_TOKEN_ENV: &str = "RECSYS_ADMIN_TOKEN";

/// Bounds on what one request may ask.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_k: usize,
    pub max_pairs: usize,
    pub max_batch: usize,
    /// Request bodies above this many bytes are refused (413).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_k: 1000,
            max_pairs: 10_000,
            max_batch: 1000,
            max_body: 1 << 20,
        }
    }
}

/// What `recsys serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `(name, run directory)`; the first is the default model.
    pub runs: Vec<(String, PathBuf)>,
    pub addr: String,
    pub load: LoadOptions,
    pub limits: Limits,
    pub admin_token: Option<String>,
}

/// The served runs; swapped whole on reload.
pub(crate) struct Runs {
    pub(crate) list: Vec<Arc<ServedRun>>,
}

pub(crate) struct AppState {
    pub(crate) runs: ArcSwap<Runs>,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) limits: Limits,
    pub(crate) load: LoadOptions,
    pub(crate) admin_token: Option<String>,
    pub(crate) reloading: tokio::sync::Mutex<()>,
}

/// Loads every run of `config` (in order; the first error names its run).
pub fn load_runs(config: &ServeConfig) -> Result<Vec<Arc<ServedRun>>, ServeError> {
    if config.runs.is_empty() {
        return Err(ServeError::Config("no run to serve (--run DIR)".into()));
    }
    let mut list: Vec<Arc<ServedRun>> = Vec::new();
    for (name, dir) in &config.runs {
        if list.iter().any(|r| &r.name == name) {
            return Err(ServeError::Config(format!("two runs are named {name:?}")));
        }
        list.push(Arc::new(ServedRun::load(name, dir, &config.load)?));
    }
    Ok(list)
}

/// The application: every route over the loaded runs.
pub fn router(config: &ServeConfig, runs: Vec<Arc<ServedRun>>) -> Router {
    let state = Arc::new(AppState {
        runs: ArcSwap::from_pointee(Runs { list: runs }),
        metrics: metrics::Metrics::default(),
        limits: config.limits,
        load: config.load.clone(),
        admin_token: config.admin_token.clone(),
        reloading: tokio::sync::Mutex::new(()),
    });
    Router::new()
        .route("/", get(api::page))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/v1/models", get(api::models))
        .route("/v1/users", get(api::users))
        .route("/v1/items", get(api::items))
        .route("/v1/recommend", post(api::recommend))
        .route("/v1/similar", post(api::similar))
        .route("/v1/score", post(api::score))
        .route("/admin/reload", post(api::reload))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .layer(DefaultBodyLimit::max(config.limits.max_body))
        .with_state(state)
}

/// Counts and times every request by its route.
async fn record(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    state
        .metrics
        .record(&endpoint, response.status().as_u16(), started.elapsed());
    response
}

/// A bound server: its address, and the future that serves until `shutdown` resolves (then
/// finishes the requests in flight).
pub async fn bind(
    config: &ServeConfig,
    runs: Vec<Arc<ServedRun>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = std::io::Result<()>>), ServeError> {
    let listener = tokio::net::TcpListener::bind(&config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr.clone(),
            source,
        })?;
    let addr = listener.local_addr()?;
    let app = router(config, runs).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    Ok((addr, async move { server.await }))
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ServeError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Serves `config` until SIGTERM or Ctrl-C, calling `ready` with the bound address once the
/// runs are loaded and the port is open.
pub fn serve_blocking(
    config: &ServeConfig,
    ready: impl FnOnce(SocketAddr, &[Arc<ServedRun>]),
) -> Result<(), ServeError> {
    let runs = load_runs(config)?;
    let rt = runtime()?;
    rt.block_on(async {
        let (addr, server) = bind(config, runs.clone(), shutdown_signal()).await?;
        ready(addr, &runs);
        drop(runs);
        server.await?;
        Ok(())
    })
}

/// A server running on a thread of its own (tests, benchmarks); stops when dropped.
pub struct Spawned {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl Spawned {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Asks the server to stop and waits until the requests in flight are answered.
    pub fn stop(mut self) -> Result<(), ServeError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), ServeError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(ServeError::Config("the server thread panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Loads the runs of `config` and serves them on a thread of its own.
pub fn spawn(config: &ServeConfig) -> Result<Spawned, ServeError> {
    let runs = load_runs(config)?;
    spawn_runs(config, runs)
}

/// [`spawn`] with runs already loaded.
pub fn spawn_runs(config: &ServeConfig, runs: Vec<Arc<ServedRun>>) -> Result<Spawned, ServeError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let config = config.clone();
    let thread = std::thread::spawn(move || {
        let rt = runtime()?;
        rt.block_on(async move {
            let bound = bind(&config, runs, async {
                let _ = stopped.await;
            })
            .await;
            match bound {
                Ok((addr, server)) => {
                    let _ = tx.send(Ok(addr));
                    server.await?;
                    Ok(())
                }
                Err(e) => {
                    let msg = e.to_string();
                    let _ = tx.send(Err(e));
                    Err(ServeError::Config(msg))
                }
            }
        })
    });
    let addr = rx
        .recv()
        .map_err(|_| ServeError::Config("the server thread ended before binding".into()))??;
    Ok(Spawned {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}
