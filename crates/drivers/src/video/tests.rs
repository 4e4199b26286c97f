//! The capture driver against a scripted fake node: conversion of what it streams, buffer
//! timestamps, unplug and replug, and the start errors.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use labwright_core::controller::{ControlError, VideoCapture};

use super::*;
use crate::eventually::eventually;

#[derive(Default)]
struct Script {
    offers: Vec<Offer>,
    frames: VecDeque<(Vec<u8>, u64)>,
    plugged: bool,
    /// Size the fake's driver applies instead of the asked one.
    applies: Option<(u32, u32)>,
    open_error: Option<NodeProblem>,
    opens: u32,
    sequence: u32,
}

#[derive(Clone)]
struct FakeNode(Arc<Mutex<Script>>);

const PATH: &str = "/dev/v4l/by-id/usb-fake-video-index0";

impl FakeNode {
    fn new(offers: Vec<Offer>) -> Self {
        FakeNode(Arc::new(Mutex::new(Script {
            offers,
            plugged: true,
            ..Script::default()
        })))
    }
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.0.lock().expect("script")
    }
    fn push(&self, data: Vec<u8>, timestamp_us: u64) {
        self.script().frames.push_back((data, timestamp_us));
    }
}

impl VideoDevice for FakeNode {
    fn path(&self) -> &str {
        PATH
    }
    fn open(&mut self) -> Result<(), NodeProblem> {
        let mut s = self.script();
        if let Some(e) = s.open_error.clone() {
            return Err(e);
        }
        if !s.plugged {
            return Err(NodeProblem::Missing { path: PATH.into() });
        }
        s.opens += 1;
        Ok(())
    }
    fn offers(&mut self) -> Result<Vec<Offer>, NodeProblem> {
        Ok(self.script().offers.clone())
    }
    fn apply(&mut self, mode: &Mode) -> Result<Applied, NodeProblem> {
        let (width, height) = self.script().applies.unwrap_or((mode.width, mode.height));
        Ok(Applied {
            format: mode.format,
            width,
            height,
            stride: mode.format.min_stride(width),
            fps: mode.fps,
        })
    }
    fn stream(
        &mut self,
        sink: &mut dyn FnMut(Option<RawFrame<'_>>) -> bool,
    ) -> Result<(), NodeProblem> {
        loop {
            let next = {
                let mut s = self.script();
                if !s.plugged {
                    return Err(NodeProblem::Gone { path: PATH.into() });
                }
                s.sequence += 1;
                s.frames.pop_front().map(|f| (f, s.sequence))
            };
            let go_on = match &next {
                Some(((data, ts), seq)) => sink(Some(RawFrame {
                    data,
                    timestamp_us: Some(*ts),
                    sequence: *seq,
                })),
                None => {
                    std::thread::sleep(Duration::from_millis(2));
                    sink(None)
                }
            };
            if !go_on {
                return Ok(());
            }
        }
    }
    fn close(&mut self) {}
}

fn yuyv_2x2() -> Vec<Offer> {
    vec![Offer {
        format: FourCc::YUYV,
        sizes: Sizes::Discrete {
            width: 2,
            height: 2,
        },
        fps: vec![30],
    }]
}

/// Y 235 (white) / Y 16 (black) rows, neutral chroma.
fn white_over_black() -> Vec<u8> {
    vec![235, 128, 235, 128, 16, 128, 16, 128]
}

fn grab_seq(c: &Capture, seq: u64) -> Frame {
    eventually(&format!("frame {seq}"), || {
        c.grab().ok().filter(|f| f.seq >= seq)
    })
}

#[test]
fn frames_are_converted_and_carry_the_buffer_timestamps() {
    let node = FakeNode::new(yuyv_2x2());
    let capture = Capture::start(node.clone(), Wanted::default()).expect("started");
    assert_eq!(capture.resolution(), (2, 2));
    assert_eq!(capture.applied().fps, Some(30));
    node.push(white_over_black(), 10_000_000);
    let first = grab_seq(&capture, 1);
    assert_eq!(first.pixel(0, 0), [255, 255, 255]);
    assert_eq!(first.pixel(1, 1), [0, 0, 0]);
    // The same buffer again is the same frame.
    assert_eq!(capture.grab().expect("again"), first);
    node.push(vec![81, 90, 81, 240, 81, 90, 81, 240], 10_033_333);
    let second = grab_seq(&capture, 2);
    assert_eq!(second.pixel(1, 0), [255, 0, 0]);
    assert_eq!(second.captured_at_us - first.captured_at_us, 33_333);
}

#[test]
fn unplugging_makes_the_source_unavailable_and_replugging_resumes_it() {
    let node = FakeNode::new(yuyv_2x2());
    let capture = Capture::start(node.clone(), Wanted::default()).expect("started");
    node.push(white_over_black(), 1_000);
    grab_seq(&capture, 1);
    node.script().plugged = false;
    let why = eventually("unavailable", || match capture.grab() {
        Err(ControlError::Unavailable(why)) => Some(why),
        _ => None,
    });
    assert!(why.starts_with(PATH), "{why}");
    assert!(capture.unavailable().is_some());
    node.script().plugged = true;
    eventually("reopened", || (capture.reopened() == 1).then_some(()));
    node.push(white_over_black(), 2_000);
    let f = grab_seq(&capture, 2);
    assert_eq!(f.pixel(0, 0), [255, 255, 255]);
    assert!(capture.unavailable().is_none());
    assert_eq!(node.script().opens, 2);
}

#[test]
fn no_frame_yet_is_a_timeout_not_a_hang() {
    let node = FakeNode::new(yuyv_2x2());
    let capture = Capture::start(node, Wanted::default()).expect("started");
    let e = capture.grab().expect_err("no frame");
    assert!(
        matches!(e, ControlError::Timeout(ref m) if m.starts_with(PATH)),
        "{e}"
    );
}

#[test]
fn start_errors_name_the_node_and_what_it_offers() {
    let node = FakeNode::new(yuyv_2x2());
    let wanted = Wanted {
        format: Some(FourCc::MJPEG),
        ..Wanted::default()
    };
    let e = Capture::start(node.clone(), wanted)
        .err()
        .expect("not offered");
    assert_eq!(
        e.to_string(),
        format!("{PATH}: MJPG is not offered (offered: YUYV 2x2 at 30 fps)")
    );

    node.script().applies = Some((4, 4));
    let e = Capture::start(node.clone(), Wanted::default())
        .err()
        .expect("changed by the driver");
    assert_eq!(
        e.to_string(),
        format!("{PATH}: asked for YUYV 2x2 at 30 fps, the driver applied YUYV 4x4 at 30 fps")
    );

    node.script().open_error = Some(NodeProblem::PermissionDenied {
        path: PATH.into(),
        group: Some("video".into()),
    });
    let e = Capture::start(node.clone(), Wanted::default())
        .err()
        .expect("denied");
    assert!(e.to_string().contains("usermod -aG video"), "{e}");

    node.script().open_error = None;
    node.script().plugged = false;
    let e = Capture::start(node, Wanted::default())
        .err()
        .expect("missing");
    assert!(
        matches!(e, StartError::Node(NodeProblem::Missing { .. })),
        "{e}"
    );
}

#[test]
fn a_corrupt_buffer_is_a_driver_error() {
    let node = FakeNode::new(yuyv_2x2());
    let capture = Capture::start(node.clone(), Wanted::default()).expect("started");
    node.push(vec![1, 2, 3], 5);
    let e = eventually("short buffer seen", || capture.grab().err());
    assert!(
        matches!(&e, ControlError::Driver(m) if m.contains("needs 8 bytes, got 3")),
        "{e}"
    );
}

#[test]
fn settings_are_checked_before_any_device_is_opened() {
    let s = VideoSettings {
        path: String::new(),
        format: Some("H264".into()),
        width: Some(1920),
        height: None,
        fps: Some(0),
    };
    let problems = s.wanted().expect_err("invalid");
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(problems[0].starts_with("path:"));
    assert!(problems[1].starts_with("format: \"H264\""));
    let ok = VideoSettings {
        path: "/dev/video0".into(),
        format: Some("YUYV".into()),
        width: Some(640),
        height: Some(480),
        fps: Some(30),
    };
    assert_eq!(
        ok.wanted().expect("valid"),
        Wanted {
            format: Some(FourCc::YUYV),
            width: Some(640),
            height: Some(480),
            fps: Some(30)
        }
    );
}
