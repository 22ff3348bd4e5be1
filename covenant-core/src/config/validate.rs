//! Checks a parsed config beyond what its types enforce; every failure names
//! the offending key as a path (`KnownNodes[2].Addr`, `Miner.MaxReqTimeGap`).

use std::collections::HashSet;
use std::time::Duration;

use super::Config;
use super::nodes::{BlockProducerInfo, KnownNode};
use super::sections::{AdapterConfig, GenesisConfig, MinerConfig};
use crate::crypto::{CryptoError, NodeId, Nonce, PublicKey};

/// A failed check: the key's path and why its value was refused.
pub(super) type Failure = (String, String);

fn fail<T>(key: impl Into<String>, reason: impl Into<String>) -> Result<T, Failure> {
    Err((key.into(), reason.into()))
}

/// Checks `addr` is `host:port` (IPv6 hosts in brackets) with a port from 1 to 65535.
pub fn check_host_port(addr: &str) -> Result<(), &'static str> {
    check_addr(addr, false)
}

fn check_addr(addr: &str, allow_port_zero: bool) -> Result<(), &'static str> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("has an opening '[' without its ']' (write [::1]:port)")?;
        let port = after
            .strip_prefix(':')
            .ok_or("is not host:port (the port is missing)")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("has an invalid IPv6 address inside [ ]");
        }
        (host, port)
    } else {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or("is not host:port (the port is missing)")?;
        if host.contains(':') {
            return Err("has an IPv6 host without brackets (write [::1]:port)");
        }
        let valid_name = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid_name {
            return Err("has a host that is neither an IP address nor a DNS name");
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("has an empty host (write e.g. 127.0.0.1:port or 0.0.0.0:port)");
    }
    match port.parse::<u16>() {
        Ok(0) if !allow_port_zero => Err("has port 0 (pick a port from 1 to 65535)"),
        Ok(_) => Ok(()),
        Err(_) => Err("has a port that is not a number from 1 to 65535"),
    }
}

fn addr_ok(key: &str, addr: &str, allow_port_zero: bool) -> Result<(), Failure> {
    check_addr(addr, allow_port_zero).or_else(|why| fail(key, format!("{addr:?} {why}")))
}

fn nonzero(key: &str, d: Duration) -> Result<(), Failure> {
    if d.is_zero() {
        return fail(key, "must be longer than zero (e.g. 1s)");
    }
    Ok(())
}

fn id_ok(
    key: &str,
    id: &NodeId,
    pk: &PublicKey,
    nonce: &Nonce,
    min_difficulty: u32,
) -> Result<(), Failure> {
    match id.verify(pk, nonce, min_difficulty) {
        Ok(()) => Ok(()),
        Err(CryptoError::NodeIdTooEasy {
            difficulty,
            minimum,
            ..
        }) => fail(
            key,
            format!(
                "{id} has difficulty {difficulty}, below the network minimum {minimum} (MinNodeIDDifficulty)"
            ),
        ),
        Err(_) => fail(
            key,
            format!(
                "{id} does not match its PublicKey and Nonce (the id must be H(PublicKey || Nonce))"
            ),
        ),
    }
}

/// Runs every check on `c`; the first failure wins.
pub(super) fn validate(c: &Config) -> Result<(), Failure> {
    if c.version != Config::VERSION {
        return fail(
            "Version",
            format!(
                "is {}, but this build reads config format version {}",
                c.version,
                Config::VERSION
            ),
        );
    }
    if c.min_node_id_difficulty > 256 {
        return fail(
            "MinNodeIDDifficulty",
            "must be at most 256 (bits of a node id)",
        );
    }
    nonzero("BPPeriod", c.bp_period)?;
    nonzero("SQLChainPeriod", c.sql_chain_period)?;
    if c.billing_block_count == 0 {
        return fail("BillingBlockCount", "must be at least 1");
    }
    if let Some(addr) = &c.listen_addr {
        addr_ok("ListenAddr", addr, true)?;
    }
    if c.private_key_file.as_os_str().is_empty() {
        return fail("PrivateKeyFile", "must not be empty");
    }
    block_producers(&c.block_producers, c.min_node_id_difficulty)?;
    known_nodes(&c.known_nodes)?;
    identity(c)?;
    if let Some(g) = &c.genesis {
        genesis(g)?;
    }
    if let Some(m) = &c.miner {
        miner(m)?;
    }
    if let Some(a) = &c.adapter {
        adapter(a)?;
    }
    Ok(())
}

fn identity(c: &Config) -> Result<(), Failure> {
    match (&c.this_node_id, &c.nonce) {
        (Some(_), None) => return fail("Nonce", "is required when ThisNodeID is set"),
        (None, Some(_)) => return fail("ThisNodeID", "is required when Nonce is set"),
        _ => {}
    }
    let (Some(id), Some(nonce)) = (&c.this_node_id, &c.nonce) else {
        return Ok(());
    };
    // The node's own KnownNodes entry carries its public key: check against it.
    if let Some((i, me)) = c.known_nodes.iter().enumerate().find(|(_, n)| n.id == *id) {
        if me.nonce != *nonce {
            return fail(
                format!("KnownNodes[{i}].Nonce"),
                format!("{} differs from this node's Nonce {}", me.nonce, nonce),
            );
        }
        if let Some(wallet) = &c.wallet_address
            && *wallet != me.public_key.address()
        {
            return fail(
                "WalletAddress",
                format!(
                    "{wallet} is not the address of this node's public key (expected {})",
                    me.public_key.address()
                ),
            );
        }
    }
    Ok(())
}

fn block_producers(bps: &[BlockProducerInfo], min_difficulty: u32) -> Result<(), Failure> {
    let mut seen = HashSet::new();
    for (i, bp) in bps.iter().enumerate() {
        addr_ok(&format!("BlockProducers[{i}].Addr"), &bp.addr, false)?;
        id_ok(
            &format!("BlockProducers[{i}].NodeID"),
            &bp.node_id,
            &bp.public_key,
            &bp.nonce,
            min_difficulty,
        )?;
        if !seen.insert(bp.node_id) {
            return fail(
                format!("BlockProducers[{i}].NodeID"),
                format!("{} is listed twice", bp.node_id),
            );
        }
    }
    Ok(())
}

fn known_nodes(nodes: &[KnownNode]) -> Result<(), Failure> {
    let mut seen = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(addr) = &n.addr {
            addr_ok(&format!("KnownNodes[{i}].Addr"), addr, false)?;
        }
        // Peers enforce the network's minimum difficulty when they connect;
        // here the entry only has to be a consistent identity.
        id_ok(
            &format!("KnownNodes[{i}].ID"),
            &n.id,
            &n.public_key,
            &n.nonce,
            0,
        )?;
        if !seen.insert(n.id) {
            return fail(
                format!("KnownNodes[{i}].ID"),
                format!("{} is listed twice", n.id),
            );
        }
    }
    Ok(())
}

fn genesis(g: &GenesisConfig) -> Result<(), Failure> {
    let mut seen = HashSet::new();
    for (i, acct) in g.accounts.iter().enumerate() {
        if !seen.insert(acct.address) {
            return fail(
                format!("Genesis.Accounts[{i}].Address"),
                format!("{} is listed twice", acct.address),
            );
        }
    }
    Ok(())
}

fn miner(m: &MinerConfig) -> Result<(), Failure> {
    if m.root_dir.as_os_str().is_empty() {
        return fail("Miner.RootDir", "must not be empty (e.g. ./data)");
    }
    nonzero("Miner.MaxReqTimeGap", m.max_req_time_gap)?;
    nonzero("Miner.ProvideServiceInterval", m.provide_service_interval)
}

fn adapter(a: &AdapterConfig) -> Result<(), Failure> {
    addr_ok("Adapter.ListenAddr", &a.listen_addr, true)?;
    match (&a.certificate_path, &a.private_key_path) {
        (Some(_), None) => fail(
            "Adapter.PrivateKeyPath",
            "is required when CertificatePath is set (HTTPS needs both)",
        ),
        (None, Some(_)) => fail(
            "Adapter.CertificatePath",
            "is required when PrivateKeyPath is set (HTTPS needs both)",
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        for ok in [
            "127.0.0.1:7458",
            "bp00.example.com:7777",
            "[::1]:80",
            "node_1:1",
        ] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            ":7458",
            "::1:80",
            "[::1]80",
            "[zz]:80",
            "host:http",
            "host:70000",
            "host:0",
            "a b:1",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad}");
        }
        assert_eq!(check_addr("127.0.0.1:0", true), Ok(()));
    }
}
