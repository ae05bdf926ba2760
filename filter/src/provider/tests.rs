#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;

fn rec(path: &str) -> Option<(String, String, Option<String>)> {
    recognize(&CanonicalPath::parse(path.as_bytes()), ProviderSet::all(), &[])
        .map(|c| (c.provider, c.operation, c.path_model))
}

fn some(p: &str, o: &str, m: Option<&str>) -> Option<(String, String, Option<String>)> {
    Some((p.into(), o.into(), m.map(String::from)))
}

/// Every model-running endpoint of every provider, with what it is recognised as.
const ENDPOINTS: &[(&str, &str, &str, Option<&str>)] = &[
    ("/v1/chat/completions", "openai", "chat", None),
    ("/v1/completions", "openai", "text_completion", None),
    ("/v1/embeddings", "openai", "embeddings", None),
    ("/v1/responses", "openai", "chat", None),
    ("/v1/responses/compact", "openai", "chat", None),
    ("/v1/images/generations", "openai", "image_generation", None),
    ("/v1/images/edits", "openai", "image_edit", None),
    ("/v1/images/variations", "openai", "image_variation", None),
    ("/v1/audio/transcriptions", "openai", "transcription", None),
    ("/v1/audio/translations", "openai", "translation", None),
    ("/v1/audio/speech", "openai", "speech", None),
    ("/v1/moderations", "openai", "moderation", None),
    ("/v1/batches", "openai", "batch", None),
    ("/v1/threads/runs", "openai", "invoke_agent", None),
    ("/v1/threads/thread_abc/runs", "openai", "invoke_agent", None),
    (
        "/v1/threads/thread_abc/runs/run_1/submit_tool_outputs",
        "openai",
        "invoke_agent",
        None,
    ),
    ("/v1/realtime/sessions", "openai", "realtime_session", None),
    ("/v1/realtime/client_secrets", "openai", "realtime_session", None),
    (
        "/v1/realtime/transcription_sessions",
        "openai",
        "realtime_session",
        None,
    ),
    ("/v1/realtime/calls", "openai", "realtime", None),
    (
        "/v1/realtime?model=gpt-realtime",
        "openai",
        "realtime",
        Some("gpt-realtime"),
    ),
    ("/v1/videos", "openai", "video_generation", None),
    ("/v1/fine_tuning/jobs", "openai", "fine_tuning", None),
    ("/v1/evals/eval_1/runs", "openai", "evaluation", None),
    // Unversioned, as LiteLLM and other OpenAI-compatible servers serve them.
    ("/chat/completions", "openai", "chat", None),
    ("/engines/gpt-4o/chat/completions", "openai", "chat", None),
    ("/embeddings", "openai", "embeddings", None),
    ("/rerank", "openai", "rerank", None),
    ("/score", "openai", "score", None),
    ("/pooling", "openai", "pooling", None),
    ("/invocations", "openai", "invocations", None),
    // Azure OpenAI.
    (
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-06-01",
        "azure.ai.openai",
        "chat",
        Some("gpt4o-prod"),
    ),
    (
        "/openai/deployments/d/completions",
        "azure.ai.openai",
        "text_completion",
        Some("d"),
    ),
    (
        "/openai/deployments/d/embeddings",
        "azure.ai.openai",
        "embeddings",
        Some("d"),
    ),
    (
        "/openai/deployments/d/images/generations",
        "azure.ai.openai",
        "image_generation",
        Some("d"),
    ),
    (
        "/openai/deployments/d/audio/transcriptions",
        "azure.ai.openai",
        "transcription",
        Some("d"),
    ),
    (
        "/openai/deployments/d/extensions/chat/completions",
        "azure.ai.openai",
        "chat",
        Some("d"),
    ),
    (
        "/openai/responses?api-version=2025-04-01-preview",
        "azure.ai.openai",
        "chat",
        None,
    ),
    ("/openai/v1/chat/completions", "azure.ai.openai", "chat", None),
    ("/openai/v1/responses", "azure.ai.openai", "chat", None),
    ("/openai/batches", "azure.ai.openai", "batch", None),
    ("/openai/threads/t/runs", "azure.ai.openai", "invoke_agent", None),
    (
        "/openai/realtimeapi/sessions",
        "azure.ai.openai",
        "realtime_session",
        None,
    ),
    (
        "/openai/realtime?api-version=x&deployment=rt",
        "azure.ai.openai",
        "realtime",
        Some("rt"),
    ),
    (
        "/openai/v1/video/generations/jobs",
        "azure.ai.openai",
        "video_generation",
        None,
    ),
    // Anthropic.
    ("/v1/messages", "anthropic", "chat", None),
    ("/v1/messages/batches", "anthropic", "batch", None),
    ("/v1/complete", "anthropic", "text_completion", None),
    // Gemini.
    (
        "/v1beta/models/gemini-2.0-flash:generateContent",
        "gcp.gemini",
        "generate_content",
        Some("gemini-2.0-flash"),
    ),
    (
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        "gcp.gemini",
        "generate_content",
        Some("g"),
    ),
    (
        "/v1beta/models/text-embedding-004:embedContent",
        "gcp.gemini",
        "embeddings",
        Some("text-embedding-004"),
    ),
    (
        "/v1beta/models/e:batchEmbedContents",
        "gcp.gemini",
        "embeddings",
        Some("e"),
    ),
    (
        "/v1beta/models/e:asyncBatchEmbedContent",
        "gcp.gemini",
        "embeddings",
        Some("e"),
    ),
    (
        "/v1beta/models/g:batchGenerateContent",
        "gcp.gemini",
        "generate_content",
        Some("g"),
    ),
    (
        "/v1beta/models/imagen:predict",
        "gcp.gemini",
        "generate_content",
        Some("imagen"),
    ),
    (
        "/v1beta/models/veo:predictLongRunning",
        "gcp.gemini",
        "generate_content",
        Some("veo"),
    ),
    (
        "/v1beta/tunedModels/t1:generateContent",
        "gcp.gemini",
        "generate_content",
        Some("t1"),
    ),
    (
        "/v1/models/g:generateContent",
        "gcp.gemini",
        "generate_content",
        Some("g"),
    ),
    ("/models/g:generateContent", "gcp.gemini", "generate_content", Some("g")),
    ("/v1beta/openai/chat/completions", "gcp.gemini", "chat", None),
    (
        "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
        "gcp.gemini",
        "generate_content",
        None,
    ),
    // Vertex AI.
    (
        "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent",
        "gcp.vertex_ai",
        "generate_content",
        Some("gemini-1.5-pro"),
    ),
    (
        "/v1beta1/projects/p/locations/l/publishers/anthropic/models/claude:streamRawPredict",
        "gcp.vertex_ai",
        "generate_content",
        Some("claude"),
    ),
    (
        "/v1/publishers/google/models/g:streamGenerateContent",
        "gcp.vertex_ai",
        "generate_content",
        Some("g"),
    ),
    (
        "/v1/projects/p/locations/l/endpoints/123:predict",
        "gcp.vertex_ai",
        "generate_content",
        None,
    ),
    (
        "/v1/projects/p/locations/l/endpoints/123:rawPredict",
        "gcp.vertex_ai",
        "generate_content",
        None,
    ),
    (
        "/v1/projects/p/locations/l/endpoints/123:generateContent",
        "gcp.vertex_ai",
        "generate_content",
        None,
    ),
    (
        "/v1beta1/projects/p/locations/l/endpoints/openapi/chat/completions",
        "gcp.vertex_ai",
        "chat",
        None,
    ),
    (
        "/v1/projects/p/locations/l/batchPredictionJobs",
        "gcp.vertex_ai",
        "batch",
        None,
    ),
    (
        "/v1/projects/p/locations/l/reasoningEngines/1:query",
        "gcp.vertex_ai",
        "invoke_agent",
        None,
    ),
    (
        "/v1/projects/p/locations/l/reasoningEngines/1:streamQuery",
        "gcp.vertex_ai",
        "invoke_agent",
        None,
    ),
    // Bedrock.
    (
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke",
        "aws.bedrock",
        "chat",
        Some("anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ),
    (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.meta.llama3/converse-stream",
        "aws.bedrock",
        "chat",
        Some("arn:aws:bedrock:us-east-1:123:inference-profile/us.meta.llama3"),
    ),
    ("/model/m/invoke-with-response-stream", "aws.bedrock", "chat", Some("m")),
    (
        "/model/m/invoke-with-bidirectional-stream",
        "aws.bedrock",
        "chat",
        Some("m"),
    ),
    ("/model/m/converse", "aws.bedrock", "chat", Some("m")),
    ("/async-invoke", "aws.bedrock", "batch", None),
    ("/guardrail/g1/version/1/apply", "aws.bedrock", "guardrail", None),
    (
        "/agents/a/agentAliases/b/sessions/s/text",
        "aws.bedrock",
        "invoke_agent",
        None,
    ),
    ("/retrieveAndGenerate", "aws.bedrock", "chat", None),
    ("/retrieveAndGenerateStream", "aws.bedrock", "chat", None),
    // Ollama.
    ("/api/chat", "ollama", "chat", None),
    ("/api/generate", "ollama", "text_completion", None),
    ("/api/embed", "ollama", "embeddings", None),
    ("/api/embeddings", "ollama", "embeddings", None),
    // Cohere.
    ("/v2/chat", "cohere", "chat", None),
    ("/v1/chat", "cohere", "chat", None),
    ("/v1/generate", "cohere", "text_completion", None),
    ("/v1/embed", "cohere", "embeddings", None),
    ("/v2/embed", "cohere", "embeddings", None),
    ("/v2/rerank", "cohere", "rerank", None),
    ("/v1/classify", "cohere", "classify", None),
    ("/v1/embed-jobs", "cohere", "embeddings", None),
    ("/cohere/v2/chat", "cohere", "chat", None),
];

#[test]
fn recognises_every_provider_endpoint() {
    for (path, provider, op, model) in ENDPOINTS {
        assert_eq!(rec(path), some(provider, op, *model), "{path}");
    }
}

/// The spellings a model server routes like the plain path: each must be recognised the same.
fn spellings(path: &str) -> Vec<String> {
    let (p, q) = path.split_once('?').map_or((path, ""), |(p, q)| (p, q));
    let query = if q.is_empty() { String::new() } else { format!("?{q}") };
    let upper: String = p
        .split('/')
        .map(|s| {
            if s.contains(':') || s.contains('%') {
                s.to_string()
            } else {
                s.to_ascii_uppercase()
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let last_slash = p.rfind('/').unwrap_or(0);
    let encoded_slash = format!("{}%2F{}", &p[..last_slash], &p[last_slash + 1..]);
    let first = p.char_indices().nth(1).map_or(1, |(i, _)| i);
    let encoded_letter = format!("/%{:02X}{}", p.as_bytes()[1], &p[first + 1..]);
    vec![
        format!("{p}/{query}"),
        format!("/{p}{query}").replacen("//", "//", 1),
        p.replacen('/', "//", 2) + &query,
        format!("/x/..{p}{query}"),
        format!("/.{p}{query}"),
        format!("{p};v=1{query}"),
        format!("{upper}{query}"),
        format!("{encoded_slash}{query}"),
        format!("{encoded_letter}{query}"),
        format!("{p}{query}#frag"),
    ]
}

#[test]
fn every_endpoint_is_recognised_in_every_spelling() {
    for (path, provider, op, model) in ENDPOINTS {
        for spelled in spellings(path) {
            let got = rec(&spelled);
            assert_eq!(
                got.as_ref().map(|g| (&g.0, &g.1)),
                Some((&provider.to_string(), &op.to_string())),
                "{spelled} (from {path})"
            );
            if model.is_some() && !spelled.contains("UPPER") {
                assert!(got.unwrap().2.is_some(), "{spelled}: model");
            }
        }
    }
}

#[test]
fn paths_that_run_no_model_pass() {
    for p in [
        "/",
        "/healthz",
        "/v1/models",
        "/v1/models/gpt-4o",
        "/v1/messages/count_tokens",
        "/v1/responses/resp_1",
        "/v1/chat/completions/abc",
        "/v1beta/models/g:countTokens",
        "/v1/projects/p/locations/l/publishers/google/models/g:countTokens",
        "/v1/projects/p/locations/l/publishers/anthropic/models/count-tokens:rawPredict",
        "/model/x/list",
        "/model/m/count-tokens",
        "/openai/deployments/",
        "/api/tags",
        "/v1/tokenize",
        "/api/v2/score",
        "/v1/batches/b1",
    ] {
        assert_eq!(rec(p), None, "{p}");
    }
}

#[test]
fn streaming_verbs_are_known_from_the_path() {
    let r = |p: &str| recognize(&CanonicalPath::parse(p.as_bytes()), ProviderSet::all(), &[]).unwrap();
    let c = r("/model/m/converse-stream");
    assert!(c.path_stream);
    assert_eq!(c.family, ApiFamily::BedrockConverse);
    assert!(r("/v1beta/models/g:streamGenerateContent").path_stream);
    let c = r("/v1/projects/p/locations/l/publishers/anthropic/models/claude:streamRawPredict");
    assert_eq!(c.family, ApiFamily::Anthropic);
    assert!(c.path_stream);
}

#[test]
fn a_disabled_provider_falls_back_to_a_compatible_one() {
    let mut openai_only = ProviderSet::none();
    assert!(openai_only.enable("openai"));
    assert!(!openai_only.enable("nope"));
    let r = |p: &str, set| recognize(&CanonicalPath::parse(p.as_bytes()), set, &[]);
    let c = r("/openai/deployments/d/chat/completions", openai_only).unwrap();
    assert_eq!((c.provider.as_str(), c.operation.as_str()), ("openai", "chat"));
    let mut anthropic_only = ProviderSet::none();
    anthropic_only.enable("anthropic");
    assert!(r("/v1/messages", anthropic_only).is_some());
    assert!(r("/v1/chat/completions", anthropic_only).is_none());
}

#[test]
fn extra_routes_come_first() {
    let extra = [ExtraRoute {
        prefix: vec!["llm".into()],
        provider: "internal".into(),
        operation: "chat".into(),
    }];
    for p in ["/llm/v1/chat/completions", "/LLM/x", "//llm/./generate"] {
        let c = recognize(&CanonicalPath::parse(p.as_bytes()), ProviderSet::none(), &extra).unwrap();
        assert_eq!(c.provider, "internal", "{p}");
    }
}

fn cfg(json: &str) -> Config {
    Config::parse(json.as_bytes()).unwrap()
}

fn request<'a>(
    method: &'a str,
    path: &'a [u8],
    authority: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a [u8])> {
    let mut h = vec![
        (":method", method.as_bytes()),
        (":path", path),
        (":authority", authority.as_bytes()),
    ];
    for (k, v) in extra {
        h.push((*k, v.as_bytes()));
    }
    h
}

#[test]
fn any_method_on_a_model_path_is_an_event_but_a_cors_preflight() {
    let c = cfg("{}");
    for method in ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "post", "FOO"] {
        assert!(
            recognize_request(&c, &request(method, b"/v1/chat/completions", "x", &[])).is_some(),
            "{method}"
        );
    }
    let preflight = request(
        "OPTIONS",
        b"/v1/chat/completions",
        "x",
        &[("access-control-request-method", "POST")],
    );
    assert!(recognize_request(&c, &preflight).is_none());
}

#[test]
fn a_path_that_is_not_utf8_is_still_recognised() {
    let c = cfg("{}");
    assert!(recognize_request(&c, &request("POST", b"/v1/chat/completions?x=\xff", "x", &[])).is_some());
    assert!(recognize_request(&c, &request("POST", b"/v1beta/models/\xff:generateContent", "x", &[])).is_some());
    assert!(recognize_request(
        &c,
        &request("POST", b"/v1/chat/com%ffpletions/../completions", "x", &[])
    )
    .is_some());
}

#[test]
fn host_restrictions_cannot_be_misspelt_around() {
    let c = cfg(r#"{"model_calls":{"hosts":["api.openai.com"]}}"#);
    let at = |host: &str| recognize_request(&c, &request("POST", b"/v1/chat/completions", host, &[])).is_some();
    assert!(at("api.openai.com"));
    assert!(!at("other.example"));
    for spelled in [
        "API.OPENAI.COM",
        "api.openai.com.",
        "api.openai.com:443",
        "api.openai.com:443x",
        "user@api.openai.com",
        "api%2eopenai.com",
        "",
    ] {
        assert!(at(spelled), "{spelled:?}");
    }
}

#[test]
fn every_request_to_a_dedicated_model_host_is_an_event() {
    let c = cfg(
        r#"{"model_calls":{"model_hosts":["api.openai.com","*.vllm.internal"],"free":[{"method":"GET","path":"/v1/models"},{"path":"/v1/files/*"}]}}"#,
    );
    let event =
        |method: &str, path: &str, host: &str| recognize_request(&c, &request(method, path.as_bytes(), host, &[]));
    let e = event("POST", "/v1/some/new/endpoint", "api.openai.com").unwrap();
    assert_eq!((e.provider.as_str(), e.operation.as_str()), ("openai", "other"));
    assert_eq!(
        event("GET", "/x", "a.vllm.internal").unwrap().provider,
        UNKNOWN_PROVIDER
    );
    assert!(
        event("GET", "/v1/models", "api.openai.com").is_none(),
        "a free endpoint"
    );
    assert!(
        event("GET", "/V1/Models/", "api.openai.com").is_none(),
        "in any spelling"
    );
    assert!(
        event("POST", "/v1/models", "api.openai.com").is_some(),
        "free only for its method"
    );
    assert!(event("DELETE", "/v1/files/f1", "api.openai.com").is_none());
    assert!(
        event("GET", "/v1/files", "api.openai.com").is_some(),
        "the prefix itself is not under it"
    );
    assert!(
        event("GET", "/anything", "api.openai.com:443x").is_some(),
        "a malformed host is an event"
    );
    assert!(event("GET", "/anything", "other.example").is_none());
    // A free endpoint never shadows a model endpoint, on any host.
    for host in ["api.openai.com", "other.example"] {
        assert!(event("POST", "/v1/files/chat/completions", host).is_some(), "{host}");
    }
    // A recognised path stays an event on a dedicated host even when `hosts` would not list it.
    let c = cfg(r#"{"model_calls":{"hosts":["a.example"],"model_hosts":["b.example"]}}"#);
    assert!(recognize_request(&c, &request("POST", b"/v1/chat/completions", "b.example", &[])).is_some());
}

#[test]
fn public_provider_hosts_name_their_provider() {
    for (host, provider) in [
        ("api.openai.com", "openai"),
        ("corp.openai.azure.com", "azure.ai.openai"),
        ("api.anthropic.com", "anthropic"),
        ("generativelanguage.googleapis.com", "gcp.gemini"),
        ("us-central1-aiplatform.googleapis.com", "gcp.vertex_ai"),
        ("bedrock-runtime.us-east-1.amazonaws.com", "aws.bedrock"),
        ("api.cohere.com", "cohere"),
    ] {
        assert_eq!(provider_of_host(host), Some(provider), "{host}");
    }
    assert_eq!(provider_of_host("vllm.internal"), None);
}

#[test]
fn paths_with_parameters_or_backslashes_are_read_both_ways() {
    let c = cfg("{}");
    let event = |path: &[u8]| recognize_request(&c, &request("POST", path, "x", &[]));
    for (path, model) in [
        (
            &b"/v1beta/models/gemini-2.0-flash;x:generateContent"[..],
            "gemini-2.0-flash;x",
        ),
        (
            b"/v1beta/models/gemini-2.0-flash%3Bx:generateContent",
            "gemini-2.0-flash;x",
        ),
        (b"/v1beta/models/gemini\\2.0-flash:generateContent", "gemini\\2.0-flash"),
        (
            b"/v1beta/models/gemini%5C2.0-flash:streamGenerateContent",
            "gemini\\2.0-flash",
        ),
        (
            b"/v1/projects/p/locations/l/publishers/google/models/gemini-2.0-flash;x:streamGenerateContent",
            "gemini-2.0-flash;x",
        ),
        (b"/model/;x/converse", ";x"),
        (b"/model/.;x/converse", ".;x"),
        (b"/model/anthropic.claude/..;x/converse", "anthropic.claude/..;x"),
    ] {
        let call = event(path).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(path)));
        assert_eq!(
            call.path_model.as_deref(),
            Some(model),
            "{}",
            String::from_utf8_lossy(path)
        );
    }
    // The usual reading still wins when it recognises the path.
    let call = event(b"/v1;x/chat/completions").unwrap();
    assert_eq!(call.operation, "chat");
}
