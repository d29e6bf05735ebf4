//! The realm the scenarios share: its characters, charters and guild, as world-file
//! text.

/// Character guids. Races: 1 human, 3 dwarf, 4 night elf, 7 gnome (Alliance); 2 orc
/// (Horde).
pub(super) const ALDRIC: u32 = 1; // owns the guild charter; account 1, human
pub(super) const BRENNA: u32 = 2; // account 2, dwarf
pub(super) const CEDRIC: u32 = 3; // account 3, night elf
pub(super) const CEDRINA: u32 = 4; // account 3 as well (Cedric's alt), gnome
pub(super) const DORN: u32 = 5; // account 5, human, member of guild 8
pub(super) const GROKK: u32 = 6; // account 6, orc (Horde)
pub(super) const FENWICK: u32 = 7; // account 7, human; owns the arena charter and the full charter

/// The guild charter most scenarios use: item low guid 500, petition_id 31.
pub(super) const CHARTER: u32 = 500;
pub(super) const CHARTER_ID: u32 = 31;
pub(super) const CHARTER_NAME: &str = "Crossrealm Wardens";
/// A guild charter whose owner is offline everywhere.
pub(super) const QUIET_CHARTER: u32 = 501;
/// A guild charter holding its nine signatures.
pub(super) const FULL_CHARTER: u32 = 502;
/// A 3v3 arena charter (type 3).
pub(super) const ARENA_CHARTER: u32 = 700;
/// The guild Dorn is in.
pub(super) const GUILD: u32 = 8;

/// TOML for one character.
pub(super) fn character(
    guid: u32,
    account: u32,
    name: &str,
    race: u8,
    guild: Option<u32>,
) -> String {
    let guild = guild.map_or(String::new(), |g| format!("guild = {g}\n"));
    format!(
        "[[character]]\nguid = {guid}\naccount = {account}\nname = \"{name}\"\nrace = {race}\n{guild}\n"
    )
}

/// TOML for the named characters of the realm.
pub(super) fn cast() -> String {
    [
        character(ALDRIC, 1, "Aldric", 1, None),
        character(BRENNA, 2, "Brenna", 3, None),
        character(CEDRIC, 3, "Cedric", 4, None),
        character(CEDRINA, 3, "Cedrina", 7, None),
        character(DORN, 5, "Dorn", 1, Some(GUILD)),
        character(GROKK, 6, "Grokk", 2, None),
        character(FENWICK, 7, "Fenwick", 1, None),
    ]
    .concat()
}

/// TOML for `n` signer characters 101.. (accounts 101..), each signing `petition`.
pub(super) fn signers(petition: u32, first: u32, n: u32) -> String {
    (first..first + n)
        .map(|guid| {
            format!(
                "{}[[signature]]\npetition = {petition}\nplayer = {guid}\naccount = {guid}\n\n",
                character(guid, guid, &format!("Signer{guid}"), 1, None)
            )
        })
        .collect()
}

pub(super) fn petition(guid: u32, id: u32, owner: u32, name: &str, kind: u8) -> String {
    format!(
        "[[petition]]\nguid = {guid}\nid = {id}\nowner = {owner}\nname = \"{name}\"\ntype = {kind}\n\n"
    )
}

pub(super) fn the_charter() -> String {
    petition(CHARTER, CHARTER_ID, ALDRIC, CHARTER_NAME, 9)
}

pub(super) fn guild() -> String {
    format!(
        "[[guild]]\nid = {GUILD}\nname = \"Knights of Dalaran\"\nemblem = [101, 3, 2, 14, 40]\n\
         ranks = [\"Guild Master\", \"Officer\", \"Veteran\", \"Member\", \"Initiate\"]\n\n"
    )
}

pub(super) fn online(character: u32, sidecar: &str) -> String {
    format!("[[online]]\ncharacter = {character}\nsidecar = \"{sidecar}\"\n\n")
}

/// The realm most charter scenarios start from: the cast, Aldric's charter with
/// `signatures` signers from guid 101 on, and `on_b` in the world on sidecar B.
pub(super) fn charter_world(signatures: u32, on_b: &[u32]) -> String {
    let mut world = [cast(), the_charter(), signers(CHARTER, 101, signatures)].concat();
    for character in on_b {
        world += &online(*character, "B");
    }
    world
}
