//! Renderings of a [`MetricsSnapshot`]: the seed's `/debug/vars` JSON and
//! the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::MetricsSnapshot;

/// The last millisecond RFC 3339 can show (9999-12-31T23:59:59.999Z);
/// later timestamps are clamped to it.
const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// `timestamp_ms` (since the Unix epoch) as RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339_ms(timestamp_ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(timestamp_ms.min(MAX_RFC3339_MS));
    humantime::format_rfc3339_millis(t).to_string()
}

/// The `/debug/vars` JSON object, with exactly the seed's keys:
/// `service:miner:{addr,node,wallet,disk:root,disk:usage,db:count,chain}`,
/// and per database `head:{count,height,hash,timestamp}` and `requests:count`.
pub fn render_debug_vars(s: &MetricsSnapshot) -> String {
    let chains: Map<String, Value> = s
        .chains
        .iter()
        .map(|(db, c)| {
            let v = json!({
                "head:count": c.head_count,
                "head:height": c.head_height,
                "head:hash": c.head_hash.to_hex(),
                "head:timestamp": rfc3339_ms(c.head_timestamp_ms),
                "requests:count": c.requests_per_minute,
            });
            (db.to_hex(), v)
        })
        .collect();
    let vars = json!({
        "service:miner:addr": s.addr,
        "service:miner:node": s.node.to_hex(),
        "service:miner:wallet": s.wallet.to_hex(),
        "service:miner:disk:root": s.disk_root.to_string_lossy(),
        "service:miner:disk:usage": s.disk_usage_kb,
        "service:miner:db:count": s.chains.len(),
        "service:miner:chain": chains,
    });
    format!("{vars:#}\n")
}

/// Escape a Prometheus label value: backslash, double quote and newline.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes one metric family at a time into a text exposition.
struct Exposition {
    out: String,
}

impl Exposition {
    /// Start a family: its HELP and TYPE lines.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample; `labels` is already rendered (`a="x",b="y"`) or empty.
    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The same values in Prometheus text format, with HELP and TYPE lines:
/// `covenant_miner_info{addr,node,wallet,disk_root} 1`, `..._ready`,
/// `..._disk_usage_kb`, `..._db_count` and per database (label `database`)
/// `covenant_miner_chain_head_{count,height,timestamp_seconds}`,
/// `..._head_info{hash}` and `..._requests_per_minute`.
pub fn render_prometheus(s: &MetricsSnapshot) -> String {
    let mut e = Exposition { out: String::new() };
    e.family(
        "covenant_miner_info",
        "gauge",
        "Miner identity: listen address, node id, wallet address and data directory (always 1).",
    );
    let info = format!(
        "addr=\"{}\",node=\"{}\",wallet=\"{}\",disk_root=\"{}\"",
        label(&s.addr),
        s.node.to_hex(),
        s.wallet.to_hex(),
        label(&s.disk_root.to_string_lossy()),
    );
    e.sample("covenant_miner_info", &info, 1);
    e.family(
        "covenant_miner_ready",
        "gauge",
        "1 when the miner serves every database assigned to it, else 0.",
    );
    e.sample("covenant_miner_ready", "", u8::from(s.ready));
    e.family(
        "covenant_miner_disk_usage_kb",
        "gauge",
        "KB (1024 bytes) of files under the miner's data directory.",
    );
    e.sample("covenant_miner_disk_usage_kb", "", s.disk_usage_kb);
    e.family(
        "covenant_miner_db_count",
        "gauge",
        "Databases (SQL chains) this miner serves.",
    );
    e.sample("covenant_miner_db_count", "", s.chains.len());

    type Field = fn(&super::ChainSnapshot) -> String;
    let per_chain: [(&str, &str, Field); 4] = [
        (
            "covenant_miner_chain_head_count",
            "Number of the newest block of the database's chain.",
            |c| c.head_count.to_string(),
        ),
        (
            "covenant_miner_chain_head_height",
            "Period number of the newest block of the database's chain.",
            |c| c.head_height.to_string(),
        ),
        (
            "covenant_miner_chain_head_timestamp_seconds",
            "Production time of the newest block, seconds since the Unix epoch.",
            |c| (c.head_timestamp_ms as f64 / 1000.0).to_string(),
        ),
        (
            "covenant_miner_chain_requests_per_minute",
            "Mean query requests per minute over the last five complete minutes.",
            |c| c.requests_per_minute.to_string(),
        ),
    ];
    for (name, help, field) in per_chain {
        e.family(name, "gauge", help);
        for (db, c) in &s.chains {
            e.sample(name, &format!("database=\"{}\"", db.to_hex()), field(c));
        }
    }
    e.family(
        "covenant_miner_chain_head_info",
        "gauge",
        "Hash of the newest block of the database's chain (always 1).",
    );
    for (db, c) in &s.chains {
        let labels = format!(
            "database=\"{}\",hash=\"{}\"",
            db.to_hex(),
            c.head_hash.to_hex()
        );
        e.sample("covenant_miner_chain_head_info", &labels, 1);
    }
    e.out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use super::*;
    use crate::crypto::{Address, NodeId};
    use crate::hash::Hash;
    use crate::metrics::ChainSnapshot;
    use crate::types::DatabaseId;

    fn snapshot() -> MetricsSnapshot {
        let mut chains = BTreeMap::new();
        chains.insert(
            DatabaseId(Hash([1; 32])),
            ChainSnapshot {
                head_count: 12,
                head_height: 34,
                head_hash: Hash([0xee; 32]),
                head_timestamp_ms: 1_700_000_000_250,
                requests_per_minute: 6.0,
            },
        );
        chains.insert(
            DatabaseId(Hash([2; 32])),
            ChainSnapshot {
                head_count: 0,
                head_height: 0,
                head_hash: Hash::default(),
                head_timestamp_ms: 0,
                requests_per_minute: 0.2,
            },
        );
        MetricsSnapshot {
            addr: "miner.example:11105".to_string(),
            node: NodeId(Hash([0xab; 32])),
            wallet: Address(Hash([0xcd; 32])),
            disk_root: PathBuf::from("/data/\"odd\"\\dir"),
            disk_usage_kb: 2048,
            ready: true,
            ready_reason: String::new(),
            chains,
        }
    }

    #[test]
    fn debug_vars_has_exactly_the_seed_keys_and_types() {
        let v: Value = serde_json::from_str(&render_debug_vars(&snapshot())).unwrap();
        let top: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = [
            "service:miner:addr",
            "service:miner:node",
            "service:miner:wallet",
            "service:miner:disk:root",
            "service:miner:disk:usage",
            "service:miner:db:count",
            "service:miner:chain",
        ]
        .into();
        assert_eq!(top, expected);
        assert_eq!(v["service:miner:addr"], "miner.example:11105");
        assert_eq!(v["service:miner:node"], "ab".repeat(32));
        assert_eq!(v["service:miner:wallet"], "cd".repeat(32));
        assert_eq!(v["service:miner:disk:root"], "/data/\"odd\"\\dir");
        assert_eq!(v["service:miner:disk:usage"].as_u64(), Some(2048));
        assert_eq!(v["service:miner:db:count"].as_u64(), Some(2));

        let chain = v["service:miner:chain"].as_object().unwrap();
        let ids: Vec<&str> = chain.keys().map(String::as_str).collect();
        let (one, two) = ("01".repeat(32), "02".repeat(32));
        assert_eq!(ids, vec![one.as_str(), two.as_str()]);
        for c in chain.values() {
            let keys: BTreeSet<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
            let expected: BTreeSet<&str> = [
                "head:count",
                "head:height",
                "head:hash",
                "head:timestamp",
                "requests:count",
            ]
            .into();
            assert_eq!(keys, expected);
            assert!(c["head:count"].is_u64());
            assert!(c["head:height"].is_u64());
            assert!(c["head:hash"].is_string());
            assert!(c["head:timestamp"].is_string());
            assert!(c["requests:count"].is_number());
        }
        let c1 = &chain[&one];
        assert_eq!(c1["head:count"].as_u64(), Some(12));
        assert_eq!(c1["head:height"].as_u64(), Some(34));
        assert_eq!(c1["head:hash"], "ee".repeat(32));
        assert_eq!(c1["head:timestamp"], "2023-11-14T22:13:20.250Z");
        assert_eq!(c1["requests:count"].as_f64(), Some(6.0));
        assert_eq!(chain[&two]["head:timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(chain[&two]["requests:count"].as_f64(), Some(0.2));
    }

    #[test]
    fn empty_miner_has_an_empty_chain_map() {
        let mut s = snapshot();
        s.chains.clear();
        let v: Value = serde_json::from_str(&render_debug_vars(&s)).unwrap();
        assert_eq!(v["service:miner:db:count"].as_u64(), Some(0));
        assert_eq!(v["service:miner:chain"], json!({}));
    }

    #[test]
    fn timestamps_never_fail_to_format() {
        assert_eq!(rfc3339_ms(u64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_ms(1_000), "1970-01-01T00:00:01.000Z");
    }

    /// A parsed sample line: name, labels, value.
    type Sample = (String, BTreeMap<String, String>, f64);

    /// A strict parser for the subset of the text format we emit.
    fn parse_prometheus(text: &str) -> Vec<Sample> {
        let mut samples = Vec::new();
        let mut typed = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(!help.is_empty(), "{name} has an empty HELP");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(kind, "gauge");
                assert!(typed.insert(name.to_string()), "{name} typed twice");
                continue;
            }
            assert!(
                !line.starts_with('#') && !line.is_empty(),
                "bad line {line:?}"
            );
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap();
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
            };
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad name {name}"
            );
            assert!(typed.contains(name), "{name} sampled before its TYPE");
            samples.push((name.to_string(), labels, value));
        }
        samples
    }

    fn parse_labels(mut rest: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").unwrap();
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().unwrap() {
                    (_, '\\') => match chars.next().unwrap().1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            labels.insert(key.to_string(), value);
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        labels
    }

    fn find<'a>(samples: &'a [Sample], name: &str, db: Option<&str>) -> &'a Sample {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name && db.is_none_or(|d| l.get("database").map(String::as_str) == Some(d))
            })
            .unwrap_or_else(|| panic!("no sample {name} {db:?}"))
    }

    #[test]
    fn prometheus_text_parses_and_carries_every_value() {
        let text = render_prometheus(&snapshot());
        let samples = parse_prometheus(&text);
        let info = find(&samples, "covenant_miner_info", None);
        assert_eq!(info.1["addr"], "miner.example:11105");
        assert_eq!(info.1["node"], "ab".repeat(32));
        assert_eq!(info.1["wallet"], "cd".repeat(32));
        assert_eq!(info.1["disk_root"], "/data/\"odd\"\\dir");
        assert_eq!(info.2, 1.0);
        assert_eq!(find(&samples, "covenant_miner_ready", None).2, 1.0);
        assert_eq!(
            find(&samples, "covenant_miner_disk_usage_kb", None).2,
            2048.0
        );
        assert_eq!(find(&samples, "covenant_miner_db_count", None).2, 2.0);
        let one = "01".repeat(32);
        let db = Some(one.as_str());
        assert_eq!(
            find(&samples, "covenant_miner_chain_head_count", db).2,
            12.0
        );
        assert_eq!(
            find(&samples, "covenant_miner_chain_head_height", db).2,
            34.0
        );
        assert_eq!(
            find(&samples, "covenant_miner_chain_head_timestamp_seconds", db).2,
            1_700_000_000.25
        );
        assert_eq!(
            find(&samples, "covenant_miner_chain_requests_per_minute", db).2,
            6.0
        );
        let head = find(&samples, "covenant_miner_chain_head_info", db);
        assert_eq!(head.1["hash"], "ee".repeat(32));
        // 4 miner-wide samples + 5 per database.
        assert_eq!(samples.len(), 4 + 5 * 2);
    }

    #[test]
    fn label_escaping_covers_newlines() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
