//! In-process backends: a characters "database" ([`MemoryStore`]) and a directory and
//! outbox shared by the sidecars of one process ([`MemoryRealm`] / [`MemoryBus`]).
//!
//! They implement the same traits as MySQL and PostgreSQL, with the same rules (the
//! signing verdict comes from [`rules::judge_sign`](tc9_charter::rules::judge_sign)
//! under one lock), so the demo,
//! replays and a single-worldserver realm run without any database. A store can be
//! seeded from a TOML world file:
//!
//! ```toml
//! [[character]]
//! guid = 1
//! account = 1
//! name = "Owner"
//! race = 1          # class and level default to 1 and 80
//! guild = 8         # optional
//!
//! [[petition]]
//! guid = 500        # the charter item's low guid
//! id = 500          # petition_id (defaults to guid)
//! owner = 1
//! name = "Crossrealm"
//! type = 9          # defaults to 9, a guild charter
//!
//! [[signature]]
//! petition = 500
//! player = 7
//! account = 7
//!
//! [[guild]]
//! id = 8
//! name = "Knights"
//! emblem = [1, 2, 3, 4, 5]
//! ranks = ["Master", "Officer", "Veteran", "Member", "Initiate"]
//!
//! [[online]]        # characters behind other sidecars (replays)
//! character = 2
//! sidecar = "B"
//! ```

mod realm;
mod store;
mod tables;
mod world;

pub use realm::{MemoryBus, MemoryRealm};
pub use store::MemoryStore;
pub use tables::{NoticeRow, SignatureRow, Tables};
pub use world::{SeedCharacter, SeedGuild, SeedOnline, SeedPetition, SeedSignature, World};

use std::sync::{Mutex, MutexGuard};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
