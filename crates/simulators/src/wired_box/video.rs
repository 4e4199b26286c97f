//! The box's HDMI out: frames streamed to a V4L2 output node (RGB24 at the box's 1280x720) with
//! memory-mapped buffers, [`BUFFERS`] of them: the one being filled and the ones the device
//! shows next. The kernel paces the stream at the output's frame rate (a buffer comes back once
//! shown), like a real HDMI transmitter's refresh. (`write()` is no alternative: the kernel's
//! write emulation queues output buffers without their payload size, which vivid refuses.)

use std::{
    path::{Path, PathBuf},
    thread,
    time::Duration,
};

use labwright_core::{
    controller::VideoCapture,
    sim::{SimulatedStb, layout},
};
use v4l::{
    Device, FourCC,
    buffer::Type,
    capability::Flags,
    io::{mmap::Stream, traits::OutputStream},
    video::Output,
};

use super::{REOPEN, WiredError};

/// The pixel format the box writes (RGB24, 3 bytes a pixel, no padding).
const RGB24: &[u8; 4] = b"RGB3";
/// Buffers of the output stream (vivid starts streaming with two queued).
pub const BUFFERS: u32 = 3;
/// Longest wait for the device to take a buffer.
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct VideoOut {
    path: PathBuf,
    device: Device,
    width: u32,
    height: u32,
}

impl VideoOut {
    /// Opens `path`, checks that it is a video output node that takes `write()`, and sets it to
    /// RGB24 at the box's size (the DV timings of an HDMI output must already give that size).
    pub fn open(path: &Path) -> Result<VideoOut, WiredError> {
        let (width, height) = (layout::WIDTH, layout::HEIGHT);
        let fail = |m: String| WiredError::Video(format!("{}: {m}", path.display()));
        let device = Device::with_path(path).map_err(|e| fail(e.to_string()))?;
        let caps = device.query_caps().map_err(|e| fail(e.to_string()))?;
        if !caps.capabilities.contains(Flags::VIDEO_OUTPUT) {
            return Err(fail(format!(
                "{} ({}) is not a video output node",
                caps.card, caps.driver
            )));
        }
        if !caps.capabilities.contains(Flags::STREAMING) {
            return Err(fail(format!(
                "{} ({}) does not stream",
                caps.card, caps.driver
            )));
        }
        let mut want = Output::format(&device).map_err(|e| fail(e.to_string()))?;
        want.width = width;
        want.height = height;
        want.fourcc = FourCC::new(RGB24);
        want.stride = width * 3;
        want.size = width * height * 3;
        let got = Output::set_format(&device, &want).map_err(|e| fail(e.to_string()))?;
        if got.width != width
            || got.height != height
            || got.fourcc != FourCC::new(RGB24)
            || got.stride != width * 3
        {
            return Err(fail(format!(
                "the output takes {} {}x{} (stride {}), the box sends RGB3 {width}x{height}: \
                 set the output's DV timings to {width}x{height}",
                got.fourcc, got.width, got.height, got.stride
            )));
        }
        Ok(VideoOut {
            path: path.to_path_buf(),
            device,
            width,
            height,
        })
    }

    /// Streams the box's frames until the device fails.
    fn stream(&self, stb: &SimulatedStb, frames: &mut u64) -> Result<(), String> {
        let mut stream = Stream::with_buffers(&self.device, Type::VideoOutput, BUFFERS)
            .map_err(|e| format!("buffers: {e}"))?;
        stream.set_timeout(TIMEOUT);
        // The buffers after the first go to the device at once (black: freshly mapped), so
        // that it starts streaming; the first is filled below.
        for index in 1..BUFFERS as usize {
            OutputStream::queue(&mut stream, index).map_err(|e| format!("queue: {e}"))?;
        }
        loop {
            let frame = stb
                .grab()
                .map_err(|e| format!("no frame from the box: {e}"))?;
            if frame.width != self.width || frame.height != self.height {
                return Err(format!(
                    "the box's frame is {}x{}, the output {}x{}",
                    frame.width, frame.height, self.width, self.height
                ));
            }
            // Queues the buffer filled last and waits for one the device has shown.
            let (buf, meta) =
                OutputStream::next(&mut stream).map_err(|e| format!("stream: {e}"))?;
            let n = frame.rgb.len().min(buf.len());
            buf[..n].copy_from_slice(&frame.rgb[..n]);
            meta.bytesused = n as u32;
            *frames += 1;
            if *frames == 1 {
                tracing::info!(path = %self.path.display(), "video output streaming");
            }
        }
    }

    /// Streams the box's frames forever; a failed stream reopens the node.
    pub fn run(mut self, stb: &SimulatedStb) {
        let mut frames: u64 = 0;
        loop {
            // `v4l` panics when stopping a stream fails for another reason than an unplug.
            let streamed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.stream(stb, &mut frames)
            }));
            match streamed {
                Ok(Err(e)) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "video output failed")
                }
                Err(_) => {
                    tracing::warn!(path = %self.path.display(), "video output stream panicked")
                }
                Ok(Ok(())) => {}
            }
            thread::sleep(REOPEN);
            match VideoOut::open(&self.path) {
                Ok(v) => self = v,
                Err(e) => tracing::warn!(error = %e, "video output not back yet"),
            }
        }
    }
}
