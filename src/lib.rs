//! tc9-sidecar: a TCP sidecar between the ToCloud9 gateway and one AzerothCore
//! worldserver. It decodes guild and petition opcodes and resolves cross-worldserver
//! charter work; everything else passes through byte for byte.
//!
//! This crate holds the sidecar's own modules; the wire format lives in `tc9-codec`
//! and the opcode table in `tc9-opcodes`.

pub mod inspect;
