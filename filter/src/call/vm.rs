//! State one Envoy worker VM shares across its requests: the correlation-ID generator, the
//! metric series it has named (with their cap), and the MCP sessions it has seen opened.

use crate::correlation::IdGenerator;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a, for the map of metric names. The map is bounded (each metric takes at most
/// `max_series` names per VM), so a keyed hash buys nothing against crafted label values, and
/// SipHash cost more than the rest of a lookup.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type NameMap = HashMap<String, SeriesId, BuildHasherDefault<Fnv>>;

/// An index into the VM's metric series; the glue maps it to the host's metric id.
pub type SeriesId = u32;

/// Per-VM state. Lives in the root context, reset when Envoy reloads the VM.
#[derive(Debug)]
pub struct VmState {
    ids: IdGenerator,
    /// Full metric names (tags in the name), by series id.
    names: Vec<String>,
    /// The host's metric id of each series, once defined there.
    host_ids: Vec<Option<u32>>,
    by_name: NameMap,
    /// Series per metric family (e.g. `ai_attribution_tokens_total`) so far, for the cap.
    per_metric: HashMap<&'static str, usize>,
    max_series: usize,
    /// The name being looked up, reused so that a known series costs no allocation.
    scratch: String,
    /// MCP sessions and the service account that opened each, oldest first for eviction.
    sessions: HashMap<String, String>,
    session_order: VecDeque<String>,
}

/// MCP sessions a VM remembers; the oldest is forgotten first.
pub const MAX_SESSIONS: usize = 4096;

impl VmState {
    /// `seed`: 32 bytes of the host's entropy, drawn once per VM. `max_series`: how many label
    /// combinations each metric may take in this VM before new ones count as `other`.
    pub fn new(seed: [u8; 32], max_series: usize) -> VmState {
        VmState {
            ids: IdGenerator::new(seed),
            names: Vec::new(),
            host_ids: Vec::new(),
            by_name: NameMap::default(),
            per_metric: HashMap::new(),
            max_series,
            scratch: String::new(),
            sessions: HashMap::new(),
            session_order: VecDeque::new(),
        }
    }

    /// Whether `session` is bound to an account other than `account`; when it is unbound and
    /// `bind`, binds it to `account`.
    pub fn bind_session(&mut self, session: &str, account: &str, bind: bool) -> bool {
        if let Some(bound) = self.sessions.get(session) {
            return bound != account;
        }
        if !bind {
            return false;
        }
        if self.session_order.len() >= MAX_SESSIONS {
            if let Some(oldest) = self.session_order.pop_front() {
                self.sessions.remove(&oldest);
            }
        }
        self.sessions.insert(session.to_string(), account.to_string());
        self.session_order.push_back(session.to_string());
        false
    }

    /// A new correlation ID (a random UUIDv4).
    pub fn new_id(&mut self) -> String {
        self.ids.uuid()
    }

    /// The series for `metric` with these labels, named `metric;label=value;...`. Once the
    /// metric has `max_series` series in this VM, a new label combination gets the series whose
    /// capped labels are all `other` (the first combinations seen keep their slot).
    pub fn series(&mut self, metric: &'static str, labels: &[(&str, &str)]) -> SeriesId {
        crate::metrics::write_metric_name(&mut self.scratch, metric, labels);
        if let Some(&id) = self.by_name.get(self.scratch.as_str()) {
            return id;
        }
        let count = self.per_metric.get(metric).copied().unwrap_or(0);
        if count >= self.max_series {
            let capped: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| {
                    (
                        *k,
                        if crate::metrics::is_capped(k) {
                            crate::metrics::OTHER
                        } else {
                            v
                        },
                    )
                })
                .collect();
            let other = crate::metrics::metric_name(metric, &capped);
            if let Some(&id) = self.by_name.get(&other) {
                return id;
            }
            return self.insert(metric, other);
        }
        let name = self.scratch.clone();
        self.insert(metric, name)
    }

    fn insert(&mut self, metric: &'static str, name: String) -> SeriesId {
        let id = SeriesId::try_from(self.names.len()).unwrap_or(SeriesId::MAX);
        self.names.push(name.clone());
        self.by_name.insert(name, id);
        *self.per_metric.entry(metric).or_insert(0) += 1;
        id
    }

    /// The full metric name of a series, for defining it on the host.
    pub fn series_name(&self, id: SeriesId) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }

    /// The host's id for a series: the one `define` gave the first time, asked again only while
    /// it gives none.
    pub fn host_metric_id(&mut self, id: SeriesId, define: impl FnOnce(&str) -> Option<u32>) -> Option<u32> {
        let slot = id as usize;
        if let Some(known) = self.host_ids.get(slot).copied().flatten() {
            return Some(known);
        }
        let defined = define(self.names.get(slot)?)?;
        if self.host_ids.len() <= slot {
            self.host_ids.resize(slot + 1, None);
        }
        if let Some(held) = self.host_ids.get_mut(slot) {
            *held = Some(defined);
        }
        Some(defined)
    }
}
