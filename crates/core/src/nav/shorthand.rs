//! Serde support for values that accept a short scalar form besides their full mapping form, e.g.
//! `press: ok` next to `press: {key: ok, repeat: 3}`. The mapping form is deserialized by a derived
//! implementation, so its errors keep their line and column and unknown fields are still refused.

use std::{fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, Visitor, value::MapAccessDeserializer},
};

/// A scalar given where a mapping is also accepted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Str(String),
    Int(u64),
    /// `~`, `null` or nothing at all (`verify_black:`).
    Null,
}

/// A type with a full (mapping) form `Full` and a short scalar form.
pub(crate) trait Shorthand: Sized {
    /// The mapping form, deserialized by a derived implementation.
    type Full: for<'de> Deserialize<'de> + Into<Self>;
    /// What the error message says is expected.
    const EXPECTING: &'static str;
    /// Builds the value from its scalar form; the error is the message shown to the user.
    fn from_scalar(s: Scalar) -> Result<Self, String>;
}

/// Deserializes a [`Shorthand`] type from either form.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Shorthand>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(ShorthandVisitor::<T>(PhantomData))
}

struct ShorthandVisitor<T>(PhantomData<T>);

impl<T: Shorthand> ShorthandVisitor<T> {
    fn scalar<E: de::Error>(s: Scalar) -> Result<T, E> {
        T::from_scalar(s).map_err(E::custom)
    }
}

impl<'de, T: Shorthand> Visitor<'de> for ShorthandVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Self::scalar(Scalar::Str(v.to_owned()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Self::scalar(Scalar::Int(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(v) => Self::scalar(Scalar::Int(v)),
            Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Self::scalar(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        Self::scalar(Scalar::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::Full::deserialize(MapAccessDeserializer::new(map)).map(Into::into)
    }
}

/// Implements `Deserialize` for a [`Shorthand`] type.
macro_rules! deserialize_shorthand {
    ($ty:ty) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::nav::shorthand::deserialize(d)
            }
        }
    };
}
pub(crate) use deserialize_shorthand;
