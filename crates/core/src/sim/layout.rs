//! Where things are on the simulated box's 1280x720 screen, and the colours that matter, so tests,
//! navigation maps and reference regions can point at them instead of guessing pixel positions.

use super::{
    canvas::Rgb,
    state::{HOME_COLUMNS, HOME_TILES, SETTINGS_ITEMS},
};
use crate::frame::Rect;

pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 720;

/// The header band with the box name (left) and the clock (right).
pub const HEADER: Rect = Rect::new(0, 0, WIDTH, 80);
/// The clock text (`HH:MM`) in the header.
pub const CLOCK: Rect = Rect::new(1100, 28, 120, 24);
/// The screen title under the header ("Home", "Settings", a page's name).
pub const TITLE: Rect = Rect::new(75, 104, 700, 40);

/// The focus highlight: a ring around the focused Home tile, the fill of the focused Settings item.
pub const FOCUS: Rgb = [255, 196, 0];
/// Width of the focus ring around a Home tile.
pub const FOCUS_RING: u32 = 6;
/// Gap between a tile and its focus ring.
pub const FOCUS_GAP: u32 = 4;

const TILE_W: u32 = 260;
const TILE_H: u32 = 170;
const TILE_GAP: u32 = 40;
const TILE_X0: u32 = 70;
const TILE_Y0: u32 = 190;

/// The Home tile `index` (row by row), or `None` past the last tile.
pub fn home_tile(index: usize) -> Option<Rect> {
    (index < HOME_TILES.len()).then(|| {
        let (row, col) = ((index / HOME_COLUMNS) as u32, (index % HOME_COLUMNS) as u32);
        Rect::new(
            TILE_X0 + col * (TILE_W + TILE_GAP),
            TILE_Y0 + row * (TILE_H + TILE_GAP),
            TILE_W,
            TILE_H,
        )
    })
}

/// The focus ring drawn around Home tile `index`.
pub fn home_focus_ring(index: usize) -> Option<Rect> {
    let m = FOCUS_RING + FOCUS_GAP;
    home_tile(index).map(|t| Rect::new(t.x - m, t.y - m, t.width + 2 * m, t.height + 2 * m))
}

/// The Settings list item `index`.
pub fn settings_item(index: usize) -> Option<Rect> {
    (index < SETTINGS_ITEMS.len()).then(|| Rect::new(75, 170 + index as u32 * 76, 470, 60))
}

/// The Settings detail panel describing the focused item.
pub const SETTINGS_DETAIL: Rect = Rect::new(600, 170, 605, 364);
/// The body panel of a page opened from Home.
pub const PAGE_BODY: Rect = Rect::new(75, 170, 1130, 450);
/// The hint line at the bottom of menu screens.
pub const FOOTER: Rect = Rect::new(75, 660, 1130, 16);

/// The channel banner of the player (number, name, programme, time).
pub const BANNER: Rect = Rect::new(60, 520, 1160, 150);
/// The channel number inside the banner.
pub const BANNER_NUMBER: Rect = Rect::new(90, 548, 170, 56);
/// The channel name inside the banner.
pub const BANNER_NAME: Rect = Rect::new(290, 546, 900, 24);
/// The programme title inside the banner.
pub const BANNER_PROGRAMME: Rect = Rect::new(290, 590, 900, 24);
/// Digits typed for a channel number, top right of the player.
pub const DIGITS: Rect = Rect::new(1060, 40, 180, 80);
/// The volume bar, shown for a moment after a volume or mute key.
pub const VOLUME: Rect = Rect::new(390, 96, 500, 56);
/// The `MUTE` / `PAUSED` badges of the player, top left.
pub const BADGE: Rect = Rect::new(40, 40, 200, 44);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_fits_on_screen_and_tiles_do_not_overlap() {
        let mut rects: Vec<Rect> = (0..HOME_TILES.len()).filter_map(home_focus_ring).collect();
        rects.extend((0..SETTINGS_ITEMS.len()).filter_map(settings_item));
        rects.extend([
            HEADER,
            CLOCK,
            TITLE,
            SETTINGS_DETAIL,
            PAGE_BODY,
            FOOTER,
            BANNER,
            DIGITS,
            VOLUME,
            BADGE,
        ]);
        for r in &rects {
            r.check_within("rect", WIDTH, HEIGHT).expect("on screen");
        }
        let rings: Vec<Rect> = (0..HOME_TILES.len()).filter_map(home_focus_ring).collect();
        for (i, a) in rings.iter().enumerate() {
            for b in &rings[i + 1..] {
                let apart = a.right() <= u64::from(b.x)
                    || b.right() <= u64::from(a.x)
                    || a.bottom() <= u64::from(b.y)
                    || b.bottom() <= u64::from(a.y);
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
        assert_eq!(home_tile(HOME_TILES.len()), None);
    }
}
