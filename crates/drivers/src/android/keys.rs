//! Core's remote keys as Android key codes (`KeyEvent.KEYCODE_*`), including Android TV's D-pad
//! and media keys, and the shell words of `input`.

use labwright_core::controller::Key;

/// The Android key code name `input keyevent` takes for a core key.
pub fn keycode(key: Key) -> &'static str {
    match key {
        Key::Up => "KEYCODE_DPAD_UP",
        Key::Down => "KEYCODE_DPAD_DOWN",
        Key::Left => "KEYCODE_DPAD_LEFT",
        Key::Right => "KEYCODE_DPAD_RIGHT",
        Key::Ok => "KEYCODE_DPAD_CENTER",
        Key::Back => "KEYCODE_BACK",
        Key::Home => "KEYCODE_HOME",
        Key::Menu => "KEYCODE_MENU",
        Key::Info => "KEYCODE_INFO",
        Key::Power => "KEYCODE_POWER",
        Key::ChannelUp => "KEYCODE_CHANNEL_UP",
        Key::ChannelDown => "KEYCODE_CHANNEL_DOWN",
        Key::VolumeUp => "KEYCODE_VOLUME_UP",
        Key::VolumeDown => "KEYCODE_VOLUME_DOWN",
        Key::Mute => "KEYCODE_VOLUME_MUTE",
        Key::PlayPause => "KEYCODE_MEDIA_PLAY_PAUSE",
        Key::Digit(d) => DIGITS[usize::from(d.min(9))],
    }
}

const DIGITS: [&str; 10] = [
    "KEYCODE_0",
    "KEYCODE_1",
    "KEYCODE_2",
    "KEYCODE_3",
    "KEYCODE_4",
    "KEYCODE_5",
    "KEYCODE_6",
    "KEYCODE_7",
    "KEYCODE_8",
    "KEYCODE_9",
];

/// Quotes one word for the device's shell (`'…'`, a `'` inside as `'\''`).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The argument of `input text`: Android's `input` reads `%s` as a space, so spaces are
/// written that way (a literal `%s` cannot be typed), then the word is quoted for the shell.
pub fn input_text_arg(text: &str) -> String {
    shell_quote(&text.replace(' ', "%s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_distinct_code() {
        let mut seen = std::collections::HashSet::new();
        for name in Key::names() {
            let key: Key = name.parse().expect("key");
            assert!(seen.insert(keycode(key)), "{name} shares its code");
            assert!(keycode(key).starts_with("KEYCODE_"));
        }
        assert_eq!(keycode(Key::Digit(7)), "KEYCODE_7");
        assert_eq!(keycode(Key::Ok), "KEYCODE_DPAD_CENTER");
    }

    #[test]
    fn text_is_quoted_for_the_shell_and_input() {
        assert_eq!(input_text_arg("hello world"), "'hello%sworld'");
        assert_eq!(input_text_arg("it's $HOME;"), r"'it'\''s%s$HOME;'");
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
