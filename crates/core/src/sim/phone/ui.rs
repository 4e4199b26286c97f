//! The phone's screen as a tree of views: windows (the foreground app, the navigation bar)
//! holding nodes with Android's view attributes. The same nodes are drawn ([`render`]), dumped
//! in `uiautomator dump`'s XML ([`dump`]) and hit-tested for taps ([`hit`]), so what a test
//! finds in the hierarchy is exactly what the screenshot shows and what a tap reaches.

use super::super::canvas::{Canvas, Rgb};
use super::super::font;

/// Screen width in pixels (portrait).
pub const WIDTH: u32 = 540;
/// Screen height in pixels.
pub const HEIGHT: u32 = 960;
/// Height of the status bar at the top.
pub const STATUS_BAR: i32 = 36;
/// Top of the navigation bar at the bottom.
pub const NAV_BAR_TOP: i32 = 904;

/// A rectangle as uiautomator writes it: `[x1,y1][x2,y2]`, right and bottom exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub x1: i32,
    pub y1: i32,
    pub x2: i32,
    pub y2: i32,
}

impl Bounds {
    pub fn new(x: i32, y: i32, w: i32, h: i32) -> Bounds {
        Bounds {
            x1: x,
            y1: y,
            x2: x + w,
            y2: y + h,
        }
    }

    pub fn contains(&self, x: i32, y: i32) -> bool {
        x >= self.x1 && x < self.x2 && y >= self.y1 && y < self.y2
    }

    pub fn center(&self) -> (i32, i32) {
        ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)
    }

    fn w(&self) -> u32 {
        (self.x2 - self.x1).max(0) as u32
    }

    fn h(&self) -> u32 {
        (self.y2 - self.y1).max(0) as u32
    }
}

/// What activating a node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Launch(String),
    AppList,
    Back,
    Home,
    Recents,
    Increment(u32),
    Reset,
    Hello,
    FocusInput,
}

/// How a node is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// Containers: nothing of their own.
    Plain,
    /// A coloured bar with the text in white (app bars).
    Bar(Rgb),
    /// Text at a scale and colour, left-aligned or centred in the bounds.
    Label {
        scale: u32,
        color: Rgb,
        center: bool,
    },
    /// A filled button with its text centred.
    Button(Rgb),
    /// A launcher icon: a coloured square with the initial, the label below.
    Icon(Rgb),
    /// A list row: a small icon, the text and, below it, the content description.
    Row(Rgb),
    /// A text field (the text, or a grey hint when empty; a cursor when focused).
    Edit { hint: &'static str },
    /// A navigation bar button drawn as a glyph.
    Nav(&'static str),
}

/// One view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub class: &'static str,
    pub resource_id: String,
    pub text: String,
    pub content_desc: String,
    pub bounds: Bounds,
    pub clickable: bool,
    pub long_clickable: bool,
    pub focusable: bool,
    pub focused: bool,
    pub scrollable: bool,
    pub action: Action,
    pub long_action: Action,
    pub look: Look,
}

impl Node {
    pub fn new(class: &'static str, bounds: Bounds, look: Look) -> Node {
        Node {
            class,
            resource_id: String::new(),
            text: String::new(),
            content_desc: String::new(),
            bounds,
            clickable: false,
            long_clickable: false,
            focusable: false,
            focused: false,
            scrollable: false,
            action: Action::None,
            long_action: Action::None,
            look,
        }
    }

    pub fn text(mut self, t: impl Into<String>) -> Node {
        self.text = t.into();
        self
    }

    pub fn id(mut self, id: impl Into<String>) -> Node {
        self.resource_id = id.into();
        self
    }

    pub fn desc(mut self, d: impl Into<String>) -> Node {
        self.content_desc = d.into();
        self
    }

    /// Clickable and focusable, doing `action` when tapped.
    pub fn on_click(mut self, action: Action) -> Node {
        self.clickable = true;
        self.focusable = true;
        self.action = action;
        self
    }

    pub fn on_long_click(mut self, action: Action) -> Node {
        self.long_clickable = true;
        self.long_action = action;
        self
    }
}

/// A window: a root `FrameLayout` of one package holding nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub package: String,
    pub bounds: Bounds,
    pub background: Rgb,
    pub nodes: Vec<Node>,
}

/// The node a tap at `(x, y)` reaches: the topmost clickable (or, with `long`, long-clickable)
/// node containing the point, searching windows and nodes from the top down.
pub fn hit(windows: &[Window], x: i32, y: i32, long: bool) -> Option<&Node> {
    windows.iter().rev().find_map(|w| {
        w.nodes.iter().rev().find(|n| {
            (if long { n.long_clickable } else { n.clickable }) && n.bounds.contains(x, y)
        })
    })
}

/// Draws the windows into an RGB24 buffer of [`WIDTH`] x [`HEIGHT`].
pub fn render(windows: &[Window], status_text: &str, buf: &mut [u8]) {
    let mut c = Canvas::new(buf, WIDTH, HEIGHT);
    c.fill(0, 0, WIDTH, STATUS_BAR as u32, [32, 33, 36]);
    c.text(12, 10, 2, [255, 255, 255], status_text);
    c.text_right(WIDTH as i32 - 12, 10, 2, [255, 255, 255], "100%");
    for w in windows {
        c.fill(
            w.bounds.x1,
            w.bounds.y1,
            w.bounds.w(),
            w.bounds.h(),
            w.background,
        );
        for n in &w.nodes {
            draw(&mut c, n);
        }
    }
}

const WHITE: Rgb = [255, 255, 255];
const DARK: Rgb = [33, 33, 33];
const GREY: Rgb = [117, 117, 117];
const FOCUS: Rgb = [255, 193, 7];

/// `text` cut to fit `width` pixels at `scale`.
fn fit(text: &str, scale: u32, width: u32) -> String {
    let max = ((width / scale.max(1) + 1) / font::ADVANCE) as usize;
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(2)).collect();
        s.push_str("..");
        s
    }
}

fn initial(text: &str) -> String {
    text.chars()
        .next()
        .map(|c| c.to_ascii_uppercase().to_string())
        .unwrap_or_default()
}

fn draw(c: &mut Canvas<'_>, n: &Node) {
    let b = n.bounds;
    let line = |scale: u32| (font::GLYPH_WIDTH + 2) * scale;
    let mid_y = |scale: u32| b.y1 + (b.h() as i32 - (7 * scale) as i32) / 2;
    match &n.look {
        Look::Plain => {}
        Look::Bar(color) => {
            c.fill(b.x1, b.y1, b.w(), b.h(), *color);
            c.text(
                b.x1 + 24,
                mid_y(4),
                4,
                WHITE,
                &fit(&n.text, 4, b.w().saturating_sub(48)),
            );
        }
        Look::Label {
            scale,
            color,
            center,
        } => {
            let t = fit(&n.text, *scale, b.w());
            if *center {
                c.text_centered((b.x1 + b.x2) / 2, mid_y(*scale), *scale, *color, &t);
            } else {
                c.text(b.x1, mid_y(*scale), *scale, *color, &t);
            }
        }
        Look::Button(color) => {
            c.fill(b.x1, b.y1, b.w(), b.h(), *color);
            let t = fit(&n.text, 3, b.w().saturating_sub(16));
            c.text_centered((b.x1 + b.x2) / 2, mid_y(3), 3, WHITE, &t);
        }
        Look::Icon(color) => {
            let x = (b.x1 + b.x2) / 2 - 44;
            c.fill(x, b.y1 + 8, 88, 88, *color);
            c.text_centered(x + 44, b.y1 + 8 + 23, 6, WHITE, &initial(&n.text));
            c.text_centered(
                (b.x1 + b.x2) / 2,
                b.y1 + 108,
                2,
                WHITE,
                &fit(&n.text, 2, b.w()),
            );
        }
        Look::Row(color) => {
            c.fill(b.x1 + 16, b.y1 + 8, 56, 56, *color);
            c.text_centered(b.x1 + 44, b.y1 + 8 + 14, 4, WHITE, &initial(&n.text));
            c.text(
                b.x1 + 90,
                b.y1 + 12,
                3,
                DARK,
                &fit(&n.text, 3, b.w().saturating_sub(100)),
            );
            c.text(
                b.x1 + 90,
                b.y1 + 46,
                2,
                GREY,
                &fit(&n.content_desc, 2, b.w().saturating_sub(100)),
            );
            c.fill(
                b.x1 + 90,
                b.y2 - 1,
                b.w().saturating_sub(90),
                1,
                [224, 224, 224],
            );
        }
        Look::Edit { hint } => {
            c.fill(b.x1, b.y1, b.w(), b.h(), WHITE);
            let border = if n.focused { [98, 0, 238] } else { GREY };
            c.frame(b.x1, b.y1, b.w(), b.h(), 3, border);
            let y = mid_y(3);
            let w = if n.text.is_empty() {
                c.text(b.x1 + 14, y, 3, [170, 170, 170], hint);
                0
            } else {
                // The end of a long text stays visible, as in a real field.
                let max = ((b.w().saturating_sub(36)) / 3 / font::ADVANCE) as usize;
                let skip = n.text.chars().count().saturating_sub(max);
                let visible: String = n.text.chars().skip(skip).collect();
                c.text(b.x1 + 14, y, 3, DARK, &visible)
            };
            if n.focused {
                c.fill(b.x1 + 16 + w as i32, y - 2, 3, line(3), [98, 0, 238]);
            }
        }
        Look::Nav(glyph) => {
            c.text_centered((b.x1 + b.x2) / 2, mid_y(3), 3, WHITE, glyph);
        }
    }
    // The D-pad focus ring (text fields show focus with their border).
    if n.focused && !matches!(n.look, Look::Edit { .. }) {
        c.frame(b.x1, b.y1, b.w(), b.h(), 4, FOCUS);
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 => out.push_str(&format!("&#{};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn node_attrs(
    out: &mut String,
    index: usize,
    text: &str,
    id: &str,
    class: &str,
    package: &str,
    desc: &str,
    flags: [bool; 6],
    b: Bounds,
) {
    let [
        clickable,
        focusable,
        focused,
        scrollable,
        long_clickable,
        selected,
    ] = flags;
    out.push_str(&format!(
        "<node index=\"{index}\" text=\"{}\" resource-id=\"{}\" class=\"{class}\" package=\"{}\" content-desc=\"{}\" checkable=\"false\" checked=\"false\" clickable=\"{clickable}\" enabled=\"true\" focusable=\"{focusable}\" focused=\"{focused}\" scrollable=\"{scrollable}\" long-clickable=\"{long_clickable}\" password=\"false\" selected=\"{selected}\" bounds=\"[{},{}][{},{}]\"",
        escape(text),
        escape(id),
        escape(package),
        escape(desc),
        b.x1,
        b.y1,
        b.x2,
        b.y2
    ));
}

/// The windows in `uiautomator dump`'s XML: one line, as the real tool writes it.
pub fn dump(windows: &[Window]) -> String {
    let mut out = String::from(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">",
    );
    for (wi, w) in windows.iter().enumerate() {
        node_attrs(
            &mut out,
            wi,
            "",
            "",
            "android.widget.FrameLayout",
            &w.package,
            "",
            [false; 6],
            w.bounds,
        );
        out.push('>');
        for (i, n) in w.nodes.iter().enumerate() {
            node_attrs(
                &mut out,
                i,
                &n.text,
                &n.resource_id,
                n.class,
                &w.package,
                &n.content_desc,
                [
                    n.clickable,
                    n.focusable,
                    n.focused,
                    n.scrollable,
                    n.long_clickable,
                    false,
                ],
                n.bounds,
            );
            out.push_str(" />");
        }
        out.push_str("</node>");
    }
    out.push_str("</hierarchy>");
    out
}
