//! The layering holds: `opcodes <- codec <- proxy <- charter <- tc9-sidecar`.
//! Cargo rules out cycles between crates; these tests rule out what Cargo allows:
//! a database crate under the transparent proxy or the charter rules, and a module
//! of the sidecar importing one of a layer above it.

use std::path::Path;
use std::process::Command;

/// Crates that talk to a database.
const DATABASE_CRATES: [&str; 5] = [
    "mysql_async",
    "mysql_common",
    "tokio-postgres",
    "postgres-protocol",
    "deadpool-postgres",
];

/// The crates `package` builds on (normal dependencies, transitively).
fn dependencies(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn proxy_and_charter_know_no_database() {
    for package in ["tc9-proxy", "tc9-charter"] {
        let deps = dependencies(package);
        assert!(deps.iter().any(|d| d == "tokio"), "{package}: {deps:?}");
        let found: Vec<&String> = deps
            .iter()
            .filter(|d| DATABASE_CRATES.contains(&d.as_str()))
            .collect();
        assert!(found.is_empty(), "{package} depends on {found:?}");
    }
    let sidecar = dependencies("tc9-sidecar");
    assert!(sidecar.iter().any(|d| d == "mysql_async"));
}

/// Every `crate::<module>` a source file of `dir` names.
fn crate_imports(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("a source directory") {
                pending.push(entry.expect("an entry").path());
            }
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        for part in text.split("crate::").skip(1) {
            let module: String = part
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((path.display().to_string(), module));
        }
    }
    found
}

#[test]
fn sidecar_modules_import_downward_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // Each module, and the modules of this crate it must not name.
    let rules: [(&str, &[&str]); 4] = [
        ("backends", &["app", "tools", "admin"]),
        ("config", &["app", "tools", "admin", "backends"]),
        ("admin.rs", &["app", "tools"]),
        ("app.rs", &["tools"]),
    ];
    for (module, above) in rules {
        for (file, import) in crate_imports(&src.join(module)) {
            assert!(
                !above.contains(&import.as_str()),
                "{file} imports crate::{import}, a layer above it"
            );
        }
    }
}
