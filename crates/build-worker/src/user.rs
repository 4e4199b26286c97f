//! The user a session runs as: never root. Docker (runc) takes a `USER` value as a number when
//! Go's `strconv.Atoi` accepts it (`0`, `00`, `+0`, `-0`…), else as a name looked up in the
//! image's `/etc/passwd`; a group after `:` does not change the user. Every spelling that ends
//! up as uid 0 is refused, with the reason for the user.

/// `Ok` for a non-root `user` (`USER` value), given the image's `/etc/passwd` when the user is a
/// name; `Err` with a message naming the value otherwise.
pub fn check(user: &str, passwd: Option<&str>) -> Result<(), String> {
    let name = user.split(':').next().unwrap_or(user);
    let root = || {
        Err(format!(
            "the image runs as root (USER {user}); sessions never run as uid 0: set USER to a \
             non-root user in the Dockerfile, or leave it out to run as nobody"
        ))
    };
    if let Some(uid) = atoi(name) {
        return if uid == 0 { root() } else { Ok(()) };
    }
    if name == "root" {
        return root();
    }
    let Some(passwd) = passwd else {
        return Err(format!(
            "the image's USER {user} names a user, but the image has no readable /etc/passwd to \
             tell that it is not root"
        ));
    };
    let uid = passwd
        .lines()
        .filter_map(|l| {
            let mut fields = l.split(':');
            Some((fields.next()?, fields.nth(1)?))
        })
        .find(|(n, _)| *n == name)
        .map(|(_, uid)| uid.trim());
    match uid.map(atoi) {
        Some(Some(0)) => root(),
        // runc refuses to start a container whose user is not in /etc/passwd, or whose uid there
        // is not a number: no session runs either way.
        _ => Ok(()),
    }
}

/// Go's `strconv.Atoi` on a 64-bit machine: an optional sign, then decimal digits only.
fn atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok().or(Some(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\n\
                          app:x:1000:1000::/app:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n";

    #[test]
    fn every_spelling_of_root_is_refused() {
        for user in [
            "0",
            "0:0",
            "root",
            "root:root",
            "0:root",
            "root:0",
            "00",
            "000:1000",
            "+0",
            "-0",
            "0:65534",
            "toor",
            "toor:app",
        ] {
            let err = check(user, Some(PASSWD)).expect_err(user);
            assert!(err.contains("runs as root") && err.contains(user), "{err}");
        }
    }

    #[test]
    fn non_root_users_pass() {
        for user in [
            "65534:65534",
            "1000",
            "app",
            "app:app",
            "1000:0",
            "nobody",
            "ghost",
        ] {
            assert_eq!(check(user, Some(PASSWD)), Ok(()), "{user}");
        }
    }

    #[test]
    fn a_name_without_passwd_is_refused() {
        assert!(check("app", None).is_err());
        assert_eq!(check("1000", None), Ok(()));
    }
}
