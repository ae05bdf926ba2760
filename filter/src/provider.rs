//! AI-event recognition: a request's method, canonical path ([`CanonicalPath`]) and host
//! ([`Host`]) → provider, operation, API family and model. Paths are matched as the providers'
//! API references define them, on decoded and normalised segments, fixed segments in any case.
//! Any method on a recognised path is an event (a CORS preflight is not); on a dedicated model
//! host (`model_calls.model_hosts`) every request is, but the configured free endpoints.

use crate::authority::Host;
use crate::config::Config;
use crate::host::{header_bytes, header_text, Headers};
use crate::path::{segments_match, CanonicalPath};

/// Provider names, as OpenTelemetry `gen_ai.provider.name` spells them.
pub const PROVIDER_NAMES: [&str; 8] = [
    "openai",
    "azure.ai.openai",
    "anthropic",
    "gcp.gemini",
    "gcp.vertex_ai",
    "aws.bedrock",
    "ollama",
    "cohere",
];

/// The provider of an event on a dedicated model host whose path is not in the table, when the
/// host is not one of the providers' own.
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// Which response formats a call speaks, for the usage readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFamily {
    /// OpenAI Chat Completions and every API shaped like it (embeddings, images, audio, OpenAI-compatible servers).
    OpenAiChat,
    OpenAiResponses,
    Anthropic,
    Gemini,
    BedrockConverse,
    BedrockInvoke,
    Ollama,
    Cohere,
}

impl ApiFamily {
    /// Every family, for tables and tests that must cover them all.
    pub const ALL: [ApiFamily; 8] = [
        ApiFamily::OpenAiChat,
        ApiFamily::OpenAiResponses,
        ApiFamily::Anthropic,
        ApiFamily::Gemini,
        ApiFamily::BedrockConverse,
        ApiFamily::BedrockInvoke,
        ApiFamily::Ollama,
        ApiFamily::Cohere,
    ];
}

/// The set of built-in providers that `model_calls.providers` enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSet(u8);

impl ProviderSet {
    pub fn all() -> Self {
        ProviderSet(0xff)
    }
    pub fn none() -> Self {
        ProviderSet(0)
    }
    /// Enables a provider by name; false if the name is unknown.
    pub fn enable(&mut self, name: &str) -> bool {
        match PROVIDER_NAMES.iter().position(|n| *n == name) {
            Some(i) => {
                self.0 |= 1 << i;
                true
            }
            None => false,
        }
    }
    fn has(self, name: &str) -> bool {
        PROVIDER_NAMES
            .iter()
            .position(|n| *n == name)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

/// A configured route for an internal model server, read as OpenAI-compatible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRoute {
    /// The prefix's canonical segments.
    pub prefix: Vec<String>,
    pub provider: String,
    pub operation: String,
}

/// An endpoint that runs no model, which passes on a dedicated host or a model route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeEndpoint {
    /// An HTTP method, or `*` for any.
    pub method: String,
    /// Canonical segments; a last segment `*` matches any rest of the path.
    pub segments: Vec<String>,
}

impl FreeEndpoint {
    fn matches(&self, method: &str, path: &CanonicalPath) -> bool {
        if self.method != "*" && !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let segs = path.segments();
        match self.segments.split_last() {
            Some((last, head)) if last == "*" => {
                segs.len() > head.len() && segs.iter().zip(head).all(|(s, p)| s.eq_ignore_ascii_case(p))
            }
            _ => {
                segs.len() == self.segments.len()
                    && segs.iter().zip(&self.segments).all(|(s, p)| s.eq_ignore_ascii_case(p))
            }
        }
    }
}

/// A recognised AI event's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCall {
    pub provider: String,
    pub operation: String,
    pub family: ApiFamily,
    /// The model, where the API puts it in the path (or, for realtime sessions, the query).
    pub path_model: Option<String>,
    /// True when the path alone says the response streams.
    pub path_stream: bool,
}

fn call(provider: &str, operation: &str, family: ApiFamily) -> ModelCall {
    ModelCall {
        provider: provider.to_string(),
        operation: operation.to_string(),
        family,
        path_model: None,
        path_stream: false,
    }
}

/// The provider name of agent tool calls (MCP requests).
pub const MCP_PROVIDER: &str = "mcp";

fn is_preflight(method: &str, headers: &Headers) -> bool {
    method.eq_ignore_ascii_case("OPTIONS")
        && headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("access-control-request-method"))
}

/// A request's `:method`, `:path` and `:authority`, canonicalised once for every question
/// asked of them.
#[derive(Debug)]
pub struct RequestTarget<'a> {
    method: &'a str,
    target: &'a [u8],
    path: CanonicalPath,
    authority: Option<&'a [u8]>,
    /// Parsed from `authority` when a host list is consulted (most configurations list none).
    host: std::cell::OnceCell<Host>,
    preflight: bool,
}

impl<'a> RequestTarget<'a> {
    pub fn of(headers: &'a Headers) -> RequestTarget<'a> {
        let method = header_text(headers, ":method").unwrap_or("");
        let target = header_bytes(headers, ":path").unwrap_or(b"/");
        RequestTarget {
            method,
            target,
            path: CanonicalPath::parse(target),
            authority: header_bytes(headers, ":authority"),
            host: std::cell::OnceCell::new(),
            preflight: is_preflight(method, headers),
        }
    }

    fn host(&self) -> &Host {
        self.host.get_or_init(|| Host::parse(self.authority))
    }
}

/// Whether the request goes to one of `mcp.endpoints` (path prefix by canonical segments, case
/// aside, and host when listed). Every method counts but a CORS preflight.
pub fn is_mcp_request(cfg: &Config, headers: &Headers) -> bool {
    is_mcp_target(cfg, &RequestTarget::of(headers))
}

/// [`is_mcp_request`] on a target read before.
pub fn is_mcp_target(cfg: &Config, request: &RequestTarget) -> bool {
    if cfg.mcp.endpoints.is_empty() || request.preflight {
        return false;
    }
    let segments = request.path.segments();
    cfg.mcp.endpoints.iter().any(|e| {
        segments.len() >= e.prefix.len()
            && segments.iter().zip(&e.prefix).all(|(s, p)| s.eq_ignore_ascii_case(p))
            && (e.hosts.is_empty() || request.host().is_in(&e.hosts))
    })
}

/// The event of an MCP request, before its body names the method.
pub fn mcp_call() -> ModelCall {
    call(MCP_PROVIDER, "mcp", ApiFamily::OpenAiChat)
}

/// Recognises a model call from a request's `:method`, `:path` and `:authority`.
pub fn recognize_request(cfg: &Config, headers: &Headers) -> Option<ModelCall> {
    recognize_target(cfg, &RequestTarget::of(headers))
}

/// [`recognize_request`] on a target read before.
pub fn recognize_target(cfg: &Config, request: &RequestTarget) -> Option<ModelCall> {
    if request.preflight {
        return None;
    }
    let path = &request.path;
    let dedicated = !cfg.model_hosts.is_empty() && request.host().is_in(&cfg.model_hosts);
    // Either reading of a path with `;` or `\` that names a model endpoint makes it an event.
    let found = recognize(path, cfg.providers, &cfg.extra_routes).or_else(|| {
        CanonicalPath::parse_literal(request.target)
            .and_then(|literal| recognize(&literal, cfg.providers, &cfg.extra_routes))
    });
    if let Some(found) = found {
        let restricted = !cfg.hosts.is_empty() && !request.host().is_in(&cfg.hosts);
        if !restricted || dedicated {
            return Some(found);
        }
        return None;
    }
    // The free endpoints are the exceptions to "every request to a dedicated host": a model
    // endpoint stays an event whatever they say.
    if !dedicated || cfg.free_endpoints.iter().any(|f| f.matches(request.method, path)) {
        return None;
    }
    let provider = request
        .host()
        .name()
        .and_then(provider_of_host)
        .unwrap_or(UNKNOWN_PROVIDER);
    Some(call(provider, "other", ApiFamily::OpenAiChat))
}

/// The provider whose public API a host name belongs to.
pub fn provider_of_host(host: &str) -> Option<&'static str> {
    let ends = |suffix: &str| host == suffix.trim_start_matches('.') || host.ends_with(suffix);
    if host == "api.openai.com" {
        Some("openai")
    } else if ends(".openai.azure.com") || ends(".cognitiveservices.azure.com") {
        Some("azure.ai.openai")
    } else if host == "api.anthropic.com" {
        Some("anthropic")
    } else if host == "generativelanguage.googleapis.com" {
        Some("gcp.gemini")
    } else if host == "aiplatform.googleapis.com" || ends("-aiplatform.googleapis.com") || ends(".rep.googleapis.com") {
        Some("gcp.vertex_ai")
    } else if host.starts_with("bedrock-runtime.") || host.starts_with("bedrock-agent-runtime.") {
        Some("aws.bedrock")
    } else if host == "api.cohere.com" || host == "api.cohere.ai" {
        Some("cohere")
    } else {
        None
    }
}

/// Recognises a model-running path. Candidates are tried from the most specific; the first whose
/// provider is enabled wins, so an Azure-style path is still an OpenAI-compatible event when only
/// `openai` is enabled.
pub fn recognize(path: &CanonicalPath, enabled: ProviderSet, extra: &[ExtraRoute]) -> Option<ModelCall> {
    let segs = path.segments();
    if let Some(route) = extra
        .iter()
        .find(|r| segs.len() >= r.prefix.len() && segs.iter().zip(&r.prefix).all(|(s, p)| s.eq_ignore_ascii_case(p)))
    {
        return Some(call(&route.provider, &route.operation, ApiFamily::OpenAiChat));
    }
    // In this order, and only as far as the first enabled match: most requests match none.
    type Matcher = fn(&CanonicalPath) -> Option<ModelCall>;
    const MATCHERS: [Matcher; 9] = [
        |p| gemini_openai(p.segments()),
        |p| vertex(p.segments()),
        |p| gemini(p.segments()),
        |p| bedrock(p.segments()),
        azure,
        |p| anthropic(p.segments()),
        |p| ollama(p.segments()),
        |p| cohere(p.segments()),
        openai_suffix,
    ];
    MATCHERS
        .iter()
        .filter_map(|matcher| matcher(path))
        .find(|c| enabled.has(&c.provider))
}

/// One OpenAI-shaped endpoint: the path's segments (`*` = any one), operation, family, whether
/// the path alone says it streams, and whether it only counts as the whole path (generic words).
type OpenAiEndpoint = (&'static [&'static str], &'static str, ApiFamily, bool);

/// OpenAI's model-running endpoints after the version segment, longest first. Also served
/// unversioned by OpenAI-compatible servers (LiteLLM, vLLM) and under Azure's `/openai/...`.
const OPENAI_ENDPOINTS: &[OpenAiEndpoint] = &[
    (
        &["threads", "*", "runs", "*", "submit_tool_outputs"],
        "invoke_agent",
        ApiFamily::OpenAiChat,
        false,
    ),
    (
        &["extensions", "chat", "completions"],
        "chat",
        ApiFamily::OpenAiChat,
        false,
    ),
    (
        &["realtime", "calls", "*", "accept"],
        "realtime",
        ApiFamily::OpenAiChat,
        false,
    ),
    (&["threads", "*", "runs"], "invoke_agent", ApiFamily::OpenAiChat, false),
    (
        &["videos", "*", "remix"],
        "video_generation",
        ApiFamily::OpenAiChat,
        false,
    ),
    (&["evals", "*", "runs"], "evaluation", ApiFamily::OpenAiChat, false),
    (
        &["video", "generations", "jobs"],
        "video_generation",
        ApiFamily::OpenAiChat,
        false,
    ),
    (&["chat", "completions"], "chat", ApiFamily::OpenAiChat, false),
    (&["responses", "compact"], "chat", ApiFamily::OpenAiResponses, false),
    (
        &["images", "generations"],
        "image_generation",
        ApiFamily::OpenAiChat,
        false,
    ),
    (&["images", "edits"], "image_edit", ApiFamily::OpenAiChat, false),
    (
        &["images", "variations"],
        "image_variation",
        ApiFamily::OpenAiChat,
        false,
    ),
    (&["audio", "speech"], "speech", ApiFamily::OpenAiChat, false),
    (
        &["audio", "transcriptions"],
        "transcription",
        ApiFamily::OpenAiChat,
        false,
    ),
    (&["audio", "translations"], "translation", ApiFamily::OpenAiChat, false),
    (&["audio", "*"], "audio", ApiFamily::OpenAiChat, false),
    (&["threads", "runs"], "invoke_agent", ApiFamily::OpenAiChat, false),
    (
        &["realtime", "sessions"],
        "realtime_session",
        ApiFamily::OpenAiChat,
        false,
    ),
    (
        &["realtime", "client_secrets"],
        "realtime_session",
        ApiFamily::OpenAiChat,
        false,
    ),
    (
        &["realtime", "transcription_sessions"],
        "realtime_session",
        ApiFamily::OpenAiChat,
        false,
    ),
    (&["realtime", "calls"], "realtime", ApiFamily::OpenAiChat, false),
    (&["videos", "edits"], "video_generation", ApiFamily::OpenAiChat, false),
    (
        &["videos", "extensions"],
        "video_generation",
        ApiFamily::OpenAiChat,
        false,
    ),
    (&["fine_tuning", "jobs"], "fine_tuning", ApiFamily::OpenAiChat, false),
    (&["completions"], "text_completion", ApiFamily::OpenAiChat, false),
    (&["embeddings"], "embeddings", ApiFamily::OpenAiChat, false),
    (&["responses"], "chat", ApiFamily::OpenAiResponses, false),
    (&["moderations"], "moderation", ApiFamily::OpenAiChat, false),
    (&["batches"], "batch", ApiFamily::OpenAiChat, false),
    (&["videos"], "video_generation", ApiFamily::OpenAiChat, false),
    (&["realtime"], "realtime", ApiFamily::OpenAiChat, false),
];

/// Model-running paths of OpenAI-compatible servers whose words are too common to match as a
/// suffix: they count only as the whole path (vLLM, LiteLLM, SageMaker-style `/invocations`).
const WHOLE_PATHS: &[(&[&str], &str)] = &[
    (&["rerank"], "rerank"),
    (&["score"], "score"),
    (&["v1", "score"], "score"),
    (&["pooling"], "pooling"),
    (&["classify"], "classify"),
    (&["invocations"], "invocations"),
    (&["inference", "v1", "generate"], "text_completion"),
    (&["v1", "chat", "completions", "batch"], "chat"),
];

/// The OpenAI endpoint that `rest` (the segments after a version or `/openai/`) is exactly.
fn openai_endpoint(rest: &[String]) -> Option<&'static OpenAiEndpoint> {
    OPENAI_ENDPOINTS
        .iter()
        .find(|(pattern, ..)| pattern.len() == rest.len() && segments_match(rest, pattern))
}

/// OpenAI-shaped paths recognised by their ending, so they may be mounted under any prefix.
fn openai_suffix(path: &CanonicalPath) -> Option<ModelCall> {
    let segs = path.segments();
    if let Some((_, op)) = WHOLE_PATHS
        .iter()
        .find(|(p, _)| p.len() == segs.len() && segments_match(segs, p))
    {
        return Some(call("openai", op, ApiFamily::OpenAiChat));
    }
    let longest = segs.len().min(5);
    let (_, op, family, _) = (1..=longest)
        .rev()
        .find_map(|k| openai_endpoint(segs.get(segs.len() - k..)?))?;
    let mut c = call("openai", op, *family);
    if *op == "realtime" {
        c.path_model = path.query_param("model").filter(|m| !m.is_empty());
    }
    Some(c)
}

/// Azure OpenAI: `/openai/deployments/{deployment}/{op}`, `/openai/{op}` (responses, batches,
/// assistants, realtime) and the v1 API `/openai/v1/{op}`. The deployment names the model.
fn azure(path: &CanonicalPath) -> Option<ModelCall> {
    let segs = path.segments();
    let at = segs.iter().position(|s| s.eq_ignore_ascii_case("openai"))?;
    let rest = segs.get(at + 1..)?;
    let realtime_sessions: [&[&str]; 2] = [&["realtimeapi", "sessions"], &["realtimeapi", "transcription_sessions"]];
    if realtime_sessions.iter().any(|p| segments_match(rest, p)) {
        return Some(call("azure.ai.openai", "realtime_session", ApiFamily::OpenAiChat));
    }
    let (deployment, op_rest) = match rest.first() {
        Some(d) if d.eq_ignore_ascii_case("deployments") => (rest.get(1), rest.get(2..)?),
        Some(v) if v.eq_ignore_ascii_case("v1") => (None, rest.get(1..)?),
        _ => (None, rest),
    };
    let (_, op, family, _) = openai_endpoint(op_rest)?;
    let mut c = call("azure.ai.openai", op, *family);
    c.path_model = deployment
        .cloned()
        .or_else(|| {
            (*op == "realtime")
                .then(|| path.query_param("deployment").or_else(|| path.query_param("model")))
                .flatten()
        })
        .filter(|m| !m.is_empty());
    Some(c)
}

/// Gemini's OpenAI-compatible API, `/v1beta/openai/{op}`.
fn gemini_openai(segs: &[String]) -> Option<ModelCall> {
    let at = segs.windows(2).position(|w| {
        w.first().is_some_and(|v| v.eq_ignore_ascii_case("v1beta"))
            && w.get(1).is_some_and(|o| o.eq_ignore_ascii_case("openai"))
    })?;
    let (_, op, family, _) = openai_endpoint(segs.get(at + 2..)?)?;
    Some(call("gcp.gemini", op, *family))
}

/// Verbs after `{model}:` on Gemini and Vertex that run a model: (operation, streams).
fn google_verb(verb: &str) -> Option<(&'static str, bool)> {
    const VERBS: [(&str, &str, bool); 20] = [
        ("generateContent", "generate_content", false),
        ("streamGenerateContent", "generate_content", true),
        ("batchGenerateContent", "generate_content", false),
        ("generateAnswer", "generate_content", false),
        ("embedContent", "embeddings", false),
        ("batchEmbedContents", "embeddings", false),
        ("asyncBatchEmbedContent", "embeddings", false),
        ("predict", "generate_content", false),
        ("predictLongRunning", "generate_content", false),
        ("rawPredict", "generate_content", false),
        ("streamRawPredict", "generate_content", true),
        ("serverStreamingPredict", "generate_content", true),
        ("directPredict", "generate_content", false),
        ("directRawPredict", "generate_content", false),
        ("explain", "generate_content", false),
        ("generateText", "text_completion", false),
        ("generateMessage", "chat", false),
        ("embedText", "embeddings", false),
        ("batchEmbedText", "embeddings", false),
        ("query", "invoke_agent", false),
    ];
    VERBS
        .iter()
        .find(|(v, ..)| v.eq_ignore_ascii_case(verb))
        .map(|(_, op, stream)| (*op, *stream))
}

/// Splits `{name}:{verb}` at its last `:`.
fn name_and_verb(segment: &str) -> Option<(&str, &str)> {
    let at = segment.bytes().rposition(|b| b == b':')?;
    let (name, verb) = (segment.get(..at)?, segment.get(at + 1..)?);
    (!name.is_empty() && !verb.is_empty()).then_some((name, verb))
}

/// Vertex AI: `.../publishers/{publisher}/models/{model}:{verb}`, `.../endpoints/{endpoint}:{verb}`
/// (the OpenAI-compatible `endpoints/openapi/chat/completions` too), `reasoningEngines/{id}:query`
/// and `:streamQuery`, `batchPredictionJobs`, and the live API's `LlmBidiService`.
fn vertex(segs: &[String]) -> Option<ModelCall> {
    let is = |i: usize, word: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(word));
    let last = segs.len().checked_sub(1)?;
    let last_segment = segs.get(last)?;
    if last_segment.eq_ignore_ascii_case("BidiGenerateContent")
        && segs.iter().any(|s| {
            s.to_ascii_lowercase().starts_with("google.cloud.aiplatform.")
                && s.to_ascii_lowercase().ends_with(".llmbidiservice")
        })
    {
        let mut c = call("gcp.vertex_ai", "generate_content", ApiFamily::Gemini);
        c.path_stream = true;
        return Some(c);
    }
    if let Some(at) = segs.iter().position(|s| s.eq_ignore_ascii_case("endpoints")) {
        if is(at + 1, "openapi") {
            let (_, op, family, _) = openai_endpoint(segs.get(at + 2..)?)?;
            return Some(call("gcp.vertex_ai", op, *family));
        }
    }
    if is(last, "batchPredictionJobs") {
        return Some(call("gcp.vertex_ai", "batch", ApiFamily::Gemini));
    }
    let (name, verb) = name_and_verb(last_segment)?;
    let (op, stream) = if verb.eq_ignore_ascii_case("streamQuery") {
        ("invoke_agent", true)
    } else {
        google_verb(verb)?
    };
    let parent = last.checked_sub(1).and_then(|i| segs.get(i))?;
    let family = if parent.eq_ignore_ascii_case("models") {
        if last < 3 || !is(last - 3, "publishers") {
            return None;
        }
        let publisher = segs.get(last - 2)?;
        if publisher.eq_ignore_ascii_case("anthropic") {
            if name.eq_ignore_ascii_case("count-tokens") {
                return None;
            }
            ApiFamily::Anthropic
        } else {
            ApiFamily::Gemini
        }
    } else if parent.eq_ignore_ascii_case("endpoints") || parent.eq_ignore_ascii_case("reasoningEngines") {
        ApiFamily::Gemini
    } else {
        return None;
    };
    let mut c = call("gcp.vertex_ai", op, family);
    if parent.eq_ignore_ascii_case("models") {
        c.path_model = Some(name.to_string());
    }
    c.path_stream = stream;
    Some(c)
}

/// The Gemini API: `/{v1,v1beta,v1alpha}/{models,tunedModels,dynamic}/{model}:{verb}` (also
/// unversioned, as LiteLLM serves it), and the live API's `GenerativeService.BidiGenerateContent`.
fn gemini(segs: &[String]) -> Option<ModelCall> {
    let last = segs.last()?;
    const LIVE_API: &str = "google.ai.generativelanguage.";
    let live = last
        .get(..LIVE_API.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(LIVE_API))
        && last.to_ascii_lowercase().contains(".generativeservice.bidigenerate");
    if live {
        let mut c = call("gcp.gemini", "generate_content", ApiFamily::Gemini);
        c.path_stream = true;
        return Some(c);
    }
    let parent = segs.len().checked_sub(2).and_then(|i| segs.get(i))?;
    if !["models", "tunedModels", "dynamic"]
        .iter()
        .any(|p| parent.eq_ignore_ascii_case(p))
    {
        return None;
    }
    // `publishers/{p}/models/...` is Vertex's, whose free verbs stay free.
    let under_publisher = segs
        .len()
        .checked_sub(4)
        .and_then(|i| segs.get(i))
        .is_some_and(|s| s.eq_ignore_ascii_case("publishers"));
    if under_publisher {
        return None;
    }
    let (model, verb) = name_and_verb(last)?;
    let (op, stream) = google_verb(verb)?;
    let mut c = call("gcp.gemini", op, ApiFamily::Gemini);
    c.path_model = Some(model.to_string());
    c.path_stream = stream;
    Some(c)
}

/// Bedrock runtime `/model/{modelId}/{verb}` (the id may hold `/` once decoded),
/// `/async-invoke`, guardrails, and the agent runtime's model-running operations.
fn bedrock(segs: &[String]) -> Option<ModelCall> {
    let bedrock = |op: &str, family: ApiFamily| Some(call("aws.bedrock", op, family));
    const AGENT_RUNTIME: [(&[&str], &str); 10] = [
        (
            &["agents", "*", "agentAliases", "*", "sessions", "*", "text"],
            "invoke_agent",
        ),
        (&["flows", "*", "aliases", "*"], "invoke_agent"),
        (&["flows", "*", "aliases", "*", "executions"], "invoke_agent"),
        (&["retrieveAndGenerate"], "chat"),
        (&["retrieveAndGenerateStream"], "chat"),
        (&["knowledgebases", "*", "retrieve"], "retrieval"),
        (&["agenticRetrieveStream"], "retrieval"),
        (&["generateQuery"], "text_completion"),
        (&["optimize-prompt"], "optimize_prompt"),
        (&["guardrail", "*", "version", "*", "apply"], "guardrail"),
    ];
    if let Some((_, op)) = AGENT_RUNTIME.iter().find(|(p, _)| ends_with(segs, p)) {
        return bedrock(op, ApiFamily::BedrockConverse);
    }
    if ends_with(segs, &["async-invoke"]) {
        return bedrock("batch", ApiFamily::BedrockInvoke);
    }
    if ends_with(segs, &["guardrail-checks", "invoke"]) {
        return bedrock("guardrail", ApiFamily::BedrockConverse);
    }
    let at = segs.iter().position(|s| s.eq_ignore_ascii_case("model"))?;
    let (verb, model_segs) = segs.get(at + 1..)?.split_last()?;
    let (family, stream) = match verb.to_ascii_lowercase().as_str() {
        "invoke" => (ApiFamily::BedrockInvoke, false),
        "invoke-with-response-stream" => (ApiFamily::BedrockInvoke, true),
        "invoke-with-bidirectional-stream" => (ApiFamily::BedrockInvoke, true),
        "converse" => (ApiFamily::BedrockConverse, false),
        "converse-stream" => (ApiFamily::BedrockConverse, true),
        _ => return None,
    };
    if model_segs.is_empty() {
        return None;
    }
    let mut c = call("aws.bedrock", "chat", family);
    c.path_model = Some(model_segs.join("/"));
    c.path_stream = stream;
    Some(c)
}

/// Whether the path ends with `pattern` (`*` = any one segment). Compares from the end, so most
/// paths are told apart by their last segment alone.
fn ends_with(segs: &[String], pattern: &[&str]) -> bool {
    segs.len() >= pattern.len()
        && segs
            .iter()
            .rev()
            .zip(pattern.iter().rev())
            .all(|(s, p)| *p == "*" || s.eq_ignore_ascii_case(p))
}

/// Anthropic: `/v1/messages`, `/v1/messages/batches`, `/v1/complete`.
fn anthropic(segs: &[String]) -> Option<ModelCall> {
    let (op, family) = if ends_with(segs, &["v1", "messages"]) {
        ("chat", ApiFamily::Anthropic)
    } else if ends_with(segs, &["v1", "messages", "batches"]) {
        ("batch", ApiFamily::Anthropic)
    } else if ends_with(segs, &["v1", "complete"]) {
        ("text_completion", ApiFamily::Anthropic)
    } else {
        return None;
    };
    Some(call("anthropic", op, family))
}

/// Ollama's native API: `/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`.
fn ollama(segs: &[String]) -> Option<ModelCall> {
    const OLLAMA: [(&[&str], &str); 4] = [
        (&["api", "chat"], "chat"),
        (&["api", "generate"], "text_completion"),
        (&["api", "embed"], "embeddings"),
        (&["api", "embeddings"], "embeddings"),
    ];
    let (_, op) = OLLAMA.iter().find(|(p, _)| ends_with(segs, p))?;
    Some(call("ollama", op, ApiFamily::Ollama))
}

/// Cohere v1 and v2.
fn cohere(segs: &[String]) -> Option<ModelCall> {
    const COHERE: [(&[&str], &str); 12] = [
        (&["v1", "chat"], "chat"),
        (&["v2", "chat"], "chat"),
        (&["v1", "generate"], "text_completion"),
        (&["v1", "embed"], "embeddings"),
        (&["v2", "embed"], "embeddings"),
        (&["v1", "rerank"], "rerank"),
        (&["v2", "rerank"], "rerank"),
        (&["v1", "classify"], "classify"),
        (&["v1", "summarize"], "summarize"),
        (&["v1", "embed-jobs"], "embeddings"),
        (&["v2", "batches"], "batch"),
        (&["v2", "audio", "transcriptions"], "transcription"),
    ];
    let (_, op) = COHERE.iter().find(|(p, _)| ends_with(segs, p))?;
    Some(call("cohere", op, ApiFamily::Cohere))
}

#[cfg(test)]
mod tests;
