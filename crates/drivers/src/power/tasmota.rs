//! Tasmota plugs: HTTP commands, `GET /cm?cmnd=Power1%20On` answered `{"POWER1":"ON"}` (a
//! plug with one relay may answer `{"POWER":"ON"}`); the state is `cmnd=Power1`. With a web
//! password set, `user` and `password` go in the query; a wrong one is HTTP 401.

use super::{
    PowerError, Switch,
    http::{HttpTransport, encode_query, json_reply},
};

/// One relay of a Tasmota plug (relays count from 1).
pub struct Tasmota<T: HttpTransport> {
    http: T,
    relay: u32,
    credentials: Option<(String, String)>,
}

impl<T: HttpTransport> Tasmota<T> {
    pub fn new(http: T, relay: u32, credentials: Option<(String, String)>) -> Self {
        Self {
            http,
            relay,
            credentials,
        }
    }

    fn command(&mut self, cmnd: &str) -> Result<bool, PowerError> {
        let mut query = String::from("/cm?");
        if let Some((user, password)) = &self.credentials {
            query.push_str(&format!(
                "user={}&password={}&",
                encode_query(user),
                encode_query(password)
            ));
        }
        query.push_str(&format!("cmnd={}", encode_query(cmnd)));
        let reply = self.http.get(&query)?;
        let target = self.target();
        let json = json_reply(&target, &reply)?;
        if let Some(warning) = json.get("WARNING").and_then(|w| w.as_str()) {
            // Tasmota answers a missing or wrong password with 401 and this; older builds
            // with 200.
            if warning.contains("user=") || warning.contains("password") {
                return Err(PowerError::Unauthorized { target });
            }
            return Err(PowerError::Device {
                target,
                detail: warning.to_string(),
            });
        }
        let key = format!("POWER{}", self.relay);
        let value = json
            .get(&key)
            .or_else(|| (self.relay == 1).then(|| json.get("POWER")).flatten())
            .ok_or_else(|| {
                PowerError::bad_reply(
                    &target,
                    format!("no {key} in {}", super::http::excerpt(&reply.body)),
                )
            })?;
        match value.as_str().map(str::to_ascii_uppercase).as_deref() {
            Some("ON" | "1") => Ok(true),
            Some("OFF" | "0") => Ok(false),
            _ => Err(PowerError::bad_reply(
                &target,
                format!("{key} is {value}, not ON or OFF"),
            )),
        }
    }
}

impl<T: HttpTransport> Switch for Tasmota<T> {
    fn write(&mut self, on: bool) -> Result<Option<bool>, PowerError> {
        let word = if on { "On" } else { "Off" };
        self.command(&format!("Power{} {word}", self.relay))
            .map(Some)
    }

    fn read(&mut self) -> Result<bool, PowerError> {
        self.command(&format!("Power{}", self.relay))
    }

    fn target(&self) -> String {
        format!("tasmota {} relay {}", self.http.target(), self.relay)
    }
}
