//! `access.allowed_origins`: the web pages elsewhere that may use the video. An
//! entry is an origin (`https://homeassistant.local:8123`, matched exactly, the
//! scheme's port when none is given) or a bare name or address (`dash.example`,
//! any scheme and port).

/// One entry of `access.allowed_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    /// `http` or `https`, or any for a bare name.
    scheme: Option<String>,
    /// Lowercase name, or an address (IPv6 in brackets).
    host: String,
    /// The port, with a scheme.
    port: Option<u16>,
}

/// An `Origin` header's parts: scheme, lowercase host, port (the scheme's
/// default when absent).
fn split(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = host_and_port(rest)?;
    Some((scheme, host, port.unwrap_or(default_port)))
}

/// `name`, `name:port`, `[v6]`, `[v6]:port`; no path, user or query.
fn host_and_port(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() || text.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, rest) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        (format!("[{}]", inside.to_ascii_lowercase()), rest)
    } else {
        match text.split_once(':') {
            Some((host, _)) => (host.to_ascii_lowercase(), &text[host.len()..]),
            None => (text.to_ascii_lowercase(), ""),
        }
    };
    let usable = |b: u8| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b);
    if host.is_empty() || host.len() > 253 || !host.bytes().all(usable) {
        return None;
    }
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        Some(digits) => Some(digits.parse::<u16>().ok()?),
        None => return None,
    };
    Some((host, port))
}

impl AllowedOrigin {
    /// Reads an entry; the error says why in words.
    pub fn parse(entry: &str) -> Result<AllowedOrigin, String> {
        let help = "write an origin such as \"https://homeassistant.local:8123\" or a name such as \"dash.example\"";
        if entry.trim() == "*" {
            return Err(format!(
                "\"*\" would let every web page read the camera; {help}"
            ));
        }
        if entry.contains("://") {
            let (scheme, host, port) = split(entry.trim_end_matches('/'))
                .ok_or_else(|| format!("is not an origin ({help})"))?;
            return Ok(AllowedOrigin {
                scheme: Some(scheme),
                host,
                port: Some(port),
            });
        }
        match host_and_port(entry) {
            Some((host, None)) => Ok(AllowedOrigin {
                scheme: None,
                host,
                port: None,
            }),
            Some((_, Some(_))) => Err(format!(
                "a port needs the scheme too, e.g. \"http://{entry}\" ({help})"
            )),
            None => Err(format!("is not a name or an origin ({help})")),
        }
    }

    /// Whether a request's `Origin` header value is this entry.
    pub fn matches(&self, origin: &str) -> bool {
        let Some((scheme, host, port)) = split(origin) else {
            return false;
        };
        host == self.host
            && self.scheme.as_ref().is_none_or(|s| *s == scheme)
            && self.port.is_none_or(|p| p == port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_and_names_match_any_port() {
        let ha = AllowedOrigin::parse("https://HomeAssistant.local:8123").unwrap();
        assert!(ha.matches("https://homeassistant.local:8123"));
        assert!(!ha.matches("http://homeassistant.local:8123"));
        assert!(!ha.matches("https://homeassistant.local"));
        assert!(!ha.matches("https://homeassistant.local.evil.example:8123"));
        let plain = AllowedOrigin::parse("http://dash.example").unwrap();
        assert!(plain.matches("http://dash.example:80"));
        assert!(plain.matches("http://dash.example"));
        let name = AllowedOrigin::parse("dash.example").unwrap();
        assert!(name.matches("https://dash.example:4443"));
        assert!(name.matches("http://DASH.example"));
        assert!(!name.matches("http://evil.example"));
        assert!(!name.matches("null"));
        let v6 = AllowedOrigin::parse("http://[fd00::1]:8080").unwrap();
        assert!(v6.matches("http://[FD00::1]:8080"));
    }

    #[test]
    fn wildcards_paths_and_ports_without_scheme_are_refused() {
        for bad in [
            "*",
            "http://a.example/path",
            "a.example:8123",
            "ftp://a.example",
            "",
            "a b",
        ] {
            assert!(AllowedOrigin::parse(bad).is_err(), "{bad}");
        }
    }
}
