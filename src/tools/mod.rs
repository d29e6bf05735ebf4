//! The commands besides `run`: the demo, capture replay, and packet inspection.

pub mod demo;
pub mod inspect;
pub mod replay;
pub mod worldserver;
