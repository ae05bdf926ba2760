//! `model-server` binary: runs the local mock AI model server
//! (`integration::model_server`) until killed, logging each request to stderr.
//!
//! Usage: `model-server [--port N] [--host 127.0.0.1] [--quiet]` (default port 18080).

use std::io::Write;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use integration::model_server::ModelServer;

const USAGE: &str = "usage: model-server [--port N] [--host 127.0.0.1] [--quiet]";

struct Options {
    host: String,
    port: u16,
    quiet: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        host: "127.0.0.1".into(),
        port: 18080,
        quiet: false,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--port" | "-p" => {
                let value = inline.or_else(|| args.next()).ok_or("--port needs a value")?;
                opts.port = value.parse().map_err(|_| format!("invalid port {value:?}"))?;
            }
            "--host" => {
                opts.host = inline.or_else(|| args.next()).ok_or("--host needs a value")?;
            }
            "--quiet" | "-q" => opts.quiet = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) => {
            if msg.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("model-server: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let addr = if opts.host.contains(':') && !opts.host.starts_with('[') {
        format!("[{}]:{}", opts.host, opts.port)
    } else {
        format!("{}:{}", opts.host, opts.port)
    };
    let server = match ModelServer::start_on(&addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("model-server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("model-server listening on {}", server.addr());
    let _ = std::io::stdout().flush();
    loop {
        thread::sleep(Duration::from_millis(100));
        // Draining keeps memory bounded in long `make run` sessions.
        for req in server.take() {
            if opts.quiet {
                continue;
            }
            let behavior = req
                .header("x-mock-behavior")
                .map(|b| format!(" [{b}]"))
                .unwrap_or_default();
            eprintln!(
                "model-server: {} {} body={}B{}{}",
                req.method,
                req.path,
                req.body_len,
                if req.body_complete { "" } else { " (incomplete)" },
                behavior
            );
        }
    }
}
