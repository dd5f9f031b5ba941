//! The HTTP endpoints: request and response shapes, checks, and the calls into [`ServedRun`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::served::{ServedRun, Who};
use crate::{AppState, Runs};

/// An error answer: a status and a message, as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

/// The body as `T`: malformed JSON is a 400 naming the line and column.
fn parse<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_data() {
            "invalid request"
        } else {
            "malformed JSON"
        };
        ApiError::bad(format!(
            "{what} at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// Runs `f` on the blocking pool (model calls are CPU work); a panic in it is a 500 and the
/// server goes on.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request failed inside the server: {e}"),
        ))
    })
}

/// A raw id as JSON writes it: a string or a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawId {
    Text(String),
    Number(u64),
}

impl RawId {
    fn text(&self) -> String {
        match self {
            RawId::Text(s) => s.clone(),
            RawId::Number(n) => n.to_string(),
        }
    }
}

fn run_named(runs: &Runs, name: Option<&str>) -> ApiResult<Arc<ServedRun>> {
    match name {
        None => Ok(runs.list[0].clone()),
        Some(n) => runs
            .list
            .iter()
            .find(|r| r.name == n)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = runs.list.iter().map(|r| r.name.as_str()).collect();
                ApiError::not_found(format!("unknown model {n:?}: serving {}", names.join(", ")))
            }),
    }
}

fn check_k(k: Option<i64>, max_k: usize) -> ApiResult<usize> {
    let k = k.unwrap_or(10);
    if k <= 0 {
        return Err(ApiError::bad(format!("k must be at least 1, got {k}")));
    }
    if k as u64 > max_k as u64 {
        return Err(ApiError::bad(format!("k {k} is above the limit {max_k}")));
    }
    Ok(k as usize)
}

fn item_index(run: &ServedRun, raw: &RawId) -> ApiResult<u32> {
    let raw = raw.text();
    run.run
        .ids
        .item(&raw)
        .map_err(|_| ApiError::not_found(format!("unknown item {raw:?}")))
}

fn item_json(run: &ServedRun, rank: usize, (i, s): (u32, f32), key: &str) -> Value {
    json!({"rank": rank + 1, "item": run.run.ids.items.raw_id(i), "title": run.dataset.title(i), key: s})
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> Json<Value> {
    let runs = state.runs.load();
    Json(json!({"ready": true, "models": runs.list.len()}))
}

pub async fn models(State(state): State<Arc<AppState>>) -> Json<Value> {
    let runs = state.runs.load();
    let list: Vec<Value> = runs.list.iter().map(|r| r.describe()).collect();
    Json(json!({"models": list}))
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

pub async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// One rating of a new user's history: an item by id or by exact title.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rated {
    item: Option<RawId>,
    title: Option<String>,
    rating: f32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendRequest {
    model: Option<String>,
    user: Option<RawId>,
    /// The batch form: many users, one answer each.
    users: Option<Vec<RawId>>,
    k: Option<i64>,
    #[serde(default)]
    exclude_seen: bool,
    #[serde(default)]
    exclude: Vec<RawId>,
    #[serde(default)]
    history: Vec<Rated>,
    /// Answer an unknown user without history with the most popular items instead of a 404.
    #[serde(default)]
    fallback: bool,
    /// How many of the user's highest-rated training items to list (default 0).
    #[serde(default)]
    top_rated: usize,
}

pub async fn recommend(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let req: RecommendRequest = parse(&body)?;
    let run = run_named(&state.runs.load(), req.model.as_deref())?;
    let k = check_k(req.k, state.limits.max_k)?;
    let max_batch = state.limits.max_batch;
    blocking(move || {
        let mut exclude: Vec<u32> = req
            .exclude
            .iter()
            .map(|r| item_index(&run, r))
            .collect::<ApiResult<_>>()?;
        exclude.sort_unstable();
        let history = history_of(&run, &req.history)?;
        match (&req.user, &req.users) {
            (Some(_), Some(_)) => Err(ApiError::bad("give user or users, not both")),
            (_, Some(users)) => {
                if users.len() > max_batch {
                    return Err(ApiError::bad(format!(
                        "too many users: {} (limit {max_batch})",
                        users.len()
                    )));
                }
                let results = users
                    .iter()
                    .map(|u| one_user(&run, Some(u), &req, k, &exclude, &history))
                    .collect::<ApiResult<Vec<Value>>>()?;
                Ok(Json(json!({"model": run.name, "k": k, "results": results})))
            }
            (user, None) => {
                if user.is_none() && history.is_empty() && !req.fallback {
                    return Err(ApiError::bad("give a user, users, or a history"));
                }
                one_user(&run, user.as_ref(), &req, k, &exclude, &history).map(Json)
            }
        }
    })
    .await
}

/// A history's items as dense indices with their ratings, checked against the scale.
fn history_of(run: &ServedRun, history: &[Rated]) -> ApiResult<Vec<(u32, f32)>> {
    let [lo, hi] = run.run.config.rating_scale;
    history
        .iter()
        .enumerate()
        .map(|(n, h)| {
            let item = match (&h.item, &h.title) {
                (Some(raw), _) => item_index(run, raw)?,
                (None, Some(t)) => run
                    .dataset
                    .item_by_title(t)
                    .map_err(|_| ApiError::not_found(format!("unknown title {t:?}")))?,
                (None, None) => {
                    return Err(ApiError::bad(format!(
                        "history[{n}] names no item or title"
                    )));
                }
            };
            if !(h.rating.is_finite() && (lo..=hi).contains(&h.rating)) {
                return Err(ApiError::bad(format!(
                    "history[{n}]: rating {} is outside the scale {lo}..{hi}",
                    h.rating
                )));
            }
            Ok((item, h.rating))
        })
        .collect()
}

fn one_user(
    run: &ServedRun,
    user: Option<&RawId>,
    req: &RecommendRequest,
    k: usize,
    exclude: &[u32],
    history: &[(u32, f32)],
) -> ApiResult<Value> {
    let raw = user.map(RawId::text);
    let known = raw.as_deref().and_then(|r| run.run.ids.user(r).ok());
    let mut skip: Vec<u32> = exclude.to_vec();
    if req.exclude_seen {
        match known {
            Some(u) => skip.extend_from_slice(run.seen(u)),
            None => skip.extend(history.iter().map(|h| h.0)),
        }
    }
    skip.sort_unstable();
    skip.dedup();
    let k = k.min(run.n_items());
    let mut out = json!({"user": raw, "model": run.name, "k": k});
    let list = match known {
        Some(u) => {
            out["top_rated"] = run
                .top_rated(u, req.top_rated)
                .into_iter()
                .map(|(i, r)| json!({"item": run.run.ids.items.raw_id(i), "title": run.dataset.title(i), "rating": r}))
                .collect();
            run.recommend(Who::Known(u), k, &skip)
        }
        None if !history.is_empty() => match run.recommend_new(history, k, &skip) {
            Some(list) => {
                out["folded_in"] = json!(history.len());
                list
            }
            None => {
                out["fallback"] = json!("popular");
                out["reason"] = json!(format!(
                    "model {} cannot fold new users in",
                    run.run.config.model.name()
                ));
                run.popular(k, &skip)
            }
        },
        None if req.fallback => {
            out["fallback"] = json!("popular");
            run.popular(k, &skip)
        }
        None => {
            return Err(ApiError::not_found(format!(
                "unknown user {:?} (send a history, or \"fallback\": true for popular items)",
                raw.unwrap_or_default()
            )));
        }
    };
    out["recommendations"] = list
        .into_iter()
        .enumerate()
        .map(|(r, s)| item_json(run, r, s, "score"))
        .collect();
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarRequest {
    model: Option<String>,
    item: Option<RawId>,
    title: Option<String>,
    k: Option<i64>,
}

pub async fn similar(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let req: SimilarRequest = parse(&body)?;
    let run = run_named(&state.runs.load(), req.model.as_deref())?;
    let k = check_k(req.k, state.limits.max_k)?;
    blocking(move || {
        let item = match (&req.item, &req.title) {
            (Some(raw), _) => item_index(&run, raw)?,
            (None, Some(t)) => run
                .dataset
                .item_by_title(t)
                .map_err(|_| ApiError::not_found(format!("unknown title {t:?}")))?,
            (None, None) => return Err(ApiError::bad("give an item or a title")),
        };
        let k = k.min(run.n_items().saturating_sub(1));
        let list = run.similar(item, k).ok_or_else(|| {
            ApiError::bad(format!(
                "model {} learns no item vectors to compare",
                run.run.config.model.name()
            ))
        })?;
        let sims: Vec<Value> = list
            .into_iter()
            .enumerate()
            .map(|(r, s)| item_json(&run, r, s, "similarity"))
            .collect();
        Ok(Json(
            json!({"model": run.name, "item": run.run.ids.items.raw_id(item),
                       "title": run.dataset.title(item), "k": k, "similar": sims}),
        ))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    model: Option<String>,
    pairs: Vec<(RawId, RawId)>,
}

pub async fn score(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let req: ScoreRequest = parse(&body)?;
    let run = run_named(&state.runs.load(), req.model.as_deref())?;
    let max = state.limits.max_pairs;
    if req.pairs.len() > max {
        return Err(ApiError::bad(format!(
            "too many pairs: {} (limit {max})",
            req.pairs.len()
        )));
    }
    blocking(move || {
        let mut users = Vec::with_capacity(req.pairs.len());
        let mut items = Vec::with_capacity(req.pairs.len());
        for (u, i) in &req.pairs {
            let raw = u.text();
            users.push(
                run.run
                    .ids
                    .user(&raw)
                    .map_err(|_| ApiError::not_found(format!("unknown user {raw:?}")))?,
            );
            items.push(item_index(&run, i)?);
        }
        let scores = run.run.score(&users, &items);
        Ok(Json(json!({"model": run.name, "scores": scores})))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    model: Option<String>,
    /// Case-insensitive part of a title.
    q: Option<String>,
    n: Option<usize>,
}

/// Users of a run (the first `n`), for the page's picker.
pub async fn users(State(state): State<Arc<AppState>>, Query(q): Query<ListQuery>) -> ApiResult {
    let run = run_named(&state.runs.load(), q.model.as_deref())?;
    let n = q.n.unwrap_or(50).min(state.limits.max_k);
    let ids: Vec<&str> = run
        .run
        .ids
        .users
        .raw_ids()
        .iter()
        .take(n)
        .map(String::as_str)
        .collect();
    Ok(Json(json!({"model": run.name, "users": ids})))
}

/// Items whose title contains `q`, for the page's title search.
pub async fn items(State(state): State<Arc<AppState>>, Query(q): Query<ListQuery>) -> ApiResult {
    let run = run_named(&state.runs.load(), q.model.as_deref())?;
    let n = q.n.unwrap_or(20).min(state.limits.max_k);
    let needle = q.q.unwrap_or_default().to_lowercase();
    let found: Vec<Value> = (0..run.n_items() as u32)
        .filter_map(|i| {
            let t = run.dataset.title(i)?;
            t.to_lowercase()
                .contains(&needle)
                .then(|| json!({"item": run.run.ids.items.raw_id(i), "title": t}))
        })
        .take(n)
        .collect();
    Ok(Json(json!({"model": run.name, "items": found})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    /// Which served model (default: the first).
    model: Option<String>,
    /// Another run directory to serve under that name (default: the same directory again).
    run: Option<PathBuf>,
}

/// Loads a run anew and swaps it in atomically; requests in flight finish on the old one. A run
/// that fails to load leaves the old one serving. Loopback clients only, or any client with the
/// bearer token of `RECSYS_ADMIN_TOKEN` when that is set.
pub async fn reload(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    match &state.admin_token {
        Some(token) => {
            let given = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if given != Some(token.as_str()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "reload needs the admin token (Authorization: Bearer ...)",
                ));
            }
        }
        None if !peer.ip().is_loopback() => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "reload is open to loopback clients only (set RECSYS_ADMIN_TOKEN to allow others)",
            ));
        }
        None => {}
    }
    let req: ReloadRequest = if body.is_empty() {
        ReloadRequest::default()
    } else {
        parse(&body)?
    };
    let old = run_named(&state.runs.load(), req.model.as_deref())?;
    let name = old.name.clone();
    let dir = req.run.unwrap_or_else(|| old.dir.clone());
    let options = state.load.clone();
    let started = std::time::Instant::now();
    let loaded = {
        let (name, dir) = (name.clone(), dir.clone());
        blocking(move || {
            ServedRun::load(&name, &dir, &options).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "{}: cannot load, still serving the old run: {e}",
                        dir.display()
                    ),
                )
            })
        })
        .await?
    };
    let new = Arc::new(loaded);
    let description = new.describe();
    // Swap under the lock of reloads, so two reloads do not lose one another's run.
    let _one = state.reloading.lock().await;
    let current = state.runs.load_full();
    let list = current
        .list
        .iter()
        .map(|r| {
            if r.name == name {
                new.clone()
            } else {
                r.clone()
            }
        })
        .collect();
    state.runs.store(Arc::new(Runs { list }));
    Ok(Json(
        json!({"reloaded": name, "run_dir": dir.display().to_string(),
                   "seconds": started.elapsed().as_secs_f64(), "model": description}),
    ))
}
