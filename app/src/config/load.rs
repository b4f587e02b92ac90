//! Loading: the defaults, the file and the environment as layers, every key checked
//! against the schema and the rules, every problem collected with where it came
//! from, and the layers merged (see the module documentation of `config`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::Serialized;
use figment::Figment;
use serde::Deserialize;

use super::docs::{schema_doc, SchemaDoc};
use super::rules::{check_entry, show};
use super::{Config, SourceKind};

/// Where a value (or a problem) came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// The built-in defaults.
    Default,
    /// The file, at this line when known.
    File { path: PathBuf, line: Option<usize> },
    /// An environment variable.
    Env { name: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Env { name } => write!(f, "environment variable {name}"),
        }
    }
}

/// One problem: where, which key, why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    origin: Origin,
    key: Option<String>,
    why: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.origin, self.why),
            None => write!(f, "{}: {}", self.origin, self.why),
        }
    }
}

/// A key as a layer gives it, before checking.
struct RawEntry {
    section: String,
    key: String,
    /// Values to try, in order (see [`check_entry`]).
    candidates: Vec<toml::Value>,
    origin: Origin,
}

/// A checked key.
#[derive(Debug, Clone)]
struct Entry {
    section: String,
    key: String,
    value: toml::Value,
    origin: Origin,
}

/// A layer's keys that passed their checks, and its problems.
#[derive(Debug, Default)]
struct Layer {
    entries: Vec<Entry>,
    problems: Vec<Problem>,
}

impl Layer {
    /// Checks `raw` against the schema and the value rules.
    fn check(schema: &SchemaDoc, raw: Vec<RawEntry>, mut problems: Vec<Problem>) -> Layer {
        let mut entries = Vec::new();
        for entry in raw {
            let path = format!("{}.{}", entry.section, entry.key);
            let Some(section) = schema.section(&entry.section) else {
                problems.push(Problem {
                    origin: entry.origin,
                    key: Some(path),
                    why: schema.unknown_section(&entry.section),
                });
                continue;
            };
            if !section.keys.iter().any(|k| k.name == entry.key) {
                problems.push(Problem {
                    origin: entry.origin,
                    key: Some(path),
                    why: schema.unknown_key(section, &entry.key),
                });
                continue;
            }
            match check_entry(&entry.section, &entry.key, &entry.candidates) {
                Ok(value) => entries.push(Entry {
                    section: entry.section,
                    key: entry.key,
                    value,
                    origin: entry.origin,
                }),
                Err(why) => problems.push(Problem {
                    origin: entry.origin,
                    key: Some(path),
                    why,
                }),
            }
        }
        Layer { entries, problems }
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

/// Reads the file layer. Returns whether the file exists.
fn file_layer(schema: &SchemaDoc, path: &Path) -> (bool, Layer) {
    let at = |line: Option<usize>| Origin::File {
        path: path.to_path_buf(),
        line,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (false, Layer::default()),
        Err(e) => {
            let problem = Problem {
                origin: at(None),
                key: None,
                why: format!("cannot read the file: {e}"),
            };
            return (true, Layer::check(schema, Vec::new(), vec![problem]));
        }
    };
    let (document, syntax_errors) = toml::de::DeTable::parse_recoverable(&text);
    if !syntax_errors.is_empty() {
        let problems = syntax_errors
            .iter()
            .map(|e| Problem {
                origin: at(e.span().map(|s| line_of(&text, s.start))),
                key: None,
                why: format!("not valid TOML: {}", e.message().trim()),
            })
            .collect();
        return (true, Layer::check(schema, Vec::new(), problems));
    }
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(e) => {
            let problem = Problem {
                origin: at(e.span().map(|s| line_of(&text, s.start))),
                key: None,
                why: format!("not valid TOML: {}", e.message().trim()),
            };
            return (true, Layer::check(schema, Vec::new(), vec![problem]));
        }
    };

    let mut raw = Vec::new();
    let mut problems = Vec::new();
    let mut sections: Vec<_> = document.get_ref().iter().collect();
    sections.sort_by_key(|(name, _)| name.span().start);
    for (name, de_value) in sections {
        let name: &str = name.get_ref();
        let line = Some(line_of(&text, de_value.span().start));
        let known = schema.section(name).is_some();
        match (de_value.get_ref().as_table(), table.get(name)) {
            (Some(de_table), Some(toml::Value::Table(values))) if known => {
                let mut keys: Vec<_> = de_table.iter().collect();
                keys.sort_by_key(|(key, _)| key.span().start);
                for (key, _) in keys {
                    let key: &str = key.get_ref();
                    let key_line = de_table
                        .get(key)
                        .map(|v| line_of(&text, v.span().start))
                        .or(line);
                    if let Some(value) = values.get(key) {
                        raw.push(RawEntry {
                            section: name.to_string(),
                            key: key.to_string(),
                            candidates: vec![value.clone()],
                            origin: at(key_line),
                        });
                    }
                }
            }
            _ if !known => problems.push(Problem {
                origin: at(line),
                key: Some(name.to_string()),
                why: schema.unknown_section(name),
            }),
            (_, value) => problems.push(Problem {
                origin: at(line),
                key: Some(name.to_string()),
                why: format!(
                    "must be a section [{name}], not {}",
                    value.map(show).unwrap_or_default()
                ),
            }),
        }
    }
    (true, Layer::check(schema, raw, problems))
}

/// The prefix of configuration environment variables.
const ENV_PREFIX: &str = "STREAMER_";

/// Reads the environment layer from `vars` (name, value).
fn env_layer(schema: &SchemaDoc, vars: impl IntoIterator<Item = (String, String)>) -> Layer {
    let mut vars: Vec<_> = vars
        .into_iter()
        .filter(|(name, _)| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    vars.sort();
    let mut raw = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in vars {
        let rest = name.get(ENV_PREFIX.len()..).unwrap_or_default();
        let origin = Origin::Env { name: name.clone() };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        if section.is_empty() || key.is_empty() || key.contains("__") {
            problems.push(Problem {
                origin,
                key: None,
                why: "not a configuration variable: use STREAMER_<SECTION>__<KEY>, \
                      e.g. STREAMER_SERVER__PORT"
                    .into(),
            });
            continue;
        }
        let mut candidates = Vec::new();
        // A TOML reading first (8080, true, 4.1, "quoted text"), then the plain text.
        if let Ok(parsed) =
            toml::de::ValueDeserializer::parse(&value).and_then(toml::Value::deserialize)
        {
            candidates.push(parsed);
        }
        candidates.push(toml::Value::String(value));
        raw.push(RawEntry {
            section: section.to_ascii_lowercase(),
            key: key.to_ascii_lowercase(),
            candidates,
            origin,
        });
    }
    Layer::check(schema, raw, problems)
}

/// Applies `layers` over the defaults; also checks the rules between keys.
fn merge(layers: &[&Layer]) -> (Config, Vec<Problem>) {
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
    // figment layers the checked keys over the defaults, in order: the file's, then
    // the environment's.
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    for entry in layers.iter().flat_map(|layer| &layer.entries) {
        let path = format!("{}.{}", entry.section, entry.key);
        figment = figment.merge(Serialized::default(&path, &entry.value));
        origins.insert(path, entry.origin.clone());
    }
    let mut problems = Vec::new();
    let config = match figment.extract::<Config>() {
        Ok(config) => config,
        Err(e) => {
            // Each key passed on its own, so this is a bug; say so and run on defaults.
            problems.push(Problem {
                origin: Origin::Default,
                key: None,
                why: format!("internal error combining the configuration: {e}"),
            });
            Config::default()
        }
    };
    if config.camera.source == SourceKind::File && config.camera.file.is_none() {
        problems.push(Problem {
            origin: origins
                .get("camera.source")
                .cloned()
                .unwrap_or(Origin::Default),
            key: Some("camera.source".into()),
            why: "\"file\" needs camera.file, the H.264 file to replay".into(),
        });
    }
    for (key, why) in config.network.cross_problems() {
        problems.push(Problem {
            origin: origins.get(key).cloned().unwrap_or(Origin::Default),
            key: Some(key.into()),
            why,
        });
    }
    (config, problems)
}

/// Whether the problem between keys `cross` says nothing new: "Wi-Fi needs
/// wifi_country" when wifi_country itself was refused (or "needs address" when
/// address was).
fn follows_from(cross: &Problem, problems: &[Problem]) -> bool {
    let refused = |key: &str| problems.iter().any(|p| p.key.as_deref() == Some(key));
    match cross.key.as_deref() {
        Some("network.wifi_ssid") => refused("network.wifi_country"),
        Some("network.gateway" | "network.dns") => refused("network.address"),
        _ => false,
    }
}

/// Orders problems as a person reads them: the file's by line, then the
/// environment's by name.
fn sort_problems(problems: &mut [Problem]) {
    problems.sort_by_key(|p| match &p.origin {
        Origin::File { line, .. } => (0, line.unwrap_or(0)),
        Origin::Env { .. } => (1, 0),
        Origin::Default => (2, 0),
    });
}

/// The configuration the streamer runs with, and what was wrong with the file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration (defaults when the file was invalid).
    pub config: Config,
    /// Problems found, in plain words; empty when the file was fine.
    pub errors: Vec<String>,
    /// Whether the file existed.
    pub file_found: bool,
}

/// How the configuration file was read, for `/api/status` and the player's banner.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConfigReport {
    /// The configuration file's path.
    pub path: PathBuf,
    /// Whether it existed.
    pub found: bool,
    /// What was wrong with it; the streamer runs on defaults when not empty.
    pub errors: Vec<String>,
}

/// Every problem found in the configuration, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    /// The problems, each naming the file and line (or environment variable), the
    /// key and why.
    pub problems: Vec<String>,
}

/// Defaults -> file at `path` -> `env` (name, value pairs; only
/// `STREAMER_<SECTION>__<KEY>` are read). The config is the merge when there is no
/// problem; else defaults + the file when the file itself is fine + the valid
/// variables (and `camera.source` falls back to its default if that leaves it
/// "file" without a file).
pub fn load_or_defaults_from(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Loaded {
    let schema = schema_doc();
    let (file_found, file) = file_layer(&schema, path);
    let env = env_layer(&schema, env);
    let (config, cross) = merge(&[&file, &env]);
    let mut problems: Vec<Problem> = file.problems.iter().chain(&env.problems).cloned().collect();
    let cross: Vec<Problem> = cross
        .into_iter()
        .filter(|p| !follows_from(p, &problems))
        .collect();
    problems.extend(cross);
    sort_problems(&mut problems);
    if problems.is_empty() {
        return Loaded {
            config,
            errors: Vec::new(),
            file_found,
        };
    }
    let file_is_bad = problems
        .iter()
        .any(|p| matches!(p.origin, Origin::File { .. }));
    // The network section of a bad file is still used when it has no problem of its
    // own: a mistake elsewhere must not take the device off the network, where the
    // page shows the mistake.
    let network_is_bad = problems.iter().any(|p| {
        matches!(p.origin, Origin::File { .. })
            && p.key
                .as_deref()
                .is_some_and(|k| k == "network" || k.starts_with("network."))
    });
    let file_network = Layer {
        entries: file
            .entries
            .iter()
            .filter(|e| e.section == "network")
            .cloned()
            .collect(),
        problems: Vec::new(),
    };
    let layers: Vec<&Layer> = if !file_is_bad {
        vec![&file, &env]
    } else if network_is_bad {
        vec![&env]
    } else {
        vec![&file_network, &env]
    };
    let (mut config, cross) = merge(&layers);
    for problem in cross {
        if problem.key.as_deref() != Some("camera.source") {
            // A network problem between keys: the setup leaves out what is unusable.
            if !problems.contains(&problem) && !follows_from(&problem, &problems) {
                problems.push(problem);
            }
            continue;
        }
        config.camera.source = SourceKind::default();
        if !problems.contains(&problem) {
            problems.push(Problem {
                why: format!(
                    "{} (the file has problems, so its camera.file is not used)",
                    problem.why
                ),
                ..problem
            });
        }
    }
    Loaded {
        config,
        errors: problems.iter().map(ToString::to_string).collect(),
        file_found,
    }
}

/// Like [`load_or_defaults_from`], but fails with every problem.
pub fn load_from(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let loaded = load_or_defaults_from(path, env);
    if loaded.errors.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigError {
            problems: loaded.errors,
        })
    }
}

/// The process environment as (name, value) pairs; variables that are not valid
/// UTF-8 are skipped (configuration names and values are text).
fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// Loads defaults -> file -> `STREAMER_*` environment. Fails with every problem.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_from(path, process_env())
}

/// Loads defaults -> file -> `STREAMER_*` environment. Never fails: an invalid file
/// yields the defaults (plus the valid environment variables) and the errors, so the
/// device never goes dark.
pub fn load_or_defaults(path: &Path) -> Loaded {
    load_or_defaults_from(path, process_env())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;

    #[test]
    fn lines_are_one_based() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 100), 3);
    }

    #[test]
    fn environment_values_try_toml_then_text() {
        let schema = schema_doc();
        let layer = env_layer(
            &schema,
            [
                ("STREAMER_SERVER__PORT".to_string(), "8080".to_string()),
                ("STREAMER_LOG__LEVEL".to_string(), "debug".to_string()),
                ("STREAMER_ENCODER__LEVEL".to_string(), "4.0".to_string()),
            ],
        );
        assert!(layer.problems.is_empty(), "{:?}", layer.problems);
        let values: Vec<_> = layer.entries.iter().map(|e| e.value.clone()).collect();
        assert_eq!(
            values,
            [
                toml::Value::Float(4.0),
                toml::Value::String("debug".into()),
                toml::Value::Integer(8080)
            ]
        );
    }

    #[test]
    fn dns_is_a_list_or_one_text() {
        let schema = schema_doc();
        let layer = env_layer(
            &schema,
            [(
                "STREAMER_NETWORK__DNS".to_string(),
                "1.1.1.1, 9.9.9.9".to_string(),
            )],
        );
        assert!(layer.problems.is_empty(), "{:?}", layer.problems);
        let config: Config = toml::from_str("[network]\ndns = [\"1.1.1.1\"]\n").unwrap();
        assert_eq!(config.network.dns, ["1.1.1.1"]);
        let config: Config = toml::from_str("[network]\ndns = \"1.1.1.1 9.9.9.9\"\n").unwrap();
        assert_eq!(config.network.dns, ["1.1.1.1", "9.9.9.9"]);
    }

    #[test]
    fn a_mistake_elsewhere_keeps_the_network_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("streamer.toml");
        std::fs::write(
            &path,
            "[network]\nwifi_ssid = \"Home\"\nwifi_country = \"GB\"\n[server]\nport = 70000\n",
        )
        .unwrap();
        let loaded = load_or_defaults_from(&path, []);
        assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
        assert_eq!(loaded.config.network.wifi_ssid, "Home");
        assert_eq!(loaded.config.server.port, 80);
        // A mistake in [network] itself: the whole section is the default.
        std::fs::write(
            &path,
            "[network]\nwifi_ssid = \"Home\"\nwifi_country = \"GBR\"\nhostname = \"cam\"\n",
        )
        .unwrap();
        let loaded = load_or_defaults_from(&path, []);
        assert_eq!(loaded.config.network, NetworkConfig::default());
        assert!(
            loaded.errors[0].contains(":3: network.wifi_country: \"GBR\" is not a country code"),
            "{:?}",
            loaded.errors
        );
        // Wi-Fi without a country is named, at the SSID's line.
        std::fs::write(&path, "[network]\n\nwifi_ssid = \"Home\"\n").unwrap();
        let loaded = load_or_defaults_from(&path, []);
        assert!(
            loaded.errors[0].contains(":3: network.wifi_ssid: Wi-Fi needs wifi_country"),
            "{:?}",
            loaded.errors
        );
        assert!(!loaded.config.network.wifi_enabled());
    }
}
