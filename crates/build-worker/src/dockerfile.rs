//! What a repository's own Dockerfile may ask of the image build. The Docker daemon fetches
//! `ADD <url>` sources itself, from the host's network and outside every egress rule a build
//! container has, and pulls `FROM` images from any registry it is told: so remote `ADD` sources
//! (URLs, git repositories, `--checksum`/`--keep-git-dir` forms, and variables that could hold
//! either) and base images on loopback or private registries are refused before the build, with
//! the Dockerfile line that asked for them. A download belongs in a `RUN` step, which runs on the
//! build's own network under the egress policy.

use std::collections::HashMap;

use labwright_core::build::address;

/// A refused Dockerfile line.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile line {line}: {message}")]
pub struct Refused {
    pub line: usize,
    pub message: String,
}

/// One instruction: its keyword in upper case, its arguments, and the line it starts on.
#[derive(Debug, PartialEq, Eq)]
struct Instruction {
    line: usize,
    keyword: String,
    args: String,
}

/// Checks a repository's Dockerfile; the first refused line is returned.
pub fn check(text: &str) -> Result<(), Refused> {
    let mut vars: HashMap<String, String> = HashMap::new();
    for ins in instructions(text) {
        let (keyword, args) = match ins.keyword.as_str() {
            "ONBUILD" => split_keyword(&ins.args),
            _ => (ins.keyword.clone(), ins.args.clone()),
        };
        let refuse = |message: String| Refused {
            line: ins.line,
            message,
        };
        match keyword.as_str() {
            "ADD" => check_add(&args, &vars).map_err(refuse)?,
            "FROM" => check_from(&args, &vars).map_err(refuse)?,
            "ARG" => {
                for word in args.split_whitespace() {
                    let (name, value) = word.split_once('=').unwrap_or((word, ""));
                    vars.insert(name.to_string(), unquote(value));
                }
            }
            "ENV" => {
                let words: Vec<&str> = args.split_whitespace().collect();
                if words.first().is_some_and(|w| !w.contains('=')) {
                    // `ENV NAME value with spaces`
                    let value = args.trim_start()[words[0].len()..].trim();
                    vars.insert(words[0].to_string(), unquote(value));
                } else {
                    for word in words {
                        if let Some((name, value)) = word.split_once('=') {
                            vars.insert(name.to_string(), unquote(value));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_add(args: &str, vars: &HashMap<String, String>) -> Result<(), String> {
    let words = words(args);
    let mut rest = words.as_slice();
    while let Some(flag) = rest.first().filter(|w| w.starts_with("--")) {
        let name = flag.split('=').next().unwrap_or(flag);
        if matches!(name, "--checksum" | "--keep-git-dir") {
            return Err(format!(
                "ADD {name} fetches a remote source through the Docker daemon, which this \
                 service does not allow; download it in a RUN step instead"
            ));
        }
        rest = &rest[1..];
    }
    let sources = rest.split_last().map_or(&[][..], |(_, s)| s);
    for source in sources {
        let expanded = expand(source, vars)?;
        if is_remote(&expanded) {
            return Err(format!(
                "ADD from a URL or git repository ({}) is not allowed: the Docker daemon would \
                 fetch it from the build host's network; download it in a RUN step instead",
                shorten(source)
            ));
        }
    }
    Ok(())
}

/// A base image on a registry named by a loopback or internal address (or `localhost`).
fn check_from(args: &str, vars: &HashMap<String, String>) -> Result<(), String> {
    let words = words(args);
    let Some(image) = words.iter().find(|w| !w.starts_with("--")) else {
        return Ok(());
    };
    let image = expand(image, vars)?;
    let Some((first, _)) = image.split_once('/') else {
        return Ok(());
    };
    // Only a first component with a '.' or ':' or `localhost` is a registry host (Docker's rule).
    if !(first.contains('.') || first.contains(':') || first == "localhost") {
        return Ok(());
    }
    let host = match first.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => first.split(':').next().unwrap_or(first),
    };
    let host = host.to_ascii_lowercase();
    let internal = host == "localhost"
        || host.ends_with(".localhost")
        || host.parse().is_ok_and(address::is_internal);
    if internal {
        return Err(format!(
            "FROM an image on a loopback or private registry ({}) is not allowed",
            shorten(&image)
        ));
    }
    Ok(())
}

/// A source the daemon would fetch rather than copy from the context: any `scheme://` URL or a
/// git `user@host:path` address.
fn is_remote(source: &str) -> bool {
    if source.contains("://") {
        return true;
    }
    let Some((user_host, _)) = source.split_once(':') else {
        return false;
    };
    user_host.contains('@') && !user_host.contains('/')
}

/// Expands `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}` with the `ARG`/`ENV` values
/// seen so far. A variable this Dockerfile does not set (it could come from a base image) is
/// refused: its value cannot be checked.
fn expand(word: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
            continue;
        }
        if c != '$' {
            out.push(c);
            continue;
        }
        let (name, modifier) = if chars.peek() == Some(&'{') {
            chars.next();
            let inner: String = chars.by_ref().take_while(|&c| c != '}').collect();
            match inner.split_once(':') {
                Some((n, m)) => (n.to_string(), Some(m.to_string())),
                None => (inner, None),
            }
        } else {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            (name, None)
        };
        if name.is_empty() {
            out.push('$');
            continue;
        }
        let value = vars.get(&name).filter(|v| !v.is_empty());
        match (value, modifier.as_deref()) {
            (Some(_), Some(m)) if m.starts_with('+') => out.push_str(&m[1..]),
            (None, Some(m)) if m.starts_with('+') => {}
            (Some(v), _) => out.push_str(v),
            (None, Some(m)) if m.starts_with('-') => out.push_str(&m[1..]),
            (None, _) if vars.contains_key(&name) => {}
            (None, _) => {
                return Err(format!(
                    "ADD or FROM uses ${name}, which this Dockerfile does not set; its value \
                     cannot be checked"
                ));
            }
        }
    }
    Ok(out)
}

/// The words of an instruction: a JSON array, or split on whitespace.
fn words(args: &str) -> Vec<String> {
    let trimmed = args.trim();
    if trimmed.starts_with('[')
        && let Ok(list) = serde_json::from_str::<Vec<String>>(trimmed)
    {
        return list;
    }
    // Flags come first in the JSON form too: `ADD --chown=x ["a", "b"]`.
    if let Some(i) = trimmed.find('[')
        && trimmed[..i].split_whitespace().all(|w| w.starts_with("--"))
        && let Ok(list) = serde_json::from_str::<Vec<String>>(&trimmed[i..])
    {
        let mut words: Vec<String> = trimmed[..i].split_whitespace().map(str::to_owned).collect();
        words.extend(list);
        return words;
    }
    trimmed.split_whitespace().map(str::to_owned).collect()
}

fn split_keyword(args: &str) -> (String, String) {
    let args = args.trim_start();
    let end = args.find(char::is_whitespace).unwrap_or(args.len());
    (args[..end].to_ascii_uppercase(), args[end..].to_string())
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(120).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Splits a Dockerfile into instructions as the classic builder does: parser directives
/// (`# escape=`) first, comment lines dropped (inside continuations too), lines continued with
/// the escape character joined.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut escape = '\\';
    let mut lines = text.lines().enumerate().peekable();
    // Parser directives: `# key=value` lines at the very top.
    while let Some((_, line)) = lines.peek() {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        if !key.trim().chars().all(|c| c.is_ascii_alphabetic()) || key.trim().is_empty() {
            break;
        }
        if key.trim().eq_ignore_ascii_case("escape") && value.trim() == "`" {
            escape = '`';
        }
        lines.next();
    }
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in lines {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (continued, body) = match line.trim_end().strip_suffix(escape) {
            Some(body) => (true, body),
            None => (false, line),
        };
        let entry = current.get_or_insert_with(|| (i + 1, String::new()));
        entry.1.push_str(body);
        entry.1.push(' ');
        if !continued && let Some((start, text)) = current.take() {
            let (keyword, args) = split_keyword(&text);
            out.push(Instruction {
                line: start,
                keyword,
                args: args.trim().to_string(),
            });
        }
    }
    if let Some((start, text)) = current {
        let (keyword, args) = split_keyword(&text);
        out.push(Instruction {
            line: start,
            keyword,
            args: args.trim().to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Refused {
        check(text).expect_err(text)
    }

    #[test]
    fn remote_add_sources_are_refused_with_their_line() {
        for (text, line) in [
            ("FROM b\nADD http://127.0.0.1:8080/secret /s\n", 2),
            ("FROM b\nADD https://example.com/x.tgz /x\n", 2),
            ("FROM b\nadd HTTP://169.254.169.254/latest /m\n", 2),
            ("FROM b\nADD --chown=1:1 http://10.0.0.1/ /x\n", 2),
            ("FROM b\nADD [\"http://[::1]/a\", \"/a\"]\n", 2),
            (
                "FROM b\nADD --chmod=644 [\"local\", \"ftp://h/a\", \"/d/\"]\n",
                2,
            ),
            ("FROM b\nADD git@github.com:org/repo.git /src\n", 2),
            ("FROM b\nADD ssh://git@h/r.git /src\n", 2),
            ("FROM b\nADD --checksum=sha256:abc local /x\n", 2),
            ("FROM b\nADD --keep-git-dir=true ./r /x\n", 2),
            (
                "FROM b\nRUN true\nADD \\\n  http://127.0.0.1/x \\\n  /x\n",
                3,
            ),
            ("FROM b\nADD \\\n# comment\n  http://127.0.0.1/x /x\n", 2),
            ("# escape=`\nFROM b\nADD `\n http://127.0.0.1/x /x\n", 3),
            ("FROM b\nONBUILD ADD http://127.0.0.1/x /x\n", 2),
            ("FROM b\nARG U=http://127.0.0.1:9/x\nADD $U /x\n", 3),
            ("FROM b\nENV U http://127.0.0.1:9/x\nADD ${U} /x\n", 3),
            ("FROM b\nARG S=http:\nADD ${S}//127.0.0.1/x /x\n", 3),
            ("FROM b\nADD ${U:-http://127.0.0.1/x} /x\n", 2),
            ("FROM b\nADD $FROM_BASE_IMAGE /x\n", 2),
            ("FROM 127.0.0.1:5000/img\n", 1),
            ("FROM localhost:5000/img\n", 1),
            ("FROM [::1]:5000/img:1\n", 1),
            ("FROM --platform=linux/amd64 10.1.2.3/x AS b\n", 1),
        ] {
            let r = refused(text);
            assert_eq!(r.line, line, "{text:?}: {r}");
        }
        let r = refused("FROM b\nADD http://127.0.0.1:8080/secret /s\n");
        assert_eq!(
            r.to_string(),
            "Dockerfile line 2: ADD from a URL or git repository (http://127.0.0.1:8080/secret) is \
             not allowed: the Docker daemon would fetch it from the build host's network; \
             download it in a RUN step instead"
        );
    }

    #[test]
    fn local_sources_and_downloads_in_run_are_accepted() {
        for text in [
            "FROM b\nADD . /app\nADD app.tar.gz /opt/\n",
            "FROM b\nADD [\"a b\", \"/x y/\"]\nADD --chown=1:1 src /src\n",
            "FROM b\nRUN wget http://example.com/x\nCOPY . /app\n",
            "FROM b\nARG DIR=src\nADD $DIR /app\nADD ${DIR:-x}/y /z\n",
            "FROM b\nARG EMPTY\nADD ./x$EMPTY /x\n",
            "FROM b\n# ADD http://127.0.0.1/x /x\nCMD [\"sh\"]\n",
            "FROM labwright/runtime:12\nFROM docker.io/library/debian:12\nFROM b AS c\n",
            "FROM registry.example.com:5000/team/img:1\n",
        ] {
            assert_eq!(check(text), Ok(()), "{text:?}");
        }
    }
}
