use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use labwright_core::controller::{ControlError, PowerControl, PowerState};

use super::{
    http::{HttpReply, HttpTransport},
    kasa::{self, Kasa, KasaTransport},
    shelly::{ShellyGen1, ShellyGen2},
    tasmota::Tasmota,
    *,
};

type Handler<Rep> = Box<dyn FnMut(&str) -> Result<Rep, PowerError> + Send>;

/// A scripted peer: every request is recorded and answered by `handler`.
struct Fake<Rep> {
    handler: Handler<Rep>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl<Rep> Fake<Rep> {
    fn new(
        handler: impl FnMut(&str) -> Result<Rep, PowerError> + Send + 'static,
    ) -> (Self, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                handler: Box::new(handler),
                seen: seen.clone(),
            },
            seen,
        )
    }

    fn call(&mut self, request: &str) -> Result<Rep, PowerError> {
        self.seen.lock().expect("seen").push(request.to_string());
        (self.handler)(request)
    }
}

impl HttpTransport for Fake<HttpReply> {
    fn get(&mut self, path_and_query: &str) -> Result<HttpReply, PowerError> {
        self.call(path_and_query)
    }
    fn target(&self) -> String {
        "plug.test".into()
    }
}

impl KasaTransport for Fake<String> {
    fn query(&mut self, request: &str) -> Result<String, PowerError> {
        self.call(request)
    }
    fn target(&self) -> String {
        "plug.test".into()
    }
}

fn ok(body: &str) -> Result<HttpReply, PowerError> {
    Ok(HttpReply {
        status: 200,
        body: body.into(),
    })
}

fn quick() -> Timing {
    Timing {
        settle: Duration::from_millis(50),
        poll: Duration::from_millis(5),
        retries: 2,
        retry_base: Duration::from_millis(1),
        min_off: Duration::ZERO,
    }
}

fn seen(s: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    s.lock().expect("seen").clone()
}

/// A Tasmota plug with one relay, answering as the firmware does (`POWER` for relay 1).
fn tasmota_model(state: Arc<Mutex<bool>>) -> impl FnMut(&str) -> Result<HttpReply, PowerError> {
    move |q: &str| {
        let mut on = state.lock().expect("state");
        if q.ends_with("%20On") {
            *on = true;
        } else if q.ends_with("%20Off") {
            *on = false;
        }
        ok(&format!(
            r#"{{"POWER":"{}"}}"#,
            if *on { "ON" } else { "OFF" }
        ))
    }
}

#[test]
fn tasmota_switches_and_reads_back() {
    let state = Arc::new(Mutex::new(false));
    let (http, log) = Fake::new(tasmota_model(state.clone()));
    let plug = PowerSwitch::new(
        Tasmota::new(http, 1, Some(("admin".into(), "p&ss word".into()))),
        quick(),
    );
    plug.set(PowerState::On).expect("on");
    assert!(*state.lock().expect("state"));
    assert_eq!(plug.state().expect("state"), PowerState::On);
    plug.cycle(Duration::ZERO).expect("cycle");
    let log = seen(&log);
    assert_eq!(
        log[0],
        "/cm?user=admin&password=p%26ss%20word&cmnd=Power1%20On"
    );
    assert_eq!(log[1], "/cm?user=admin&password=p%26ss%20word&cmnd=Power1");
    assert!(log.iter().any(|q| q.ends_with("cmnd=Power1%20Off")));
    assert_eq!(plug.target(), "tasmota plug.test relay 1");
}

#[test]
fn tasmota_relay_two_needs_its_own_key() {
    let (http, _) = Fake::new(|_| ok(r#"{"POWER":"ON"}"#));
    let plug = PowerSwitch::new(Tasmota::new(http, 2, None), quick());
    let e = plug.read().expect_err("POWER is relay 1's");
    assert_eq!(e.code(), "power.bad_reply");
    assert!(e.to_string().contains("no POWER2"), "{e}");
    let (http, _) = Fake::new(|_| ok(r#"{"POWER2":"off"}"#));
    let plug = PowerSwitch::new(Tasmota::new(http, 2, None), quick());
    assert!(!plug.read().expect("read"));
}

#[test]
fn wrong_credentials_and_bad_replies_have_codes() {
    let cases: Vec<(HttpReply, &str)> = vec![
        (
            HttpReply {
                status: 401,
                body: r#"{"WARNING":"Need user=<username>&password=<password>"}"#.into(),
            },
            "power.unauthorized",
        ),
        (
            HttpReply {
                status: 200,
                body: r#"{"WARNING":"Need user=<username>&password=<password>"}"#.into(),
            },
            "power.unauthorized",
        ),
        (
            HttpReply {
                status: 200,
                body: "<html>hello</html>".into(),
            },
            "power.bad_reply",
        ),
        (
            HttpReply {
                status: 200,
                body: r#"{"POWER":42}"#.into(),
            },
            "power.bad_reply",
        ),
        (
            HttpReply {
                status: 500,
                body: "oops".into(),
            },
            "power.device_error",
        ),
        (
            HttpReply {
                status: 200,
                body: "\u{0}\u{1}\u{ffff}".into(),
            },
            "power.bad_reply",
        ),
    ];
    for (reply, code) in cases {
        let r = reply.clone();
        let (http, _) = Fake::new(move |_| Ok(r.clone()));
        let plug = PowerSwitch::new(Tasmota::new(http, 1, None), quick());
        let e = plug.switch(true).expect_err("refused");
        assert_eq!(e.code(), code, "{reply:?}: {e}");
        let control: ControlError = e.into();
        assert!(control.to_string().contains(code), "{control}");
    }
}

#[test]
fn a_plug_that_does_not_switch_is_an_error() {
    // Answers the command as if it switched, but its state stays off.
    let (http, _) = Fake::new(|q: &str| {
        ok(if q.contains("turn=on") {
            r#"{"ison":true}"#
        } else {
            r#"{"ison":false}"#
        })
    });
    let plug = PowerSwitch::new(ShellyGen1::new(http, 0), quick());
    let e = plug.switch(true).expect_err("stays off");
    assert_eq!(e.code(), "power.not_switched");
    assert!(
        e.to_string()
            .starts_with("shelly plug.test relay 0: switched on but reports off"),
        "{e}"
    );
}

#[test]
fn unanswered_requests_are_retried_then_reported() {
    let timeout = || PowerError::Timeout {
        target: "plug.test".into(),
        timeout_ms: 100,
    };
    let mut failures = 2;
    let (http, log) = Fake::new(move |_| {
        if failures > 0 {
            failures -= 1;
            return Err(timeout());
        }
        ok(r#"{"ison":true}"#)
    });
    let plug = PowerSwitch::new(ShellyGen1::new(http, 0), quick());
    plug.switch(true).expect("third attempt answers");
    assert_eq!(seen(&log)[..3], ["/relay/0?turn=on"; 3]);

    let (http, log) = Fake::new(move |_| Err(timeout()));
    let plug = PowerSwitch::new(
        ShellyGen1::new(http, 0),
        Timing {
            retries: 1,
            ..quick()
        },
    );
    let e = plug.switch(true).expect_err("never answers");
    assert_eq!(e.code(), "power.timeout");
    assert_eq!(seen(&log).len(), 2);
    assert!(matches!(ControlError::from(e), ControlError::Timeout(_)));

    // Refused credentials are not retried.
    let (http, log) = Fake::new(|_| {
        Ok(HttpReply {
            status: 401,
            body: String::new(),
        })
    });
    let plug = PowerSwitch::new(ShellyGen1::new(http, 0), quick());
    assert_eq!(plug.read().expect_err("401").code(), "power.unauthorized");
    assert_eq!(seen(&log).len(), 1);
}

#[test]
fn shelly_gen2_speaks_rpc() {
    let state = Arc::new(Mutex::new(false));
    let s = state.clone();
    let (http, log) = Fake::new(move |q: &str| {
        let mut on = s.lock().expect("state");
        if q.starts_with("/rpc/Switch.Set?id=0&on=") {
            let was = *on;
            *on = q.ends_with("true");
            return ok(&format!(r#"{{"was_on":{was}}}"#));
        }
        if q == "/rpc/Switch.GetStatus?id=0" {
            return ok(&format!(
                r#"{{"id":0,"source":"http","output":{},"apower":0.0}}"#,
                *on
            ));
        }
        Ok(HttpReply {
            status: 404,
            body: r#"{"code":404,"message":"No handler for it"}"#.into(),
        })
    });
    let plug = PowerSwitch::new(ShellyGen2::new(http, 0), quick());
    plug.switch(true).expect("on");
    assert!(plug.read().expect("read"));
    assert_eq!(
        seen(&log)[..2],
        ["/rpc/Switch.Set?id=0&on=true", "/rpc/Switch.GetStatus?id=0"]
    );

    let (http, _) = Fake::new(|_| {
        Ok(HttpReply {
            status: 500,
            body: r#"{"code":-105,"message":"Argument 'id', value 3 not found!"}"#.into(),
        })
    });
    let plug = PowerSwitch::new(ShellyGen2::new(http, 3), quick());
    let e = plug.switch(true).expect_err("no switch 3");
    assert_eq!(e.code(), "power.device_error");
    assert!(e.to_string().contains("rpc error -105"), "{e}");
}

#[test]
fn kasa_cipher_matches_the_protocol() {
    // 171 ^ '{' = 0xd0, 0xd0 ^ '}' = 0xad.
    assert_eq!(kasa::encrypt(b"{}"), [0xd0, 0xad]);
    let request = br#"{"system":{"get_sysinfo":{}}}"#;
    assert_eq!(kasa::decrypt(&kasa::encrypt(request)), request);
    let framed = kasa::frame(request);
    assert_eq!(framed[..4], (request.len() as u32).to_be_bytes());
    let back = kasa::read_frame(&mut &framed[..])
        .expect("read")
        .expect("a frame");
    assert_eq!(back, request);
    // A clean end, a truncated message and an absurd length.
    assert!(kasa::read_frame(&mut &b""[..]).expect("eof").is_none());
    assert!(kasa::read_frame(&mut &framed[..10]).is_err());
    let huge = [0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
    let e = kasa::read_frame(&mut &huge[..]).expect_err("too long");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn kasa_switches_and_checks_err_codes() {
    let state = Arc::new(Mutex::new(0));
    let s = state.clone();
    let (t, log) = Fake::new(move |q: &str| {
        let v: serde_json::Value = serde_json::from_str(q).expect("json request");
        let mut st = s.lock().expect("state");
        if let Some(n) = v["system"]["set_relay_state"]["state"].as_i64() {
            *st = n;
            return Ok(r#"{"system":{"set_relay_state":{"err_code":0}}}"#.into());
        }
        Ok(format!(
            r#"{{"system":{{"get_sysinfo":{{"alias":"lab","relay_state":{},"err_code":0}}}}}}"#,
            *st
        ))
    });
    let plug = PowerSwitch::new(Kasa::new(t), quick());
    plug.switch(true).expect("on");
    assert_eq!(*state.lock().expect("state"), 1);
    assert_eq!(
        seen(&log)[..2],
        [
            r#"{"system":{"set_relay_state":{"state":1}}}"#,
            r#"{"system":{"get_sysinfo":{}}}"#
        ]
    );

    for (answer, code) in [
        (
            r#"{"system":{"set_relay_state":{"err_code":-1,"err_msg":"module not support"}}}"#,
            "power.device_error",
        ),
        (r#"{"system":{}}"#, "power.bad_reply"),
        (r#"{"system":{"set_relay_state":{}}}"#, "power.bad_reply"),
        ("[1,2", "power.bad_reply"),
    ] {
        let (t, _) = Fake::new(move |_| Ok(answer.to_string()));
        let plug = PowerSwitch::new(Kasa::new(t), quick());
        assert_eq!(
            plug.switch(false).expect_err(answer).code(),
            code,
            "{answer}"
        );
    }
    let (t, _) =
        Fake::new(|_| Ok(r#"{"system":{"get_sysinfo":{"relay_state":7,"err_code":0}}}"#.into()));
    let plug = PowerSwitch::new(Kasa::new(t), quick());
    assert_eq!(plug.read().expect_err("7").code(), "power.bad_reply");
}

fn settings(text: &str) -> Result<PowerSettings, String> {
    PowerSettings::from_table(&toml::from_str(text).expect("toml"))
}

#[test]
fn settings_name_every_problem() {
    let s = settings("driver = \"gpio\"\nchip = \"gpiochip0\"\nline = 3\nactive_low = true")
        .expect("gpio");
    assert!(s.check().is_empty());
    let PowerSettings::Gpio(g) = &s else {
        panic!("{s:?}")
    };
    assert_eq!(g.line, gpio::Line::Offset(3));
    let s = settings("driver = \"gpio\"\nchip = \"gpiochip0\"\nline = \"RELAY1\"").expect("gpio");
    let PowerSettings::Gpio(g) = &s else {
        panic!("{s:?}")
    };
    assert_eq!(g.line, gpio::Line::Name("RELAY1".into()));

    let e = settings("driver = \"x10\"").expect_err("unknown driver");
    assert!(e.contains("unknown variant `x10`"), "{e}");
    let e = settings("address = \"a\"").expect_err("no driver");
    assert!(
        e.starts_with("driver: missing (known: gpio, tasmota"),
        "{e}"
    );
    let e = settings("driver = \"kasa\"\naddress = \"a\"\ncolour = 1").expect_err("unknown key");
    assert!(e.contains("unknown field `colour`"), "{e}");

    let s = settings(
        "driver = \"tasmota\"\naddress = \"http://x/\"\nrelay = 0\ntimeout_ms = 5\nuser = \"u\"",
    )
    .expect("parses");
    assert_eq!(
        s.check(),
        [
            "address: must be a host or host:port",
            "timeout_ms: must be between 100 and 60000",
            "relay: Tasmota relays count from 1",
            "password_file: user and password_file go together",
        ]
    );
    let s = settings(
        "driver = \"shelly2\"\naddress = \"10.0.0.1\"\nuser = \"admin\"\npassword_file = \"/p\"",
    )
    .expect("parses");
    assert!(s.check()[0].contains("digest"), "{:?}", s.check());
    let e = open(&s).err().expect("refused");
    assert_eq!(e.code(), "power.settings");
}

#[test]
fn a_missing_password_file_is_named() {
    let s = settings(
        "driver = \"tasmota\"\naddress = \"127.0.0.1:9\"\nuser = \"admin\"\npassword_file = \"/nonexistent/labwright-plug-password\"",
    )
    .expect("parses");
    let e = open(&s).err().expect("no file");
    assert_eq!(e.code(), "power.settings");
    assert!(
        e.to_string()
            .starts_with("password_file: /nonexistent/labwright-plug-password:"),
        "{e}"
    );
}

#[cfg(feature = "gpio")]
#[test]
fn a_missing_gpio_chip_is_named() {
    let s = settings("driver = \"gpio\"\nchip = \"/dev/labwright-test-no-gpiochip\"\nline = 1")
        .expect("parses");
    let e = open(&s).err().expect("no chip");
    assert_eq!(e.code(), "power.not_found");
    assert!(
        e.to_string()
            .starts_with("/dev/labwright-test-no-gpiochip: no such device"),
        "{e}"
    );
    let s = settings("driver = \"gpio\"\nchip = \"no-such-label\"\nline = 1").expect("parses");
    let e = open(&s).err().expect("no chip");
    assert_eq!(e.code(), "power.not_found");
    assert!(e.to_string().contains("no such GPIO chip"), "{e}");
}
