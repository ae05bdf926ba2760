//! Model-call recognition (SPEC §4): method and path → provider, operation, API family and model.

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

/// Which response formats a call speaks, for the usage readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFamily {
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

/// A configured route for an internal model server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRoute {
    pub path_prefix: String,
    pub provider: String,
    pub operation: String,
}

/// A recognised model call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCall {
    pub provider: String,
    pub operation: String,
    pub family: ApiFamily,
    /// The model, where the API puts it in the path.
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

/// Recognises a model call from the method and the path (the query is ignored).
pub fn recognize(method: &str, path: &str, enabled: ProviderSet, extra: &[ExtraRoute]) -> Option<ModelCall> {
    if method != "POST" {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if let Some(route) = extra.iter().find(|r| path.starts_with(&r.path_prefix)) {
        return Some(call(&route.provider, &route.operation, ApiFamily::OpenAiChat));
    }
    let found = azure(path)
        .or_else(|| vertex(path))
        .or_else(|| gemini(path))
        .or_else(|| bedrock(path))
        .or_else(|| by_suffix(path))?;
    enabled.has(&found.provider).then_some(found)
}

/// Paths recognised by their ending, so that gateways may mount them under a prefix.
fn by_suffix(path: &str) -> Option<ModelCall> {
    const TABLE: [(&str, &str, &str, ApiFamily); 19] = [
        ("/v1/chat/completions", "openai", "chat", ApiFamily::OpenAiChat),
        ("/v1/completions", "openai", "text_completion", ApiFamily::OpenAiChat),
        ("/v1/embeddings", "openai", "embeddings", ApiFamily::OpenAiChat),
        ("/v1/responses", "openai", "chat", ApiFamily::OpenAiResponses),
        (
            "/v1/images/generations",
            "openai",
            "image_generation",
            ApiFamily::OpenAiChat,
        ),
        (
            "/v1/audio/transcriptions",
            "openai",
            "transcription",
            ApiFamily::OpenAiChat,
        ),
        ("/v1/audio/translations", "openai", "translation", ApiFamily::OpenAiChat),
        ("/v1/audio/speech", "openai", "speech", ApiFamily::OpenAiChat),
        ("/v1/moderations", "openai", "moderation", ApiFamily::OpenAiChat),
        ("/v1/messages", "anthropic", "chat", ApiFamily::Anthropic),
        ("/v1/complete", "anthropic", "text_completion", ApiFamily::Anthropic),
        ("/api/chat", "ollama", "chat", ApiFamily::Ollama),
        ("/api/generate", "ollama", "text_completion", ApiFamily::Ollama),
        ("/api/embed", "ollama", "embeddings", ApiFamily::Ollama),
        ("/api/embeddings", "ollama", "embeddings", ApiFamily::Ollama),
        ("/v2/chat", "cohere", "chat", ApiFamily::Cohere),
        ("/v2/embed", "cohere", "embeddings", ApiFamily::Cohere),
        ("/v2/rerank", "cohere", "rerank", ApiFamily::Cohere),
        ("/v1/chat", "cohere", "chat", ApiFamily::Cohere),
    ];
    const COHERE_V1: [(&str, &str); 2] = [("/v1/embed", "embeddings"), ("/v1/rerank", "rerank")];
    if let Some((_, provider, op, family)) = TABLE.iter().find(|(suffix, ..)| path.ends_with(suffix)) {
        return Some(call(provider, op, *family));
    }
    if path.contains("/v1/audio/") {
        return Some(call("openai", "audio", ApiFamily::OpenAiChat));
    }
    COHERE_V1
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix))
        .map(|(_, op)| call("cohere", op, ApiFamily::Cohere))
}

/// `/openai/deployments/{deployment}/{operation...}`: the deployment names the model.
fn azure(path: &str) -> Option<ModelCall> {
    let rest = path.split_once("/openai/deployments/")?.1;
    let (deployment, op_path) = rest.split_once('/')?;
    if deployment.is_empty() {
        return None;
    }
    let (operation, family) = match op_path {
        "chat/completions" => ("chat", ApiFamily::OpenAiChat),
        "completions" => ("text_completion", ApiFamily::OpenAiChat),
        "embeddings" => ("embeddings", ApiFamily::OpenAiChat),
        "responses" => ("chat", ApiFamily::OpenAiResponses),
        "images/generations" => ("image_generation", ApiFamily::OpenAiChat),
        p if p.starts_with("audio/") => ("audio", ApiFamily::OpenAiChat),
        _ => return None,
    };
    let mut c = call("azure.ai.openai", operation, family);
    c.path_model = Some(percent_decode(deployment));
    Some(c)
}

/// Gemini method verbs after `models/{model}:`.
fn gemini_verb(verb: &str) -> Option<(&'static str, bool)> {
    match verb {
        "generateContent" => Some(("generate_content", false)),
        "streamGenerateContent" => Some(("generate_content", true)),
        "embedContent" | "batchEmbedContents" => Some(("embeddings", false)),
        "predict" | "rawPredict" => Some(("generate_content", false)),
        "streamRawPredict" => Some(("generate_content", true)),
        _ => None,
    }
}

/// `.../projects/{p}/locations/{l}/publishers/{publisher}/models/{model}:{verb}`.
fn vertex(path: &str) -> Option<ModelCall> {
    let rest = path.split_once("/publishers/")?.1;
    let (publisher, rest) = rest.split_once("/models/")?;
    let (model, verb) = rest.split_once(':')?;
    let (operation, stream) = gemini_verb(verb)?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    let family = if publisher == "anthropic" {
        ApiFamily::Anthropic
    } else {
        ApiFamily::Gemini
    };
    let mut c = call("gcp.vertex_ai", operation, family);
    c.path_model = Some(percent_decode(model));
    c.path_stream = stream;
    Some(c)
}

/// `/v1beta/models/{model}:{verb}` (also `/v1/` and `/v1alpha/`).
fn gemini(path: &str) -> Option<ModelCall> {
    let rest = ["/v1beta/models/", "/v1/models/", "/v1alpha/models/"]
        .iter()
        .find_map(|p| path.split_once(p).map(|(_, r)| r))?;
    let (model, verb) = rest.split_once(':')?;
    let (operation, stream) = gemini_verb(verb)?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    let mut c = call("gcp.gemini", operation, ApiFamily::Gemini);
    c.path_model = Some(percent_decode(model));
    c.path_stream = stream;
    Some(c)
}

/// `/model/{modelId}/{invoke|invoke-with-response-stream|converse|converse-stream}`.
fn bedrock(path: &str) -> Option<ModelCall> {
    let rest = path.split_once("/model/")?.1;
    let (model, verb) = rest.rsplit_once('/')?;
    let (family, stream) = match verb {
        "invoke" => (ApiFamily::BedrockInvoke, false),
        "invoke-with-response-stream" => (ApiFamily::BedrockInvoke, true),
        "converse" => (ApiFamily::BedrockConverse, false),
        "converse-stream" => (ApiFamily::BedrockConverse, true),
        _ => return None,
    };
    if model.is_empty() {
        return None;
    }
    let mut c = call("aws.bedrock", "chat", family);
    c.path_model = Some(percent_decode(model));
    c.path_stream = stream;
    Some(c)
}

/// Decodes `%XX` escapes (Bedrock model ids and ARNs arrive URL-encoded). Invalid escapes stay as written.
pub fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str) -> Option<(String, String, Option<String>)> {
        recognize("POST", path, ProviderSet::all(), &[]).map(|c| (c.provider, c.operation, c.path_model))
    }

    fn some(p: &str, o: &str, m: Option<&str>) -> Option<(String, String, Option<String>)> {
        Some((p.into(), o.into(), m.map(String::from)))
    }

    #[test]
    fn recognises_every_provider() {
        assert_eq!(rec("/v1/chat/completions"), some("openai", "chat", None));
        assert_eq!(rec("/proxy/v1/chat/completions?x=1"), some("openai", "chat", None));
        assert_eq!(rec("/v1/completions"), some("openai", "text_completion", None));
        assert_eq!(rec("/v1/embeddings"), some("openai", "embeddings", None));
        assert_eq!(rec("/v1/responses"), some("openai", "chat", None));
        assert_eq!(rec("/v1/images/generations"), some("openai", "image_generation", None));
        assert_eq!(rec("/v1/audio/transcriptions"), some("openai", "transcription", None));
        assert_eq!(rec("/v1/moderations"), some("openai", "moderation", None));
        assert_eq!(
            rec("/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-06-01"),
            some("azure.ai.openai", "chat", Some("gpt4o-prod"))
        );
        assert_eq!(rec("/v1/messages"), some("anthropic", "chat", None));
        assert_eq!(rec("/v1/complete"), some("anthropic", "text_completion", None));
        assert_eq!(
            rec("/v1beta/models/gemini-2.0-flash:generateContent"),
            some("gcp.gemini", "generate_content", Some("gemini-2.0-flash"))
        );
        assert_eq!(
            rec("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"),
            some("gcp.gemini", "generate_content", Some("gemini-2.0-flash"))
        );
        assert_eq!(
            rec("/v1beta/models/text-embedding-004:embedContent"),
            some("gcp.gemini", "embeddings", Some("text-embedding-004"))
        );
        assert_eq!(
            rec("/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent"),
            some("gcp.vertex_ai", "generate_content", Some("gemini-1.5-pro"))
        );
        assert_eq!(
            rec("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke"),
            some("aws.bedrock", "chat", Some("anthropic.claude-3-5-sonnet-20240620-v1:0"))
        );
        assert_eq!(
            rec("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.meta.llama3/converse-stream"),
            some(
                "aws.bedrock",
                "chat",
                Some("arn:aws:bedrock:us-east-1:123:inference-profile/us.meta.llama3")
            )
        );
        assert_eq!(rec("/api/chat"), some("ollama", "chat", None));
        assert_eq!(rec("/api/generate"), some("ollama", "text_completion", None));
        assert_eq!(rec("/api/embed"), some("ollama", "embeddings", None));
        assert_eq!(rec("/v2/chat"), some("cohere", "chat", None));
        assert_eq!(rec("/v1/embed"), some("cohere", "embeddings", None));
        assert_eq!(rec("/v2/rerank"), some("cohere", "rerank", None));
    }

    #[test]
    fn streaming_verbs_are_known_from_the_path() {
        let c = recognize("POST", "/model/m/converse-stream", ProviderSet::all(), &[]).unwrap();
        assert!(c.path_stream);
        assert_eq!(c.family, ApiFamily::BedrockConverse);
        let c = recognize(
            "POST",
            "/v1beta/models/g:streamGenerateContent",
            ProviderSet::all(),
            &[],
        )
        .unwrap();
        assert!(c.path_stream);
        let c = recognize(
            "POST",
            "/v1/projects/p/locations/l/publishers/anthropic/models/claude:streamRawPredict",
            ProviderSet::all(),
            &[],
        )
        .unwrap();
        assert_eq!(c.family, ApiFamily::Anthropic);
    }

    #[test]
    fn non_model_paths_pass() {
        for p in [
            "/",
            "/healthz",
            "/v1/models",
            "/v1/messages/batches",
            "/v1/chat/completions/abc",
            "/v1beta/models/g:countTokens",
            "/model/x/list",
            "/openai/deployments/",
            "/api/tags",
        ] {
            assert_eq!(rec(p), None, "{p}");
        }
        assert_eq!(recognize("GET", "/v1/chat/completions", ProviderSet::all(), &[]), None);
    }

    #[test]
    fn providers_can_be_restricted() {
        let mut set = ProviderSet::none();
        assert!(set.enable("anthropic"));
        assert!(!set.enable("nope"));
        assert!(recognize("POST", "/v1/messages", set, &[]).is_some());
        assert!(recognize("POST", "/v1/chat/completions", set, &[]).is_none());
    }

    #[test]
    fn extra_routes_come_first() {
        let extra = [ExtraRoute {
            path_prefix: "/llm/".into(),
            provider: "internal".into(),
            operation: "chat".into(),
        }];
        let c = recognize("POST", "/llm/v1/chat/completions", ProviderSet::none(), &extra).unwrap();
        assert_eq!(c.provider, "internal");
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%3Ab"), "a:b");
        assert_eq!(percent_decode("a%zzb%"), "a%zzb%");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }
}
