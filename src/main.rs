//! The `tc9-sidecar` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tc9_codec::Origin;
use tc9_sidecar::inspect;

/// ToCloud9 sidecar for AzerothCore worldservers: cross-worldserver guild charters.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        Command::Opcodes => {
            print!("{}", inspect::opcode_table());
            ExitCode::SUCCESS
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
