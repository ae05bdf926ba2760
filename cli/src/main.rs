//! `ai-attribution`: check a configuration, report chargeback from access logs, trace one call
//! across hops, and find spikes.

mod check;
mod explain;
mod fields;
mod html;
mod input;
mod output;
mod record;
mod report;
mod spikes;
mod time;
mod trace;

use clap::{Parser, Subcommand, ValueEnum};
use fields::{Field, Money};
use input::Selection;
use std::io::Write;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ai-attribution",
    version,
    about = "Check ai-attribution configurations and read the access-log records the filter writes",
    after_help = "Examples:\n  ai-attribution check envoy/envoy.yaml\n  ai-attribution explain envoy/envoy.yaml --path /v1/chat/completions -H x-user-id:alice --body request.json\n  ai-attribution report --by business_unit,user --period day access.log\n  ai-attribution trace 7f3c2a1e-... sidecar.log egress.log\n  ai-attribution spikes --by business_unit --window 1h access.log.gz\n\nExit status: 0 ok, 1 errors (or nothing found), 2 bad usage or an unreadable file."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Shared by the commands that read logs.
#[derive(clap::Args, Clone)]
struct Range {
    /// Keep records whose start_time is at or after this (RFC 3339, or a date YYYY-MM-DD as midnight UTC)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Keep records whose start_time is before this (RFC 3339, or a date YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Keep only model calls, or only tool calls (agents' calls to MCP servers)
    #[arg(long, value_enum)]
    event: Option<EventArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum MeasureArg {
    Calls,
    Tokens,
    Cost,
}

impl MeasureArg {
    fn measure(self) -> spikes::Measure {
        match self {
            MeasureArg::Calls => spikes::Measure::Calls,
            MeasureArg::Tokens => spikes::Measure::Tokens,
            MeasureArg::Cost => spikes::Measure::Cost,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum EventArg {
    #[value(name = "model_call")]
    ModelCall,
    #[value(name = "tool_call")]
    ToolCall,
}

impl EventArg {
    fn event(self) -> record::Event {
        match self {
            EventArg::ModelCall => record::Event::ModelCall,
            EventArg::ToolCall => record::Event::ToolCall,
        }
    }
}

impl Range {
    fn parse(&self) -> Result<Selection, String> {
        let bound = |flag: &str, v: &Option<String>| -> Result<Option<i64>, String> {
            v.as_deref()
                .map(|t| {
                    time::parse_bound(t).ok_or_else(|| {
                        format!("{flag} \"{t}\": expected RFC 3339 (2026-11-01T12:00:00Z) or a date (2026-11-01)")
                    })
                })
                .transpose()
        };
        let r = Selection {
            since: bound("--since", &self.since)?,
            until: bound("--until", &self.until)?,
            event: self.event.map(EventArg::event),
        };
        if let (Some(s), Some(u)) = (r.since, r.until) {
            if s >= u {
                return Err("--since must be before --until".to_string());
            }
        }
        Ok(r)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    /// An aligned table for the terminal, then the gaps and the rejections
    Table,
    /// Chargeback rows as CSV
    Csv,
    /// Everything as one JSON document
    Json,
    /// FOCUS 1.2 cost and usage rows as CSV
    Focus,
}

#[derive(Clone, Copy, ValueEnum)]
enum TextOrJson {
    Text,
    Json,
}

/// What `explain` is given.
#[derive(clap::Args)]
struct ExplainArgs {
    /// The configuration: plugin config, Envoy bootstrap, WasmPlugin or EnvoyExtensionPolicy
    config: String,
    /// Which plugin configuration of CONFIG, when it holds several (1 = the first, in check's order)
    #[arg(long, value_name = "N")]
    plugin: Option<usize>,
    /// The request method
    #[arg(long, short = 'X', default_value = "POST")]
    method: String,
    /// The request path, with its query (e.g. /v1/chat/completions)
    #[arg(long)]
    path: String,
    /// The :authority (default: a host header given with --header, else localhost)
    #[arg(long)]
    authority: Option<String>,
    /// A request header; repeat for more
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// The request body, from FILE or - (standard input); without it the request ends with its headers
    #[arg(long, value_name = "FILE")]
    body: Option<String>,
    /// The client certificate's URI SAN (connection.uri_san_peer_certificate), e.g. spiffe://corp/ns/apps/sa/bot
    #[arg(long, value_name = "ID")]
    peer_spiffe_id: Option<String>,
    /// The client certificate's subject (connection.subject_peer_certificate), e.g. CN=bot,OU=Team A
    #[arg(long, value_name = "DN")]
    peer_subject: Option<String>,
    /// The client certificate's DNS SAN (connection.dns_san_peer_certificate)
    #[arg(long, value_name = "NAME")]
    peer_dns_san: Option<String>,
    /// Envoy's own certificate URI SAN (its trust domain is the one peer:spiffe_* sources accept without peer.trust_domains)
    #[arg(long, value_name = "ID")]
    local_spiffe_id: Option<String>,
    /// An entry of the node's metadata (xds.node.metadata.KEY); a bootstrap's node.metadata is used as well
    #[arg(long = "node-metadata", value_name = "KEY=VALUE")]
    node_metadata: Vec<String>,
    /// Any other Envoy attribute by dotted path, for property: sources (e.g. request.host=x)
    #[arg(long = "property", value_name = "PATH=VALUE")]
    properties: Vec<String>,
    /// The verified JWT payload (a JSON object of claims) as jwt_authn stores it in the stream's metadata
    #[arg(long, value_name = "FILE")]
    jwt_payload: Option<String>,
    /// Simulate the upstream's answer with this status (default 200 when another --response-* is given)
    #[arg(long, value_name = "CODE", value_parser = clap::value_parser!(u16).range(100..=599))]
    response_status: Option<u16>,
    /// A header of the simulated answer (content-type defaults to application/json); repeat for more
    #[arg(long = "response-header", value_name = "NAME:VALUE")]
    response_headers: Vec<String>,
    /// The body of the simulated answer, from FILE or -
    #[arg(long, value_name = "FILE")]
    response_body: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: TextOrJson,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a plugin configuration, an Envoy bootstrap, an Istio WasmPlugin or an EnvoyExtensionPolicy
    #[command(
        long_about = "Validate a plugin configuration with the filter's own parser and report the same errors, with field paths, that Envoy would log. FILE may be a plugin config (JSON), an Envoy bootstrap (YAML or JSON; every envoy.filters.http.wasm filter loading ai_attribution is checked), an Istio WasmPlugin (spec.pluginConfig) or an Envoy Gateway EnvoyExtensionPolicy.\n\nWarnings: identity headers believed from any caller (no header_trust.peers and no mTLS), require alternatives that can never be met, pricing patterns that match no known model name, and metric labels with unbounded values.",
        after_help = "Examples:\n  ai-attribution check envoy/envoy.yaml\n  ai-attribution check envoy/istio/wasmplugin.yaml\n  ai-attribution check plugin-config.json\n\nExit status: 0 valid (warnings allowed), 1 errors, 2 bad usage or an unreadable file."
    )]
    Check {
        /// The file to check
        file: String,
    },
    /// Run one request through the filter against a configuration and say what it decides and why
    #[command(
        long_about = "Run one request, described on the command line, through the filter's own lifecycle (request headers, body, the answer when one is given, the record) against a plugin configuration, and say: whether it is an AI event (a model call, a tool call to an MCP endpoint, or neither), the decision, where each dimension's value came from or why it has none (absent, invalid, untrusted, unverified), the header edits the filter makes, the exact status, headers and body a refused client gets, the record and the metric series.\n\nCONFIG is any file check accepts: a plugin config (JSON), an Envoy bootstrap (its node.metadata feeds node: sources), an Istio WasmPlugin or an Envoy Gateway EnvoyExtensionPolicy. Trust comes from the configuration: header sources are believed only from a peer in header_trust.peers, compared with --peer-spiffe-id as the filter compares the client certificate's URI SAN.",
        after_help = "Examples:\n  ai-attribution explain envoy/envoy.yaml --path /v1/chat/completions -H x-user-id:alice --body request.json\n  ai-attribution explain envoy/envoy.yaml --path /mcp -H x-service-account:agent-7 --body - <<< '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"search\"}}'\n  ai-attribution explain envoy/mtls.yaml --path /v1/messages --peer-spiffe-id spiffe://cluster.local/ns/apps/sa/chat --body req.json\n  ai-attribution explain envoy/jwt.yaml --path /v1/chat/completions --jwt-payload claims.json --body req.json --format json\n\nExit status: 0 explained (whatever the decision), 1 the configuration has errors, 2 bad usage or an unreadable file."
    )]
    Explain(Box<ExplainArgs>),
    /// Chargeback, gaps and rejections from access logs
    #[command(
        long_about = "Read access logs (files, .gz files, or - for standard input) in one streaming pass and report, per group and period: calls (model calls and agents' tool calls to MCP servers), input, cached, output and reasoning tokens, and cost; for tool calls, the exempt ones and those that ended in an error; the gaps (calls with tokens but no price, usage missing or partial); and the rejections and would_reject decisions by reason. Lines that are not records (not JSON, other JSON, requests that were no AI event, lines over 1 MiB) are counted on standard error and in the JSON output, never fatal.",
        after_help = "Examples:\n  ai-attribution report access.log\n  ai-attribution report --by business_unit,user --period month --since 2026-11-01 --until 2026-12-01 access.log*.gz\n  ai-attribution report --format focus --by business_unit,app access.log > focus.csv\n  kubectl logs deploy/ai-gateway -c istio-proxy | ai-attribution report --html report.html -\n  ai-attribution report --event tool_call --by tool,service_account,session access.log\n\n--by takes dimension names (user, session, business_unit, service_account, ...) and record fields: model (the response's, else the request's), provider, operation, event, decision, reason, sources, request_model, response_model, stream, usage_status, usage_reason, response_end, requested_tools, trace_id, correlation_id, method, status, and for tool calls tool, mcp_method, mcp_session, mcp_protocol_version, jsonrpc_id, prompt, resource_uri, error_type, rpc_status, mcp_header_mismatch, mcp_session_mismatch; quota_outcome and exception. --format focus always groups by provider, model and business_unit as well (ResourceId, ServiceName, SubAccountId); the other --by fields go to Tags."
    )]
    Report {
        /// Log files (.gz read transparently); - reads standard input
        #[arg(required = true, value_name = "LOG")]
        logs: Vec<String>,
        /// Group by these fields, comma-separated
        #[arg(long, default_value = "business_unit", value_name = "FIELD[,FIELD...]")]
        by: String,
        /// Chargeback period
        #[arg(long, value_enum, default_value = "day")]
        period: time::Period,
        /// Output format on standard output
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        /// Also write a self-contained HTML report (charts, no network access) to FILE
        #[arg(long, value_name = "FILE")]
        html: Option<String>,
        /// FOCUS BillingAccountId/Name (default: the provider name)
        #[arg(long, value_name = "ID")]
        billing_account: Option<String>,
        #[command(flatten)]
        range: Range,
    },
    /// Every record of one correlation ID across hops, in time order
    #[command(
        long_about = "Find every record of one correlation ID (ai_attribution.correlation_id) in the given logs, one log per hop (e.g. the sidecar's, then the egress gateway's), and show them in time order: the identity each hop saw and where it came from, which hop decided, the tokens and the cost. A later hop that gave the call its own correlation ID (because it does not trust the hop before it) is still found through Envoy's x-request-id of the hops already found, and the finding says so. Says so when a hop is missing (a log with no record of the call) or when hops disagree on identity, tokens or cost.",
        after_help = "Examples:\n  ai-attribution trace 4b1d9c0e-77aa-4e6b-9d0f-2f5d5b1e7a10 sidecar.log egress.log\n  ai-attribution trace --format json req-42 access.log.gz\n\nExit status: 0 found, 1 no record has this ID, 2 bad usage or an unreadable file."
    )]
    Trace {
        /// The correlation ID (the first hop's x-ai-correlation-id answer header, or the record's correlation_id)
        id: String,
        /// Log files, one per hop, in hop order; - reads standard input
        #[arg(required = true, value_name = "LOG")]
        logs: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: TextOrJson,
    },
    /// Owners whose calls, tokens or cost in a window jump above their own baseline
    #[command(
        long_about = "Find owners (--by, default business_unit) whose calls, tokens or cost (--measure, default tokens,cost) in a window jump above their own baseline, and list each spike with its service accounts, users, sessions, models and tools (the tools of tool calls; the tools models asked for are listed apart). Tool calls have no tokens or cost: measure them in calls.\n\nMethod: each owner's windows run from its first record to the end of the data, windows without calls counting as 0. A window is compared with the owner's previous --baseline windows through their median and MAD (median absolute deviation): score = (value - median) / max(1.4826 x MAD, 5% of the median, 1 call, 1 token or $0.0001). A window is a spike when the score exceeds --threshold and the window reaches --min-calls, --min-tokens or --min-cost for its measure. Median and MAD are robust: one earlier spike in the baseline does not raise it the way a mean and standard deviation would. An owner's first --min-history windows are never flagged.",
        after_help = "Examples:\n  ai-attribution spikes access.log\n  ai-attribution spikes --by service_account --window 15m --baseline 96 --threshold 5 access.log.gz\n  ai-attribution spikes --format json --since 2026-11-01 access.log\n  ai-attribution spikes --event tool_call --measure calls --by tool access.log"
    )]
    Spikes {
        /// Log files (.gz read transparently); - reads standard input
        #[arg(required = true, value_name = "LOG")]
        logs: Vec<String>,
        /// The owner: a dimension name, or a record field (model, provider, operation, tool, mcp_method, ... as report's --by)
        #[arg(long, default_value = "business_unit", value_name = "FIELD")]
        by: String,
        /// Window length: 30s, 15m, 1h, 1d
        #[arg(long, default_value = "1h")]
        window: String,
        /// How many previous windows form the baseline
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(2..=100_000))]
        baseline: u32,
        /// Robust deviations above the median that make a spike
        #[arg(long, default_value_t = 3.5, allow_negative_numbers = true)]
        threshold: f64,
        /// Windows an owner must have before one can be flagged
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        min_history: u32,
        /// Ignore token spikes below this many tokens in the window
        #[arg(long, default_value_t = 1000)]
        min_tokens: u64,
        /// Ignore cost spikes below this many USD in the window
        #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
        min_cost: f64,
        /// What a spike is measured in: calls (model calls or tool calls; tool calls have no tokens or cost), tokens, cost; comma-separated
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "tokens,cost",
            value_name = "MEASURE[,MEASURE...]"
        )]
        measure: Vec<MeasureArg>,
        /// Ignore call spikes below this many calls in the window
        #[arg(long, default_value_t = 10)]
        min_calls: u64,
        #[arg(long, value_enum, default_value = "text")]
        format: TextOrJson,
        #[command(flatten)]
        range: Range,
    },
}

/// Writes to standard output; a closed pipe (e.g. `| head`) ends quietly.
fn emit(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

/// Streams to standard output through a buffer; a closed pipe ends quietly.
fn emit_with(f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    match f(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

fn note(lines: &[String]) {
    let mut err = std::io::stderr().lock();
    for l in lines {
        let _ = writeln!(err, "{l}");
    }
}

/// A failure and its exit status.
struct Fail(u8, String);

fn usage(msg: String) -> Fail {
    Fail(2, msg)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(Fail(code, msg)) => {
            note(&[format!("ai-attribution: {msg}")]);
            ExitCode::from(code)
        }
    }
}

/// Reads FILE, or standard input for `-` (once), up to `explain::MAX_BODY_BYTES`.
fn read_input(flag: &str, path: &str, stdin_used: &mut bool) -> Result<Vec<u8>, Fail> {
    use std::io::Read;
    let limit = explain::MAX_BODY_BYTES as u64;
    let mut out = Vec::new();
    let result = if path == "-" {
        if *stdin_used {
            return Err(usage(format!(
                "{flag} -: standard input is already read by another flag"
            )));
        }
        *stdin_used = true;
        std::io::stdin().lock().take(limit + 1).read_to_end(&mut out)
    } else {
        if std::path::Path::new(path).is_dir() {
            return Err(usage(format!("{flag} {path}: is a directory")));
        }
        std::fs::File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut out))
    };
    result.map_err(|e| usage(format!("{flag} {path}: cannot read: {e}")))?;
    if out.len() as u64 > limit {
        return Err(usage(format!("{flag} {path}: over {} MiB", limit >> 20)));
    }
    Ok(out)
}

fn explain_inputs(args: ExplainArgs) -> Result<explain::Inputs, Fail> {
    let ExplainArgs {
        config,
        plugin,
        method,
        path,
        authority,
        headers,
        body,
        peer_spiffe_id,
        peer_subject,
        peer_dns_san,
        local_spiffe_id,
        node_metadata,
        properties,
        jwt_payload,
        response_status,
        response_headers,
        response_body,
        format: _,
    } = args;
    let headers = headers
        .iter()
        .map(|h| explain::parse_header("--header", h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let authority = authority
        .or_else(|| headers.iter().find(|(n, _)| n == "host").map(|(_, v)| v.clone()))
        .unwrap_or_else(|| "localhost".to_string());
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(usage(format!(
            "--method \"{method}\": expected a method name such as POST"
        )));
    }
    let mut stdin_used = false;
    let body = body.map(|b| read_input("--body", &b, &mut stdin_used)).transpose()?;
    let mut host = explain::HostFacts {
        peer_spiffe_id,
        peer_subject,
        peer_dns_san,
        local_spiffe_id,
        ..explain::HostFacts::default()
    };
    host.node_metadata = node_metadata
        .iter()
        .map(|p| explain::parse_pair("--node-metadata", p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    host.properties = properties
        .iter()
        .map(|p| explain::parse_pair("--property", p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    if let Some(file) = jwt_payload {
        let bytes = read_input("--jwt-payload", &file, &mut stdin_used)?;
        host.jwt_payload = Some(explain::parse_jwt_payload(&file, &bytes).map_err(usage)?);
    }
    let status = response_status;
    let response = if status.is_some() || !response_headers.is_empty() || response_body.is_some() {
        Some(explain::Response {
            status: status.unwrap_or(200),
            headers: response_headers
                .iter()
                .map(|h| explain::parse_header("--response-header", h))
                .collect::<Result<Vec<_>, _>>()
                .map_err(usage)?,
            body: response_body
                .map(|b| read_input("--response-body", &b, &mut stdin_used))
                .transpose()?
                .unwrap_or_default(),
        })
    } else {
        None
    };
    Ok(explain::Inputs {
        config: explain::ConfigChoice { file: config, plugin },
        request: explain::Request {
            method: method.to_ascii_uppercase(),
            path,
            authority,
            headers,
            body,
        },
        host,
        response,
    })
}

fn run(command: Command) -> Result<u8, Fail> {
    match command {
        Command::Explain(args) => {
            let format = args.format;
            let inputs = explain_inputs(*args)?;
            let x = explain::run(&inputs).map_err(|f| Fail(f.status, f.message))?;
            let text = match format {
                TextOrJson::Text => explain::render_text(&x),
                TextOrJson::Json => serde_json::to_string_pretty(&explain::render_json(&x)).unwrap_or_default() + "\n",
            };
            emit(&text).map_err(|e| Fail(2, e))?;
            Ok(0)
        }
        Command::Check { file } => {
            let outcome = check::run(&file);
            if outcome.status == 2 {
                return Err(Fail(
                    2,
                    outcome.text.trim_end().trim_start_matches("error: ").to_string(),
                ));
            }
            emit(&outcome.text).map_err(|e| Fail(2, e))?;
            Ok(outcome.status as u8)
        }
        Command::Report {
            logs,
            by,
            period,
            format,
            html,
            billing_account,
            range,
        } => {
            let mut fields = Field::parse_list(&by).map_err(usage)?;
            if matches!(format, ReportFormat::Focus) {
                for name in output::FOCUS_FIELDS {
                    let f = Field::parse(name).map_err(usage)?;
                    if !fields.contains(&f) {
                        fields.push(f);
                    }
                }
            }
            let range = range.parse().map_err(usage)?;
            let inputs = input::open_all(&logs).map_err(usage)?;
            let mut builder = report::Builder::new(fields, period);
            let scan = input::scan(inputs, range, |r, _| builder.add(r));
            let report = builder.finish(scan);
            let mut notes = report.scan.notes();
            if report.scan.records == 0 {
                notes.push(format!("note: no records in {} lines", report.scan.lines));
            }
            note(&notes);
            if let Some(path) = html {
                std::fs::write(&path, html::render(&report))
                    .map_err(|e| Fail(2, format!("{path}: cannot write: {e}")))?;
            }
            emit_with(|out| match format {
                ReportFormat::Table => output::write_table(&report, out),
                ReportFormat::Csv => output::write_csv(&report, out),
                ReportFormat::Json => output::write_json(&report, out),
                ReportFormat::Focus => output::write_focus(&report, billing_account.as_deref(), out),
            })
            .map_err(|e| Fail(2, e))?;
            Ok(0)
        }
        Command::Trace { id, logs, format } => {
            if id.trim().is_empty() {
                return Err(usage("the correlation ID is empty".into()));
            }
            let inputs = input::open_all(&logs).map_err(usage)?;
            let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
            let mut hops: Vec<trace::Hop> = Vec::new();
            // Envoy's x-request-id of the records found so far: a later hop that did not trust
            // the one before it has its own correlation ID but the same x-request-id.
            let mut request_ids: Vec<String> = Vec::new();
            let scan = input::scan(inputs, Selection::default(), |r, origin| {
                let by_id = r.correlation_id.as_deref() == Some(id.as_str());
                let by_request_id = !by_id
                    && r.envoy_request_id
                        .as_deref()
                        .is_some_and(|rid| !rid.is_empty() && request_ids.iter().any(|x| x == rid));
                if by_id || by_request_id {
                    let name = names.get(origin.input).map_or("?", String::as_str);
                    let mut hop = trace::Hop::from_record(r, origin, name);
                    hop.linked_by_request_id = by_request_id;
                    if let Some(rid) = hop.request_id.as_ref().filter(|r| !r.is_empty()) {
                        if request_ids.len() < 64 && !request_ids.contains(rid) {
                            request_ids.push(rid.clone());
                        }
                    }
                    hops.push(hop);
                }
            });
            note(&scan.notes());
            if hops.is_empty() {
                return Err(Fail(
                    1,
                    format!(
                        "no record has correlation id \"{id}\" ({} records in {} lines)",
                        scan.records, scan.lines
                    ),
                ));
            }
            let t = trace::analyse(&id, hops, &scan);
            let text = match format {
                TextOrJson::Text => trace::render_text(&t)
                    .lines()
                    .map(|l| output::printable(l) + "\n")
                    .collect(),
                TextOrJson::Json => serde_json::to_string_pretty(&trace::render_json(&t)).unwrap_or_default() + "\n",
            };
            emit(&text).map_err(|e| Fail(2, e))?;
            Ok(0)
        }
        Command::Spikes {
            logs,
            by,
            window,
            baseline,
            threshold,
            min_history,
            min_tokens,
            min_cost,
            measure,
            min_calls,
            format,
            range,
        } => {
            let mut measures: Vec<spikes::Measure> = Vec::new();
            for m in measure.iter().map(|m| m.measure()) {
                if !measures.contains(&m) {
                    measures.push(m);
                }
            }
            let by_field = Field::parse(&by).map_err(usage)?;
            let window_ms = time::parse_duration(&window).map_err(|e| usage(format!("--window {e}")))?;
            if !threshold.is_finite() || threshold <= 0.0 {
                return Err(usage(format!("--threshold {threshold}: must be a positive number")));
            }
            if !min_cost.is_finite() || min_cost < 0.0 {
                return Err(usage(format!("--min-cost {min_cost}: must be zero or more")));
            }
            let range = range.parse().map_err(usage)?;
            let inputs = input::open_all(&logs).map_err(usage)?;
            let params = spikes::Params {
                by: by_field,
                window_ms,
                baseline: baseline as usize,
                threshold,
                min_history: min_history as usize,
                min_tokens,
                min_cost: Money::from_usd(min_cost),
                min_calls,
                measures,
            };
            let mut builder = spikes::Builder::new(params.clone());
            let scan = input::scan(inputs, range, |r, _| builder.add(r));
            note(&scan.notes());
            let found = builder.finish().map_err(usage)?;
            let text = match format {
                TextOrJson::Text => spikes::render_text(&by, &found, &params)
                    .lines()
                    .map(|l| output::printable(l) + "\n")
                    .collect(),
                TextOrJson::Json => {
                    serde_json::to_string_pretty(&spikes::render_json(&by, &found, &params)).unwrap_or_default() + "\n"
                }
            };
            emit(&text).map_err(|e| Fail(2, e))?;
            Ok(0)
        }
    }
}
