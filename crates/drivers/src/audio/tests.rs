//! The audio driver against a scripted fake PCM: mixing into the ring, `recent` without a
//! capture, blocking `read`, xrun recovery and counting, unplug and replug.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use labwright_core::controller::{AudioCapture, ControlError};

use super::*;
use crate::eventually::eventually;

enum Event {
    Frames(Vec<i16>),
    Xrun,
    Unplug,
}

#[derive(Default)]
struct Script {
    events: VecDeque<Event>,
    plugged: bool,
    recovered: u32,
    opens: u32,
    offered: Option<PcmFormat>,
}

#[derive(Clone)]
struct FakePcm(Arc<Mutex<Script>>);

const NAME: &str = "hw:Loopback,1,0";

impl FakePcm {
    fn new() -> Self {
        FakePcm(Arc::new(Mutex::new(Script {
            plugged: true,
            offered: Some(PcmFormat {
                rate: 1000,
                channels: 2,
            }),
            ..Script::default()
        })))
    }
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.0.lock().expect("script")
    }
    fn send(&self, e: Event) {
        self.script().events.push_back(e);
    }
}

impl PcmSource for FakePcm {
    fn name(&self) -> &str {
        NAME
    }
    fn open(&mut self, wanted: &AudioWanted) -> Result<PcmFormat, NodeProblem> {
        let mut s = self.script();
        if !s.plugged {
            return Err(NodeProblem::Missing { path: NAME.into() });
        }
        let offered = s.offered.ok_or(NodeProblem::Busy { path: NAME.into() })?;
        if wanted.rate.is_some_and(|r| r != offered.rate) {
            return Err(NodeProblem::Other {
                path: NAME.into(),
                message: "rate not offered".into(),
            });
        }
        s.opens += 1;
        Ok(offered)
    }
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, ReadError> {
        let event = self.script().events.pop_front();
        match event {
            Some(Event::Frames(f)) => {
                // The driver reads at most a buffer; tests send chunks that fit.
                buf[..f.len()].copy_from_slice(&f);
                Ok(f.len() / 2)
            }
            Some(Event::Xrun) => Err(ReadError::Xrun),
            Some(Event::Unplug) => {
                self.script().plugged = false;
                Err(ReadError::Node(NodeProblem::Gone { path: NAME.into() }))
            }
            None => {
                std::thread::sleep(Duration::from_millis(2));
                Ok(0)
            }
        }
    }
    fn recover(&mut self) -> Result<(), NodeProblem> {
        self.script().recovered += 1;
        Ok(())
    }
    fn close(&mut self) {}
}

fn stereo(left: &[i16], right: &[i16]) -> Event {
    Event::Frames(left.iter().zip(right).flat_map(|(l, r)| [*l, *r]).collect())
}

#[test]
fn recent_audio_is_mixed_to_mono_without_starting_a_capture() {
    let pcm = FakePcm::new();
    let capture = Capture::start(pcm.clone(), AudioWanted::default(), 1).expect("started");
    assert_eq!(
        capture.format(),
        PcmFormat {
            rate: 1000,
            channels: 2
        }
    );
    pcm.send(stereo(&[100, 200, 300], &[300, 200, 100]));
    pcm.send(stereo(&[1000, -1000], &[0, 0]));
    eventually("5 samples", || {
        (capture.recent(Duration::from_secs(1)).ok()?.samples.len() == 5).then_some(())
    });
    // At 1000 Hz, 3 ms is the newest 3 samples.
    let chunk = capture.recent(Duration::from_millis(3)).expect("recent");
    assert_eq!(chunk.samples, vec![200, 500, -500]);
    assert_eq!(chunk.sample_rate, 1000);
    let all = capture.recent(Duration::from_secs(1)).expect("all");
    assert_eq!(all.samples, vec![200, 200, 200, 500, -500]);
    assert_eq!(chunk.started_at_us - all.started_at_us, 2_000);
}

#[test]
fn read_returns_audio_captured_after_it_started() {
    let pcm = FakePcm::new();
    let capture =
        Arc::new(Capture::start(pcm.clone(), AudioWanted::default(), 1).expect("started"));
    pcm.send(stereo(&[9, 9], &[9, 9]));
    eventually("old audio", || {
        (capture.recent(Duration::from_secs(1)).ok()?.samples.len() == 2).then_some(())
    });
    let reader = {
        let c = capture.clone();
        std::thread::spawn(move || c.read(Duration::from_millis(4)))
    };
    // Feed a ramp until the reader is done: whenever it took its start position, it gets four
    // consecutive ramp samples captured after that, never the older audio.
    let mut next = 1i16;
    while !reader.is_finished() {
        if pcm.script().events.is_empty() {
            pcm.send(stereo(&[next], &[next]));
            next += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let chunk = reader.join().expect("reader").expect("read");
    assert_eq!(chunk.samples.len(), 4);
    let first = chunk.samples[0];
    assert!(first >= 1, "{:?}", chunk.samples);
    assert_eq!(chunk.samples, (first..first + 4).collect::<Vec<i16>>());
}

#[test]
fn xruns_are_recovered_and_counted() {
    let pcm = FakePcm::new();
    let capture = Capture::start(pcm.clone(), AudioWanted::default(), 1).expect("started");
    pcm.send(Event::Xrun);
    pcm.send(stereo(&[1], &[1]));
    pcm.send(Event::Xrun);
    pcm.send(stereo(&[2], &[2]));
    eventually("both chunks", || {
        (capture.recent(Duration::from_secs(1)).ok()?.samples == vec![1, 2]).then_some(())
    });
    assert_eq!(capture.xruns(), 2);
    assert_eq!(pcm.script().recovered, 2);
    assert!(capture.unavailable().is_none());
}

#[test]
fn unplugging_makes_audio_unavailable_and_replugging_resumes_it() {
    let pcm = FakePcm::new();
    let capture = Capture::start(pcm.clone(), AudioWanted::default(), 1).expect("started");
    pcm.send(Event::Unplug);
    let why = eventually("unavailable", || {
        match capture.recent(Duration::from_millis(1)) {
            Err(ControlError::Unavailable(why)) => Some(why),
            _ => None,
        }
    });
    assert!(why.starts_with(NAME), "{why}");
    assert!(matches!(
        capture.read(Duration::from_millis(1)),
        Err(ControlError::Unavailable(_))
    ));
    pcm.script().plugged = true;
    eventually("reopened", || (capture.reopened() == 1).then_some(()));
    pcm.send(stereo(&[7], &[7]));
    eventually("audio again", || {
        (capture.recent(Duration::from_secs(1)).ok()?.samples == vec![7]).then_some(())
    });
    assert_eq!(pcm.script().opens, 2);
}

#[test]
fn start_and_settings_errors() {
    let pcm = FakePcm::new();
    pcm.script().plugged = false;
    let e = Capture::start(pcm, AudioWanted::default(), 1)
        .err()
        .expect("missing");
    assert!(
        e.to_string().starts_with("hw:Loopback,1,0: no such device"),
        "{e}"
    );
    let bad = AudioSettings {
        pcm: " ".into(),
        rate: Some(100),
        channels: Some(0),
        buffer_secs: 0,
    };
    assert_eq!(bad.wanted().expect_err("invalid").len(), 4);
}
