//! Loading: the defaults, the file and the environment as layers, every key checked
//! against the schema and the rules, every problem collected with where it came
//! from, and the layers merged (see the module documentation of `config`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use figment::providers::Serialized;
use figment::Figment;
use serde::de::IntoDeserializer;
use serde::Deserialize;

use super::docs::{schema_doc, SchemaDoc};
use super::rules::{check_entry, cut, quote, show, MESSAGE_CHARS, QUOTE_CHARS};
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
        // Keys and reasons are cut: an unknown key may be a megabyte long.
        let why = cut(&self.why, MESSAGE_CHARS);
        match &self.key {
            Some(key) => write!(f, "{}: {}: {why}", self.origin, cut(key, QUOTE_CHARS)),
            None => write!(f, "{}: {why}", self.origin),
        }
    }
}

/// Problems kept and shown at most; the rest are counted, and the last line says how
/// many more there are (`/api/status` and every viewer's hello carry the list).
pub const MAX_PROBLEMS: usize = 20;

/// The largest configuration file read, in bytes (1 MiB; the commented default file
/// is about 20 KiB). A larger file is refused whole, unread, and the streamer runs
/// on the defaults.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Problems as a person reads them (the file's by line, then the environment's by
/// name, then the rest), at most [`MAX_PROBLEMS`] of them kept; the others are only
/// counted, so a file of a million mistakes costs no more memory than one of twenty.
#[derive(Debug, Default)]
struct Problems {
    /// The first problems in reading order, with their place in it; up to twice
    /// [`MAX_PROBLEMS`] between trims.
    kept: Vec<(OrderKey, Problem)>,
    /// Every problem pushed, kept or not.
    total: usize,
    /// Whether any problem came from the file.
    in_file: bool,
    /// Whether any problem from the file is about `[network]`.
    in_file_network: bool,
    /// Whether any problem (file or environment) is about `[access]`.
    in_access: bool,
    /// The place of the last kept problem once [`MAX_PROBLEMS`] are kept: problems
    /// after it are only counted.
    last_kept: Option<OrderKey>,
}

/// Where a problem goes in reading order: origin (file, environment, built-in), line,
/// then the order it was found in.
type OrderKey = (u8, usize, usize);

impl Problems {
    fn push(&mut self, problem: Problem) {
        let (rank, line) = match &problem.origin {
            Origin::File { line, .. } => (0, line.unwrap_or(0)),
            Origin::Env { .. } => (1, 0),
            Origin::Default => (2, 0),
        };
        if rank == 0 {
            self.in_file = true;
            if problem
                .key
                .as_deref()
                .is_some_and(|k| k == "network" || k.starts_with("network."))
            {
                self.in_file_network = true;
            }
        }
        if problem
            .key
            .as_deref()
            .is_some_and(|k| k == "access" || k.starts_with("access."))
        {
            self.in_access = true;
        }
        if !self.is_past(rank, line) {
            self.kept.push(((rank, line, self.total), problem));
        }
        self.total += 1;
        if self.kept.len() >= 2 * MAX_PROBLEMS {
            self.trim();
        }
    }

    /// Whether a problem found now at `rank` and `line` would come after every
    /// kept one when [`MAX_PROBLEMS`] are kept (it is only counted).
    fn is_past(&self, rank: u8, line: usize) -> bool {
        // Found later, so after a kept problem of the same origin and line.
        self.last_kept
            .is_some_and(|(last_rank, last_line, _)| (rank, line) >= (last_rank, last_line))
    }

    /// Counts a problem in the file at `line` (in `section`) without keeping it,
    /// when [`Problems::is_past`], so its message need not be written. Returns
    /// whether it was counted.
    fn count_if_past(&mut self, line: Option<usize>, section: &str) -> bool {
        let past = self.is_past(0, line.unwrap_or(0));
        if past {
            self.in_file = true;
            self.in_file_network |= section == "network";
            self.in_access |= section == "access";
            self.total += 1;
        }
        past
    }

    /// Keeps the first [`MAX_PROBLEMS`] in reading order (amortized: each trim
    /// sorts at most twice that many).
    fn trim(&mut self) {
        self.kept.sort_unstable_by_key(|(order, _)| *order);
        self.kept.truncate(MAX_PROBLEMS);
        if self.kept.len() == MAX_PROBLEMS {
            self.last_kept = self.kept.last().map(|(order, _)| *order);
        }
    }

    /// Adds `other`'s problems after these (in reading order, theirs come after
    /// ours where origin and line are equal).
    fn append(&mut self, mut other: Problems) {
        other.trim();
        let dropped = other.total - other.kept.len();
        for (_, problem) in other.kept {
            self.push(problem);
        }
        self.total += dropped;
        self.in_file |= other.in_file;
        self.in_file_network |= other.in_file_network;
        self.in_access |= other.in_access;
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The kept problems in reading order, one line each, and a last line saying how
    /// many more there are.
    fn into_messages(mut self) -> Vec<String> {
        self.trim();
        let more = self.total - self.kept.len();
        let mut lines: Vec<String> = self.kept.iter().map(|(_, p)| p.to_string()).collect();
        match more {
            0 => {}
            1 => lines.push("and 1 more problem".into()),
            n => lines.push(format!("and {n} more problems")),
        }
        lines
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
    problems: Problems,
    /// The known keys (`network.address`) whose value was refused.
    refused: BTreeSet<String>,
    /// The file could not be read as a whole, and may have had an `[access]`
    /// password: access is then closed rather than opened by the mistake.
    access_unknown: bool,
}

impl Layer {
    /// A layer with no keys and this one problem.
    fn refused_whole(problem: Problem) -> Layer {
        let mut problems = Problems::default();
        problems.push(problem);
        Layer {
            problems,
            ..Layer::default()
        }
    }

    /// Checks `raw` against the schema and the value rules.
    fn check(schema: &SchemaDoc, raw: Vec<RawEntry>, mut problems: Problems) -> Layer {
        let mut entries = Vec::new();
        let mut refused = BTreeSet::new();
        for entry in raw {
            let known = schema
                .section(&entry.section)
                .filter(|section| section.keys.iter().any(|k| k.name == entry.key));
            // An unknown key past the problems kept is only counted (a file may
            // have a hundred thousand).
            if let (None, Origin::File { line, .. }) = (known, &entry.origin) {
                if problems.count_if_past(*line, &entry.section) {
                    continue;
                }
            }
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
                Err(why) => {
                    refused.insert(path.clone());
                    problems.push(Problem {
                        origin: entry.origin,
                        key: Some(path),
                        why,
                    });
                }
            }
        }
        Layer {
            entries,
            problems,
            refused,
            access_unknown: false,
        }
    }
}

/// Where each line of a text starts, to turn byte offsets into line numbers in
/// logarithmic time (built once per file: every problem needs its line).
struct LineIndex {
    /// Byte offsets of the lines' starts; the first is 0.
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter_map(|(i, b)| (b == b'\n').then_some(i + 1)),
            )
            .collect();
        LineIndex { starts }
    }

    /// 1-based line of byte `offset` (the last line for offsets past the end).
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset).max(1)
    }
}

/// Why a file of `size` bytes (unknown: more than it said) is not read.
fn too_big(size: Option<u64>) -> String {
    let limit = format!(
        "the limit of {MAX_FILE_BYTES} bytes (1 MiB) for a configuration file: it was not read"
    );
    match size {
        Some(size) => format!("the file is {size} bytes, over {limit}"),
        None => format!("the file is longer than {limit}"),
    }
}

/// How the file was read.
enum FileText {
    /// There is no file.
    Missing,
    /// Its text.
    Text(String),
    /// It could not be used at all: why.
    Refused(Problem),
}

/// Reads the file at `path`: at most [`MAX_FILE_BYTES`], never more into memory (a
/// larger file is refused by its size before reading, and a file that grows or
/// lies about its size by reading one byte past the limit).
fn read_file(path: &Path) -> FileText {
    let refuse = |line: Option<usize>, why: String| {
        FileText::Refused(Problem {
            origin: Origin::File {
                path: path.to_path_buf(),
                line,
            },
            key: None,
            why,
        })
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileText::Missing,
        Err(e) => return refuse(None, format!("cannot read the file: {e}")),
    };
    if let Ok(metadata) = file.metadata() {
        if metadata.is_file() && metadata.len() > MAX_FILE_BYTES {
            return refuse(None, too_big(Some(metadata.len())));
        }
    }
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes) {
        return refuse(None, format!("cannot read the file: {e}"));
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return refuse(None, too_big(None));
    }
    match String::from_utf8(bytes) {
        Ok(text) => FileText::Text(text),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
            refuse(
                Some(line),
                format!(
                    "not text (UTF-8): byte {valid} is 0x{:02x}; save the file as UTF-8 text",
                    bytes.get(valid).copied().unwrap_or_default()
                ),
            )
        }
    }
}

/// Decodes keys and values as the parser meets them, for their errors (escapes,
/// numbers, dates) as toml reports them; keeps nothing.
struct Decode<'i> {
    text: &'i str,
}

impl<'i> Decode<'i> {
    fn raw(
        &self,
        span: toml_parser::Span,
        encoding: Option<toml_parser::decoder::Encoding>,
    ) -> Option<toml_parser::Raw<'i>> {
        let raw = self.text.get(span.start()..span.end())?;
        Some(toml_parser::Raw::new_unchecked(raw, encoding, span))
    }
}

impl toml_parser::parser::EventReceiver for Decode<'_> {
    fn simple_key(
        &mut self,
        span: toml_parser::Span,
        encoding: Option<toml_parser::decoder::Encoding>,
        error: &mut dyn toml_parser::ErrorSink,
    ) {
        if let Some(raw) = self.raw(span, encoding) {
            raw.decode_key(&mut std::borrow::Cow::Borrowed(""), error);
        }
    }

    fn scalar(
        &mut self,
        span: toml_parser::Span,
        encoding: Option<toml_parser::decoder::Encoding>,
        error: &mut dyn toml_parser::ErrorSink,
    ) {
        let Some(raw) = self.raw(span, encoding) else {
            return;
        };
        let mut decoded = std::borrow::Cow::Borrowed("");
        if let toml_parser::decoder::ScalarKind::DateTime = raw.decode_scalar(&mut decoded, error) {
            if let Err(e) = decoded.parse::<toml::value::Datetime>() {
                error.report_error(
                    toml_parser::ParseError::new(e.to_string()).with_unexpected(span),
                );
            }
        }
    }
}

/// The syntax errors in `text` (the file at `path`), in reading order, at most
/// [`MAX_PROBLEMS`] kept and the rest counted; worded as toml words them.
fn syntax_problems(text: &str, path: &Path, lines: &LineIndex) -> Problems {
    let source = toml_parser::Source::new(text);
    let tokens = source.lex().into_vec();
    let mut problems = Problems::default();
    let mut sink = |error: toml_parser::ParseError| {
        let line = error.unexpected().map(|span| lines.line_of(span.start()));
        if problems.count_if_past(line, "") {
            return;
        }
        let mut why = format!("not valid TOML: {}", error.description());
        if let Some(expected) = error.expected() {
            why.push_str(", expected ");
            if expected.is_empty() {
                why.push_str("nothing");
            }
            for (i, expected) in expected.iter().enumerate() {
                if i != 0 {
                    why.push_str(", ");
                }
                match expected {
                    toml_parser::Expected::Literal("\n") => why.push_str("newline"),
                    toml_parser::Expected::Literal("`") => why.push_str("'`'"),
                    toml_parser::Expected::Literal(literal)
                        if literal.chars().all(|c| c.is_ascii_control()) =>
                    {
                        why.push_str(&format!("`{}`", literal.escape_debug()))
                    }
                    toml_parser::Expected::Literal(literal) => {
                        why.push_str(&format!("`{literal}`"))
                    }
                    toml_parser::Expected::Description(description) => why.push_str(description),
                    _ => why.push_str("etc"),
                }
            }
        }
        problems.push(Problem {
            origin: Origin::File {
                path: path.to_path_buf(),
                line,
            },
            key: None,
            why,
        });
    };
    // The events are not kept, only the errors (whitespace rules included).
    let mut decode = Decode { text };
    let mut receiver = toml_parser::parser::ValidateWhitespace::new(&mut decode, source);
    toml_parser::parser::parse_document(&tokens, &mut receiver, &mut sink);
    problems
}

/// Whether a file that cannot be read as a whole may set a password: it mentions
/// one (`access.password`; `wifi_passphrase` is another word).
fn may_set_password(text: &str) -> bool {
    text.to_ascii_lowercase().contains("password")
}

/// The file layer from the file's `text` (`path` names it in messages).
fn text_layer(schema: &SchemaDoc, path: &Path, text: &str) -> Layer {
    let mut layer = whole_text_layer(schema, path, text);
    if layer.entries.is_empty() && !layer.problems.is_empty() && may_set_password(text) {
        layer.access_unknown = true;
    }
    layer
}

/// [`text_layer`] without the `[access]` safety check.
fn whole_text_layer(schema: &SchemaDoc, path: &Path, text: &str) -> Layer {
    let at = |line: Option<usize>| Origin::File {
        path: path.to_path_buf(),
        line,
    };
    if text.len() as u64 > MAX_FILE_BYTES {
        return Layer::refused_whole(Problem {
            origin: at(None),
            key: None,
            why: too_big(Some(text.len() as u64)),
        });
    }
    let lines = LineIndex::new(text);
    // Syntax errors first, counted as they are found (toml's recoverable parse
    // keeps each with its message: a million for a megabyte of "= = =").
    let problems = syntax_problems(text, path, &lines);
    if !problems.is_empty() {
        return Layer::check(schema, Vec::new(), problems);
    }
    let document = match toml::de::DeTable::parse(text) {
        Ok(document) => document,
        // Not a syntax error (a key defined twice): the first is enough.
        Err(first) => {
            return Layer::refused_whole(Problem {
                origin: at(first.span().map(|s| lines.line_of(s.start))),
                key: None,
                why: format!("not valid TOML: {}", first.message().trim()),
            })
        }
    };
    // A value as toml::Value (what the rules check), or why it cannot be one.
    let value_of = |value: &toml::Spanned<toml::de::DeValue<'_>>| {
        toml::Value::deserialize(value.clone().into_deserializer()).map_err(|e| Problem {
            origin: at(Some(lines.line_of(value.span().start))),
            key: None,
            why: format!("not valid TOML: {}", e.message().trim()),
        })
    };

    let mut raw = Vec::new();
    let mut problems = Problems::default();
    let mut sections: Vec<_> = document.get_ref().iter().collect();
    sections.sort_by_key(|(name, _)| name.span().start);
    for (name, de_value) in sections {
        let name: &str = name.get_ref();
        let line = Some(lines.line_of(de_value.span().start));
        let known = schema.section(name).is_some();
        match de_value.get_ref().as_table() {
            Some(de_table) if known => {
                let mut keys: Vec<_> = de_table.iter().collect();
                keys.sort_by_key(|(key, _)| key.span().start);
                for (key, de_value) in keys {
                    match value_of(de_value) {
                        Ok(value) => raw.push(RawEntry {
                            section: name.to_string(),
                            key: key.get_ref().to_string(),
                            candidates: vec![value],
                            origin: at(Some(lines.line_of(de_value.span().start))),
                        }),
                        Err(problem) => problems.push(problem),
                    }
                }
            }
            _ if !known => {
                if !problems.count_if_past(line, name) {
                    problems.push(Problem {
                        origin: at(line),
                        key: Some(name.to_string()),
                        why: schema.unknown_section(name),
                    });
                }
            }
            _ => problems.push(Problem {
                origin: at(line),
                key: Some(name.to_string()),
                why: format!(
                    "must be a section [{name}], not {}",
                    value_of(de_value).as_ref().map(show).unwrap_or_default()
                ),
            }),
        }
    }
    Layer::check(schema, raw, problems)
}

/// Reads the file layer. Returns whether the file exists.
fn file_layer(schema: &SchemaDoc, path: &Path) -> (bool, Layer) {
    match read_file(path) {
        FileText::Missing => (false, Layer::default()),
        // Unread: whether it sets a password is unknown.
        FileText::Refused(problem) => (
            true,
            Layer {
                access_unknown: true,
                ..Layer::refused_whole(problem)
            },
        ),
        FileText::Text(text) => (true, text_layer(schema, path, &text)),
    }
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
    let mut problems = Problems::default();
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

/// Why the H.264 file `path` cannot be replayed, if it cannot: it must exist and,
/// when it is a regular file, open for reading. The path is taken as the file source
/// takes it (`crate::source::plan`): relative paths from the working directory.
/// Only regular files are opened (a FIFO or a device is never opened here, since
/// opening one can block or do something).
fn unreadable(path: &Path) -> Option<String> {
    let shown = quote(&path.display().to_string());
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "{shown} does not exist: name the H.264 file to replay"
        )),
        Err(e) => Some(format!("cannot read {shown}: {e}")),
        Ok(metadata) if metadata.is_dir() => Some(format!(
            "{shown} is a folder: name the H.264 file to replay"
        )),
        Ok(metadata) if metadata.is_file() => std::fs::File::open(path)
            .err()
            .map(|e| format!("cannot read {shown}: {e}")),
        Ok(_) => None,
    }
}

/// Applies `layers` over the defaults; also checks the rules between keys, and that
/// the file source's file can be read.
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
    let origin_of = |key: &str| origins.get(key).cloned().unwrap_or(Origin::Default);
    if config.camera.source == SourceKind::File {
        match &config.camera.file {
            None => problems.push(Problem {
                origin: origin_of("camera.source"),
                key: Some("camera.source".into()),
                why: "\"file\" needs camera.file, the H.264 file to replay".into(),
            }),
            Some(file) => {
                if let Some(why) = unreadable(file) {
                    problems.push(Problem {
                        origin: origin_of("camera.file"),
                        key: Some("camera.file".into()),
                        why,
                    });
                }
            }
        }
    }
    let cross = config.network.cross_problems();
    for (key, why) in cross.into_iter().chain(config.server.cross_problems()) {
        problems.push(Problem {
            origin: origin_of(key),
            key: Some(key.into()),
            why,
        });
    }
    (config, problems)
}

/// Whether the problem between keys `cross` says nothing new: "Wi-Fi needs
/// wifi_country" when wifi_country itself was `refused` (or "needs address" when
/// address was).
fn follows_from(cross: &Problem, refused: &BTreeSet<String>) -> bool {
    match cross.key.as_deref() {
        Some("network.wifi_ssid") => refused.contains("network.wifi_country"),
        Some("network.gateway" | "network.dns") => refused.contains("network.address"),
        _ => false,
    }
}

/// The configuration the streamer runs with, and what was wrong with the file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration (defaults when the file was invalid).
    pub config: Config,
    /// Problems found, in plain words, at most [`MAX_PROBLEMS`] and then a line
    /// saying how many more there are; empty when the file was fine.
    pub errors: Vec<String>,
    /// Whether the file existed.
    pub file_found: bool,
    /// The file's `[network]` section has a problem of its own, so none of it is
    /// used (every problem decides this, also those past [`MAX_PROBLEMS`] that are
    /// only counted).
    pub network_set_aside: bool,
    /// `[access]` has a mistake of its own (in the file or the environment), or
    /// the file could not be read and may set a password: the password is
    /// unknown, so nobody may watch (the streamer says why) until it is fixed.
    pub access_closed: bool,
    /// How many problems there are: [`Loaded::errors`] lists at most
    /// [`MAX_PROBLEMS`] of them.
    pub problem_count: usize,
}

/// How the configuration file was read, for `/api/status` and the player's banner.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConfigReport {
    /// The configuration file's path.
    pub path: PathBuf,
    /// Whether it existed.
    pub found: bool,
    /// What was wrong with it ([`Loaded::errors`]: at most [`MAX_PROBLEMS`] and a
    /// line saying how many more); the streamer runs on defaults when not empty.
    pub errors: Vec<String>,
    /// How many problems there are, those only counted included
    /// ([`Loaded::problem_count`]).
    pub problem_count: usize,
}

impl ConfigReport {
    /// Adds a problem found after loading (a `server.bind` address the device
    /// lacks) at the top of the list, and counts it.
    pub fn put_first(&mut self, problem: String) {
        self.errors.insert(0, problem);
        self.problem_count += 1;
    }
}

/// Every problem found in the configuration, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    /// The problems, each naming the file and line (or environment variable), the
    /// key and why ([`Loaded::errors`]).
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
    combine(file_found, file, env_layer(&schema, env))
}

/// Like [`load_or_defaults_from`], with the file's contents given as `text`
/// (`path` only names the file in messages); the fuzz target's entry point.
pub fn load_or_defaults_from_text(
    path: &Path,
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Loaded {
    let schema = schema_doc();
    let file = text_layer(&schema, path, text);
    combine(true, file, env_layer(&schema, env))
}

/// The configuration from the `file` and `env` layers (see
/// [`load_or_defaults_from`]).
fn combine(file_found: bool, file: Layer, env: Layer) -> Loaded {
    let access_unknown = file.access_unknown;
    let (config, first_cross) = merge(&[&file, &env]);
    let refused: BTreeSet<String> = file.refused.union(&env.refused).cloned().collect();
    let first_cross: Vec<Problem> = first_cross
        .into_iter()
        .filter(|p| !follows_from(p, &refused))
        .collect();
    let mut problems = Problems::default();
    // The layers' entries are still needed: only their problems move.
    let Layer {
        entries: file_entries,
        problems: file_problems,
        ..
    } = file;
    let Layer {
        entries: env_entries,
        problems: env_problems,
        ..
    } = env;
    problems.append(file_problems);
    problems.append(env_problems);
    for problem in &first_cross {
        problems.push(problem.clone());
    }
    if problems.is_empty() {
        return Loaded {
            config,
            errors: Vec::new(),
            file_found,
            network_set_aside: false,
            access_closed: access_unknown,
            problem_count: 0,
        };
    }
    let env = Layer {
        entries: env_entries,
        ..Layer::default()
    };
    // The network section of a bad file is still used when it has no problem of its
    // own: a mistake elsewhere must not take the device off the network, where the
    // page shows the mistake. So is the access section: a mistake elsewhere must
    // not open the camera to everyone.
    let keep = |section: &str| match section {
        "network" => !problems.in_file_network,
        "access" => !problems.in_access,
        _ => false,
    };
    let file = Layer {
        entries: if !problems.in_file {
            file_entries
        } else {
            file_entries
                .into_iter()
                .filter(|e| keep(&e.section))
                .collect()
        },
        ..Layer::default()
    };
    // A mistake in [access] itself (or an unreadable file that may set a
    // password) closes access: nobody can watch until it is fixed.
    let access_closed = problems.in_access || access_unknown;
    let network_set_aside = problems.in_file && problems.in_file_network;
    let (mut config, cross) = merge(&[&file, &env]);
    for problem in cross {
        let seen = first_cross.contains(&problem);
        if problem.key.as_deref() != Some("camera.source") {
            // A network problem between keys (the setup leaves out what is
            // unusable), or an unreadable camera.file (the file source says so too,
            // and tries again: the file may appear).
            if !seen && !follows_from(&problem, &refused) {
                problems.push(problem);
            }
            continue;
        }
        config.camera.source = SourceKind::default();
        if !seen {
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
        problem_count: problems.total,
        errors: problems.into_messages(),
        file_found,
        network_set_aside,
        access_closed,
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
        let lines = LineIndex::new("a\nb\nc");
        assert_eq!(lines.line_of(0), 1);
        assert_eq!(lines.line_of(1), 1);
        assert_eq!(lines.line_of(2), 2);
        assert_eq!(lines.line_of(4), 3);
        assert_eq!(lines.line_of(100), 3);
        let lines = LineIndex::new("\n\n");
        assert_eq!(lines.line_of(0), 1);
        assert_eq!(lines.line_of(1), 2);
        assert_eq!(lines.line_of(2), 3);
        assert_eq!(LineIndex::new("").line_of(0), 1);
    }

    fn problem(origin: Origin, why: &str) -> Problem {
        Problem {
            origin,
            key: None,
            why: why.into(),
        }
    }

    fn at_line(line: usize) -> Origin {
        Origin::File {
            path: PathBuf::from("f"),
            line: Some(line),
        }
    }

    #[test]
    fn problems_keep_the_first_in_reading_order_and_count_the_rest() {
        let mut problems = Problems::default();
        problems.push(problem(
            Origin::Env {
                name: "STREAMER_A__B".into(),
            },
            "env",
        ));
        for line in (1..=1000).rev() {
            problems.push(problem(at_line(line), "x"));
        }
        // Same line: in the order found.
        problems.push(problem(at_line(3), "second on line 3"));
        assert!(problems.kept.len() < 2 * MAX_PROBLEMS);
        assert_eq!(problems.total, 1002);
        let messages = problems.into_messages();
        assert_eq!(messages.len(), MAX_PROBLEMS + 1);
        assert_eq!(messages[0], "f:1: x");
        assert_eq!(messages[2], "f:3: x");
        assert_eq!(messages[3], "f:3: second on line 3");
        assert_eq!(messages[MAX_PROBLEMS - 1], "f:19: x");
        assert_eq!(messages[MAX_PROBLEMS], "and 982 more problems");
        // In the file's order: once MAX_PROBLEMS are kept, later ones are only counted.
        let mut problems = Problems::default();
        for line in 1..=1000 {
            if !problems.count_if_past(Some(line), "") {
                problems.push(problem(at_line(line), "x"));
            }
        }
        assert_eq!(problems.kept.len(), MAX_PROBLEMS);
        assert!(problems.in_file);
        let messages = problems.into_messages();
        assert_eq!(messages[MAX_PROBLEMS - 1], "f:20: x");
        assert_eq!(messages[MAX_PROBLEMS], "and 980 more problems");
    }

    #[test]
    fn appended_problems_merge_in_order_and_keep_their_count() {
        let mut env = Problems::default();
        env.push(problem(Origin::Env { name: "E".into() }, "env"));
        let mut file = Problems::default();
        for line in 1..=30 {
            file.push(problem(at_line(line), "x"));
        }
        let mut all = Problems::default();
        all.append(env);
        all.append(file);
        assert!(all.in_file);
        assert_eq!(all.total, 31);
        let messages = all.into_messages();
        assert_eq!(messages[0], "f:1: x");
        assert_eq!(messages[MAX_PROBLEMS], "and 11 more problems");
        // Exactly one more: singular.
        let mut one_more = Problems::default();
        for line in 0..=MAX_PROBLEMS {
            one_more.push(problem(at_line(line), "x"));
        }
        assert_eq!(
            one_more.into_messages().last().unwrap(),
            "and 1 more problem"
        );
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
    fn a_mistake_elsewhere_keeps_the_password_and_a_mistake_in_access_closes_it() {
        let text = "[access]\npassword = \"hunter2 hunter2\"\n[server]\nport = 70000\n";
        let loaded = load_or_defaults_from_text(Path::new("s.toml"), text, []);
        assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
        assert_eq!(loaded.config.access.password, "hunter2 hunter2");
        assert!(!loaded.access_closed);
        // A mistake in [access] itself: nobody can watch until it is fixed.
        for text in [
            "[access]\npassword = \"$argon2id$broken\"\n",
            "[access]\npasword = \"typo in the key\"\n",
            "[access]\npassword = 12345678\n",
        ] {
            let loaded = load_or_defaults_from_text(Path::new("s.toml"), text, []);
            assert!(loaded.access_closed, "{text}");
            let shown = loaded.errors.join("\n");
            assert!(
                !shown.contains("broken") && !shown.contains("12345678"),
                "{shown}"
            );
        }
        let env = [("STREAMER_ACCESS__PASSWORD".to_string(), "a\nb".to_string())];
        let loaded = load_or_defaults_from_text(Path::new("s.toml"), "", env);
        assert!(loaded.access_closed);
        // A file that cannot be read at all, mentioning a password: closed; one
        // that does not: open as before.
        let broken = "[access]\npassword = \"unterminated\n";
        let loaded = load_or_defaults_from_text(Path::new("s.toml"), broken, []);
        assert!(loaded.access_closed);
        assert!(!loaded.errors.join("\n").contains("unterminated"));
        let loaded = load_or_defaults_from_text(Path::new("s.toml"), "[server\nport = 1\n", []);
        assert!(!loaded.access_closed);
        assert!(!loaded.errors.is_empty());
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
