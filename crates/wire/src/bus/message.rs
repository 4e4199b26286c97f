//! How a message is put on the bus: a JSON body, persistent, with its content type; an event
//! from the outbox also carries its outbox id as message id (consumers de-duplicate with it) and
//! its tenant as a header.

use lapin::{
    BasicProperties, Channel,
    options::BasicPublishOptions,
    types::{AMQPValue, FieldTable, ShortString},
};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// Content type of every message.
pub const CONTENT_TYPE: &str = "application/json";
/// AMQP delivery mode 2: the broker keeps the message on disk.
const PERSISTENT: u8 = 2;

/// The body of a message.
pub fn encode<T: Serialize + ?Sized>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

/// Why a message body was not read. Only sizes and positions: the body may hold anything, and
/// these end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {bytes} bytes is too large")]
    TooLarge { bytes: usize },
    #[error("unreadable message ({kind} at line {line}, column {column})")]
    Unreadable {
        line: usize,
        column: usize,
        kind: &'static str,
    },
}

/// Reads a message body of at most `max` bytes.
pub fn decode<T: DeserializeOwned>(body: &[u8], max: usize) -> Result<T, DecodeError> {
    if body.len() > max {
        return Err(DecodeError::TooLarge { bytes: body.len() });
    }
    serde_json::from_slice(body).map_err(|e| DecodeError::Unreadable {
        line: e.line(),
        column: e.column(),
        kind: match e.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        },
    })
}

/// Properties of every message: JSON, persistent.
pub fn properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(PERSISTENT)
}

/// Properties of an event from the outbox: [`properties`], its outbox id as message id and its
/// tenant in the `tenant_id` header.
pub fn event_properties(outbox_id: i64, tenant: Uuid) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "tenant_id".into(),
        AMQPValue::LongString(tenant.to_string().into()),
    );
    properties()
        .with_message_id(outbox_id.to_string().into())
        .with_headers(headers)
}

/// Publishes one message on a channel in confirm mode and waits for the broker's answer:
/// `true` when it took the message, `false` when it refused it.
pub async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<bool, lapin::Error> {
    let confirm = ch
        .basic_publish(
            ShortString::from(exchange),
            ShortString::from(routing_key),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await?
        .await?;
    Ok(confirm.is_ack())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_persistent_json_and_events_carry_their_id_and_tenant() {
        let p = properties();
        assert_eq!(
            p.content_type().as_ref().map(|c| c.as_str()),
            Some(CONTENT_TYPE)
        );
        assert_eq!(*p.delivery_mode(), Some(2));
        let t = Uuid::new_v4();
        let e = event_properties(42, t);
        assert_eq!(e.message_id().as_ref().map(|m| m.as_str()), Some("42"));
        assert_eq!(*e.delivery_mode(), Some(2));
        let headers = e.headers().as_ref().expect("headers");
        assert_eq!(
            headers.inner().get("tenant_id"),
            Some(&AMQPValue::LongString(t.to_string().into()))
        );
    }

    #[test]
    fn bodies_round_trip_and_bad_ones_say_only_where() {
        let body = encode(&serde_json::json!({"a": [1, 2]}));
        assert_eq!(body, br#"{"a":[1,2]}"#);
        let v: serde_json::Value = decode(&body, 64).expect("decode");
        assert_eq!(v["a"][1], 2);
        assert_eq!(
            decode::<serde_json::Value>(&body, 4),
            Err(DecodeError::TooLarge { bytes: body.len() })
        );
        let err = decode::<Vec<u32>>(b"[1, \"secret\"]", 64).expect_err("bad");
        assert!(matches!(
            err,
            DecodeError::Unreadable {
                line: 1,
                kind: "data",
                ..
            }
        ));
        assert!(!err.to_string().contains("secret"));
    }
}
