//! The `tc9-sidecar` binary's inspection commands, run as a process.

use std::process::{Command, Output};

fn sidecar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tc9-sidecar"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn decode_prints_fields_one_per_line() {
    // SMSG_PETITION_SHOW_SIGNATURES: charter 7 of player 3 with one signature by player 5.
    let out = sidecar(&[
        "decode",
        "--dir",
        "s2c",
        "0023 BF01",
        "0700000000000040 0300000000000000 07000000",
        "01 0500000000000000 00000000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "opcode = SMSG_PETITION_SHOW_SIGNATURES (0x1BF)\n\
         direction = s2c\n\
         body_len = 33\n\
         petition = 0x4000000000000007\n\
         owner = 0x0000000000000003\n\
         petition_id = 7\n\
         signatures.len = 1\n\
         signatures[0].player = 0x0000000000000005\n\
         signatures[0].unk = 0\n"
    );
}

#[test]
fn decode_reports_malformed_input_with_exit_1() {
    // The header says 0x21 bytes but only the opcode and 8 body bytes follow.
    let out = sidecar(&["decode", "--dir", "s2c", "0021BF010700000000000040"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: not a single server frame"), "{err}");

    let out = sidecar(&["decode", "--dir", "c2s", "0006 c0010000 0700"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: malformed CMSG_PETITION_SIGN body (2 bytes): truncated body in the field at byte 0\n"
    );

    let out = sidecar(&["decode", "--dir", "c2s", "not-hex"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn opcodes_lists_the_table() {
    let out = sidecar(&["opcodes"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), tc9_opcodes::TABLE.len());
    assert!(
        text.contains("0x520  TC9_SMSG_READY_FOR_REDIRECT      s2c   tc9"),
        "{text}"
    );
}
