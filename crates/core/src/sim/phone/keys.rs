//! Android key codes (`android.view.KeyEvent.KEYCODE_*`): the numbers and names `input keyevent`
//! accepts.

/// `(code, name without the KEYCODE_ prefix)`, the subset of Android's table the phone knows.
const KEYS: &[(u32, &str)] = &[
    (1, "SOFT_LEFT"),
    (2, "SOFT_RIGHT"),
    (3, "HOME"),
    (4, "BACK"),
    (5, "CALL"),
    (6, "ENDCALL"),
    (7, "0"),
    (8, "1"),
    (9, "2"),
    (10, "3"),
    (11, "4"),
    (12, "5"),
    (13, "6"),
    (14, "7"),
    (15, "8"),
    (16, "9"),
    (17, "STAR"),
    (18, "POUND"),
    (19, "DPAD_UP"),
    (20, "DPAD_DOWN"),
    (21, "DPAD_LEFT"),
    (22, "DPAD_RIGHT"),
    (23, "DPAD_CENTER"),
    (24, "VOLUME_UP"),
    (25, "VOLUME_DOWN"),
    (26, "POWER"),
    (27, "CAMERA"),
    (28, "CLEAR"),
    (29, "A"),
    (30, "B"),
    (31, "C"),
    (32, "D"),
    (33, "E"),
    (34, "F"),
    (35, "G"),
    (36, "H"),
    (37, "I"),
    (38, "J"),
    (39, "K"),
    (40, "L"),
    (41, "M"),
    (42, "N"),
    (43, "O"),
    (44, "P"),
    (45, "Q"),
    (46, "R"),
    (47, "S"),
    (48, "T"),
    (49, "U"),
    (50, "V"),
    (51, "W"),
    (52, "X"),
    (53, "Y"),
    (54, "Z"),
    (55, "COMMA"),
    (56, "PERIOD"),
    (61, "TAB"),
    (62, "SPACE"),
    (66, "ENTER"),
    (67, "DEL"),
    (69, "MINUS"),
    (70, "EQUALS"),
    (76, "SLASH"),
    (77, "AT"),
    (81, "PLUS"),
    (82, "MENU"),
    (84, "SEARCH"),
    (85, "MEDIA_PLAY_PAUSE"),
    (86, "MEDIA_STOP"),
    (87, "MEDIA_NEXT"),
    (88, "MEDIA_PREVIOUS"),
    (89, "MEDIA_REWIND"),
    (90, "MEDIA_FAST_FORWARD"),
    (91, "MUTE"),
    (111, "ESCAPE"),
    (112, "FORWARD_DEL"),
    (122, "MOVE_HOME"),
    (123, "MOVE_END"),
    (126, "MEDIA_PLAY"),
    (127, "MEDIA_PAUSE"),
    (164, "VOLUME_MUTE"),
    (166, "CHANNEL_UP"),
    (167, "CHANNEL_DOWN"),
    (176, "SETTINGS"),
    (187, "APP_SWITCH"),
    (223, "SLEEP"),
    (224, "WAKEUP"),
];

/// An Android key code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Keycode(pub u32);

impl Keycode {
    pub const HOME: Keycode = Keycode(3);
    pub const BACK: Keycode = Keycode(4);
    pub const DPAD_UP: Keycode = Keycode(19);
    pub const DPAD_DOWN: Keycode = Keycode(20);
    pub const DPAD_LEFT: Keycode = Keycode(21);
    pub const DPAD_RIGHT: Keycode = Keycode(22);
    pub const DPAD_CENTER: Keycode = Keycode(23);
    pub const VOLUME_UP: Keycode = Keycode(24);
    pub const VOLUME_DOWN: Keycode = Keycode(25);
    pub const POWER: Keycode = Keycode(26);
    pub const SPACE: Keycode = Keycode(62);
    pub const ENTER: Keycode = Keycode(66);
    pub const DEL: Keycode = Keycode(67);
    pub const MENU: Keycode = Keycode(82);
    pub const VOLUME_MUTE: Keycode = Keycode(164);
    pub const SETTINGS: Keycode = Keycode(176);
    pub const APP_SWITCH: Keycode = Keycode(187);
    pub const SLEEP: Keycode = Keycode(223);
    pub const WAKEUP: Keycode = Keycode(224);

    /// Parses what `input keyevent` accepts: a number, `KEYCODE_HOME` or `HOME`
    /// (case-insensitive). None for an unknown name or a number outside Android's range.
    pub fn parse(s: &str) -> Option<Keycode> {
        if let Ok(n) = s.parse::<u32>() {
            return (n <= 316).then_some(Keycode(n));
        }
        let upper = s.to_ascii_uppercase();
        let name = upper.strip_prefix("KEYCODE_").unwrap_or(&upper);
        KEYS.iter()
            .find(|(_, k)| *k == name)
            .map(|(c, _)| Keycode(*c))
    }

    /// `KEYCODE_HOME`, or the number for codes this table does not name.
    pub fn name(self) -> String {
        match KEYS.iter().find(|(c, _)| *c == self.0) {
            Some((_, n)) => format!("KEYCODE_{n}"),
            None => self.0.to_string(),
        }
    }

    /// The character a key types into a text field (digits, letters, a few symbols).
    pub fn typed_char(self) -> Option<char> {
        match self.0 {
            7..=16 => char::from_digit(self.0 - 7, 10),
            29..=54 => char::from_u32(u32::from(b'a') + self.0 - 29),
            55 => Some(','),
            56 => Some('.'),
            62 => Some(' '),
            69 => Some('-'),
            70 => Some('='),
            76 => Some('/'),
            77 => Some('@'),
            81 => Some('+'),
            _ => None,
        }
    }

    /// Media and volume keys, which no screen consumes (logged, shown by the demo app).
    pub fn is_media(self) -> bool {
        matches!(self.0, 85..=91 | 126 | 127 | 164 | 24 | 25)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_names_and_numbers() {
        assert_eq!(Keycode::parse("3"), Some(Keycode::HOME));
        assert_eq!(Keycode::parse("KEYCODE_HOME"), Some(Keycode::HOME));
        assert_eq!(Keycode::parse("keycode_dpad_up"), Some(Keycode::DPAD_UP));
        assert_eq!(Keycode::parse("BACK"), Some(Keycode::BACK));
        assert_eq!(
            Keycode::parse("KEYCODE_MEDIA_PLAY_PAUSE"),
            Some(Keycode(85))
        );
        assert_eq!(Keycode::parse("KEYCODE_NOPE"), None);
        assert_eq!(Keycode::parse("99999"), None);
        assert_eq!(Keycode(66).name(), "KEYCODE_ENTER");
        assert_eq!(Keycode(300).name(), "300");
        assert_eq!(
            Keycode::parse("KEYCODE_7").and_then(Keycode::typed_char),
            Some('7')
        );
        assert_eq!(Keycode(29).typed_char(), Some('a'));
        assert!(Keycode(85).is_media());
        // Every named key parses back to itself.
        for (code, name) in KEYS {
            assert_eq!(
                Keycode::parse(&format!("KEYCODE_{name}")),
                Some(Keycode(*code))
            );
        }
    }
}
