//! Validation errors for values that come from outside the process.

/// A value that failed validation, naming the offending field (e.g. `devices[3].device_id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the field path, e.g. `id` becomes `devices[2].id`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// `text` cut to at most `max` bytes on a character boundary (for echoing input back in
/// error messages without splitting a character).
pub fn shorten(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Checks an identifier-like name: `1..=max` characters of ASCII letters, digits, `.`, `_`, `-`,
/// starting with a letter or digit.
pub fn slug(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ValidationError::new(
            field,
            "must start with a letter or digit and contain only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

/// Checks free text shown to people: `1..=max` characters, no control characters.
pub fn label(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks optional free text (may be empty), at most `max` characters, no control characters.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        Ok(())
    } else {
        label(field, value, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_never_splits_a_character() {
        assert_eq!(shorten("abc", 10), "abc");
        assert_eq!(shorten("abcé", 4), "abc");
        assert_eq!(shorten("ééé", 5), "éé");
    }

    #[test]
    fn slug_accepts_names_and_rejects_junk() {
        assert!(slug("f", "pi-lab-01", 63).is_ok());
        assert!(slug("f", "a.b_c", 63).is_ok());
        assert_eq!(slug("f", "", 63).unwrap_err().message, "must not be empty");
        assert!(slug("f", "-leading", 63).is_err());
        assert!(slug("f", "has space", 63).is_err());
        assert!(slug("f", "ünï", 63).is_err());
        assert!(slug("f", &"a".repeat(64), 63).is_err());
    }

    #[test]
    fn label_rejects_control_characters_and_length() {
        assert!(label("f", "Living room TV", 10).is_err());
        assert!(label("f", "TV ✓", 10).is_ok());
        assert!(label("f", "a\nb", 10).is_err());
        assert!(label("f", "   ", 10).is_err());
        assert!(optional_text("f", "", 10).is_ok());
    }

    #[test]
    fn within_prefixes_the_field_path() {
        let e = ValidationError::new("name", "bad").within("devices[2]");
        assert_eq!(e.to_string(), "devices[2].name: bad");
    }
}
