//! The files the update feature reads, pure: `/boot/last-update.txt` (the
//! durable record of the last update's result, written by the update scripts)
//! and `IMAGE_VERSION=` of `/etc/os-release` (the running image's version).

use serde::Serialize;

/// Most bytes of either file that are read: both are a few lines.
pub const MAX_FILE_BYTES: usize = 4096;

/// Most characters of one value kept: a longer one is cut.
const MAX_VALUE_CHARS: usize = 200;

/// What `/boot/last-update.txt` says: `key=value` lines, `#` comments. Every
/// field is optional: a damaged or partly written file still shows what it has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LastUpdate {
    /// `installed` (restarting to try it), `updated` (tried and committed) or
    /// `rolled-back` (another word is kept as written).
    pub result: Option<String>,
    /// The bundle's version (its manifest's).
    pub version: Option<String>,
    /// The slot the bundle went to: `A` or `B`.
    pub slot: Option<String>,
    /// When this result was written (RFC 3339, UTC).
    pub time: Option<String>,
    /// One line for humans.
    pub message: Option<String>,
}

impl LastUpdate {
    /// Reads the record from the file's text; `None` when it names nothing
    /// (empty, only comments, or no key this record knows).
    pub fn parse(text: &str) -> Option<LastUpdate> {
        let mut record = LastUpdate::default();
        for (key, value) in key_values(text) {
            let field = match key {
                "result" => &mut record.result,
                "version" => &mut record.version,
                "slot" => &mut record.slot,
                "time" => &mut record.time,
                "message" => &mut record.message,
                _ => continue,
            };
            *field = Some(value);
        }
        (record != LastUpdate::default()).then_some(record)
    }
}

/// `IMAGE_VERSION` of an os-release file's text (quoted or not), if set.
pub fn image_version(os_release: &str) -> Option<String> {
    key_values(os_release)
        .filter(|(key, _)| *key == "IMAGE_VERSION")
        .map(|(_, value)| unquote(&value).to_owned())
        .filter(|value| !value.is_empty())
        .last()
}

/// The `key=value` lines of `text` (at most [`MAX_FILE_BYTES`] of it), values
/// trimmed and cut to [`MAX_VALUE_CHARS`]; comments, blank lines and lines
/// without `=` are skipped.
fn key_values(text: &str) -> impl Iterator<Item = (&str, String)> {
    let end = text
        .char_indices()
        .map(|(at, _)| at)
        .take_while(|at| *at <= MAX_FILE_BYTES)
        .last()
        .unwrap_or(0);
    let text = if text.len() <= MAX_FILE_BYTES {
        text
    } else {
        &text[..end]
    };
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.starts_with('#') {
            return None;
        }
        let (key, value) = line.split_once('=')?;
        let value: String = value
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_VALUE_CHARS)
            .collect();
        Some((key.trim(), value))
    })
}

/// `value` without one pair of surrounding double or single quotes.
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_update_record_is_read_with_comments_and_unknown_keys() {
        let text = "# written by rauc-tryboot\nresult=updated\nversion=v1.2-3-gabc\n\
                    slot=B\ntime=2026-05-01T10:00:00Z\nmessage=the new system came up\n\
                    colour=blue\n";
        assert_eq!(
            LastUpdate::parse(text),
            Some(LastUpdate {
                result: Some("updated".into()),
                version: Some("v1.2-3-gabc".into()),
                slot: Some("B".into()),
                time: Some("2026-05-01T10:00:00Z".into()),
                message: Some("the new system came up".into()),
            })
        );
    }

    #[test]
    fn a_partial_record_keeps_what_it_has_and_an_empty_one_is_none() {
        let record = LastUpdate::parse("result=rolled-back\nslot").unwrap();
        assert_eq!(record.result.as_deref(), Some("rolled-back"));
        assert_eq!(record.slot, None);
        assert_eq!(LastUpdate::parse(""), None);
        assert_eq!(LastUpdate::parse("# nothing yet\n\n"), None);
        assert_eq!(LastUpdate::parse("\u{0}\u{1}garbage"), None);
    }

    #[test]
    fn long_values_and_huge_files_are_cut() {
        let long = format!("message={}\n", "x".repeat(10_000));
        let record = LastUpdate::parse(&long).unwrap();
        assert_eq!(record.message.unwrap().len(), MAX_VALUE_CHARS);
        let huge = format!("{}\nresult=updated\n", "#".repeat(MAX_FILE_BYTES + 10));
        assert_eq!(LastUpdate::parse(&huge), None);
        // Cut on a character boundary.
        let wide = format!("message={}", "é".repeat(MAX_FILE_BYTES));
        assert!(LastUpdate::parse(&wide).is_some());
    }

    #[test]
    fn the_image_version_is_read_quoted_or_not() {
        let os_release = "NAME=Buildroot\nVERSION=2026.02.3\nIMAGE_VERSION=\"v0.4-2-g1234abc\"\n";
        assert_eq!(
            image_version(os_release).as_deref(),
            Some("v0.4-2-g1234abc")
        );
        assert_eq!(
            image_version("IMAGE_VERSION=unknown").as_deref(),
            Some("unknown")
        );
        assert_eq!(image_version("IMAGE_VERSION='x'").as_deref(), Some("x"));
        assert_eq!(image_version("NAME=Debian\nVERSION_ID=13\n"), None);
        assert_eq!(image_version("IMAGE_VERSION=\"\""), None);
    }
}
