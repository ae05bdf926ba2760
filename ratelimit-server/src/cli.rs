//! The command line: `ratelimit-server [--port N] [--redis URL] [--config FILE]... ...`.

use crate::config::{self, ConfigError, Domain};
use crate::limits_file;
use crate::translate::{self, LimitSpec};
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: ratelimit-server [--host 127.0.0.1] [--port 8081] [--redis redis://HOST:PORT]
                        [--config FILE]... [--limits FILE]... [--delay-ms N]
                        [--log-level error|warn|info|debug|trace] [--print-limitador]

  --config FILE      limits in the envoyproxy/ratelimit format (one domain per file)
  --limits FILE      limits in Limitador's format (a list of namespace/max_value/seconds/...)
  --redis URL        count in this Redis (redis://HOST:PORT[/DB] or unix:///PATH, 7.0 or
                     later), shared by every server that uses it;
                     without it, counters live in this process's memory
  --port N           0 picks a free port (the address is printed on stdout)
  --delay-ms N       hold every answer back N milliseconds (for clients' timeout tests)
  --print-limitador  print the --config files as a Limitador limits file, and exit";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub host: String,
    pub port: u16,
    pub redis: Option<String>,
    pub configs: Vec<PathBuf>,
    pub limits: Vec<PathBuf>,
    pub delay: Duration,
    pub log_level: tracing::Level,
    pub print_limitador: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            host: "127.0.0.1".into(),
            port: 8081,
            redis: None,
            configs: Vec::new(),
            limits: Vec::new(),
            delay: Duration::ZERO,
            log_level: tracing::Level::INFO,
            print_limitador: false,
        }
    }
}

/// Parses the arguments (without the program name). `Err("")` asks for the usage.
pub fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options::default();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--host" => opts.host = value("--host")?,
            "--port" => {
                let v = value("--port")?;
                opts.port = v.parse().map_err(|_| format!("invalid port {v:?}"))?;
            }
            "--redis" => {
                let v = value("--redis")?;
                if !v.starts_with("redis://") && !v.starts_with("unix://") {
                    return Err(format!("--redis wants a redis:// or unix:// URL (no TLS), not {v:?}"));
                }
                opts.redis = Some(v);
            }
            "--config" => opts.configs.push(PathBuf::from(value("--config")?)),
            "--limits" => opts.limits.push(PathBuf::from(value("--limits")?)),
            "--delay-ms" => {
                let v = value("--delay-ms")?;
                let ms: u64 = v.parse().map_err(|_| format!("invalid --delay-ms {v:?}"))?;
                opts.delay = Duration::from_millis(ms);
            }
            "--log-level" => {
                let v = value("--log-level")?;
                opts.log_level = v.parse().map_err(|_| format!("invalid --log-level {v:?}"))?;
            }
            "--print-limitador" => opts.print_limitador = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if opts.configs.is_empty() && opts.limits.is_empty() {
        return Err("give limits with --config FILE or --limits FILE".into());
    }
    if opts.print_limitador && opts.configs.is_empty() {
        return Err("--print-limitador translates --config files".into());
    }
    Ok(opts)
}

/// Every configured limit: the `--config` files translated, then the `--limits` files.
pub fn load_limits(opts: &Options) -> Result<Vec<LimitSpec>, ConfigError> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|e| ConfigError {
            source: path.display().to_string(),
            at: String::new(),
            message: e.to_string(),
        })
    };
    let mut domains = Vec::new();
    for path in &opts.configs {
        let source = path.display().to_string();
        let domain = Domain::parse(&source, &read(path)?)?;
        domains.push((source, domain));
    }
    config::check_unique_domains(&domains)?;
    let mut limits: Vec<LimitSpec> = domains.iter().flat_map(|(_, d)| translate::limits_of(d)).collect();
    for path in &opts.limits {
        limits.extend(limits_file::parse(&path.display().to_string(), &read(path)?)?);
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_parse() {
        let o = parse(&[
            "--port=0",
            "--redis",
            "redis://127.0.0.1:6379",
            "--config",
            "a.yaml",
            "--config=b.yaml",
            "--limits",
            "l.yaml",
            "--delay-ms",
            "250",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(o.port, 0);
        assert_eq!(o.redis.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(o.configs, [PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]);
        assert_eq!(o.limits, [PathBuf::from("l.yaml")]);
        assert_eq!(o.delay, Duration::from_millis(250));
        assert_eq!(o.log_level, tracing::Level::DEBUG);
        assert_eq!(o.host, "127.0.0.1");
    }

    #[test]
    fn mistakes_are_refused() {
        assert_eq!(parse(&["--help"]), Err(String::new()));
        assert!(parse(&[]).unwrap_err().contains("--config FILE"));
        assert!(parse(&["--config", "a", "--port", "x"])
            .unwrap_err()
            .contains("invalid port"));
        assert!(parse(&["--config", "a", "--redis", "localhost:6379"])
            .unwrap_err()
            .contains("redis://"));
        assert!(parse(&["--config", "a", "--colour"])
            .unwrap_err()
            .contains("unknown argument"));
        assert!(parse(&["--config"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--limits", "l", "--print-limitador"]).is_err());
    }
}
