//! Everything wrong with a test case's text, each problem with a stable code, its field path and
//! where it is written (line and column, through [`Locator`]): what the validate endpoint answers
//! and what `labwright testcases validate` prints like a compiler.

use std::fmt;

use crate::validate::ValidationError;

use super::{ParseError, TestCase, ValidationEnv, locate::Locator};

/// What kind of problem it is. The strings ([`ProblemCode::as_str`]) are stable: clients match
/// on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemCode {
    /// Not YAML (or JSON) at all.
    Syntax,
    /// A key the format does not know.
    UnknownField,
    /// A required key is absent.
    MissingField,
    /// A value of the wrong kind: a list for a number, a step without an action, ...
    InvalidShape,
    /// A value out of its range or format.
    InvalidValue,
    /// `goto` a screen the navigation tree does not have.
    UnknownScreen,
    /// `goto` a screen no edge of the navigation tree leads to.
    UnreachableScreen,
    /// The test navigates but its device model has no navigation tree.
    NoNavigationTree,
    /// The test's device model is not the navigation tree's (or the device's).
    ModelMismatch,
    /// A reference image that is not uploaded.
    UnknownReference,
    /// A reference image larger than the region it is looked for in.
    ReferenceTooLarge,
    /// A step needs a capability the device lacks.
    MissingCapability,
}

impl ProblemCode {
    /// Every code, in declaration order.
    pub const ALL: [ProblemCode; 12] = [
        ProblemCode::Syntax,
        ProblemCode::UnknownField,
        ProblemCode::MissingField,
        ProblemCode::InvalidShape,
        ProblemCode::InvalidValue,
        ProblemCode::UnknownScreen,
        ProblemCode::UnreachableScreen,
        ProblemCode::NoNavigationTree,
        ProblemCode::ModelMismatch,
        ProblemCode::UnknownReference,
        ProblemCode::ReferenceTooLarge,
        ProblemCode::MissingCapability,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ProblemCode::Syntax => "syntax",
            ProblemCode::UnknownField => "unknown_field",
            ProblemCode::MissingField => "missing_field",
            ProblemCode::InvalidShape => "invalid_shape",
            ProblemCode::InvalidValue => "invalid_value",
            ProblemCode::UnknownScreen => "unknown_screen",
            ProblemCode::UnreachableScreen => "unreachable_screen",
            ProblemCode::NoNavigationTree => "no_navigation_tree",
            ProblemCode::ModelMismatch => "model_mismatch",
            ProblemCode::UnknownReference => "unknown_reference",
            ProblemCode::ReferenceTooLarge => "reference_too_large",
            ProblemCode::MissingCapability => "missing_capability",
        }
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem of a test case's text.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub code: ProblemCode,
    /// The field path (`steps[3].verify_image.region`); `None` for syntax and shape errors,
    /// which the parser locates itself.
    pub field: Option<String>,
    pub message: String,
    /// 1-based; `None` when the text gives no place (an empty document).
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, "{l}:{c}: ")?;
        }
        write!(f, "{}: ", self.code)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl Problem {
    /// The problem a parse error of `text` is: syntax when the text is not YAML at all,
    /// otherwise what the shape error says.
    pub fn from_parse(text: &str, e: &ParseError) -> Self {
        // The typed parse may stop at a wrong type before it reaches the broken syntax: the
        // syntax error is the one to show.
        if let Err(syntax) = super::parse_yaml::<serde_norway::Value>(text) {
            return Problem {
                code: ProblemCode::Syntax,
                field: None,
                message: syntax.message,
                line: syntax.line,
                column: syntax.column,
            };
        }
        let code =
            if e.message.contains("unknown field") || e.message.contains("unknown step field") {
                ProblemCode::UnknownField
            } else if e.message.contains("missing field") {
                ProblemCode::MissingField
            } else {
                ProblemCode::InvalidShape
            };
        Problem {
            code,
            field: None,
            message: e.message.clone(),
            line: e.line,
            column: e.column,
        }
    }
}

/// Every problem of `text` (already parsed into `tc`) against `env`, each located in `text`.
pub fn report(text: &str, tc: &TestCase, env: &ValidationEnv<'_>) -> Vec<Problem> {
    let found = tc.problems(env);
    if found.is_empty() {
        return Vec::new();
    }
    let locator = Locator::new(text);
    found
        .into_iter()
        .map(|(code, ValidationError { field, message })| {
            let at = locator.find(&field);
            Problem {
                code,
                line: at.map(|p| p.line),
                column: at.map(|p| p.column),
                field: Some(field),
                message,
            }
        })
        .collect()
}

/// Parses and checks `text` against the environment `env_for` gives for it: every problem.
pub fn check_text<'a>(
    text: &str,
    env_for: impl FnOnce(&TestCase) -> ValidationEnv<'a>,
) -> Result<TestCase, Vec<Problem>> {
    let tc = super::parse(text).map_err(|e| vec![Problem::from_parse(text, &e)])?;
    let env = env_for(&tc);
    let problems = report(text, &tc, &env);
    if problems.is_empty() {
        Ok(tc)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        check_text(text, |_| ValidationEnv {
            nav_pending: true,
            ..ValidationEnv::default()
        })
        .err()
        .unwrap_or_default()
    }

    #[test]
    fn parse_errors_are_told_apart_and_keep_their_place() {
        let p = problems("name: [unclosed\nsteps: []\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].code, ProblemCode::Syntax);
        assert!(p[0].line.is_some());
        // A wrong type before the broken syntax: the syntax error is reported.
        let p = problems("name: x\nsteps:\n  - press: [ok\n");
        assert_eq!(p[0].code, ProblemCode::Syntax, "{p:?}");
        assert!(!p[0].message.contains("invalid type"), "{p:?}");

        let p = problems("name: x\nsteps:\n  - press: ok\n    colour: red\n");
        assert_eq!(p[0].code, ProblemCode::UnknownField, "{p:?}");
        assert!(p[0].line.is_some(), "{p:?}");

        let p = problems("steps:\n  - press: ok\n");
        assert_eq!(p[0].code, ProblemCode::MissingField, "{p:?}");

        let p = problems("name: x\nsteps:\n  - wait: [1, 2]\n");
        assert_eq!(p[0].code, ProblemCode::InvalidShape, "{p:?}");
        assert!(p[0].line.is_some(), "{p:?}");
    }

    #[test]
    fn every_semantic_problem_is_listed_where_it_is_written() {
        let text = "name: x\ndefaults:\n  timeout_ms: 0\nsteps:\n  - press: {key: ok, repeat: 0}\n  - wait: 1\n    timeout_ms: 5\n";
        let p = problems(text);
        let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "3:15: invalid_value: defaults.timeout_ms: must be between 1 and 600000 ms",
                "5:30: invalid_value: steps[0].press.repeat: must be between 1 and 1000",
                "7:17: invalid_value: steps[1].timeout_ms: wait takes no timeout (timeout_ms applies to goto, verify_image, verify_black, verify_not_black, measure_zap, serial_expect, tap, tap_element, verify_element, shell and verify_log)",
            ]
            .map(String::from),
            "{p:#?}"
        );
        assert!(problems("name: x\nsteps:\n  - press: ok\n").is_empty());
    }

    #[test]
    fn codes_are_distinct_strings() {
        let mut seen: Vec<&str> = ProblemCode::ALL.iter().map(|c| c.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ProblemCode::ALL.len());
    }
}
