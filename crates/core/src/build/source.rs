//! Where a build's source comes from: the repository URL, ref and subdirectory a user submits.
//! Checked by the api-server when a build is submitted and again by the build worker on every job,
//! so that no value can reach `git` as an option, a local path, a transport helper or a URL with
//! credentials in it.

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use serde::{Deserialize, Serialize};

use super::address;
use crate::validate::ValidationError;

const MAX_URL_LEN: usize = 2048;
const MAX_REF_LEN: usize = 255;
const MAX_SUBDIR_LEN: usize = 512;

/// How git reaches a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Https,
    Http,
    /// `ssh://` URLs and scp-like `user@host:path`.
    Ssh,
    Git,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
            Scheme::Git => "git",
        }
    }

    /// Matches a URL scheme name, ignoring case.
    fn from_name(name: &str) -> Option<Self> {
        [Scheme::Https, Scheme::Http, Scheme::Ssh, Scheme::Git]
            .into_iter()
            .find(|scheme| name.eq_ignore_ascii_case(scheme.as_str()))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A remote repository URL that is safe to hand to `git clone`.
///
/// Accepts `https://`, `http://`, `ssh://` and `git://` URLs and scp-like `user@host:path`; rejects
/// local paths, other transports, option-like values, query strings, fragments, `..` segments and
/// credentials. The scheme and host are normalised to lowercase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoUrl {
    url: String,
    scheme: Scheme,
    host: String,
}

impl RepoUrl {
    /// Validates and normalises a repository URL. Errors use the field name `repo_url` and never
    /// repeat any part of the input, so they are safe to log and return to the user.
    pub fn parse(s: &str) -> Result<RepoUrl, ValidationError> {
        check_envelope(s)?;
        match s.split_once("://") {
            Some((scheme, rest)) if is_scheme_name(scheme) => Self::parse_url(scheme, rest),
            _ => Self::parse_scp_like(s),
        }
    }

    /// The normalised URL, to pass to `git clone`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The lowercase host name or IPv4 address, or a bracketed IPv6 address such as `[::1]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the host names this machine or an internal address: `localhost`, `*.localhost`,
    /// or an IP literal that [`address::is_internal`] refuses (loopback, private, link-local,
    /// CGNAT, unique-local, NAT64/6to4/IPv4-mapped or -compatible forms of those, multicast…).
    ///
    /// This looks at the URL only and does not resolve DNS: a public name that resolves to a
    /// private address is not detected here; the build worker resolves the name and checks every
    /// address before it clones.
    pub fn is_private_host(&self) -> bool {
        let host = self.host.strip_suffix('.').unwrap_or(&self.host);
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().is_ok_and(address::is_internal_v6),
            None => host.parse::<Ipv4Addr>().is_ok_and(address::is_internal_v4),
        }
    }

    /// The host as a resolver takes it: without the brackets of an IPv6 literal.
    pub fn lookup_host(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }

    /// The port git connects to: the URL's own, else the scheme's default.
    pub fn port(&self) -> u16 {
        let default = match self.scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
            Scheme::Ssh => 22,
            Scheme::Git => 9418,
        };
        if self.url.contains("://") {
            let rest = self.url.split_once("://").map_or("", |(_, r)| r);
            let authority = rest.split('/').next().unwrap_or("");
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let after_host = host_port.rsplit_once(']').map_or(host_port, |(_, p)| p);
            if let Some((_, port)) = after_host.rsplit_once(':')
                && let Ok(port) = port.parse()
            {
                return port;
            }
        }
        default
    }

    /// `scheme://[user@]host[:port]/path`, with `rest` being everything after `://`.
    fn parse_url(scheme: &str, rest: &str) -> Result<RepoUrl, ValidationError> {
        if scheme.eq_ignore_ascii_case("file") {
            return Err(url_error("file URLs are not allowed"));
        }
        let scheme = Scheme::from_name(scheme)
            .ok_or_else(|| url_error("unsupported scheme; use https, http, ssh or git"))?;
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let (user, host_port) = match authority.rsplit_once('@') {
            None => (None, authority),
            Some((userinfo, host_port)) => {
                if scheme != Scheme::Ssh || userinfo.contains(':') {
                    return Err(credentials_error());
                }
                check_user(userinfo)?;
                (Some(userinfo), host_port)
            }
        };
        let (host, port) = parse_host_port(host_port)?;
        check_path(path)?;

        let user = user.map(|user| format!("{user}@")).unwrap_or_default();
        let port = port.map(|port| format!(":{port}")).unwrap_or_default();
        Ok(RepoUrl {
            url: format!("{scheme}://{user}{host}{port}{path}"),
            scheme,
            host,
        })
    }

    /// scp-like `user@host:path`, which git treats as ssh when a `:` comes before any `/`.
    fn parse_scp_like(s: &str) -> Result<RepoUrl, ValidationError> {
        let is_drive_letter = |s: &str| s.len() == 1 && s.bytes().all(|b| b.is_ascii_alphabetic());
        let Some((authority, path)) = s
            .split_once(':')
            .filter(|(authority, _)| !authority.contains('/') && !is_drive_letter(authority))
        else {
            return Err(url_error("local paths are not allowed"));
        };
        let Some((user, host)) = authority.rsplit_once('@') else {
            // `user:password@host:path` splits at the password's colon.
            let head = path.split_once('/').map_or(path, |(head, _)| head);
            return Err(if head.contains('@') {
                credentials_error()
            } else {
                url_error("must be an https, http, ssh or git URL, or user@host:path")
            });
        };
        check_user(user)?;
        let host = parse_host(host)?;
        check_path(path)?;
        Ok(RepoUrl {
            url: format!("{user}@{host}:{path}"),
            scheme: Scheme::Ssh,
            host,
        })
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl FromStr for RepoUrl {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for RepoUrl {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<RepoUrl> for String {
    fn from(url: RepoUrl) -> String {
        url.url
    }
}

fn url_error(message: &str) -> ValidationError {
    ValidationError::new("repo_url", message)
}

fn credentials_error() -> ValidationError {
    url_error("credentials are not allowed in repository URLs")
}

/// Checks that apply to the whole string, whatever its form.
fn check_envelope(s: &str) -> Result<(), ValidationError> {
    let before_first_slash = s.split_once('/').map_or(s, |(head, _)| head);
    let problem = if s.is_empty() {
        "must not be empty"
    } else if s.len() > MAX_URL_LEN {
        "must be at most 2048 bytes"
    } else if s.starts_with('-') {
        "must not start with '-'"
    } else if before_first_slash.contains("::") {
        "git transport syntax ('::') is not allowed"
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain whitespace or control characters"
    } else if s.contains('?') {
        "query strings are not allowed"
    } else if s.contains('#') {
        "fragments are not allowed"
    } else {
        return Ok(());
    };
    Err(url_error(problem))
}

/// A URL scheme name as git recognises one: a letter, then letters, digits, `+`, `.` or `-`.
fn is_scheme_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
}

/// An ssh user name. A leading `-` would be read by ssh as an option.
fn check_user(user: &str) -> Result<(), ValidationError> {
    if user.is_empty() {
        Err(url_error("user name must not be empty"))
    } else if user.starts_with('-') {
        Err(url_error("user name must not start with '-'"))
    } else if !user
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err(url_error(
            "user name may contain only letters, digits, '.', '_' and '-'",
        ))
    } else {
        Ok(())
    }
}

/// `host[:port]` or `[ipv6][:port]`, returning the normalised host and the port.
fn parse_host_port(s: &str) -> Result<(String, Option<u16>), ValidationError> {
    let (host, port) = match s.strip_prefix('[') {
        Some(bracketed) => {
            let (addr, after) = bracketed
                .split_once(']')
                .ok_or_else(|| url_error("IPv6 address is missing its closing ']'"))?;
            let addr: Ipv6Addr = addr
                .parse()
                .map_err(|_| url_error("host is not a valid IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| url_error("unexpected characters after IPv6 address"))?,
                ),
            };
            (format!("[{addr}]"), port)
        }
        None => {
            let (host, port) = s.split_once(':').map_or((s, None), |(h, p)| (h, Some(p)));
            (parse_host(host)?, port)
        }
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

/// A host name or dotted-decimal IPv4 address, lowercased.
///
/// Hosts whose last label is numeric must be strict dotted-decimal IPv4: resolvers also accept
/// forms such as `2130706433` or `0x7f.1` for 127.0.0.1, which would slip past
/// [`RepoUrl::is_private_host`].
fn parse_host(host: &str) -> Result<String, ValidationError> {
    if host.is_empty() {
        Err(url_error("host must not be empty"))
    } else if host.starts_with('-') {
        Err(url_error("host must not start with '-'"))
    } else if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
    {
        Err(url_error(
            "host may contain only letters, digits, '.' and '-', or be a bracketed IPv6 address",
        ))
    } else if ends_in_number(host) && host.parse::<Ipv4Addr>().is_err() {
        Err(url_error(
            "numeric host must be a dotted-decimal IPv4 address",
        ))
    } else {
        Ok(host.to_ascii_lowercase())
    }
}

/// Whether the last label (ignoring a trailing dot) is a decimal or `0x` hex number, which makes
/// URL parsers and resolvers treat the whole host as an IPv4 address.
fn ends_in_number(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let last = host.rsplit_once('.').map_or(host, |(_, last)| last);
    match last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn parse_port(port: &str) -> Result<u16, ValidationError> {
    // `u16::from_str` alone would also accept a leading `+`.
    let digits_only = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    match port.parse::<u16>() {
        Ok(port) if digits_only && port != 0 => Ok(port),
        _ => Err(url_error("port must be a number from 1 to 65535")),
    }
}

/// The repository path. git percent-decodes `ssh://` and `git://` paths, so encoded control
/// characters and encoded `..` segments are rejected along with literal ones.
fn check_path(path: &str) -> Result<(), ValidationError> {
    if path.is_empty() || path == "/" {
        return Err(url_error("must include a repository path"));
    }
    if !path.bytes().all(is_path_byte) {
        return Err(url_error(
            "path contains a character that must be percent-encoded",
        ));
    }
    for (i, _) in path.match_indices('%') {
        let byte = path
            .get(i + 1..i + 3)
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .ok_or_else(|| url_error("path has an invalid percent-encoding"))?;
        if byte.is_ascii_control() {
            return Err(url_error(
                "path must not contain encoded control characters such as %00",
            ));
        }
    }
    let is_dot_dot = |segment: &str| {
        matches!(
            segment.to_ascii_lowercase().as_str(),
            ".." | ".%2e" | "%2e." | "%2e%2e"
        )
    };
    if path.split('/').any(is_dot_dot) {
        return Err(url_error("path must not contain '..' segments"));
    }
    Ok(())
}

/// RFC 3986 path characters (`pchar` and `/`), plus `%` for percent-encoding.
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b)
}

/// Checks a branch, tag or commit-ish for `git clone --branch` / `git fetch`, following
/// `git check-ref-format`.
pub fn validate_ref(r: &str) -> Result<(), ValidationError> {
    let components = || r.split('/');
    let problem = if r.is_empty() {
        "must not be empty"
    } else if r.len() > MAX_REF_LEN {
        "must be at most 255 bytes"
    } else if r.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        "must not contain spaces or control characters"
    } else if r.contains(['~', '^', ':', '?', '*', '[', '\\']) {
        "must not contain any of ~ ^ : ? * [ \\"
    } else if r.contains("..") {
        "must not contain '..'"
    } else if r.contains("@{") {
        "must not contain '@{'"
    } else if r == "@" {
        "must not be '@'"
    } else if r.starts_with('-') {
        "must not start with '-'"
    } else if r.starts_with('/') {
        "must not start with '/'"
    } else if r.ends_with('/') {
        "must not end with '/'"
    } else if r.ends_with('.') {
        "must not end with '.'"
    } else if r.contains("//") {
        "must not contain '//'"
    } else if components().any(|c| c.starts_with('.')) {
        "components must not start with '.'"
    } else if components().any(|c| c.ends_with(".lock")) {
        "components must not end with '.lock'"
    } else {
        return Ok(());
    };
    Err(ValidationError::new("ref", problem))
}

/// Checks a relative directory inside the repository, such as `services/api` or `app/`.
pub fn validate_subdir(s: &str) -> Result<(), ValidationError> {
    let components = || s.strip_suffix('/').unwrap_or(s).split('/');
    let problem = if s.is_empty() {
        "must not be empty"
    } else if s.len() > MAX_SUBDIR_LEN {
        "must be at most 512 bytes"
    } else if s.chars().any(char::is_control) {
        "must not contain control characters"
    } else if s.contains('\\') {
        "must use '/' as the separator, not '\\'"
    } else if s.starts_with('/') {
        "must be a relative path"
    } else if components().any(str::is_empty) {
        "must not contain empty components"
    } else if components().any(|c| c == "." || c == "..") {
        "must not contain '.' or '..' components"
    } else if components().any(|c| c.starts_with('-')) {
        "components must not start with '-'"
    } else {
        return Ok(());
    };
    Err(ValidationError::new("subdir", problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> RepoUrl {
        RepoUrl::parse(s).unwrap_or_else(|e| panic!("{s:?} should be accepted: {e}"))
    }

    /// The rejection message for `s`, checking the field name on the way.
    fn rejected(s: &str) -> String {
        match RepoUrl::parse(s) {
            Ok(url) => panic!("{s:?} should be rejected, got {url}"),
            Err(e) => {
                assert_eq!(e.field, "repo_url");
                e.message
            }
        }
    }

    fn assert_rejected(s: &str, reason: &str) {
        let message = rejected(s);
        assert!(
            message.contains(reason),
            "{s:?}: expected {reason:?} in {message:?}"
        );
    }

    #[test]
    fn accepts_https_and_http() {
        let url = ok("https://github.com/org/repo.git");
        assert_eq!(url.as_str(), "https://github.com/org/repo.git");
        assert_eq!(url.scheme(), Scheme::Https);
        assert_eq!(url.host(), "github.com");
        assert!(!url.is_private_host());

        let url = ok("http://git.example.com:8080/org/repo");
        assert_eq!(url.as_str(), "http://git.example.com:8080/org/repo");
        assert_eq!(url.scheme(), Scheme::Http);
        assert_eq!(url.host(), "git.example.com");

        assert_eq!(
            ok("https://host/group/sub-group/repo%20name.git/").as_str(),
            "https://host/group/sub-group/repo%20name.git/"
        );
    }

    #[test]
    fn normalises_scheme_and_host_case() {
        let url = ok("HTTPS://GitHub.com/org/repo");
        assert_eq!(url.as_str(), "https://github.com/org/repo");
        assert_eq!(url.to_string(), url.as_str());
        assert_eq!(url.host(), "github.com");
        assert_eq!(
            ok("Git@GitHub.COM:Org/Repo.git").as_str(),
            "Git@github.com:Org/Repo.git"
        );
        assert_eq!(
            ok("SSH://Git@Example.org:022/Org/Repo").as_str(),
            "ssh://Git@example.org:22/Org/Repo"
        );
    }

    #[test]
    fn accepts_ssh_and_scp_like() {
        let url = ok("git@github.com:org/repo.git");
        assert_eq!(url.scheme(), Scheme::Ssh);
        assert_eq!(url.host(), "github.com");
        assert_eq!(url.as_str(), "git@github.com:org/repo.git");
        assert_eq!(
            ok("deploy@host:/srv/git/repo").as_str(),
            "deploy@host:/srv/git/repo"
        );

        let url = ok("ssh://git@host:2222/org/repo.git");
        assert_eq!(url.scheme(), Scheme::Ssh);
        assert_eq!(url.host(), "host");
        assert_eq!(url.as_str(), "ssh://git@host:2222/org/repo.git");
        assert_eq!(
            ok("ssh://host/~user/repo").as_str(),
            "ssh://host/~user/repo"
        );
    }

    #[test]
    fn accepts_git_protocol() {
        let url = ok("git://127.0.0.1:9418/repo");
        assert_eq!(url.scheme(), Scheme::Git);
        assert_eq!(url.host(), "127.0.0.1");
        assert!(url.is_private_host());
        assert!(!ok("git://git.kernel.org/pub/scm/git/git.git").is_private_host());
    }

    #[test]
    fn accepts_and_canonicalises_ipv6_literals() {
        let url = ok("https://[0:0:0:0:0:0:0:1]:8443/repo");
        assert_eq!(url.host(), "[::1]");
        assert_eq!(url.as_str(), "https://[::1]:8443/repo");
        assert!(url.is_private_host());
        assert_eq!(ok("ssh://git@[2001:DB8::1]/r").host(), "[2001:db8::1]");
        assert_rejected("https://[::1/r", "closing ']'");
        assert_rejected("https://[not-v6]/r", "IPv6");
        assert_rejected("https://[::1]x/r", "after IPv6");
        assert_rejected("https://[fe80::1%25eth0]/r", "IPv6");
    }

    #[test]
    fn detects_private_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "api.localhost",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "[::1]",
            "[::]",
            "[fc00::1]",
            "[fd12:3456::1]",
            "[fe80::1]",
            "[febf::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:10.0.0.1]",
            "[::7f00:1]",
            "[::127.0.0.1]",
            "[64:ff9b::7f00:1]",
            "[2002:7f00:1::1]",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "[2001:db8::1]",
            "[fec0::1]",
            "192.0.2.2",
        ] {
            let url = ok(&format!("https://{host}/repo"));
            assert!(url.is_private_host(), "{host} should be private");
        }
        for host in [
            "github.com",
            "localhost.example.com",
            "8.8.8.8",
            "172.32.0.1",
            "172.15.0.1",
            "192.169.0.1",
            "[2606:4700:4700::1111]",
            "[::ffff:8.8.8.8]",
        ] {
            let url = ok(&format!("https://{host}/repo"));
            assert!(!url.is_private_host(), "{host} should not be private");
        }
    }

    #[test]
    fn ports_and_lookup_hosts() {
        for (url, host, port) in [
            ("https://github.com/org/repo", "github.com", 443),
            ("http://h:8080/r", "h", 8080),
            ("git://h/r", "h", 9418),
            ("ssh://git@h:2222/r", "h", 2222),
            ("git@h:org/r.git", "h", 22),
            ("https://[::1]:8443/r", "::1", 8443),
            ("https://[::1]/r", "::1", 443),
        ] {
            let u = ok(url);
            assert_eq!((u.lookup_host(), u.port()), (host, port), "{url}");
        }
    }

    #[test]
    fn rejects_empty_long_and_whitespace() {
        assert_rejected("", "must not be empty");
        let long = format!("https://host/{}", "a".repeat(MAX_URL_LEN));
        assert_rejected(&long, "at most 2048 bytes");
        let longest = format!("https://host/{}", "a".repeat(MAX_URL_LEN - 13));
        assert_eq!(ok(&longest).as_str().len(), MAX_URL_LEN);
        for s in [
            " https://host/r",
            "https://host/r ",
            "https://host/a b",
            "https://host/r\n",
            "https://host/r\0",
            "https://host/r\u{7f}",
            "https://host/\u{a0}r",
        ] {
            assert_rejected(s, "whitespace or control characters");
        }
    }

    #[test]
    fn rejects_option_like_values() {
        assert_rejected("--upload-pack=touch /tmp/x", "must not start with '-'");
        assert_rejected("-u x", "must not start with '-'");
        assert_rejected("-oProxyCommand=x", "must not start with '-'");
        assert_rejected(
            "ssh://-oProxyCommand=touch%20x/r",
            "host must not start with '-'",
        );
        assert_rejected("https://-host/r", "host must not start with '-'");
        assert_rejected(
            "ssh://-oProxyCommand@host/r",
            "user name must not start with '-'",
        );
        assert_rejected("-user@host:r", "must not start with '-'");
        assert_rejected("git@-host:r", "host must not start with '-'");
    }

    #[test]
    fn rejects_other_schemes_and_transports() {
        assert_rejected("file:///etc/passwd", "file URLs are not allowed");
        assert_rejected("FILE://host/repo", "file URLs are not allowed");
        assert_rejected("ext::sh -c touch% /tmp/pwned", "transport syntax");
        assert_rejected("fd::17", "transport syntax");
        assert_rejected("foo::bar", "transport syntax");
        assert_rejected("foo::https://host/r", "transport syntax");
        assert_rejected("git@host::repo", "transport syntax");
        for s in [
            "ftp://host/repo",
            "rsync://host/repo",
            "ftps://host/repo",
            "git+ssh://host/repo",
            "data://host/repo",
        ] {
            assert_rejected(s, "unsupported scheme");
        }
    }

    #[test]
    fn rejects_local_paths() {
        for s in [
            "/tmp/repo",
            "./repo",
            "../x",
            "~/x",
            "repo",
            "dir",
            "C:\\x",
            "c:/x",
            "./a:b",
            "/srv/git:repo",
        ] {
            assert_rejected(s, "local paths are not allowed");
        }
        assert_rejected("github.com:org/repo", "user@host:path");
    }

    #[test]
    fn rejects_credentials_without_echoing_them() {
        for (s, secret) in [
            ("https://user:s3cret@host/r", "s3cret"),
            ("https://ghp_TOKEN123@github.com/o/r", "ghp_TOKEN123"),
            ("http://user@host/r", "user"),
            ("https://:s3cret@host/r", "s3cret"),
            ("https://u:p@ss@host/r", "p@ss"),
            ("ssh://u:pw_s3cret@host/r", "pw_s3cret"),
            ("ssh://git:@host/r", "git:"),
            ("git://u:pw_s3cret@host/r", "pw_s3cret"),
            ("git://tok_s3cret@host/r", "tok_s3cret"),
            ("git:pw_s3cret@host:org/r", "pw_s3cret"),
        ] {
            let err = RepoUrl::parse(s).expect_err(s);
            assert_eq!(
                err.message,
                "credentials are not allowed in repository URLs"
            );
            assert!(!err.to_string().contains(secret), "{s:?} leaked into {err}");
        }
    }

    #[test]
    fn rejects_bad_user_names() {
        assert_rejected("ssh://@host/r", "user name must not be empty");
        assert_rejected("@host:r", "user name must not be empty");
        assert_rejected("ssh://us%65r@host/r", "user name may contain only");
        assert_rejected("a@b@host:r", "user name may contain only");
    }

    #[test]
    fn rejects_query_and_fragment() {
        assert_rejected("https://host/r?x=1", "query strings are not allowed");
        assert_rejected("https://host?x=1/r", "query strings are not allowed");
        assert_rejected("https://host/r#frag", "fragments are not allowed");
        assert_rejected("git@host:r#frag", "fragments are not allowed");
    }

    #[test]
    fn rejects_bad_hosts() {
        assert_rejected("https:///r", "host must not be empty");
        assert_rejected("https://:443/r", "host must not be empty");
        assert_rejected("https://ho_st/r", "host may contain only");
        assert_rejected("https://hö.st/r", "host may contain only");
        assert_rejected("https://ho%73t/r", "host may contain only");
        assert_rejected("git@[::1]:r", "transport syntax");
        for host in [
            "2130706433",
            "0x7f.1",
            "127.1",
            "0x7f000001",
            "127.0.0.01",
            "1.2.3.4.",
            "0",
        ] {
            assert_rejected(&format!("https://{host}/r"), "dotted-decimal IPv4");
        }
        assert_eq!(ok("https://1.2.3.example/r").host(), "1.2.3.example");
    }

    #[test]
    fn rejects_bad_ports() {
        for port in ["0", "99999", "65536", "", "+80", "-1", "8o", "1:2"] {
            assert_rejected(&format!("https://host:{port}/r"), "port must be a number");
        }
        assert_eq!(ok("https://host:65535/r").as_str(), "https://host:65535/r");
        assert_eq!(ok("https://host:1/r").as_str(), "https://host:1/r");
    }

    #[test]
    fn rejects_bad_paths() {
        for s in ["https://host", "https://host/", "git@host:", "git@host:/"] {
            assert_rejected(s, "must include a repository path");
        }
        for s in [
            "https://host/a/../b",
            "https://host/a/..",
            "https://host/../r",
            "https://host/a/%2e%2e/b",
            "ssh://host/a/.%2E/b",
            "git@host:../r",
            "git@host:a/../../r",
        ] {
            assert_rejected(s, "'..' segments");
        }
        assert_eq!(
            ok("https://host/a/..b/c..").as_str(),
            "https://host/a/..b/c.."
        );
        for s in ["https://host/r%00", "ssh://host/r%0a", "https://host/r%7F"] {
            assert_rejected(s, "encoded control characters");
        }
        for s in [
            "https://host/r%",
            "https://host/r%4",
            "https://host/r%zz",
            "https://host/r%%41",
        ] {
            assert_rejected(s, "invalid percent-encoding");
        }
        for s in [
            "https://host/a\\b",
            "https://host/a\"b",
            "https://host/r<x>",
            "https://host/ré",
        ] {
            assert_rejected(s, "must be percent-encoded");
        }
    }

    #[test]
    fn serde_round_trips_as_a_string() {
        let url = ok("git@github.com:org/repo.git");
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(json, "\"git@github.com:org/repo.git\"");
        assert_eq!(serde_json::from_str::<RepoUrl>(&json).unwrap(), url);
        assert_eq!(
            serde_json::from_str::<RepoUrl>("\"HTTPS://Host/r\"")
                .unwrap()
                .as_str(),
            "https://host/r"
        );

        let err = serde_json::from_str::<RepoUrl>("\"file:///etc/passwd\"").unwrap_err();
        assert!(
            err.to_string().contains("file URLs are not allowed"),
            "{err}"
        );
        let err = serde_json::from_str::<RepoUrl>("\"https://u:s3cret@host/r\"").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn from_str_matches_parse() {
        let url: RepoUrl = "https://host/r".parse().unwrap();
        assert_eq!(url, ok("https://host/r"));
        assert!("/tmp/repo".parse::<RepoUrl>().is_err());
    }

    fn assert_ref_rejected(r: &str, reason: &str) {
        let err = validate_ref(r).expect_err(r);
        assert_eq!(err.field, "ref");
        assert!(
            err.message.contains(reason),
            "{r:?}: expected {reason:?} in {err}"
        );
    }

    #[test]
    fn accepts_refs() {
        for r in [
            "main",
            "v1.2.3",
            "feature/x",
            "release/2024.01",
            "refs/heads/main",
            "a@b",
            "user-name_branch",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert_eq!(validate_ref(r), Ok(()), "{r:?}");
        }
        assert_eq!(validate_ref(&"a".repeat(MAX_REF_LEN)), Ok(()));
    }

    #[test]
    fn rejects_bad_refs() {
        assert_ref_rejected("", "must not be empty");
        assert_ref_rejected(&"a".repeat(MAX_REF_LEN + 1), "at most 255 bytes");
        assert_ref_rejected("a b", "spaces or control characters");
        assert_ref_rejected("a\tb", "spaces or control characters");
        assert_ref_rejected("a\u{7f}", "spaces or control characters");
        for r in ["a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b"] {
            assert_ref_rejected(r, "must not contain any of");
        }
        assert_ref_rejected("a..b", "'..'");
        assert_ref_rejected("a@{1}", "'@{'");
        assert_ref_rejected("@", "must not be '@'");
        assert_ref_rejected("-b", "must not start with '-'");
        assert_ref_rejected("/a", "must not start with '/'");
        assert_ref_rejected("a/", "must not end with '/'");
        assert_ref_rejected("a.", "must not end with '.'");
        assert_ref_rejected("a//b", "'//'");
        assert_ref_rejected(".hidden", "must not start with '.'");
        assert_ref_rejected("a/.b", "must not start with '.'");
        assert_ref_rejected("x.lock", "'.lock'");
        assert_ref_rejected("x.lock/y", "'.lock'");
    }

    fn assert_subdir_rejected(s: &str, reason: &str) {
        let err = validate_subdir(s).expect_err(s);
        assert_eq!(err.field, "subdir");
        assert!(
            err.message.contains(reason),
            "{s:?}: expected {reason:?} in {err}"
        );
    }

    #[test]
    fn accepts_subdirs() {
        for s in [
            "services/api",
            "app/",
            "app",
            "a.b/c-d/e_f",
            "with space",
            "x..y",
        ] {
            assert_eq!(validate_subdir(s), Ok(()), "{s:?}");
        }
        assert_eq!(validate_subdir(&"a".repeat(MAX_SUBDIR_LEN)), Ok(()));
    }

    #[test]
    fn rejects_bad_subdirs() {
        assert_subdir_rejected("", "must not be empty");
        assert_subdir_rejected(&"a".repeat(MAX_SUBDIR_LEN + 1), "at most 512 bytes");
        assert_subdir_rejected("a\nb", "control characters");
        assert_subdir_rejected("a\\b", "'\\'");
        assert_subdir_rejected("/abs", "relative path");
        assert_subdir_rejected("/", "relative path");
        assert_subdir_rejected("a//b", "empty components");
        assert_subdir_rejected("app//", "empty components");
        assert_subdir_rejected("../x", "'..' components");
        assert_subdir_rejected("a/../b", "'..' components");
        assert_subdir_rejected("a/..", "'..' components");
        assert_subdir_rejected("./a", "'.' or '..'");
        assert_subdir_rejected("-x", "must not start with '-'");
        assert_subdir_rejected("a/-x", "must not start with '-'");
    }
}
