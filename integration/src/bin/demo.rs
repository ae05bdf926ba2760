//! `demo` binary: prepares a `make run*` demo (see `integration::demo`): renders the shipped
//! config with local paths and ports into the run directory, and makes the demo's credentials.
//!
//! Usage: `demo (envoy|mtls|jwt|quota|quota-ratelimit-filter) --run-dir DIR --wasm FILE
//! [--listen-port N] [--admin-port N] [--model-server-port N] [--idp-port N] [--ratelimit-port N]`.
//! Prints the rendered config's path.

use integration::demo::{prepare, Demo, Setup};
use integration::envoy::repo_root;
use integration::render;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: demo (envoy|mtls|jwt|quota|quota-ratelimit-filter) --run-dir DIR --wasm FILE \
                     [--listen-port N] [--admin-port N] [--model-server-port N] [--idp-port N] [--ratelimit-port N]";

fn parse(args: &[String]) -> Result<(Demo, Setup), String> {
    let (name, rest) = args.split_first().ok_or("which demo?")?;
    let demo = Demo::parse(name).ok_or_else(|| format!("unknown demo {name:?}"))?;
    let mut setup = Setup {
        run_dir: PathBuf::from(".run"),
        wasm: PathBuf::new(),
        listen_port: render::LISTEN_PORT,
        admin_port: render::ADMIN_PORT,
        model_server_port: render::MODEL_SERVER_PORT,
        idp_port: 18443,
        ratelimit_port: render::RATELIMIT_PORT,
        access_log: None,
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let port = || {
            value
                .parse::<u16>()
                .map_err(|_| format!("{flag}: invalid port {value:?}"))
        };
        match flag.as_str() {
            "--run-dir" => setup.run_dir = PathBuf::from(value),
            "--wasm" => setup.wasm = PathBuf::from(value),
            "--listen-port" => setup.listen_port = port()?,
            "--admin-port" => setup.admin_port = port()?,
            "--model-server-port" => setup.model_server_port = port()?,
            "--idp-port" => setup.idp_port = port()?,
            "--ratelimit-port" => setup.ratelimit_port = port()?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !setup.wasm.is_absolute() {
        return Err(format!(
            "--wasm must be an absolute path (Envoy may run from anywhere), not {:?}",
            setup.wasm
        ));
    }
    if !setup.wasm.is_file() {
        return Err(format!("{}: no such file (run `make build`)", setup.wasm.display()));
    }
    Ok((demo, setup))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (demo, setup) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("demo: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match prepare(demo, &repo_root().join("envoy"), &setup) {
        Ok(prepared) => {
            println!("{}", prepared.config.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
