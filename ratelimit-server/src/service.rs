//! `ShouldRateLimit`: each descriptor is checked or charged on its own, as envoyproxy/ratelimit
//! does, and gets its own status.
//!
//! - Hits: a descriptor's own `hits_addend` when present (0 included), else the request's,
//!   where 0 (proto3's "unset") means 1.
//! - 0 hits is a check: nothing is written, and the descriptor is OVER_LIMIT when its counter
//!   has already reached the limit (the budget is spent).
//! - N hits is a charge: N is added whatever the counter holds (usage is known after the fact,
//!   so a charge may push a counter past its limit), and the descriptor is OVER_LIMIT when the
//!   counter is now above the limit. A counter past its limit makes the next check OVER_LIMIT.
//! - The answer is OVER_LIMIT when any descriptor is. A descriptor that no limit matches is OK
//!   with no `current_limit`. An unknown domain matches nothing.

use crate::counters::{CountersError, Limits, Reading, Store};
use crate::proto::{self, Code, DescriptorStatus, Entry, RateLimitDescriptor, RateLimitRequest, RateLimitResponse};
use crate::window::{Instant, Unit};
use limitador::counter::Counter;
use limitador::limit::Context;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The most hits one descriptor may ask for (the proto's counts are 32-bit).
pub const MAX_HITS: u64 = u32::MAX as u64;

/// A request this server cannot answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    NoDomain,
    NoDescriptors,
    NoEntries { descriptor: usize },
    TooManyHits { descriptor: usize, hits: u64 },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NoDomain => f.write_str("rate limit domain must not be empty"),
            RequestError::NoDescriptors => f.write_str("rate limit descriptor list must not be empty"),
            RequestError::NoEntries { descriptor } => write!(f, "descriptors[{descriptor}] has no entries"),
            RequestError::TooManyHits { descriptor, hits } => {
                write!(f, "descriptors[{descriptor}] asks for {hits} hits, above {MAX_HITS}")
            }
        }
    }
}

/// The hits each descriptor asks for, after the checks a request must pass.
pub fn hits_of(req: &RateLimitRequest) -> Result<Vec<u64>, RequestError> {
    if req.domain.is_empty() {
        return Err(RequestError::NoDomain);
    }
    if req.descriptors.is_empty() {
        return Err(RequestError::NoDescriptors);
    }
    let default = u64::from(req.hits_addend.max(1));
    req.descriptors
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if d.entries.is_empty() {
                return Err(RequestError::NoEntries { descriptor: i });
            }
            let hits = d.hits_addend.map_or(default, |h| h.value);
            if hits > MAX_HITS {
                return Err(RequestError::TooManyHits { descriptor: i, hits });
            }
            Ok(hits)
        })
        .collect()
}

/// The context one descriptor is evaluated in: its entries as the map `descriptors[0]`, and
/// the current window number of every unit (`window_day`, ...). `None` when an entry key
/// repeats: no configured path repeats a key, so such a descriptor matches nothing.
pub fn context_for(entries: &[Entry], now: Instant) -> Option<Context<'static>> {
    let mut keys = BTreeSet::new();
    if !entries.iter().all(|e| keys.insert(e.key.as_str())) {
        return None;
    }
    let windows: HashMap<String, String> = Unit::ALL
        .iter()
        .map(|u| (u.window_variable(), now.window(*u).to_string()))
        .collect();
    let mut ctx = Context::from(windows);
    let descriptor: HashMap<String, String> = entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
    ctx.list_binding("descriptors".into(), vec![descriptor]);
    Some(ctx)
}

/// What a descriptor's counters say, once checked or charged.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub over_limit: bool,
    /// Each counter that applies, with its reading (after the charge, for a charge).
    pub counters: Vec<(Counter, Reading)>,
}

/// The limits and the store that counts against them.
pub struct Counting {
    pub limits: Limits,
    pub store: Store,
}

/// Checks (0 hits) or charges one descriptor.
pub async fn evaluate(
    counting: &Counting,
    domain: &str,
    entries: &[Entry],
    hits: u64,
    now: Instant,
) -> Result<Outcome, CountersError> {
    // The CEL context is not Send: find the counters before anything is awaited.
    let counters = match context_for(entries, now) {
        Some(ctx) => counting.limits.counters_for(domain, &ctx)?,
        None => return Ok(Outcome::default()),
    };
    let (readings, over) = if hits == 0 {
        let readings = counting.store.read(&counters).await?;
        // A check: over when the budget is spent, the counter at or past its limit.
        let over = counters.iter().zip(&readings).any(|(c, r)| r.value >= c.max_value());
        (readings, over)
    } else {
        let readings = counting.store.add(&counters, hits).await?;
        // A charge: over when it took the counter past its limit.
        let over = counters.iter().zip(&readings).any(|(c, r)| r.value > c.max_value());
        (readings, over)
    };
    Ok(Outcome {
        over_limit: over,
        counters: counters.into_iter().zip(readings).collect(),
    })
}

/// The status of a descriptor, from its outcome. The counter shown is the one with least left.
pub fn status_of(outcome: &Outcome, now: Instant) -> DescriptorStatus {
    let code = if outcome.over_limit { Code::OverLimit } else { Code::Ok };
    let left = |(c, r): &(Counter, Reading)| c.max_value().saturating_sub(r.value);
    let Some(shown) = outcome.counters.iter().min_by_key(|cr| left(cr)) else {
        return DescriptorStatus {
            code: code as i32,
            current_limit: None,
            limit_remaining: 0,
            duration_until_reset: None,
        };
    };
    let (counter, reading) = shown;
    let limit = counter.limit();
    let unit = Unit::from_seconds(limit.seconds());
    let aligned = unit.filter(|u| limit.has_variable(&u.window_variable()));
    let reset = match aligned {
        Some(unit) => Duration::from_secs(now.until_reset(unit)),
        None => reading.ttl.unwrap_or_else(|| counter.window()),
    };
    let remaining = if outcome.over_limit { 0 } else { left(shown) };
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(proto::RateLimit {
            requests_per_unit: saturate(limit.max_value()),
            unit: unit.map_or(proto::Unit::Unknown, Unit::to_proto) as i32,
            name: limit.name().unwrap_or_default().to_string(),
        }),
        limit_remaining: saturate(remaining),
        duration_until_reset: Some(proto::Duration {
            // Whole seconds, rounded up, as envoyproxy/ratelimit reports them.
            seconds: i64::try_from(reset.as_secs() + u64::from(reset.subsec_nanos() > 0)).unwrap_or(i64::MAX),
            nanos: 0,
        }),
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// OVER_LIMIT when any descriptor is.
pub fn overall_code(statuses: &[DescriptorStatus]) -> Code {
    if statuses.iter().any(|s| s.code == Code::OverLimit as i32) {
        Code::OverLimit
    } else {
        Code::Ok
    }
}

/// The gRPC service.
pub struct RateLimitServer {
    counting: Arc<Counting>,
    delay: Duration,
}

impl RateLimitServer {
    /// `delay` holds every answer back (for clients' timeout tests).
    pub fn new(counting: Counting, delay: Duration) -> RateLimitServer {
        RateLimitServer {
            counting: Arc::new(counting),
            delay,
        }
    }

    /// Answers one request.
    pub async fn answer(&self, req: RateLimitRequest) -> Result<RateLimitResponse, tonic::Status> {
        let hits = hits_of(&req).map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let now = Instant::now();
        let mut statuses = Vec::with_capacity(req.descriptors.len());
        for (descriptor, hits) in req.descriptors.iter().zip(hits) {
            if descriptor.limit.is_some() {
                tracing::warn!("a descriptor's limit override is not applied by this server");
            }
            let outcome = self.evaluate_guarded(&req.domain, descriptor, hits, now).await?;
            statuses.push(status_of(&outcome, now));
        }
        let overall = overall_code(&statuses);
        tracing::debug!(
            domain = %req.domain,
            descriptors = %Described(&req.descriptors),
            overall = ?overall,
            statuses = %Statuses(&statuses),
            "ShouldRateLimit"
        );
        Ok(RateLimitResponse {
            overall_code: overall as i32,
            statuses,
        })
    }

    /// Runs the evaluation as its own task, so that an error inside a limit's CEL (limitador
    /// panics on those) fails this request, not the server.
    async fn evaluate_guarded(
        &self,
        domain: &str,
        descriptor: &RateLimitDescriptor,
        hits: u64,
        now: Instant,
    ) -> Result<Outcome, tonic::Status> {
        let counting = Arc::clone(&self.counting);
        let domain = domain.to_string();
        let entries = descriptor.entries.clone();
        let task = tokio::spawn(async move { evaluate(&counting, &domain, &entries, hits, now).await });
        match task.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e @ CountersError::Storage(_))) => {
                tracing::error!("{e}");
                Err(tonic::Status::unavailable(e.to_string()))
            }
            Ok(Err(e)) => {
                tracing::error!("{e}");
                Err(tonic::Status::internal(e.to_string()))
            }
            Err(e) => {
                tracing::error!("evaluating a descriptor failed: {e}");
                Err(tonic::Status::internal("evaluating a descriptor failed"))
            }
        }
    }
}

#[tonic::async_trait]
impl proto::rls::rate_limit_service_server::RateLimitService for RateLimitServer {
    async fn should_rate_limit(
        &self,
        request: tonic::Request<RateLimitRequest>,
    ) -> Result<tonic::Response<RateLimitResponse>, tonic::Status> {
        let req = request.into_inner();
        match self.answer(req).await {
            Ok(resp) => Ok(tonic::Response::new(resp)),
            Err(status) => {
                tracing::debug!(code = ?status.code(), message = status.message(), "ShouldRateLimit refused");
                Err(status)
            }
        }
    }
}

/// `(key=value, key=value) hits=N; ...` for the debug log.
struct Described<'a>(&'a [RateLimitDescriptor]);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str("(")?;
            for (j, e) in d.entries.iter().enumerate() {
                if j > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}={}", e.key, e.value)?;
            }
            f.write_str(")")?;
            if let Some(h) = d.hits_addend {
                write!(f, " hits={}", h.value)?;
            }
        }
        Ok(())
    }
}

/// `OK remaining=9 of 10/MINUTE; ...` for the debug log.
struct Statuses<'a>(&'a [DescriptorStatus]);

impl fmt::Display for Statuses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let code = Code::try_from(s.code).unwrap_or(Code::Unknown);
            match &s.current_limit {
                Some(l) => {
                    let unit = proto::Unit::try_from(l.unit).unwrap_or(proto::Unit::Unknown);
                    write!(
                        f,
                        "{code:?} remaining={} of {}/{unit:?}",
                        s.limit_remaining, l.requests_per_unit
                    )?;
                }
                None => write!(f, "{code:?} no limit")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
