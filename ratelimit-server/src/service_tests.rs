//! The request semantics, with in-memory counters: hits, checks and charges, statuses, and the
//! translation's agreement with envoyproxy/ratelimit's own descriptor walk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::config::{Descriptor, Domain, RateLimit as ConfigRateLimit, ValueMatch};
use crate::proto::{Entry, RateLimitDescriptor, RateLimitRequest, UInt64Value};
use crate::translate::limits_of;

const BUDGETS: &str = "domain: ai-attribution
descriptors:
  - key: budget
    value: tokens_per_bu
    descriptors:
      - key: business_unit
        rate_limit: {unit: day, requests_per_unit: 100}
  - key: budget
    value: requests_per_user
    descriptors:
      - key: user
        rate_limit: {unit: minute, requests_per_unit: 3, name: per-user}
";

fn server(config: &str) -> RateLimitServer {
    let domain = Domain::parse("test.yaml", config).unwrap();
    let counting = Counting {
        limits: Limits::new(&limits_of(&domain)).unwrap(),
        store: Store::in_memory(),
    };
    RateLimitServer::new(counting, Duration::ZERO)
}

fn entries(pairs: &[(&str, &str)]) -> Vec<Entry> {
    pairs
        .iter()
        .map(|(k, v)| Entry {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect()
}

fn descriptor(pairs: &[(&str, &str)], hits: Option<u64>) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: entries(pairs),
        limit: None,
        hits_addend: hits.map(|value| UInt64Value { value }),
    }
}

fn request(descriptors: Vec<RateLimitDescriptor>, hits_addend: u32) -> RateLimitRequest {
    RateLimitRequest {
        domain: "ai-attribution".into(),
        descriptors,
        hits_addend,
    }
}

fn tokens(bu: &str, hits: u64) -> RateLimitDescriptor {
    descriptor(&[("budget", "tokens_per_bu"), ("business_unit", bu)], Some(hits))
}

async fn ask(s: &RateLimitServer, req: RateLimitRequest) -> RateLimitResponse {
    s.answer(req).await.unwrap()
}

fn code(c: i32) -> Code {
    Code::try_from(c).unwrap()
}

/// (code, remaining) of each status.
fn summary(r: &RateLimitResponse) -> Vec<(Code, u32)> {
    r.statuses.iter().map(|s| (code(s.code), s.limit_remaining)).collect()
}

#[tokio::test]
async fn a_check_is_never_charged() {
    let s = server(BUDGETS);
    for _ in 0..5 {
        let r = ask(&s, request(vec![tokens("finance", 0)], 0)).await;
        assert_eq!(code(r.overall_code), Code::Ok);
        assert_eq!(summary(&r), [(Code::Ok, 100)]);
    }
}

#[tokio::test]
async fn charges_count_and_a_spent_budget_fails_the_next_check() {
    let s = server(BUDGETS);
    let r = ask(&s, request(vec![tokens("finance", 60)], 0)).await;
    assert_eq!(summary(&r), [(Code::Ok, 40)]);
    assert_eq!(
        summary(&ask(&s, request(vec![tokens("finance", 0)], 0)).await),
        [(Code::Ok, 40)]
    );
    // Usage known after the call pushes the counter past the limit: charged all the same.
    let r = ask(&s, request(vec![tokens("finance", 50)], 0)).await;
    assert_eq!(code(r.overall_code), Code::OverLimit);
    assert_eq!(summary(&r), [(Code::OverLimit, 0)]);
    // The next call is rejected at its check, and other business units are not affected.
    let r = ask(&s, request(vec![tokens("finance", 0)], 0)).await;
    assert_eq!(code(r.overall_code), Code::OverLimit);
    assert_eq!(summary(&r), [(Code::OverLimit, 0)]);
    assert_eq!(
        summary(&ask(&s, request(vec![tokens("legal", 0)], 0)).await),
        [(Code::Ok, 100)]
    );
}

#[tokio::test]
async fn a_charge_that_lands_on_the_limit_is_ok_and_spends_the_budget() {
    let s = server(BUDGETS);
    assert_eq!(
        summary(&ask(&s, request(vec![tokens("finance", 100)], 0)).await),
        [(Code::Ok, 0)]
    );
    assert_eq!(
        summary(&ask(&s, request(vec![tokens("finance", 0)], 0)).await),
        [(Code::OverLimit, 0)]
    );
}

#[tokio::test]
async fn requests_count_one_each_and_the_one_past_the_limit_is_over() {
    let s = server(BUDGETS);
    let user = |u: &str| descriptor(&[("budget", "requests_per_user"), ("user", u)], None);
    // No hits_addend anywhere: each call is one hit.
    for left in [2, 1, 0] {
        assert_eq!(
            summary(&ask(&s, request(vec![user("alice")], 0)).await),
            [(Code::Ok, left)]
        );
    }
    assert_eq!(
        summary(&ask(&s, request(vec![user("alice")], 0)).await),
        [(Code::OverLimit, 0)]
    );
    assert_eq!(summary(&ask(&s, request(vec![user("bob")], 0)).await), [(Code::Ok, 2)]);
}

#[test]
fn a_descriptors_hits_override_the_requests() {
    let req = request(
        vec![
            descriptor(&[("a", "1")], None),
            descriptor(&[("a", "1")], Some(0)),
            descriptor(&[("a", "1")], Some(7)),
        ],
        0,
    );
    assert_eq!(hits_of(&req).unwrap(), [1, 0, 7], "request hits 0 means 1");
    let req = RateLimitRequest { hits_addend: 5, ..req };
    assert_eq!(hits_of(&req).unwrap(), [5, 0, 7]);
}

#[test]
fn requests_that_cannot_be_answered_are_refused() {
    let ok = request(vec![descriptor(&[("a", "1")], None)], 0);
    assert!(hits_of(&ok).is_ok());
    let no_domain = RateLimitRequest {
        domain: String::new(),
        ..ok.clone()
    };
    assert_eq!(hits_of(&no_domain), Err(RequestError::NoDomain));
    assert_eq!(hits_of(&request(vec![], 0)), Err(RequestError::NoDescriptors));
    assert_eq!(
        hits_of(&request(
            vec![descriptor(&[("a", "1")], None), descriptor(&[], None)],
            0
        )),
        Err(RequestError::NoEntries { descriptor: 1 })
    );
    assert_eq!(
        hits_of(&request(vec![descriptor(&[("a", "1")], Some(MAX_HITS + 1))], 0)),
        Err(RequestError::TooManyHits {
            descriptor: 0,
            hits: MAX_HITS + 1
        })
    );
}

#[tokio::test]
async fn refusals_are_invalid_argument() {
    let s = server(BUDGETS);
    let e = s.answer(request(vec![], 0)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(e.message(), "rate limit descriptor list must not be empty");
}

#[tokio::test]
async fn each_descriptor_gets_its_own_status_in_order() {
    let s = server(BUDGETS);
    ask(&s, request(vec![tokens("finance", 100)], 0)).await;
    let r = ask(
        &s,
        request(
            vec![
                descriptor(&[("budget", "requests_per_user"), ("user", "carol")], Some(1)),
                tokens("finance", 0),
                descriptor(&[("budget", "unconfigured"), ("user", "carol")], Some(1)),
                tokens("legal", 0),
            ],
            0,
        ),
    )
    .await;
    assert_eq!(code(r.overall_code), Code::OverLimit, "one descriptor is over");
    assert_eq!(
        summary(&r),
        [(Code::Ok, 2), (Code::OverLimit, 0), (Code::Ok, 0), (Code::Ok, 100)]
    );
    let per_user = r.statuses[0].current_limit.clone().unwrap();
    assert_eq!(per_user.requests_per_unit, 3);
    assert_eq!(per_user.unit, crate::proto::Unit::Minute as i32);
    assert_eq!(per_user.name, "per-user");
    let reset = r.statuses[0].duration_until_reset.unwrap().seconds;
    assert!((1..=60).contains(&reset), "{reset}");
    let tokens_limit = r.statuses[1].current_limit.clone().unwrap();
    assert_eq!(tokens_limit.unit, crate::proto::Unit::Day as i32);
    assert_eq!(tokens_limit.name, "");
    assert!((1..=86_400).contains(&r.statuses[1].duration_until_reset.unwrap().seconds));
    // No limit matched: OK, with no limit and no reset.
    assert_eq!(r.statuses[2].current_limit, None);
    assert_eq!(r.statuses[2].duration_until_reset, None);
}

#[tokio::test]
async fn an_unknown_domain_or_a_shorter_longer_or_repeated_descriptor_matches_nothing() {
    let s = server(BUDGETS);
    let unknown = RateLimitRequest {
        domain: "elsewhere".into(),
        ..request(vec![tokens("finance", 1000)], 0)
    };
    assert_eq!(summary(&ask(&s, unknown).await), [(Code::Ok, 0)]);
    let cases = [
        descriptor(&[("budget", "tokens_per_bu")], Some(1000)),
        descriptor(
            &[
                ("budget", "tokens_per_bu"),
                ("business_unit", "finance"),
                ("model", "gpt-4o"),
            ],
            Some(1000),
        ),
        descriptor(&[("budget", "tokens_per_bu"), ("budget", "finance")], Some(1000)),
    ];
    for d in cases {
        let r = ask(&s, request(vec![d.clone()], 0)).await;
        assert_eq!(r.statuses[0].current_limit, None, "{d:?}");
    }
    // None of them was charged to finance.
    assert_eq!(
        summary(&ask(&s, request(vec![tokens("finance", 0)], 0)).await),
        [(Code::Ok, 100)]
    );
}

#[tokio::test]
async fn windows_are_per_value_and_per_domain() {
    let s = server(BUDGETS);
    ask(&s, request(vec![tokens("finance", 100)], 0)).await;
    let other = server(BUDGETS);
    assert_eq!(
        summary(&ask(&other, request(vec![tokens("finance", 0)], 0)).await),
        [(Code::Ok, 100)],
        "in-memory counters are per process"
    );
}

#[tokio::test]
async fn an_error_inside_a_limit_fails_the_call_not_the_server() {
    // `int()` of a non-number is an evaluation error, on which limitador panics.
    let specs = crate::limits_file::parse(
        "limits.yaml",
        "- namespace: ai-attribution
  max_value: 5
  seconds: 60
  conditions: [\"int(descriptors[0]['n']) > 1\"]
",
    )
    .unwrap();
    let counting = Counting {
        limits: Limits::new(&specs).unwrap(),
        store: Store::in_memory(),
    };
    let s = RateLimitServer::new(counting, Duration::ZERO);
    let bad = request(vec![descriptor(&[("n", "x")], None)], 0);
    let e = s.answer(bad).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal);
    let good = request(vec![descriptor(&[("n", "2")], None)], 0);
    assert_eq!(summary(&ask(&s, good).await), [(Code::Ok, 4)]);
}

#[tokio::test]
async fn limits_from_a_limitador_file_use_its_windows() {
    let specs = crate::limits_file::parse(
        "limits.yaml",
        "- namespace: ai-attribution
  max_value: 2
  seconds: 90
  conditions: [\"descriptors[0]['budget'] == 'b'\"]
  variables: [\"descriptors[0]['user']\"]
",
    )
    .unwrap();
    let counting = Counting {
        limits: Limits::new(&specs).unwrap(),
        store: Store::in_memory(),
    };
    let s = RateLimitServer::new(counting, Duration::ZERO);
    let d = || descriptor(&[("budget", "b"), ("user", "u")], None);
    let r = ask(&s, request(vec![d()], 0)).await;
    assert_eq!(summary(&r), [(Code::Ok, 1)]);
    let limit = r.statuses[0].current_limit.clone().unwrap();
    assert_eq!(limit.unit, crate::proto::Unit::Unknown as i32, "90 s is no unit");
    let reset = r.statuses[0].duration_until_reset.unwrap().seconds;
    assert!((1..=90).contains(&reset), "from the first hit: {reset}");
    ask(&s, request(vec![d()], 0)).await;
    assert_eq!(summary(&ask(&s, request(vec![d()], 0)).await), [(Code::OverLimit, 0)]);
}

// ---- the translation against envoyproxy/ratelimit's walk ----------------------------------

/// envoyproxy/ratelimit's lookup, written directly: walk the tree entry by entry, trying at
/// each level the exact `key_value`, then the prefixes in file order, then the bare key; the
/// limit counts only at the node of the last entry. Returns the matched node's path.
fn reference_walk<'a>(domain: &'a Domain, entries: &[Entry]) -> Option<(Vec<usize>, &'a Descriptor)> {
    let mut level = &domain.descriptors;
    let mut path = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let same_key = || level.iter().enumerate().filter(|(_, d)| d.key == e.key);
        let found = same_key()
            .find(|(_, d)| d.value == ValueMatch::Exact(e.value.clone()))
            .or_else(|| {
                same_key().find(|(_, d)| matches!(&d.value, ValueMatch::Prefix(p) if e.value.starts_with(p.as_str())))
            })
            .or_else(|| same_key().find(|(_, d)| d.value == ValueMatch::Any));
        let (index, node) = found?;
        path.push(index);
        if i + 1 == entries.len() {
            return match node.rate_limit {
                Some(ConfigRateLimit::Limited { .. }) => Some((path, node)),
                _ => None,
            };
        }
        level = &node.descriptors;
    }
    None
}

const TREE: &str = "domain: d
descriptors:
  - key: a
    rate_limit: {unit: second, requests_per_unit: 1}
    descriptors:
      - key: b
        rate_limit: {unit: second, requests_per_unit: 2}
      - key: b
        value: x
        descriptors:
          - key: c
            value: x-1
            rate_limit: {unit: second, requests_per_unit: 3}
          - key: c
            rate_limit: {unit: second, requests_per_unit: 4}
  - key: a
    value: x
    rate_limit: {unit: second, requests_per_unit: 5}
  - key: a
    value: x-*
    rate_limit: {unit: second, requests_per_unit: 6}
    descriptors:
      - key: b
        value: x*
        rate_limit: {unit: second, requests_per_unit: 7}
  - key: a
    value: x*
    rate_limit: {unit: second, requests_per_unit: 8}
  - key: a
    value: y
    rate_limit: {unlimited: true}
  - key: b
    value: x
    rate_limit: {unit: second, requests_per_unit: 9}
";

#[test]
fn the_translation_picks_the_node_envoyproxy_ratelimit_picks() {
    let domain = Domain::parse("tree.yaml", TREE).unwrap();
    let limits = Limits::new(&limits_of(&domain)).unwrap();
    let values = ["", "x", "x-1", "x-", "xy", "y", "z"];
    let mut checked = 0;
    let mut matched = 0;
    // Every descriptor whose keys follow the tree's order (a, b, c; any subsequence), with
    // every combination of values. Entries are matched by key, so the order itself is not
    // checked (see `entries_are_matched_by_key_not_position`).
    let mut descriptors: Vec<Vec<(&str, &str)>> = Vec::new();
    for keys in [
        vec!["a"],
        vec!["b"],
        vec!["c"],
        vec!["a", "b"],
        vec!["a", "c"],
        vec!["b", "c"],
        vec!["a", "b", "c"],
    ] {
        let mut all: Vec<Vec<(&str, &str)>> = vec![Vec::new()];
        for k in keys {
            all = all
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut p = prefix.clone();
                        p.push((k, *v));
                        p
                    })
                })
                .collect();
        }
        descriptors.extend(all);
    }
    for pairs in descriptors {
        let es = entries(&pairs);
        let want = reference_walk(&domain, &es).and_then(|(_, node)| match &node.rate_limit {
            Some(ConfigRateLimit::Limited { requests_per_unit, .. }) => Some(u64::from(*requests_per_unit)),
            _ => None,
        });
        let ctx = context_for(&es, Instant(0)).unwrap();
        let got: Vec<u64> = limits
            .counters_for("d", &ctx)
            .unwrap()
            .iter()
            .map(|c| c.max_value())
            .collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{pairs:?}");
        checked += 1;
        matched += usize::from(want.is_some());
    }
    assert!(
        checked > 500 && matched > 30,
        "{checked} descriptors, {matched} matched"
    );
}

#[test]
fn entries_are_matched_by_key_not_position() {
    // envoyproxy/ratelimit would not match (b, a) against the path a -> b; a limitador
    // context is a map, so this server does. The filter always sends `budget` first.
    let domain = Domain::parse("tree.yaml", TREE).unwrap();
    let limits = Limits::new(&limits_of(&domain)).unwrap();
    let es = entries(&[("b", "z"), ("a", "")]);
    assert!(reference_walk(&domain, &es).is_none());
    let ctx = context_for(&es, Instant(0)).unwrap();
    let got: Vec<u64> = limits
        .counters_for("d", &ctx)
        .unwrap()
        .iter()
        .map(|c| c.max_value())
        .collect();
    assert_eq!(got, [2]);
}
