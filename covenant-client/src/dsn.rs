//! Database DSNs: `covenantsql://<id>` with optional settings after `?`,
//! e.g. `covenantsql://<id>?use_follower=true&max_lag_ms=2000`.
//!
//! - `use_follower=true|false` — read from any replica, followers first,
//!   instead of the leader: faster and spread out, but possibly stale (see
//!   [`ReadLevel::Replica`]).
//! - `max_lag_ms=N` — with `use_follower`, the most a replica may lag (time
//!   since it last heard from its leader); default [`DEFAULT_MAX_LAG_MS`].
//! - `read_level=linearizable|leader|replica` — the same choice spelled out.

use covenant_core::sqlchain::request::ReadLevel;
use covenant_core::types::DatabaseId;

use crate::error::ClientError;

/// Staleness bound of follower reads when the DSN names none.
pub const DEFAULT_MAX_LAG_MS: u64 = 5_000;

/// A parsed DSN: the database and how to read from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dsn {
    /// The database.
    pub database: DatabaseId,
    /// How reads through this DSN are served.
    pub read_level: ReadLevel,
}

impl std::str::FromStr for Dsn {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Dsn, ClientError> {
        let s = s.trim();
        let (base, query) = match s.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (s, None),
        };
        let database =
            DatabaseId::from_dsn(base).map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        let bad = |what: String| {
            ClientError::InvalidArgument(format!(
                "DSN {s}: {what}; settings are use_follower=true|false, max_lag_ms=N, \
                 read_level=linearizable|leader|replica"
            ))
        };
        let mut use_follower = None;
        let mut level = None;
        let mut max_lag_ms = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("setting {pair:?} has no value")))?;
            match key {
                "use_follower" => {
                    use_follower = Some(match value {
                        "true" | "1" | "yes" => true,
                        "false" | "0" | "no" => false,
                        _ => return Err(bad(format!("use_follower={value} is not true or false"))),
                    })
                }
                "max_lag_ms" => {
                    max_lag_ms = Some(
                        value
                            .parse::<u64>()
                            .map_err(|_| bad(format!("max_lag_ms={value} is not a number")))?,
                    )
                }
                "read_level" => {
                    level = Some(match value {
                        "linearizable" | "strong" => "linearizable",
                        "leader" | "weak" => "leader",
                        "replica" | "none" => "replica",
                        _ => return Err(bad(format!("read_level={value} is unknown"))),
                    })
                }
                _ => return Err(bad(format!("unknown setting {key:?}"))),
            }
        }
        let replica = ReadLevel::Replica {
            max_lag_ms: max_lag_ms.unwrap_or(DEFAULT_MAX_LAG_MS),
        };
        let read_level = match (level, use_follower) {
            (Some("leader"), _) => ReadLevel::Leader,
            (Some("replica"), _) | (None, Some(true)) => replica,
            _ => ReadLevel::Linearizable,
        };
        Ok(Dsn {
            database,
            read_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0a10b74439f2376d828c9a70fd538dac4b69e0f4065424feebc0f5dbc8b34872";

    #[test]
    fn settings_choose_the_read_level() {
        let d: Dsn = format!("covenantsql://{ID}").parse().unwrap();
        assert_eq!(d.read_level, ReadLevel::Linearizable);
        assert_eq!(d.database.to_hex(), ID);
        let d: Dsn = format!("covenantsql://{ID}?use_follower=true")
            .parse()
            .unwrap();
        assert_eq!(
            d.read_level,
            ReadLevel::Replica {
                max_lag_ms: DEFAULT_MAX_LAG_MS
            }
        );
        let d: Dsn = format!("covenantsql://{ID}?use_follower=true&max_lag_ms=250")
            .parse()
            .unwrap();
        assert_eq!(d.read_level, ReadLevel::Replica { max_lag_ms: 250 });
        let d: Dsn = format!("{ID}?read_level=leader").parse().unwrap();
        assert_eq!(d.read_level, ReadLevel::Leader);
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        for (dsn, needle) in [
            (
                format!("covenantsql://{ID}?use_folower=true"),
                "use_folower",
            ),
            (format!("covenantsql://{ID}?use_follower=maybe"), "maybe"),
            (format!("covenantsql://{ID}?max_lag_ms=soon"), "soon"),
            (format!("covenantsql://{ID}?use_follower"), "no value"),
            ("covenantsql://abc".to_string(), "abc"),
        ] {
            let e = dsn.parse::<Dsn>().unwrap_err().to_string();
            assert!(e.contains(needle), "{dsn}: {e}");
        }
    }
}
