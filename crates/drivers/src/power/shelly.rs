//! Shelly plugs and relays over HTTP.
//!
//! - Gen1 ([`ShellyGen1`]): `GET /relay/N?turn=on|off` and `GET /relay/N`, both answered with
//!   the relay's status, `{"ison": true, ...}`; HTTP basic authentication when enabled (401
//!   otherwise).
//! - Gen2 and later ([`ShellyGen2`]): RPC over HTTP `GET`, `/rpc/Switch.Set?id=N&on=true`
//!   (answered `{"was_on": false}`) and `/rpc/Switch.GetStatus?id=N` (`{"id": N, "output":
//!   true, ...}`); an RPC error is a non-2xx status with `{"code": ..., "message": ...}`.
//!   Devices with authentication enabled want HTTP digest authentication, which this driver does
//!   not do: they answer 401, reported as [`PowerError::Unauthorized`].

use serde_json::Value;

use super::{
    PowerError, Switch,
    http::{HttpTransport, excerpt, json_reply},
};

fn rpc_error(target: &str, body: &str) -> Option<PowerError> {
    let v: Value = serde_json::from_str(body).ok()?;
    let message = v.get("message")?.as_str()?;
    let code = v.get("code").and_then(Value::as_i64).unwrap_or_default();
    Some(PowerError::Device {
        target: target.to_string(),
        detail: format!("rpc error {code}: {message}"),
    })
}

fn bool_field(target: &str, json: &Value, field: &str, body: &str) -> Result<bool, PowerError> {
    json.get(field).and_then(Value::as_bool).ok_or_else(|| {
        PowerError::bad_reply(target, format!("no boolean {field:?} in {}", excerpt(body)))
    })
}

/// One relay of a Gen1 Shelly (relays count from 0).
pub struct ShellyGen1<T: HttpTransport> {
    http: T,
    relay: u32,
}

impl<T: HttpTransport> ShellyGen1<T> {
    pub fn new(http: T, relay: u32) -> Self {
        Self { http, relay }
    }

    fn relay(&mut self, query: &str) -> Result<bool, PowerError> {
        let reply = self.http.get(&format!("/relay/{}{query}", self.relay))?;
        let target = self.target();
        let json = json_reply(&target, &reply)?;
        bool_field(&target, &json, "ison", &reply.body)
    }
}

impl<T: HttpTransport> Switch for ShellyGen1<T> {
    fn write(&mut self, on: bool) -> Result<Option<bool>, PowerError> {
        self.relay(if on { "?turn=on" } else { "?turn=off" })
            .map(Some)
    }

    fn read(&mut self) -> Result<bool, PowerError> {
        self.relay("")
    }

    fn target(&self) -> String {
        format!("shelly {} relay {}", self.http.target(), self.relay)
    }
}

/// One switch component of a Gen2+ Shelly (ids count from 0).
pub struct ShellyGen2<T: HttpTransport> {
    http: T,
    id: u32,
}

impl<T: HttpTransport> ShellyGen2<T> {
    pub fn new(http: T, id: u32) -> Self {
        Self { http, id }
    }

    fn call(&mut self, method_and_args: &str) -> Result<(Value, String), PowerError> {
        let reply = self.http.get(&format!("/rpc/{method_and_args}"))?;
        let target = self.target();
        if !(200..300).contains(&reply.status)
            && reply.status != 401
            && let Some(e) = rpc_error(&target, &reply.body)
        {
            return Err(e);
        }
        Ok((json_reply(&target, &reply)?, reply.body))
    }
}

impl<T: HttpTransport> Switch for ShellyGen2<T> {
    fn write(&mut self, on: bool) -> Result<Option<bool>, PowerError> {
        let (json, body) = self.call(&format!("Switch.Set?id={}&on={on}", self.id))?;
        // The answer is the state before the switch: check its shape, learn nothing from it.
        bool_field(&self.target(), &json, "was_on", &body)?;
        Ok(None)
    }

    fn read(&mut self) -> Result<bool, PowerError> {
        let (json, body) = self.call(&format!("Switch.GetStatus?id={}", self.id))?;
        bool_field(&self.target(), &json, "output", &body)
    }

    fn target(&self) -> String {
        format!("shelly {} switch {}", self.http.target(), self.id)
    }
}
