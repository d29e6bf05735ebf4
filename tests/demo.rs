//! The README's first command: `tc9-sidecar demo` runs with no database and no
//! configuration and walks a charter across two worldservers.

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
    for line in [
        "Anduin@A sends    CMSG_OFFER_PETITION (0x1C3)",
        "Jaina@B receives SMSG_PETITION_SHOW_SIGNATURES (0x1BF)",
        "Jaina@B sends    CMSG_PETITION_SIGN (0x1C0)",
        "Anduin@A receives SMSG_PETITION_SIGN_RESULTS (0x1C1)",
        "The charter now has 1 signature(s): player 2 (account 2).",
        "Demo complete.",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    // The owner hears of the signature after the signer does.
    let signer = stdout
        .find("Jaina@B receives SMSG_PETITION_SIGN_RESULTS")
        .unwrap();
    let owner = stdout
        .find("Anduin@A receives SMSG_PETITION_SIGN_RESULTS")
        .unwrap();
    assert!(signer < owner);
}
