//! World files: TOML seeds for the in-memory tables (format in the module docs).

use std::path::Path;

use serde::Deserialize;

/// A character of a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCharacter {
    /// `characters.guid`.
    pub guid: u32,
    /// `characters.account`.
    pub account: u32,
    /// `characters.name`.
    pub name: String,
    /// `characters.race`.
    pub race: u8,
    /// `characters.class`.
    #[serde(default = "one")]
    pub class: u8,
    /// `characters.level`.
    #[serde(default = "eighty")]
    pub level: u8,
    /// The guild, if in one.
    #[serde(default)]
    pub guild: Option<u32>,
}

fn one() -> u8 {
    1
}

fn eighty() -> u8 {
    80
}

fn guild_charter() -> u8 {
    tc9_codec::messages::petition::GUILD_CHARTER_TYPE
}

/// A petition of a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPetition {
    /// `petitionguid`.
    pub guid: u32,
    /// `petition_id`; the guid when absent.
    #[serde(default)]
    pub id: Option<u32>,
    /// `ownerguid`.
    pub owner: u32,
    /// `name`.
    pub name: String,
    /// `type`.
    #[serde(rename = "type", default = "guild_charter")]
    pub kind: u8,
}

/// A signature of a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSignature {
    /// `petitionguid`.
    pub petition: u32,
    /// `playerguid`.
    pub player: u32,
    /// `player_account`.
    pub account: u32,
}

/// A guild of a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedGuild {
    /// `guildid`.
    pub id: u32,
    /// `name`.
    pub name: String,
    /// The five emblem columns.
    #[serde(default)]
    pub emblem: [u8; 5],
    /// Rank names by rank id.
    #[serde(default)]
    pub ranks: Vec<String>,
}

/// A character behind another sidecar, in a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOnline {
    /// The character.
    pub character: u32,
    /// The sidecar it plays behind.
    pub sidecar: String,
}

/// The contents of a world file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Characters.
    #[serde(default)]
    pub character: Vec<SeedCharacter>,
    /// Petitions.
    #[serde(default)]
    pub petition: Vec<SeedPetition>,
    /// Signatures.
    #[serde(default)]
    pub signature: Vec<SeedSignature>,
    /// Guilds.
    #[serde(default)]
    pub guild: Vec<SeedGuild>,
    /// Presence behind other sidecars.
    #[serde(default)]
    pub online: Vec<SeedOnline>,
}

impl World {
    /// Reads a world file.
    pub fn from_file(path: &Path) -> Result<World, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}
