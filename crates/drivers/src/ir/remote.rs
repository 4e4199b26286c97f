//! The IR driver over a transport: [`IrSender`] sends codes (pulses from our encoders, or
//! scancodes for the kernel to encode where the device can), [`IrReceiver`] reads a receiver's
//! samples and decodes them frame by frame, and [`IrRemote`] is the composite device's remote
//! control (`[settings.remote] driver = "lirc"`): core's key presses through a [`KeyMap`].

use std::{collections::VecDeque, path::PathBuf, sync::Mutex, time::Duration};

use labwright_core::controller::{ControlError, Key, RemoteControl};
use serde::Deserialize;

use super::{
    Code, IrError, KeyCode, KeyMap, Protocol,
    decode::{Decoded, FrameSplitter, Sample, decode},
    encode::{check_raw, encode, repeat},
};

/// What an IR device can do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrFeatures {
    pub send_pulses: bool,
    pub send_scancodes: bool,
    pub receive_samples: bool,
    pub set_carrier: bool,
    pub set_duty_cycle: bool,
}

/// An IR device's I/O: the kernel's LIRC device on hosts, a scripted fake in tests.
pub trait IrTransport: Send {
    fn features(&mut self) -> Result<IrFeatures, IrError>;
    fn set_carrier(&mut self, hz: u32) -> Result<(), IrError>;
    fn set_duty_cycle(&mut self, percent: u32) -> Result<(), IrError>;
    /// Sends pulse/space lengths (odd count, pulse first); returns once they are sent.
    fn send_pulses(&mut self, durations: &[u32]) -> Result<(), IrError>;
    /// Sends a scancode for the device (or kernel) to encode.
    fn send_scancode(&mut self, code: Code) -> Result<(), IrError>;
    /// Prepares receiving samples (receive mode).
    fn start_receiving(&mut self) -> Result<(), IrError>;
    /// The samples that arrive within `wait` (empty when none did).
    fn receive(&mut self, wait: Duration) -> Result<Vec<Sample>, IrError>;
}

impl IrTransport for Box<dyn IrTransport> {
    fn features(&mut self) -> Result<IrFeatures, IrError> {
        (**self).features()
    }
    fn set_carrier(&mut self, hz: u32) -> Result<(), IrError> {
        (**self).set_carrier(hz)
    }
    fn set_duty_cycle(&mut self, percent: u32) -> Result<(), IrError> {
        (**self).set_duty_cycle(percent)
    }
    fn send_pulses(&mut self, durations: &[u32]) -> Result<(), IrError> {
        (**self).send_pulses(durations)
    }
    fn send_scancode(&mut self, code: Code) -> Result<(), IrError> {
        (**self).send_scancode(code)
    }
    fn start_receiving(&mut self) -> Result<(), IrError> {
        (**self).start_receiving()
    }
    fn receive(&mut self, wait: Duration) -> Result<Vec<Sample>, IrError> {
        (**self).receive(wait)
    }
}

/// How codes go out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// Pulses from our encoders (every device that can send).
    #[default]
    Pulse,
    /// Scancodes, encoded by the kernel (devices with a scancode encoder; not Samsung32).
    Scancode,
}

/// Sends codes through a transport.
pub struct IrSender<T> {
    transport: T,
    features: IrFeatures,
    mode: SendMode,
    carrier: Option<u32>,
    toggle: bool,
}

impl<T: IrTransport> IrSender<T> {
    /// Checks that the device can send this way and sets the duty cycle if asked.
    pub fn new(mut transport: T, mode: SendMode, duty_cycle: Option<u32>) -> Result<Self, IrError> {
        let features = transport.features()?;
        match mode {
            SendMode::Pulse if !features.send_pulses => {
                return Err(IrError::Unsupported(
                    "this IR device cannot transmit (no pulse send mode)".into(),
                ));
            }
            SendMode::Scancode if !features.send_scancodes => {
                return Err(IrError::Unsupported(
                    "this IR device has no scancode encoder (send = \"pulse\")".into(),
                ));
            }
            _ => {}
        }
        if let Some(d) = duty_cycle {
            if !features.set_duty_cycle {
                return Err(IrError::Unsupported(
                    "this IR device cannot set its duty cycle".into(),
                ));
            }
            transport.set_duty_cycle(d)?;
        }
        Ok(IrSender {
            transport,
            features,
            mode,
            carrier: None,
            toggle: false,
        })
    }

    fn carrier(&mut self, hz: u32) -> Result<(), IrError> {
        if self.features.set_carrier && self.carrier != Some(hz) {
            self.transport.set_carrier(hz)?;
            self.carrier = Some(hz);
        }
        Ok(())
    }

    fn frame(&mut self, code: Code, first: bool) -> Result<(), IrError> {
        match self.mode {
            SendMode::Scancode => {
                if code.protocol.rc_proto().is_none() {
                    return Err(IrError::Unsupported(format!(
                        "the kernel has no encoder for {} (send = \"pulse\")",
                        code.protocol
                    )));
                }
                self.transport.send_scancode(code)
            }
            SendMode::Pulse => {
                self.carrier(code.protocol.carrier_hz())?;
                let frame = if first {
                    encode(code, self.toggle)
                } else {
                    repeat(code, self.toggle)
                };
                self.transport.send_pulses(&frame)
            }
        }
    }

    /// One press of `code` followed by `repeats` repeat frames (a held key), one per
    /// [`Protocol::repeat_period_us`]. RC-5/RC-6's toggle bit flips for each press.
    pub fn send_code(&mut self, code: Code, repeats: u32) -> Result<(), IrError> {
        self.toggle = !self.toggle;
        let period = Duration::from_micros(u64::from(code.protocol.repeat_period_us()));
        let mut started = std::time::Instant::now();
        self.frame(code, true)?;
        for _ in 0..repeats {
            // The write returns once the frame is out; wait for the rest of the period.
            std::thread::sleep(period.saturating_sub(started.elapsed()));
            started = std::time::Instant::now();
            self.frame(code, false)?;
        }
        Ok(())
    }

    /// Raw timings on a carrier (pulse mode only).
    pub fn send_raw(&mut self, durations: &[u32], carrier_hz: u32) -> Result<(), IrError> {
        check_raw(durations)?;
        if self.mode == SendMode::Scancode && !self.features.send_pulses {
            return Err(IrError::Unsupported(
                "this IR device cannot send raw timings".into(),
            ));
        }
        self.carrier(carrier_hz)?;
        self.transport.send_pulses(durations)
    }

    /// A key map entry, `repeats` times more for a held key (raw entries are sent again).
    pub fn send(&mut self, key: &KeyCode, repeats: u32) -> Result<(), IrError> {
        match key {
            KeyCode::Code(c) => self.send_code(*c, repeats),
            KeyCode::Raw {
                durations,
                carrier_hz,
            } => {
                for i in 0..=repeats {
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(40));
                    }
                    self.send_raw(durations, *carrier_hz)?;
                }
                Ok(())
            }
        }
    }

    /// How many repeat frames hold a key for `hold`.
    pub fn repeats_for(key: &KeyCode, hold: Duration) -> u32 {
        let period = match key {
            KeyCode::Code(c) => c.protocol.repeat_period_us(),
            KeyCode::Raw { .. } => 108_000,
        };
        u32::try_from(hold.as_micros() / u128::from(period)).unwrap_or(u32::MAX)
    }
}

/// One decoded frame as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A full frame. `repeat`: the same code with the same toggle bit as the frame before
    /// (RC-5/RC-6, whose toggle tells a held key from a new press).
    Code {
        code: Code,
        toggle: bool,
        repeat: bool,
    },
    /// NEC's repeat code, with the code it repeats when a frame came before.
    Repeat { of: Option<Code> },
    /// Timings no protocol here matches (a learned key keeps them as raw).
    Raw(Vec<u32>),
}

/// Receives and decodes.
pub struct IrReceiver<T> {
    transport: T,
    splitter: FrameSplitter,
    pending: VecDeque<Vec<u32>>,
    last: Option<(Code, bool)>,
}

impl<T: IrTransport> IrReceiver<T> {
    pub fn new(mut transport: T) -> Result<Self, IrError> {
        if !transport.features()?.receive_samples {
            return Err(IrError::Unsupported(
                "this IR device cannot receive raw IR".into(),
            ));
        }
        transport.start_receiving()?;
        Ok(IrReceiver {
            transport,
            splitter: FrameSplitter::default(),
            pending: VecDeque::new(),
            last: None,
        })
    }

    /// The next frame's timings, waiting up to `timeout`; `None` when none completed.
    pub fn next_frame(&mut self, timeout: Duration) -> Result<Option<Vec<u32>>, IrError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(f) = self.pending.pop_front() {
                return Ok(Some(f));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let samples = self
                .transport
                .receive(left.min(Duration::from_millis(200)))?;
            for s in samples {
                if let Some(f) = self.splitter.push(s) {
                    self.pending.push_back(f);
                }
            }
        }
    }

    /// The next frame, decoded; `None` when none completed within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Received>, IrError> {
        let Some(frame) = self.next_frame(timeout)? else {
            return Ok(None);
        };
        Ok(Some(self.decode_frame(&frame)))
    }

    /// Decodes a frame from [`IrReceiver::next_frame`] (tracking repeats).
    pub fn decode_frame(&mut self, frame: &[u32]) -> Received {
        match decode(frame) {
            Ok(Decoded::Code { code, toggle }) => {
                let toggled = matches!(code.protocol, Protocol::Rc5 | Protocol::Rc6Mode0);
                let repeat = toggled && self.last == Some((code, toggle));
                self.last = Some((code, toggle));
                Received::Code {
                    code,
                    toggle,
                    repeat,
                }
            }
            Ok(Decoded::NecRepeat) => Received::Repeat {
                of: self.last.map(|(c, _)| c),
            },
            Err(_) => {
                self.last = None;
                Received::Raw(frame.to_vec())
            }
        }
    }
}

/// `[settings.remote]` of a composite device.
///
/// ```toml
/// [devices.settings.remote]
/// driver = "lirc"
/// path = "/dev/lirc0"
/// keymap = "/etc/labwright/remotes/stb.toml"   # or an inline [devices.settings.remote.keys]
/// send = "pulse"                               # or "scancode" (the kernel encodes)
/// duty_cycle = 33                              # percent, if the device can set it
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSettings {
    pub path: PathBuf,
    #[serde(default)]
    pub keymap: Option<PathBuf>,
    #[serde(default)]
    pub keys: Option<std::collections::BTreeMap<String, toml::Value>>,
    #[serde(default)]
    pub send: SendMode,
    #[serde(default)]
    pub duty_cycle: Option<u32>,
}

impl RemoteSettings {
    /// The key map the settings name (reading the file).
    pub fn key_map(&self) -> Result<KeyMap, String> {
        match (&self.keymap, &self.keys) {
            (Some(path), None) => KeyMap::load(path).map_err(|e| format!("keymap: {e}")),
            (None, Some(keys)) => {
                KeyMap::from_table(keys.clone()).map_err(|e| format!("keys: {e}"))
            }
            _ => Err("keymap: give either keymap (a file) or keys (a table)".into()),
        }
    }

    /// Every problem of the settings (the key map included), without opening the device.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.key_map() {
            problems.push(e);
        }
        if let Some(d) = self.duty_cycle
            && !(1..=99).contains(&d)
        {
            problems.push(format!("duty_cycle: {d}: expected 1..=99 (percent)"));
        }
        problems
    }
}

/// The remote control of a composite device: key presses through a key map onto a sender.
pub struct IrRemote {
    sender: Mutex<IrSender<Box<dyn IrTransport>>>,
    keys: KeyMap,
}

impl IrRemote {
    pub fn new(sender: IrSender<Box<dyn IrTransport>>, keys: KeyMap) -> IrRemote {
        IrRemote {
            sender: Mutex::new(sender),
            keys,
        }
    }

    pub fn key_map(&self) -> &KeyMap {
        &self.keys
    }

    fn send(&self, key: Key, repeats: u32) -> Result<(), ControlError> {
        let name = key.to_string();
        let code = self
            .keys
            .get(&name)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let mut sender = self
            .sender
            .lock()
            .map_err(|_| ControlError::Driver("IR sender poisoned".into()))?;
        sender.send(code, repeats).map_err(|e| match e {
            IrError::Unsupported(m) => ControlError::Invalid(m),
            other => ControlError::Driver(other.to_string()),
        })
    }
}

impl RemoteControl for IrRemote {
    fn press(&self, key: Key) -> Result<(), ControlError> {
        self.send(key, 0)
    }

    fn long_press(&self, key: Key, hold: Duration) -> Result<(), ControlError> {
        let code = self
            .keys
            .get(&key.to_string())
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let repeats = IrSender::<Box<dyn IrTransport>>::repeats_for(code, hold);
        self.send(key, repeats)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A scripted transport: records what is sent, plays back what it is told to receive.

    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Sent {
        Pulses(Vec<u32>),
        Scancode(Code),
        Carrier(u32),
        Duty(u32),
    }

    #[derive(Clone, Default)]
    pub struct FakeIr {
        pub features: IrFeatures,
        pub sent: Arc<Mutex<Vec<Sent>>>,
        /// What `receive` returns, batch by batch.
        pub incoming: Arc<Mutex<VecDeque<Vec<Sample>>>>,
    }

    impl FakeIr {
        pub fn full() -> FakeIr {
            FakeIr {
                features: IrFeatures {
                    send_pulses: true,
                    send_scancodes: true,
                    receive_samples: true,
                    set_carrier: true,
                    set_duty_cycle: true,
                },
                ..FakeIr::default()
            }
        }
        pub fn sent(&self) -> Vec<Sent> {
            self.sent.lock().map(|s| s.clone()).unwrap_or_default()
        }
        fn record(&self, s: Sent) {
            if let Ok(mut v) = self.sent.lock() {
                v.push(s);
            }
        }
    }

    impl IrTransport for FakeIr {
        fn features(&mut self) -> Result<IrFeatures, IrError> {
            Ok(self.features)
        }
        fn set_carrier(&mut self, hz: u32) -> Result<(), IrError> {
            self.record(Sent::Carrier(hz));
            Ok(())
        }
        fn set_duty_cycle(&mut self, percent: u32) -> Result<(), IrError> {
            self.record(Sent::Duty(percent));
            Ok(())
        }
        fn send_pulses(&mut self, durations: &[u32]) -> Result<(), IrError> {
            self.record(Sent::Pulses(durations.to_vec()));
            Ok(())
        }
        fn send_scancode(&mut self, code: Code) -> Result<(), IrError> {
            self.record(Sent::Scancode(code));
            Ok(())
        }
        fn start_receiving(&mut self) -> Result<(), IrError> {
            Ok(())
        }
        fn receive(&mut self, _wait: Duration) -> Result<Vec<Sample>, IrError> {
            Ok(self
                .incoming
                .lock()
                .ok()
                .and_then(|mut q| q.pop_front())
                .unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{fake::*, *};

    fn nec() -> Code {
        Code::new(Protocol::Nec, 0x0408).expect("code")
    }

    fn as_samples(frame: &[u32]) -> Vec<Sample> {
        let mut s: Vec<Sample> = frame
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if i % 2 == 0 {
                    Sample::Pulse(*d)
                } else {
                    Sample::Space(*d)
                }
            })
            .collect();
        s.push(Sample::Timeout);
        s
    }

    #[test]
    fn a_held_nec_key_sends_repeat_codes_on_its_carrier() {
        let fake = FakeIr::full();
        let mut sender = IrSender::new(fake.clone(), SendMode::Pulse, Some(33)).expect("sender");
        sender.send_code(nec(), 2).expect("send");
        let sent = fake.sent();
        assert_eq!(sent[0], Sent::Duty(33));
        assert_eq!(sent[1], Sent::Carrier(38_000));
        assert_eq!(sent[2], Sent::Pulses(encode(nec(), false)));
        assert_eq!(sent[3], Sent::Pulses(vec![9000, 2250, 563]));
        assert_eq!(sent[4], Sent::Pulses(vec![9000, 2250, 563]));
        assert_eq!(sent.len(), 5);
    }

    #[test]
    fn rc5_toggles_per_press_and_keeps_it_while_held() {
        let fake = FakeIr::full();
        let mut sender = IrSender::new(fake.clone(), SendMode::Pulse, None).expect("sender");
        let rc5 = Code::new(Protocol::Rc5, 0x1e01).expect("code");
        sender.send_code(rc5, 1).expect("send");
        sender.send_code(rc5, 0).expect("send");
        let frames: Vec<Vec<u32>> = fake
            .sent()
            .into_iter()
            .filter_map(|s| match s {
                Sent::Pulses(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], frames[1], "a held key repeats its toggle");
        assert_ne!(frames[1], frames[2], "a new press flips it");
        // The receiver sees the repeat.
        let rx = FakeIr::full();
        if let Ok(mut q) = rx.incoming.lock() {
            q.extend(frames.iter().map(|f| as_samples(f)));
        }
        let mut receiver = IrReceiver::new(rx).expect("receiver");
        let got: Vec<Received> = (0..3)
            .filter_map(|_| receiver.next(Duration::from_secs(1)).ok().flatten())
            .collect();
        assert!(matches!(got[0], Received::Code { code, repeat: false, .. } if code == rc5));
        assert!(matches!(got[1], Received::Code { repeat: true, .. }));
        assert!(matches!(got[2], Received::Code { repeat: false, .. }));
    }

    #[test]
    fn scancode_mode_hands_codes_to_the_kernel() {
        let fake = FakeIr::full();
        let mut sender = IrSender::new(fake.clone(), SendMode::Scancode, None).expect("sender");
        sender.send_code(nec(), 0).expect("send");
        assert_eq!(fake.sent(), vec![Sent::Scancode(nec())]);
        let samsung = Code::new(Protocol::Samsung32, 0x0702).expect("code");
        assert_eq!(
            sender.send_code(samsung, 0).map_err(|e| e.code()),
            Err("ir_unsupported")
        );
    }

    #[test]
    fn devices_without_the_feature_are_refused_at_start() {
        let mut fake = FakeIr::full();
        fake.features.send_pulses = false;
        fake.features.receive_samples = false;
        let Err(err) = IrSender::new(fake.clone(), SendMode::Pulse, None) else {
            panic!("a device that cannot transmit was accepted")
        };
        assert_eq!(err.code(), "ir_unsupported");
        assert!(err.to_string().contains("cannot transmit"));
        assert!(IrReceiver::new(fake).is_err());
    }

    #[test]
    fn the_receiver_decodes_repeats_and_keeps_unknown_timings_raw() {
        let rx = FakeIr::full();
        if let Ok(mut q) = rx.incoming.lock() {
            // A frame split across reads, a repeat code, then noise.
            let samples = as_samples(&encode(nec(), false));
            let (a, b) = samples.split_at(20);
            q.push_back(a.to_vec());
            q.push_back(vec![]);
            q.push_back(b.to_vec());
            q.push_back(vec![Sample::Space(40_000)]);
            q.push_back(as_samples(&[9000, 2250, 563]));
            q.push_back(as_samples(&[100, 200, 300]));
        }
        let mut receiver = IrReceiver::new(rx).expect("receiver");
        let mut next = || receiver.next(Duration::from_secs(1)).expect("receive");
        assert_eq!(
            next(),
            Some(Received::Code {
                code: nec(),
                toggle: false,
                repeat: false
            })
        );
        assert_eq!(next(), Some(Received::Repeat { of: Some(nec()) }));
        assert_eq!(next(), Some(Received::Raw(vec![100, 200, 300])));
    }

    #[test]
    fn the_remote_presses_keys_from_its_map_and_names_them_when_unknown() {
        let fake = FakeIr::full();
        let sender = IrSender::new(
            Box::new(fake.clone()) as Box<dyn IrTransport>,
            SendMode::Pulse,
            None,
        )
        .expect("sender");
        let keys = KeyMap::parse("[keys]\nok = \"nec:0x0408\"\nred = { raw = [500, 500, 500] }\n")
            .expect("keys");
        let remote = IrRemote::new(sender, keys);
        remote.press(Key::Ok).expect("ok");
        assert!(fake.sent().contains(&Sent::Pulses(encode(nec(), false))));
        let err = remote.press(Key::Up).expect_err("unknown");
        assert!(
            matches!(&err, ControlError::Invalid(m) if m.contains("\"up\"") && m.contains("known: ok, red")),
            "{err}"
        );
        remote
            .long_press(Key::Ok, Duration::from_millis(250))
            .expect("hold");
        let repeats = fake
            .sent()
            .iter()
            .filter(|s| **s == Sent::Pulses(vec![9000, 2250, 563]))
            .count();
        assert_eq!(repeats, 2, "250 ms is two repeat periods of 108 ms");
    }

    #[test]
    fn settings_need_one_key_map_and_a_sane_duty_cycle() {
        let s: RemoteSettings = toml::from_str(
            "path = \"/dev/lirc0\"\nduty_cycle = 120\n[keys]\nok = \"nec:0x10000\"\n",
        )
        .expect("settings");
        let problems = s.check();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("keys: "));
        assert!(problems[1].starts_with("duty_cycle: 120"));
        let none: RemoteSettings = toml::from_str("path = \"/dev/lirc0\"").expect("settings");
        assert!(none.check()[0].contains("either keymap"));
    }
}
