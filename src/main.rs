//! The `tc9-sidecar` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tc9_codec::Origin;
use tc9_sidecar::backends::memory::World;
use tc9_sidecar::config::{Config, LogFormat};
use tc9_sidecar::tools::{demo, inspect, replay as replays};
use tracing_subscriber::EnvFilter;

/// ToCloud9 sidecar for AzerothCore worldservers: cross-worldserver guild charters.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar between the gateway and a worldserver.
    Run(RunArgs),
    /// Validate a configuration file; names the bad key and its line.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Check the configured characters and auth databases for every table, column
    /// and key the sidecar uses; exit 1 if it would refuse to start or cannot tell.
    CheckDb(RunArgs),
    /// Print a framed packet (header included, hex) as its opcode and fields.
    Decode {
        /// Who sent the packet: c2s (client header) or s2c (server header).
        #[arg(long = "dir", value_enum)]
        dir: Dir,
        /// The packet bytes in hex; may be split over several arguments.
        #[arg(required = true)]
        hex: Vec<String>,
    },
    /// List the opcode table: value, name, direction, group.
    Opcodes,
    /// Replay a capture through a sidecar (in-memory backends seeded from the world
    /// file) and print, per frame, what it decided and what came out.
    Replay {
        /// The capture (`.tc9cap`).
        file: PathBuf,
        /// The world file; default: `NAME.world.toml` beside the capture, if any.
        #[arg(long)]
        world: Option<PathBuf>,
        /// Compare with this transcript; exit 1 with a diff when they differ.
        #[arg(long)]
        expect: Option<PathBuf>,
    },
    /// Convert a capture between the sidecar's format and WowPacketParser's PKT 3.1
    /// (by the output's extension: `.pkt`, else `.tc9cap`).
    Convert {
        /// The capture to read (either format).
        input: PathBuf,
        /// The file to write.
        output: PathBuf,
    },
    /// Two worldservers with a sidecar each, in one process and without a database:
    /// a charter offered across worldservers and signed, every packet printed.
    Demo,
}

/// Flags of `run`; each overrides the file and the `TC9_*` variables.
#[derive(Args)]
struct RunArgs {
    /// TOML configuration file (see config/sidecar.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address the gateway connects to.
    #[arg(long)]
    listen: Option<String>,
    /// The worldserver's address.
    #[arg(long)]
    upstream: Option<String>,
    /// Address of the metrics and health endpoints; empty for none.
    #[arg(long)]
    metrics: Option<String>,
    /// This sidecar's id in the realm.
    #[arg(long)]
    sidecar_id: Option<String>,
    /// The realm's id.
    #[arg(long)]
    realm_id: Option<u32>,
    /// Header mode of the links.
    #[arg(long, value_parser = ["plain", "wotlk-crypt"])]
    link_mode: Option<String>,
    /// AzerothCore characters database URL.
    #[arg(long)]
    characters_db_url: Option<String>,
    /// AzerothCore auth database URL.
    #[arg(long)]
    auth_db_url: Option<String>,
    /// PostgreSQL URL shared by the realm's sidecars.
    #[arg(long)]
    bus_url: Option<String>,
    /// Write one capture file per session to this directory.
    #[arg(long = "capture")]
    capture_dir: Option<String>,
    /// The captures' format: the sidecar's own, or WowPacketParser's PKT 3.1.
    #[arg(long, value_parser = ["tc9cap", "pkt"])]
    capture_format: Option<String>,
}

impl RunArgs {
    /// The flags given, as configuration keys.
    fn overrides(&self) -> toml::Table {
        let mut table = toml::Table::new();
        let strings = [
            ("listen", &self.listen),
            ("upstream", &self.upstream),
            ("metrics", &self.metrics),
            ("sidecar_id", &self.sidecar_id),
            ("characters_db_url", &self.characters_db_url),
            ("auth_db_url", &self.auth_db_url),
            ("bus_url", &self.bus_url),
            ("capture_dir", &self.capture_dir),
            ("link_mode", &self.link_mode),
            ("capture_format", &self.capture_format),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                table.insert(key.to_owned(), value.clone().into());
            }
        }
        if let Some(realm) = self.realm_id {
            table.insert("realm_id".to_owned(), i64::from(realm).into());
        }
        table
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Dir {
    /// Client to server.
    C2s,
    /// Server to client.
    S2c,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args),
        Command::CheckConfig { file } => match Config::from_file(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
        Command::CheckDb(args) => check_db(args),
        Command::Convert { input, output } => convert(&input, &output),
        Command::Opcodes => {
            print!("{}", inspect::opcode_table());
            ExitCode::SUCCESS
        }
        Command::Replay {
            file,
            world,
            expect,
        } => replay(&file, world.as_deref(), expect.as_deref()),
        Command::Demo => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("error: cannot start the runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(demo::run(&mut std::io::stdout())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: demo failed: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Decode { dir, hex } => {
            let origin = match dir {
                Dir::C2s => Origin::Client,
                Dir::S2c => Origin::Server,
            };
            match inspect::parse_hex(&hex)
                .and_then(|bytes| inspect::describe_packet(origin, &bytes))
            {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn convert(input: &std::path::Path, output: &std::path::Path) -> ExitCode {
    use tc9_proxy::capture::{pkt, Capture};
    let converted = Capture::read(input).and_then(|capture| {
        if output.extension().is_some_and(|e| e == "pkt") {
            pkt::to_bytes(&capture)
        } else {
            Ok(capture.to_bytes())
        }
    });
    let written = converted.map_err(|e| e.to_string()).and_then(|bytes| {
        std::fs::write(output, &bytes)
            .map(|()| bytes.len())
            .map_err(|e| e.to_string())
    });
    match written {
        Ok(len) => {
            println!("{} -> {} ({len} bytes)", input.display(), output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", input.display());
            ExitCode::FAILURE
        }
    }
}

fn check_db(args: RunArgs) -> ExitCode {
    let config = match Config::load(args.config.as_deref(), std::env::vars(), args.overrides()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let report = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(tc9_sidecar::tools::check_db::run(&config)),
        Err(err) => Err(err.into()),
    };
    match report {
        Ok(report) => {
            for line in report.lines() {
                println!("{line}");
            }
            if report.refuses() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    let config = match Config::load(args.config.as_deref(), std::env::vars(), args.overrides()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(tc9_sidecar::app::serve(config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "sidecar failed");
            ExitCode::FAILURE
        }
    }
}

/// The `replay` command.
fn replay(
    file: &std::path::Path,
    world: Option<&std::path::Path>,
    expect: Option<&std::path::Path>,
) -> ExitCode {
    let run = || -> anyhow::Result<Result<String, String>> {
        let capture = tc9_proxy::capture::Capture::read(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let beside = replays::world_beside(file);
        let world_path = world
            .map(std::path::Path::to_path_buf)
            .or_else(|| beside.exists().then_some(beside));
        let world = match world_path {
            Some(path) => World::from_file(&path).map_err(anyhow::Error::msg)?,
            None => World::default(),
        };
        let transcript =
            tokio::runtime::Runtime::new()?.block_on(replays::replay(&capture, &world))?;
        Ok(match expect {
            None => Ok(transcript),
            Some(path) => {
                let expected = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                replays::compare(&expected, &transcript).map(|()| transcript)
            }
        })
    };
    match run() {
        Ok(Ok(transcript)) => {
            print!("{transcript}");
            ExitCode::SUCCESS
        }
        Ok(Err(diff)) => {
            eprintln!("error: the transcript differs from the expected one\n{diff}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
