//! The commands besides `run`: the demo, capture replay, packet inspection and the
//! schema preflight.

pub mod check_db;
pub mod demo;
pub mod inspect;
pub mod replay;
pub mod worldserver;
