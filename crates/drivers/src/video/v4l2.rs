//! The real [`VideoDevice`]: a V4L2 capture node through the `v4l` crate, memory-mapped
//! streaming with four buffers.

use std::{
    io,
    panic::{AssertUnwindSafe, catch_unwind},
    time::Duration,
};

use v4l::{
    Device, Format, Fraction,
    buffer::Type,
    frameinterval::FrameIntervalEnum,
    framesize::FrameSizeEnum,
    io::{mmap::Stream, traits::CaptureStream},
    video::{Capture as _, capture::Parameters},
};

use super::{Applied, FourCc, Mode, Offer, RawFrame, Sizes, VideoDevice};
use crate::NodeProblem;

/// How long a dequeue waits before telling the capture loop that nothing came.
const DEQUEUE_TIMEOUT: Duration = Duration::from_millis(500);
const BUFFERS: u32 = 4;

/// A V4L2 capture node by path (`/dev/v4l/by-id/...` or `/dev/videoN`).
pub struct V4l2Node {
    path: String,
    device: Option<Device>,
}

impl V4l2Node {
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            device: None,
        }
    }

    fn problem(&self, e: &io::Error) -> NodeProblem {
        NodeProblem::from_io(&self.path, e)
    }

    fn device(&self) -> Result<&Device, NodeProblem> {
        self.device.as_ref().ok_or_else(|| NodeProblem::Other {
            path: self.path.clone(),
            message: "not open".into(),
        })
    }
}

fn fps_of(interval: &Fraction) -> Option<u32> {
    (interval.numerator > 0)
        .then(|| (f64::from(interval.denominator) / f64::from(interval.numerator)).round() as u32)
        .filter(|f| *f > 0)
}

fn frame_rates(device: &Device, format: v4l::FourCC, width: u32, height: u32) -> Vec<u32> {
    let mut rates = Vec::new();
    for interval in device
        .enum_frameintervals(format, width, height)
        .unwrap_or_default()
    {
        match interval.interval {
            FrameIntervalEnum::Discrete(f) => rates.extend(fps_of(&f)),
            FrameIntervalEnum::Stepwise(s) => {
                rates.extend(fps_of(&s.min));
                rates.extend(fps_of(&s.max));
            }
        }
    }
    rates.sort_unstable_by(|a, b| b.cmp(a));
    rates.dedup();
    rates
}

impl VideoDevice for V4l2Node {
    fn path(&self) -> &str {
        &self.path
    }

    fn open(&mut self) -> Result<(), NodeProblem> {
        self.device = None;
        let device = Device::with_path(&self.path).map_err(|e| self.problem(&e))?;
        let caps = device.query_caps().map_err(|e| self.problem(&e))?;
        if !caps
            .capabilities
            .contains(v4l::capability::Flags::VIDEO_CAPTURE)
        {
            return Err(NodeProblem::Other {
                path: self.path.clone(),
                message: format!(
                    "{} ({}) is not a video capture node",
                    caps.card, caps.driver
                ),
            });
        }
        self.device = Some(device);
        Ok(())
    }

    fn offers(&mut self) -> Result<Vec<Offer>, NodeProblem> {
        let device = self.device()?;
        let formats = device.enum_formats().map_err(|e| self.problem(&e))?;
        let current = device.format().map_err(|e| self.problem(&e))?;
        let mut offers = Vec::new();
        for f in formats {
            let format = FourCc(f.fourcc.repr);
            let sizes = device.enum_framesizes(f.fourcc).unwrap_or_default();
            if sizes.is_empty() {
                // The node does not enumerate sizes: offer the current one.
                offers.push(Offer {
                    format,
                    sizes: Sizes::Discrete {
                        width: current.width,
                        height: current.height,
                    },
                    fps: frame_rates(device, f.fourcc, current.width, current.height),
                });
                continue;
            }
            for s in sizes {
                let (sizes, (w, h)) = match s.size {
                    FrameSizeEnum::Discrete(d) => (
                        Sizes::Discrete {
                            width: d.width,
                            height: d.height,
                        },
                        (d.width, d.height),
                    ),
                    FrameSizeEnum::Stepwise(st) => (
                        Sizes::Stepwise {
                            min: (st.min_width, st.min_height),
                            max: (st.max_width, st.max_height),
                            step: (st.step_width, st.step_height),
                        },
                        (st.max_width, st.max_height),
                    ),
                };
                offers.push(Offer {
                    format,
                    sizes,
                    fps: frame_rates(device, f.fourcc, w, h),
                });
            }
        }
        Ok(offers)
    }

    fn apply(&mut self, mode: &Mode) -> Result<Applied, NodeProblem> {
        let device = self.device()?;
        let want = Format::new(mode.width, mode.height, v4l::FourCC::new(&mode.format.0));
        let got = device.set_format(&want).map_err(|e| self.problem(&e))?;
        let fps = match mode.fps {
            Some(fps) => device
                .set_params(&Parameters::with_fps(fps))
                .ok()
                .and_then(|p| fps_of(&p.interval)),
            None => device.params().ok().and_then(|p| fps_of(&p.interval)),
        };
        let format = FourCc(got.fourcc.repr);
        let stride = if format.min_stride(got.width) == 0 {
            0
        } else {
            got.stride as usize
        };
        Ok(Applied {
            format,
            width: got.width,
            height: got.height,
            stride,
            fps,
        })
    }

    fn stream(
        &mut self,
        sink: &mut dyn FnMut(Option<RawFrame<'_>>) -> bool,
    ) -> Result<(), NodeProblem> {
        let path = self.path.clone();
        let device = self.device()?;
        // `v4l` panics when stopping a stream fails for another reason than an unplug; keep
        // that inside this call.
        let run = || -> Result<(), NodeProblem> {
            let mut stream = Stream::with_buffers(device, Type::VideoCapture, BUFFERS)
                .map_err(|e| NodeProblem::from_io(&path, &e))?;
            stream.set_timeout(DEQUEUE_TIMEOUT);
            loop {
                let go_on = match CaptureStream::next(&mut stream) {
                    Ok((buf, meta)) => {
                        let used = meta.bytesused as usize;
                        let data = if used > 0 && used <= buf.len() {
                            &buf[..used]
                        } else {
                            buf
                        };
                        let ts = meta.timestamp;
                        let timestamp_us = (ts.sec > 0 || ts.usec > 0)
                            .then(|| ts.sec as u64 * 1_000_000 + ts.usec as u64);
                        sink(Some(RawFrame {
                            data,
                            timestamp_us,
                            sequence: meta.sequence,
                        }))
                    }
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => sink(None),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
                    Err(e) => return Err(NodeProblem::from_io(&path, &e)),
                };
                if !go_on {
                    return Ok(());
                }
            }
        };
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(r) => r,
            Err(_) => Err(NodeProblem::Other {
                path: self.path.clone(),
                message: "stopping the stream failed".into(),
            }),
        }
    }

    fn close(&mut self) {
        self.device = None;
    }
}
