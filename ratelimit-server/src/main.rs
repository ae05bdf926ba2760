//! `ratelimit-server`: see `ratelimit_server::cli::USAGE`. Prints the address it listens on,
//! answers until SIGTERM or Ctrl-C, then finishes the calls under way and exits 0.

use ratelimit_server::cli::{self, Options, USAGE};
use ratelimit_server::counters::{Limits, Store};
use ratelimit_server::proto::rls::rate_limit_service_server::RateLimitServiceServer;
use ratelimit_server::service::{Counting, RateLimitServer};
use ratelimit_server::translate;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How long a Redis command may take before the call fails UNAVAILABLE (clients give up sooner).
const REDIS_TIMEOUT: Duration = Duration::from_millis(1000);

fn main() -> ExitCode {
    let opts = match cli::parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("ratelimit-server: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // This server's own events at the chosen level; the libraries' (h2 frames, ...) at info at most.
    let targets = Targets::new()
        .with_target("ratelimit_server", opts.log_level)
        .with_default(opts.log_level.min(tracing::Level::INFO));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(opts.log_level)
        .with_ansi(false)
        .finish()
        .with(targets)
        .init();
    let limits = match cli::load_limits(&opts) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ratelimit-server: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.print_limitador {
        return match translate::limitador_yaml(&limits) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ratelimit-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ratelimit-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(opts, limits)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ratelimit-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(opts: Options, limits: Vec<translate::LimitSpec>) -> Result<(), Box<dyn std::error::Error>> {
    let store = match &opts.redis {
        Some(url) => Store::redis(url, REDIS_TIMEOUT)?,
        None => Store::in_memory(),
    };
    if let Err(e) = store.ping().await {
        // Not fatal: the store reconnects by itself, and until then each call fails UNAVAILABLE.
        tracing::warn!("{e}");
    }
    let counting = Counting {
        limits: Limits::new(&limits)?,
        store,
    };
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port)).await?;
    let addr = listener.local_addr()?;
    tracing::info!(
        limits = limits.len(),
        storage = counting.store.name(),
        delay_ms = opts.delay.as_millis() as u64,
        "serving envoy.service.ratelimit.v3.RateLimitService on {addr}"
    );
    if counting.store.name() == "memory" {
        tracing::info!("counters in memory: this process's budgets are not shared with other servers");
    }
    println!("ratelimit-server listening on {addr}");
    std::io::stdout().flush()?;
    let service = RateLimitServiceServer::new(RateLimitServer::new(counting, opts.delay));
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stopped())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
}
