//! Choosing a mode from what a node offers: the settings' format, size and frame rate when
//! given (an error listing every offer when the node has no such mode), otherwise the best
//! offered: the largest size, then the highest frame rate, then the preferred format.

use std::fmt;

use super::{FourCc, Wanted};

/// Frame sizes a node offers for one format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizes {
    Discrete {
        width: u32,
        height: u32,
    },
    /// Any size from min to max in steps (capture cards, vivid's non-webcam inputs).
    Stepwise {
        min: (u32, u32),
        max: (u32, u32),
        step: (u32, u32),
    },
}

impl Sizes {
    fn fits(&self, width: u32, height: u32) -> bool {
        match *self {
            Sizes::Discrete {
                width: w,
                height: h,
            } => (w, h) == (width, height),
            Sizes::Stepwise { min, max, step } => {
                let on = |v: u32, lo: u32, hi: u32, s: u32| {
                    v >= lo && v <= hi && (v - lo).is_multiple_of(s.max(1))
                };
                on(width, min.0, max.0, step.0) && on(height, min.1, max.1, step.1)
            }
        }
    }

    fn largest(&self) -> (u32, u32) {
        match *self {
            Sizes::Discrete { width, height } => (width, height),
            Sizes::Stepwise { max, .. } => max,
        }
    }
}

/// One (format, sizes) a node offers, with the frame rates it offers there (empty: the node
/// does not say).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub format: FourCc,
    pub sizes: Sizes,
    pub fps: Vec<u32>,
}

impl fmt::Display for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sizes {
            Sizes::Discrete { width, height } => write!(f, "{} {width}x{height}", self.format)?,
            Sizes::Stepwise { min, max, .. } => write!(
                f,
                "{} {}x{} to {}x{}",
                self.format, min.0, min.1, max.0, max.1
            )?,
        }
        if !self.fps.is_empty() {
            let rates: Vec<String> = self.fps.iter().map(u32::to_string).collect();
            write!(f, " at {} fps", rates.join("/"))?;
        }
        Ok(())
    }
}

/// A mode to stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    pub format: FourCc,
    pub width: u32,
    pub height: u32,
    /// `None`: leave the node's frame rate as it is (it offers none to choose from).
    pub fps: Option<u32>,
}

/// Larger area, then higher frame rate, then the preferred format.
type Rank = (u64, u32, std::cmp::Reverse<usize>);

/// Picks the mode to stream, or says why none fits, listing what the node offers.
pub fn negotiate(offers: &[Offer], wanted: &Wanted) -> Result<Mode, String> {
    let mut best: Option<(Mode, Rank)> = None;
    for offer in offers.iter().filter(|o| o.format.is_supported()) {
        if wanted.format.is_some_and(|f| f != offer.format) {
            continue;
        }
        let (width, height) = match (wanted.width, wanted.height) {
            (Some(w), Some(h)) if offer.sizes.fits(w, h) => (w, h),
            (Some(_), Some(_)) => continue,
            _ => offer.sizes.largest(),
        };
        let fps = match wanted.fps {
            Some(f) if offer.fps.is_empty() || offer.fps.contains(&f) => Some(f),
            Some(_) => continue,
            None => offer.fps.iter().copied().max(),
        };
        let mode = Mode {
            format: offer.format,
            width,
            height,
            fps,
        };
        let rank = (
            u64::from(width) * u64::from(height),
            fps.unwrap_or(0),
            std::cmp::Reverse(offer.format.preference()),
        );
        if best.as_ref().is_none_or(|(_, r)| rank > *r) {
            best = Some((mode, rank));
        }
    }
    best.map(|(m, _)| m).ok_or_else(|| {
        let offered: Vec<String> = offers
            .iter()
            .filter(|o| o.format.is_supported())
            .map(Offer::to_string)
            .collect();
        let asked = describe(wanted);
        if offered.is_empty() {
            let all: Vec<String> = offers.iter().map(|o| o.format.to_string()).collect();
            format!(
                "offers no format this driver converts (offered: {}; supported: RGB3, BGR3, YUYV, NV12, MJPG)",
                if all.is_empty() {
                    "nothing".into()
                } else {
                    all.join(", ")
                }
            )
        } else {
            format!(
                "{asked} is not offered (offered: {})",
                offered.join("; ")
            )
        }
    })
}

fn describe(w: &Wanted) -> String {
    let mut parts = Vec::new();
    if let Some(f) = w.format {
        parts.push(f.to_string());
    }
    if let (Some(wd), Some(h)) = (w.width, w.height) {
        parts.push(format!("{wd}x{h}"));
    }
    if let Some(f) = w.fps {
        parts.push(format!("at {f} fps"));
    }
    if parts.is_empty() {
        "a mode".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers() -> Vec<Offer> {
        vec![
            Offer {
                format: FourCc::YUYV,
                sizes: Sizes::Discrete {
                    width: 1920,
                    height: 1080,
                },
                fps: vec![5],
            },
            Offer {
                format: FourCc::YUYV,
                sizes: Sizes::Discrete {
                    width: 640,
                    height: 480,
                },
                fps: vec![30, 15],
            },
            Offer {
                format: FourCc::MJPEG,
                sizes: Sizes::Discrete {
                    width: 1920,
                    height: 1080,
                },
                fps: vec![30, 60],
            },
            Offer {
                format: FourCc(*b"H264"),
                sizes: Sizes::Discrete {
                    width: 3840,
                    height: 2160,
                },
                fps: vec![30],
            },
        ]
    }

    #[test]
    fn best_offered_is_largest_then_fastest_then_preferred() {
        let m = negotiate(&offers(), &Wanted::default()).expect("mode");
        assert_eq!(
            m,
            Mode {
                format: FourCc::MJPEG,
                width: 1920,
                height: 1080,
                fps: Some(60)
            }
        );
        // Same size and rate: uncompressed wins.
        let tie = vec![
            Offer {
                format: FourCc::MJPEG,
                sizes: Sizes::Discrete {
                    width: 640,
                    height: 480,
                },
                fps: vec![30],
            },
            Offer {
                format: FourCc::YUYV,
                sizes: Sizes::Discrete {
                    width: 640,
                    height: 480,
                },
                fps: vec![30],
            },
        ];
        assert_eq!(
            negotiate(&tie, &Wanted::default()).expect("mode").format,
            FourCc::YUYV
        );
    }

    #[test]
    fn settings_pick_format_size_and_rate() {
        let wanted = Wanted {
            format: Some(FourCc::YUYV),
            width: None,
            height: None,
            fps: Some(30),
        };
        let m = negotiate(&offers(), &wanted).expect("mode");
        assert_eq!((m.width, m.height, m.fps), (640, 480, Some(30)));
        let stepwise = vec![Offer {
            format: FourCc::NV12,
            sizes: Sizes::Stepwise {
                min: (16, 16),
                max: (1920, 1080),
                step: (2, 2),
            },
            fps: vec![],
        }];
        let wanted = Wanted {
            format: None,
            width: Some(1280),
            height: Some(720),
            fps: Some(50),
        };
        let m = negotiate(&stepwise, &wanted).expect("mode");
        assert_eq!((m.width, m.height, m.fps), (1280, 720, Some(50)));
        let odd = Wanted {
            width: Some(1281),
            height: Some(720),
            ..Wanted::default()
        };
        assert!(negotiate(&stepwise, &odd).is_err());
        assert_eq!(
            negotiate(&stepwise, &Wanted::default()).expect("largest"),
            Mode {
                format: FourCc::NV12,
                width: 1920,
                height: 1080,
                fps: None
            }
        );
    }

    #[test]
    fn a_mode_not_offered_names_every_offer() {
        let wanted = Wanted {
            format: Some(FourCc::YUYV),
            width: Some(1920),
            height: Some(1080),
            fps: Some(30),
        };
        let e = negotiate(&offers(), &wanted).expect_err("not offered");
        assert_eq!(
            e,
            "YUYV 1920x1080 at 30 fps is not offered (offered: YUYV 1920x1080 at 5 fps; \
             YUYV 640x480 at 30/15 fps; MJPG 1920x1080 at 30/60 fps)"
        );
        let only_h264 = vec![offers().remove(3)];
        let e = negotiate(&only_h264, &Wanted::default()).expect_err("nothing usable");
        assert!(e.contains("offered: H264"), "{e}");
        assert!(
            negotiate(&[], &Wanted::default())
                .expect_err("no offers")
                .contains("offered: nothing")
        );
    }
}
