//! What a command's failure means to the shell that ran it: the exit codes CI scripts rely on.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (a run or build passed; also when the reader of the output went away) |
//! | 1 | the test failed: a run that did not pass, a build that did not run |
//! | 2 | usage: bad arguments, an unknown or ambiguous name, a request the server refused as invalid |
//! | 3 | infrastructure or access: the server unreachable or failing, the key refused |

use crate::client::{ApiError, Unreachable};

/// A failure the command itself decides the meaning of.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The run or build ended, and not well.
    #[error("{0}")]
    TestFailed(String),
    /// Nothing of that name or id.
    #[error("{0}")]
    NotFound(String),
    /// The arguments cannot work as given.
    #[error("{0}")]
    Usage(String),
}

pub const EXIT_TEST_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INFRASTRUCTURE: i32 = 3;

/// The exit code for an error a command returned.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return match f {
                Failure::TestFailed(_) => EXIT_TEST_FAILED,
                Failure::NotFound(_) | Failure::Usage(_) => EXIT_USAGE,
            };
        }
        if let Some(api) = cause.downcast_ref::<ApiError>() {
            return match api.status {
                400..=499 if api.status != 401 && api.status != 403 && api.status != 429 => {
                    EXIT_USAGE
                }
                _ => EXIT_INFRASTRUCTURE,
            };
        }
        if cause.downcast_ref::<Unreachable>().is_some() {
            return EXIT_INFRASTRUCTURE;
        }
    }
    EXIT_USAGE
}

/// Whether the error is only that whoever read the output closed it (`| head -1`).
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> anyhow::Error {
        ApiError {
            status,
            code: "x".into(),
            message: "y".into(),
        }
        .into()
    }

    #[test]
    fn each_kind_of_failure_has_its_code() {
        assert_eq!(exit_code(&Failure::TestFailed("f".into()).into()), 1);
        assert_eq!(exit_code(&Failure::NotFound("n".into()).into()), 2);
        assert_eq!(exit_code(&api(404)), 2);
        assert_eq!(exit_code(&api(400)), 2);
        assert_eq!(exit_code(&api(409)), 2);
        assert_eq!(exit_code(&api(401)), 3);
        assert_eq!(exit_code(&api(403)), 3);
        assert_eq!(exit_code(&api(429)), 3);
        assert_eq!(exit_code(&api(503)), 3);
        let unreachable = Unreachable {
            url: "http://127.0.0.1:1".into(),
            cause: "refused".into(),
        };
        assert_eq!(exit_code(&unreachable.into()), 3);
        let wrapped = api(404).context("run.yaml");
        assert_eq!(exit_code(&wrapped), 2);
    }

    #[test]
    fn a_closed_pipe_is_told_apart() {
        let pipe = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        assert!(is_closed_pipe(
            &anyhow::Error::from(pipe).context("writing")
        ));
        let other = std::io::Error::other("disk full");
        assert!(!is_closed_pipe(&other.into()));
    }
}
