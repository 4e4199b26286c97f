//! The simulated channel lineup: channel names, the programme on air in each half-hour slot, and
//! each channel's test tone. All of it is a pure function of the channel number and the time, so
//! the same moment always shows the same programme.

/// Length of a programme slot in the guide.
pub const SLOT_US: u64 = 30 * 60 * 1_000_000;

const NAMES: [&str; 12] = [
    "Labwright One",
    "News 24",
    "Sport Plus",
    "Kids Zone",
    "Movie Max",
    "Nature HD",
    "Music Box",
    "Docu World",
    "Comedy Club",
    "Travel TV",
    "Cooking Live",
    "Science Now",
];

const TITLES: [&str; 16] = [
    "Morning Bulletin",
    "The Big Match",
    "Wild Coasts",
    "Cartoon Hour",
    "City Lights",
    "Chef at Home",
    "Top 40 Countdown",
    "Deep Space",
    "Weekend Quiz",
    "Mountain Rescue",
    "Late Night Laughs",
    "World Tonight",
    "Ocean Giants",
    "Classic Cinema",
    "Garden Makeover",
    "Tech Today",
];

/// The channel's name; channels past the built-in list are called `Channel N`.
pub fn channel_name(channel: u32) -> String {
    match NAMES.get((channel as usize).wrapping_sub(1)) {
        Some(n) => (*n).to_string(),
        None => format!("Channel {channel}"),
    }
}

/// The half-hour slot containing `time_us`.
pub fn slot_of(time_us: u64) -> u64 {
    time_us / SLOT_US
}

/// Title of the programme on `channel` during `slot`.
pub fn programme(channel: u32, slot: u64) -> &'static str {
    let i = (u64::from(channel) * 7 + slot * 5) % TITLES.len() as u64;
    TITLES[i as usize]
}

/// Frequency of the channel's test tone: 440 Hz for channel 1, then 110 Hz more per channel.
pub fn tone_hz(channel: u32) -> u32 {
    440 + 110 * channel.saturating_sub(1)
}

/// `HH:MM` (UTC) of a Unix time in microseconds.
pub fn clock_text(time_us: u64) -> String {
    let minutes = time_us / 60_000_000;
    format!("{:02}:{:02}", (minutes / 60) % 24, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineup_is_a_function_of_channel_and_time() {
        assert_eq!(channel_name(1), "Labwright One");
        assert_eq!(channel_name(40), "Channel 40");
        assert_eq!(tone_hz(1), 440);
        assert_eq!(tone_hz(3), 660);
        assert_eq!(programme(2, 100), programme(2, 100));
        assert_ne!(programme(2, 100), programme(2, 101));
        assert_ne!(programme(2, 100), programme(3, 100));
        assert_eq!(clock_text(((13 * 60 + 7) * 60 + 59) * 1_000_000), "13:07");
        assert_eq!(slot_of(SLOT_US * 3 + 5), 3);
    }
}
