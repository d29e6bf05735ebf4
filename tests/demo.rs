//! The README's first command: `tc9-sidecar demo` runs with no database and no
//! configuration and walks a charter from purchase to guild across three
//! worldservers.

use std::process::Command;

#[test]
fn demo_runs_without_any_database() {
    let out = Command::new(env!("CARGO_BIN_EXE_tc9-sidecar"))
        .arg("demo")
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let story = [
        "Anduin@A sends    CMSG_PETITION_BUY (0x1BD)",
        "Anduin@A sends    CMSG_OFFER_PETITION (0x1C3)",
        "Jaina@B receives SMSG_PETITION_SHOW_SIGNATURES (0x1BF)",
        "Jaina@B sends    CMSG_PETITION_SIGN (0x1C0)",
        "Jaina@B receives SMSG_PETITION_SIGN_RESULTS (0x1C1)",
        "Anduin@A receives SMSG_PETITION_SIGN_RESULTS (0x1C1)",
        "Tyrande@C sends    CMSG_PETITION_SIGN (0x1C0)",
        "Anduin@A sends    CMSG_TURN_IN_PETITION (0x1C4)",
        "Anduin@A receives SMSG_GUILD_COMMAND_RESULT (0x093)",
        "Anduin@A receives SMSG_TURN_IN_PETITION_RESULTS (0x1C5)",
        "Tyrande@C sends    CMSG_GUILD_QUERY (0x054)",
        "Tyrande@C receives SMSG_GUILD_QUERY_RESPONSE (0x055)",
        "name = \"Silver Hand\"",
        "The guild Silver Hand (id 1) has 5 members: Anduin, Jaina, Tyrande, Varian, Velen.",
        "Demo complete.",
    ];
    // In this order.
    let mut from = 0;
    for line in story {
        let at = stdout[from..]
            .find(line)
            .unwrap_or_else(|| panic!("missing {line:?} after byte {from} in\n{stdout}"));
        from += at + line.len();
    }
}
