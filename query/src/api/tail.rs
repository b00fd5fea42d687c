//! `GET /loki/api/v1/tail`: Loki's live tail over a websocket (Grafana Explore's "Live" mode,
//! `logcli query --tail`).
//!
//! Loki's querier tails its ingesters, which see every push. A sluice replica sees only its own
//! pushes, so a tail reads ClickHouse instead: on connect it sends the newest `limit` entries since
//! `start` (oldest first, as Loki does), then polls every [`POLL_INTERVAL`] for entries of the
//! last `query.tail_lookback_secs` it has not sent yet, with the query's filters and parsers
//! applied. So a tail on one replica sees what any replica writes to the same ClickHouse, once,
//! about a second after it is stored; an entry stored later than the look-back after its own
//! timestamp is missed (Loki's tail would send it).
//!
//! Messages are Loki's: `{"streams":[{"stream":{...},"values":[["<ns>","<line>"],...]}]}` with
//! structured metadata and parsed labels among the stream labels (or categorised with
//! `X-Loki-Response-Encoding-Flags: categorize-labels`). Nothing is ever dropped, so
//! `dropped_entries` is never sent. As in Loki, a tail may be open at most
//! `query.max_tails_per_tenant` times per tenant on one replica, and is closed after
//! `query.tail_max_duration_secs`; failures close it with code 1011 and the reason.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use store::time::now_nanos;

use super::{QueryState, SECOND, categorize, params, respond, stream_groups, tenant};
use crate::engine::{LogEntry, QueryStats};
use crate::logql::ast::{Expr, LogExpr};
use crate::logql::parse;
use crate::logql::sql::{Direction, TimeRange};
use crate::{Error, Result};

/// How often a tail looks for new entries.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Loki's bound on `delay_for`, in seconds.
const MAX_DELAY_FOR: i64 = 5;

/// Polls in a row that may fail (ClickHouse down) before the tail is closed.
const MAX_FAILED_POLLS: u32 = 10;

/// A parsed tail request.
struct TailRequest {
    tenant: String,
    log: LogExpr,
    limit: usize,
    start: i64,
    delay_for: i64,
    categorized: bool,
}

impl TailRequest {
    /// Reads the parameters as Loki's `ParseTailQuery` does: `query` (a log query), `limit`
    /// (100), `start` (an hour ago), `delay_for` (0 to 5 seconds).
    fn parse(state: &QueryState, query: Option<String>, headers: &HeaderMap) -> Result<Self> {
        let p = params(query, headers, &Default::default());
        let tenant = tenant(state, headers)?;
        let log = match parse(p.required("query")?)? {
            Expr::Log(l) => l,
            Expr::Metric(_) => {
                return Err(Error::BadRequest(
                    "only log queries can be tailed, not metric queries".into(),
                ));
            }
        };
        let limit = p.limit("limit", 100)? as usize;
        let max = state.engine.config().max_entries_limit;
        if limit > max {
            return Err(Error::BadRequest(format!(
                "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {max})"
            )));
        }
        let now = now_nanos();
        let start = p.time("start", now - 3600 * SECOND)?;
        let delay_for = p.number("delay_for", 0)? as i64;
        if delay_for > MAX_DELAY_FOR {
            return Err(Error::BadRequest(format!(
                "delay_for can't be greater than {MAX_DELAY_FOR}"
            )));
        }
        Ok(TailRequest {
            tenant,
            log,
            limit,
            start,
            delay_for,
            categorized: categorize(headers),
        })
    }
}

/// Open tails per tenant, bounded by `query.max_tails_per_tenant`.
#[derive(Debug, Default)]
pub struct Tails {
    open: Mutex<HashMap<String, usize>>,
}

impl Tails {
    /// Tails open now, all tenants.
    pub fn active(&self) -> usize {
        self.open.lock().expect("tails lock").values().sum()
    }

    /// Counts one more tail of `tenant`, or says why not (Loki's message).
    fn open(self: &Arc<Self>, tenant: &str, max: usize) -> Result<TailSlot> {
        let mut open = self.open.lock().expect("tails lock");
        let n = open.entry(tenant.to_owned()).or_default();
        if *n >= max {
            return Err(Error::BadRequest(format!(
                "max concurrent tail requests limit exceeded, count > limit ({} > {max})",
                *n + 1
            )));
        }
        *n += 1;
        Ok(TailSlot {
            tails: self.clone(),
            tenant: tenant.to_owned(),
        })
    }
}

/// One open tail; closing it (dropping) frees its place.
struct TailSlot {
    tails: Arc<Tails>,
    tenant: String,
}

impl Drop for TailSlot {
    fn drop(&mut self) {
        let mut open = self.tails.open.lock().expect("tails lock");
        if let Some(n) = open.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

/// The handler: bad parameters are a `400` before the upgrade, as in Loki; everything after is
/// said on the websocket.
pub(super) async fn tail(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: std::result::Result<
        WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Response {
    let req = match TailRequest::parse(&state, q, &headers) {
        Ok(r) => r,
        Err(e) => return respond(&state, Err(e)),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    ws.on_upgrade(move |socket| async move {
        let mut socket = socket;
        let slot = state
            .tails
            .open(&req.tenant, state.engine.config().max_tails_per_tenant);
        let outcome = match slot {
            Ok(_slot) => run(&state, &req, &mut socket).await,
            Err(e) => Err(e),
        };
        let frame = match outcome {
            Ok(()) => CloseFrame {
                code: close_code::NORMAL,
                reason: "".into(),
            },
            Err(e) => CloseFrame {
                code: close_code::ERROR,
                reason: e.to_string().into(),
            },
        };
        // The peer may be gone already.
        let _ = socket.send(Message::Close(Some(frame))).await;
    })
}

/// Entries already sent whose time is still inside the look-back, so a poll sends each once.
#[derive(Default)]
struct Sent {
    keys: BTreeSet<(i64, u64)>,
}

impl Sent {
    fn key(e: &LogEntry) -> (i64, u64) {
        let mut h = std::hash::DefaultHasher::new();
        e.stream.hash(&mut h);
        e.metadata.hash(&mut h);
        e.parsed.hash(&mut h);
        e.line.hash(&mut h);
        (e.timestamp, h.finish())
    }

    /// True the first time `e` is seen.
    fn insert(&mut self, e: &LogEntry) -> bool {
        self.keys.insert(Self::key(e))
    }

    /// Forgets the entries before `low`.
    fn forget_before(&mut self, low: i64) {
        self.keys = self.keys.split_off(&(low, 0));
    }
}

async fn run(state: &QueryState, req: &TailRequest, socket: &mut WebSocket) -> Result<()> {
    let config = state.engine.config();
    let lookback = config.tail_lookback_secs as i64 * SECOND;
    let max_duration = Duration::from_secs(config.tail_max_duration_secs);
    let per_poll = config.max_entries_limit;
    let opened = Instant::now();
    let stats = QueryStats::default();

    // The newest `limit` entries since `start`, sent oldest first.
    let connected = now_nanos();
    let mut history = state
        .engine
        .log_query(
            &req.tenant,
            &req.log,
            TimeRange {
                start: req.start,
                end: connected - req.delay_for * SECOND + 1,
            },
            Direction::Backward,
            req.limit,
            &stats,
        )
        .await?;
    history.reverse();
    let mut sent = Sent::default();
    for e in &history {
        sent.insert(e);
    }
    // History cut by the limit: what it left out stays out, live entries start now.
    let floor = if history.len() >= req.limit {
        connected
    } else {
        req.start
    };
    send(socket, &history, req.categorized).await?;

    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut failed = 0;
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => continue,
            },
            _ = ticker.tick() => {}
        }
        if opened.elapsed() >= max_duration {
            return Ok(());
        }
        let now = now_nanos();
        let low = floor.max(now - lookback);
        let high = now - req.delay_for * SECOND + 1;
        sent.forget_before(low);
        let fetched = state
            .engine
            .log_query(
                &req.tenant,
                &req.log,
                TimeRange {
                    start: low,
                    end: high,
                },
                Direction::Forward,
                per_poll + sent.keys.len(),
                &stats,
            )
            .await;
        let entries = match fetched {
            Ok(entries) => {
                failed = 0;
                entries
            }
            Err(e) => {
                failed += 1;
                tracing::warn!(error = %e, tenant = %req.tenant, "tail poll failed");
                if failed >= MAX_FAILED_POLLS {
                    return Err(e);
                }
                continue;
            }
        };
        let new: Vec<LogEntry> = entries
            .into_iter()
            .filter(|e| sent.insert(e))
            .take(per_poll)
            .collect();
        if new.is_empty() {
            // Keeps proxies from closing an idle connection, and finds a dead peer.
            socket
                .send(Message::Ping(Default::default()))
                .await
                .map_err(|_| Error::BadRequest("the client went away".into()))?;
        } else {
            send(socket, &new, req.categorized).await?;
        }
    }
}

/// Sends one message of entries; nothing for none.
async fn send(socket: &mut WebSocket, entries: &[LogEntry], categorized: bool) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let message = json!({ "streams": stream_groups(entries, categorized) });
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .map_err(|_| Error::BadRequest("the client went away".into()))
}
