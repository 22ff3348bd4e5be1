//! Serde adapters for the config's human-readable times: durations as
//! humantime strings (`1s`, `5m`, `1h 30m`) and timestamps as RFC 3339.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

/// Parses a humantime duration, with a message that says what is expected.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "invalid duration {text:?} ({e}): write a number with a unit, such as 1s, 10s, 5m or 1h"
        )
    })
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub(crate) fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `#[serde(with = "duration")]` for `Duration` fields.
pub(crate) mod duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "opt_duration")]` for `Option<Duration>` fields.
pub(crate) mod opt_duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => parse_duration(&text).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        }
    }
}

/// `#[serde(with = "timestamp")]` for `SystemTime` fields (RFC 3339, UTC).
pub(crate) mod timestamp {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(text.trim()).map_err(|e| {
            D::Error::custom(format!(
                "invalid timestamp {text:?} ({e}): write RFC 3339 UTC, such as 2024-01-01T00:00:00Z"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_in_the_seed_forms() {
        for (text, secs) in [("1s", 1), ("10s", 10), ("5m", 300), ("1m0s", 60)] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d, Duration::from_secs(secs));
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        let err = parse_duration("5").unwrap_err();
        assert!(err.contains("\"5\"") && err.contains("unit"), "{err}");
    }
}
