//! The `tc9-sidecar` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tc9_codec::Origin;
use tc9_sidecar::admin;
use tc9_sidecar::bus::Bus;
use tc9_sidecar::charter::CharterHandler;
use tc9_sidecar::config::{Backend, Config, LinkMode};
use tc9_sidecar::handler::PassThrough;
use tc9_sidecar::inspect;
use tc9_sidecar::memory::{MemoryRealm, MemoryStore, World};
use tc9_sidecar::server::{shutdown_signal, Databases, Server};
use tokio_util::sync::CancellationToken;
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
    #[arg(long, value_enum)]
    link_mode: Option<LinkMode>,
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
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                table.insert(key.to_owned(), value.clone().into());
            }
        }
        if let Some(realm) = self.realm_id {
            table.insert("realm_id".to_owned(), i64::from(realm).into());
        }
        if let Some(mode) = self.link_mode {
            let name = match mode {
                LinkMode::Plain => "plain",
                LinkMode::WotlkCrypt => "wotlk-crypt",
            };
            table.insert("link_mode".to_owned(), name.into());
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
            match runtime.block_on(tc9_sidecar::demo::run(&mut std::io::stdout())) {
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
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "sidecar failed");
            ExitCode::FAILURE
        }
    }
}

/// Runs the sidecar until SIGTERM/SIGINT: the charter resolver when a characters
/// database is configured, a pure pass-through otherwise.
async fn serve(config: Config) -> anyhow::Result<()> {
    let databases = Databases::from_config(&config)?;
    let background = CancellationToken::new();
    let bus = if config.bus_url.is_empty() || databases.characters.is_none() {
        None
    } else {
        match Bus::connect(
            &config.bus_url,
            config.realm_id,
            &config.sidecar_id,
            config.presence_expiry(),
        )
        .await
        {
            Ok(bus) => Some(bus),
            Err(e) => {
                tracing::warn!(error = %e, "bus unavailable: cross-worldserver resolution is off until restart");
                None
            }
        }
    };
    if !config.metrics.is_empty() {
        let handle = admin::install_recorder(&config.sidecar_id, config.realm_id)
            .map_err(anyhow::Error::msg)?;
        let readiness = admin::Readiness {
            upstream: config.upstream.clone(),
            characters: databases.characters.clone(),
            auth: databases.auth.clone(),
            bus: bus.clone(),
        };
        admin::serve(&config.metrics, handle, readiness, background.clone()).await?;
    }
    let result = match databases.characters.clone() {
        _ if config.backend == Backend::Memory => {
            let world = if config.world_file.is_empty() {
                World::default()
            } else {
                World::from_file(std::path::Path::new(&config.world_file))
                    .map_err(anyhow::Error::msg)?
            };
            let realm = MemoryRealm::new();
            let handler = CharterHandler::new(
                MemoryStore::from_world(&world),
                Some(realm.join(&config.sidecar_id)),
                config.charter_settings(),
            );
            handler.start_background(background.clone());
            tracing::info!(
                characters = world.character.len(),
                petitions = world.petition.len(),
                "in-memory realm: charters resolve on this worldserver"
            );
            Server::bind_with(config, databases, handler)
                .await?
                .run(shutdown_signal())
                .await
        }
        None => {
            Server::bind_with(config, databases, PassThrough)
                .await?
                .run(shutdown_signal())
                .await
        }
        Some(store) => {
            if bus.is_none() {
                tracing::info!("no bus: charters resolve on this worldserver only");
            }
            let handler = CharterHandler::new(store, bus, config.charter_settings());
            handler.start_background(background.clone());
            Server::bind_with(config, databases, handler)
                .await?
                .run(shutdown_signal())
                .await
        }
    };
    background.cancel();
    Ok(result?)
}

/// The `replay` command.
fn replay(
    file: &std::path::Path,
    world: Option<&std::path::Path>,
    expect: Option<&std::path::Path>,
) -> ExitCode {
    let run = || -> anyhow::Result<Result<String, String>> {
        let capture = tc9_sidecar::capture::Capture::read(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let beside = tc9_sidecar::replay::world_beside(file);
        let world_path = world
            .map(std::path::Path::to_path_buf)
            .or_else(|| beside.exists().then_some(beside));
        let world = match world_path {
            Some(path) => World::from_file(&path).map_err(anyhow::Error::msg)?,
            None => World::default(),
        };
        let transcript = tokio::runtime::Runtime::new()?
            .block_on(tc9_sidecar::replay::replay(&capture, &world))?;
        Ok(match expect {
            None => Ok(transcript),
            Some(path) => {
                let expected = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                tc9_sidecar::replay::compare(&expected, &transcript).map(|()| transcript)
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
