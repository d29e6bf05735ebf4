//! Where a [`Config`] comes from: a TOML file, then `TC9_*` environment variables,
//! then command-line flags, each overriding the one before; errors name the key and
//! the line.

use std::path::Path;

use super::{Config, ConfigError};

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: describe_toml_error(text, &e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Builds the configuration from the file (if any), then `TC9_<KEY>` variables from
    /// `env`, then `overrides` (command-line flags), each overriding the one before.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: toml::Table,
    ) -> Result<Config, ConfigError> {
        let (mut table, origin) = match file {
            Some(path) => {
                let origin = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: origin.clone(),
                    source,
                })?;
                // Parse alone first, so file errors carry their line.
                Self::from_toml(&text, &origin)?;
                let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: origin.clone(),
                    message: describe_toml_error(&text, &e),
                })?;
                (table, origin)
            }
            None => (toml::Table::new(), "defaults".to_owned()),
        };
        // Only variables that name a key: the environment holds other TC9_* settings
        // (test knobs and the like) that are not the sidecar's.
        let known = toml::Table::try_from(Config::default()).unwrap_or_default();
        for (name, value) in env {
            let Some(key) = name.strip_prefix("TC9_").map(str::to_ascii_lowercase) else {
                continue;
            };
            if !known.contains_key(&key) {
                continue;
            }
            // A TOML scalar (number, boolean, quoted string) as written; else a string.
            let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .filter(|v| !v.is_table())
                .unwrap_or(toml::Value::String(value));
            table.insert(key, value);
        }
        table.extend(overrides);
        // Re-read as text so an error quotes the offending `key = value`.
        let merged = toml::to_string(&table).map_err(|e| ConfigError::Parse {
            path: origin.clone(),
            message: e.to_string(),
        })?;
        Self::from_toml(&merged, &format!("{origin} with TC9_* variables and flags"))
    }
}

/// The TOML error with its line quoted and the key named.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: {message} (in `{source}`)")
        }
        None => message.to_owned(),
    }
}
