//! Which counters a descriptor touches, and where they are kept.
//!
//! limitador decides which limits apply (their CEL conditions) and which counter of each a
//! descriptor belongs to (their variables, resolved against the descriptor). The counts live
//! in Redis, shared by every server that points at it, or in this process's memory.
//!
//! In Redis a counter is one integer key: a charge is `INCRBY` plus `EXPIRE .. NX` (the window
//! starts with the first hit) in one script, a check is `GET` plus `PTTL`. The key carries the
//! namespace as a hash tag (`{domain}`), so one descriptor's keys share a cluster slot.

use crate::translate::LimitSpec;
use limitador::counter::Counter;
use limitador::limit::{Context, Limit};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why the counters could not be found or reached.
#[derive(Debug)]
pub enum CountersError {
    /// A limit's CEL did not parse (the config loaders check this first).
    Limit(String),
    /// A limit's variable could not be evaluated against a descriptor.
    Evaluation(String),
    /// Redis could not be reached, or refused a command.
    Storage(String),
}

impl fmt::Display for CountersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CountersError::Limit(m) => write!(f, "invalid limit: {m}"),
            CountersError::Evaluation(m) => write!(f, "evaluating a limit: {m}"),
            CountersError::Storage(m) => write!(f, "counter storage: {m}"),
        }
    }
}

impl std::error::Error for CountersError {}

/// The configured limits, by namespace.
pub struct Limits {
    by_namespace: HashMap<String, Vec<Arc<Limit>>>,
}

impl Limits {
    pub fn new(specs: &[LimitSpec]) -> Result<Limits, CountersError> {
        let mut by_namespace: HashMap<String, Vec<Arc<Limit>>> = HashMap::new();
        for spec in specs {
            let limit = spec.to_limit().map_err(|e| CountersError::Limit(e.to_string()))?;
            by_namespace
                .entry(spec.namespace.clone())
                .or_default()
                .push(Arc::new(limit));
        }
        Ok(Limits { by_namespace })
    }

    /// The counters of every limit of `namespace` that applies in `ctx`.
    pub fn counters_for(&self, namespace: &str, ctx: &Context<'_>) -> Result<Vec<Counter>, CountersError> {
        let Some(limits) = self.by_namespace.get(namespace) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for limit in limits.iter().filter(|l| l.applies(ctx)) {
            match Counter::new(Arc::clone(limit), ctx) {
                Ok(Some(c)) => out.push(c),
                Ok(None) => {}
                Err(e) => return Err(CountersError::Evaluation(e.to_string())),
            }
        }
        Ok(out)
    }
}

/// The storage key of a counter: its limit's identity (namespace, window, conditions and
/// variables, as limitador identifies a limit) and the values of its variables.
pub fn key_of(counter: &Counter) -> String {
    let limit = counter.limit();
    let mut conditions: Vec<String> = limit.conditions().into_iter().collect();
    conditions.sort();
    let mut variables: Vec<String> = limit.variables().into_iter().collect();
    variables.sort();
    let identity = serde_json::json!([limit.seconds(), conditions, variables, counter.set_variables()]);
    format!("ratelimit:{{{}}}:{identity}", limit.namespace().as_ref())
}

/// A counter's value and how long its window has left (`None`: never hit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub value: u64,
    pub ttl: Option<Duration>,
}

/// Where counts are kept.
pub enum Store {
    InMemory(Mutex<Memory>),
    Redis(ConnectionManager),
}

/// In-memory counters: value and end of window, by key.
#[derive(Default)]
pub struct Memory {
    counters: HashMap<String, (u64, std::time::Instant)>,
    writes: u64,
}

impl Memory {
    fn live(&mut self, key: &str, now: std::time::Instant) -> Option<(u64, std::time::Instant)> {
        match self.counters.get(key) {
            Some(&(value, ends)) if ends > now => Some((value, ends)),
            Some(_) => {
                self.counters.remove(key);
                None
            }
            None => None,
        }
    }
}

/// `INCRBY` every key, start the window of a new one, and return value and `PTTL` of each.
const CHARGE: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local value = redis.call('incrby', key, ARGV[1])
  redis.call('expire', key, ARGV[i + 1], 'NX')
  out[#out + 1] = value
  out[#out + 1] = redis.call('pttl', key)
end
return out
";

/// Value (0 when absent) and `PTTL` of every key.
const READ: &str = r"
local out = {}
for _, key in ipairs(KEYS) do
  out[#out + 1] = tonumber(redis.call('get', key) or '0')
  out[#out + 1] = redis.call('pttl', key)
end
return out
";

impl Store {
    pub fn in_memory() -> Store {
        Store::InMemory(Mutex::new(Memory::default()))
    }

    /// A Redis store at `url` (`redis://host:port[/db]` or `unix:///path`). It connects on
    /// first use and reconnects by itself; a command that gets no answer in `timeout` fails.
    pub fn redis(url: &str, timeout: Duration) -> Result<Store, CountersError> {
        let client = redis::Client::open(url).map_err(|e| CountersError::Storage(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| CountersError::Storage(e.to_string()))?;
        Ok(Store::Redis(manager))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Store::InMemory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    /// Checks that the store answers (Redis: `PING`).
    pub async fn ping(&self) -> Result<(), CountersError> {
        match self {
            Store::InMemory(_) => Ok(()),
            Store::Redis(manager) => {
                let mut conn = manager.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| CountersError::Storage(e.to_string()))
            }
        }
    }

    /// The current readings of these counters. Nothing is written.
    pub async fn read(&self, counters: &[Counter]) -> Result<Vec<Reading>, CountersError> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Store::InMemory(memory) => {
                let now = std::time::Instant::now();
                let mut m = lock(memory);
                Ok(counters
                    .iter()
                    .map(|c| match m.live(&key_of(c), now) {
                        Some((value, ends)) => Reading {
                            value,
                            ttl: Some(ends - now),
                        },
                        None => Reading { value: 0, ttl: None },
                    })
                    .collect())
            }
            Store::Redis(manager) => {
                let script = redis::Script::new(READ);
                let mut invocation = script.prepare_invoke();
                for c in counters {
                    invocation.key(key_of(c));
                }
                let mut conn = manager.clone();
                let raw: Vec<i64> = invocation
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| CountersError::Storage(e.to_string()))?;
                Ok(readings(&raw))
            }
        }
    }

    /// Adds `delta` to each of these counters (starting the window of a new one) and returns
    /// their readings afterwards.
    pub async fn add(&self, counters: &[Counter], delta: u64) -> Result<Vec<Reading>, CountersError> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Store::InMemory(memory) => {
                let now = std::time::Instant::now();
                let mut m = lock(memory);
                m.writes += 1;
                if m.writes.is_multiple_of(4096) {
                    m.counters.retain(|_, (_, ends)| *ends > now);
                }
                Ok(counters
                    .iter()
                    .map(|c| {
                        let key = key_of(c);
                        let (value, ends) = match m.live(&key, now) {
                            Some((value, ends)) => (value.saturating_add(delta), ends),
                            None => (delta, now + c.window()),
                        };
                        m.counters.insert(key, (value, ends));
                        Reading {
                            value,
                            ttl: Some(ends - now),
                        }
                    })
                    .collect())
            }
            Store::Redis(manager) => {
                let script = redis::Script::new(CHARGE);
                let mut invocation = script.prepare_invoke();
                invocation.arg(delta);
                for c in counters {
                    invocation.key(key_of(c));
                    invocation.arg(c.window().as_secs().max(1));
                }
                let mut conn = manager.clone();
                let raw: Vec<i64> = invocation
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| CountersError::Storage(e.to_string()))?;
                Ok(readings(&raw))
            }
        }
    }
}

/// A poisoned lock only means another request panicked midway; the map is still usable.
fn lock(memory: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
    memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `[value, pttl, value, pttl, ...]` from the scripts. A negative PTTL: no window running.
fn readings(raw: &[i64]) -> Vec<Reading> {
    raw.chunks(2)
        .map(|pair| {
            let value = pair.first().copied().unwrap_or(0);
            let pttl = pair.get(1).copied().unwrap_or(-2);
            Reading {
                value: u64::try_from(value).unwrap_or(0),
                ttl: u64::try_from(pttl).ok().map(Duration::from_millis),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::config::Domain;
    use crate::proto::Entry;
    use crate::service::context_for;
    use crate::translate::limits_of;
    use crate::window::Instant;

    fn limits() -> Limits {
        let d = Domain::parse(
            "t",
            "domain: d\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 3}\n",
        )
        .unwrap();
        Limits::new(&limits_of(&d)).unwrap()
    }

    fn entry(k: &str, v: &str) -> Entry {
        Entry {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn each_value_and_each_window_has_its_own_key() {
        let limits = limits();
        let key = |user: &str, at: u64| {
            let ctx = context_for(&[entry("user", user)], Instant(at)).unwrap();
            let counters = limits.counters_for("d", &ctx).unwrap();
            assert_eq!(counters.len(), 1);
            key_of(&counters[0])
        };
        assert_eq!(key("alice", 60), key("alice", 119));
        assert_ne!(key("alice", 60), key("alice", 120));
        assert_ne!(key("alice", 60), key("bob", 60));
        assert!(
            key("alice", 60).starts_with("ratelimit:{d}:[60,"),
            "{}",
            key("alice", 60)
        );
        let ctx = context_for(&[entry("user", "alice")], Instant(0)).unwrap();
        assert!(limits.counters_for("other", &ctx).unwrap().is_empty());
    }

    #[test]
    fn scripts_readings_are_decoded() {
        assert_eq!(
            readings(&[5, 1500, 0, -2]),
            [
                Reading {
                    value: 5,
                    ttl: Some(Duration::from_millis(1500))
                },
                Reading { value: 0, ttl: None }
            ]
        );
    }
}
