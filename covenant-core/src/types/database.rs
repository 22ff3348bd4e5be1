//! Database-related transaction payloads, permissions and the profiles the
//! main chain keeps for databases and the miners that provide service.
//!
//! The payloads are defined here so clients can build and sign them; their
//! effects on the main chain (miner matching, deposits, billing, the rules
//! on Super users) belong to `chain::apply`, whose module docs state them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::TypesError;
use super::token::Token;
use crate::codec::Versioned;
use crate::crypto::{Address, NodeId};
use crate::hash::{self, Hash, Tag};

/// The scheme prefix of a database DSN.
pub const DSN_SCHEME: &str = "covenantsql://";

/// A database id: `H(DatabaseId, owner address || creation nonce as big-endian u64)`.
///
/// It is also the address of the database's own account, so paying a
/// database is an ordinary transfer to [`DatabaseId::account_address`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseId(pub Hash);

impl DatabaseId {
    /// The id of the database `owner` creates with the transaction of nonce `nonce`.
    pub fn derive(owner: &Address, nonce: u64) -> DatabaseId {
        DatabaseId(hash::hash_parts(
            Tag::DatabaseId,
            &[owner.as_bytes(), &nonce.to_be_bytes()],
        ))
    }

    /// The account that holds the database's deposits and payments.
    pub fn account_address(&self) -> Address {
        Address(self.0)
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }

    /// `covenantsql://<hex>`.
    pub fn to_dsn(&self) -> String {
        format!("{DSN_SCHEME}{}", self.to_hex())
    }

    /// Parses `covenantsql://<64 hex>` or the bare 64 hex characters.
    pub fn from_dsn(s: &str) -> Result<DatabaseId, TypesError> {
        let t = s.trim();
        let hex = t.strip_prefix(DSN_SCHEME).unwrap_or(t);
        Hash::from_hex(hex)
            .filter(|_| hex.len() == 64)
            .map(DatabaseId)
            .ok_or_else(|| TypesError::InvalidDsn {
                given: s.to_string(),
            })
    }
}

impl fmt::Debug for DatabaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseId({})", self.to_hex())
    }
}

impl fmt::Display for DatabaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for DatabaseId {
    type Err = TypesError;
    /// Accepts a DSN or bare hex.
    fn from_str(s: &str) -> Result<DatabaseId, TypesError> {
        DatabaseId::from_dsn(s)
    }
}

/// How a database's replicas agree (DESIGN §5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Consistency {
    /// A write is answered after a majority committed and applied it.
    #[default]
    Strong,
    /// The leader answers after applying locally; followers catch up.
    Eventual,
}

/// Resources a database asks for, or a miner offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceAsk {
    /// Memory in MiB (0 = no requirement).
    pub memory_mb: u64,
    /// Disk space in MiB (0 = no requirement).
    pub disk_mb: u64,
    /// Highest acceptable load average per CPU, in thousandths (0 = no requirement).
    pub load_avg_per_cpu_milli: u32,
}

/// `CreateDatabase`: ask the main chain for a database on `node_count` miners.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CreateDatabase {
    /// How many miners replicate the database.
    pub node_count: u16,
    /// Miners (wallet addresses) to pick first.
    pub target_miners: Vec<Address>,
    /// Replication mode.
    pub consistency: Consistency,
    /// Resources every miner must offer.
    pub resources: ResourceAsk,
    /// Price per billed row the owner accepts.
    pub gas_price: u64,
    /// Paid into the database account up front.
    pub advance_payment: u64,
    /// The token payments are made in.
    pub token: Token,
}

/// `DropDatabase`: stop and delete a database, refunding deposits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DropDatabase {
    /// The database to drop.
    pub database: DatabaseId,
}

/// `UpdatePermission`: grant or revoke a user's access to a database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpdatePermission {
    /// The database.
    pub database: DatabaseId,
    /// The user (wallet address) whose permission changes.
    pub user: Address,
    /// The new permission; [`Roles::VOID`] revokes.
    pub permission: Permission,
}

/// `ProvideService`: a miner offers resources and locks a deposit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProvideService {
    /// What the miner offers.
    pub resources: ResourceAsk,
    /// The lowest gas price it accepts.
    pub gas_price: u64,
    /// Users it serves exclusively (`TargetUsers`); empty = everyone.
    pub target_users: Vec<Address>,
    /// Deposit locked while providing.
    pub deposit: u64,
    /// The token of deposit and payments.
    pub token: Token,
    /// The miner's node id (its identity on the network).
    pub node_id: NodeId,
}

/// One user's usage in an [`UpdateBilling`] period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BillingEntry {
    /// The user billed.
    pub user: Address,
    /// Rows read in the period.
    pub rows_read: u64,
    /// Rows inserted, updated or deleted in the period.
    pub rows_affected: u64,
}

/// `UpdateBilling`: one of a database's miners charges its users for a period
/// of `(rows_read + rows_affected) * gas_price` each.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpdateBilling {
    /// The database.
    pub database: DatabaseId,
    /// The billing period number.
    pub period: u64,
    /// Usage per user.
    pub users: Vec<BillingEntry>,
}

/// A set of database roles; [`Roles::ADMIN`] is all three.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Roles(u8);

impl Roles {
    /// No access (revoked).
    pub const VOID: Roles = Roles(0);
    /// May run reads.
    pub const READ: Roles = Roles(1);
    /// May run writes.
    pub const WRITE: Roles = Roles(2);
    /// May manage the database (grant, drop).
    pub const SUPER: Roles = Roles(4);
    /// Read, write and super.
    pub const ADMIN: Roles = Roles(7);

    /// The raw bits (read = 1, write = 2, super = 4).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set with these bits; `None` if an unknown bit is set.
    pub const fn from_bits(bits: u8) -> Option<Roles> {
        if bits & !Roles::ADMIN.0 == 0 {
            Some(Roles(bits))
        } else {
            None
        }
    }

    /// Whether every role of `other` is in `self`.
    pub const fn contains(self, other: Roles) -> bool {
        self.0 & other.0 == other.0
    }

    /// The roles in either set.
    pub const fn union(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    /// Whether no role is set.
    pub const fn is_void(self) -> bool {
        self.0 == 0
    }
}

impl TryFrom<u8> for Roles {
    type Error = String;
    fn try_from(bits: u8) -> Result<Roles, String> {
        Roles::from_bits(bits).ok_or_else(|| format!("unknown role bits {bits:#04x}"))
    }
}

impl From<Roles> for u8 {
    fn from(r: Roles) -> u8 {
        r.0
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Roles({self})")
    }
}

impl fmt::Display for Roles {
    /// `Admin`, `Void`, or the set like `Read,Write`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Roles::ADMIN {
            return f.write_str("Admin");
        }
        if self.is_void() {
            return f.write_str("Void");
        }
        let names = [
            (Roles::READ, "Read"),
            (Roles::WRITE, "Write"),
            (Roles::SUPER, "Super"),
        ];
        let parts: Vec<&str> = names
            .iter()
            .filter(|(r, _)| self.contains(*r))
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for Roles {
    type Err = TypesError;
    /// `Read`, `Write`, `Super`, `Admin`, `Void`, `ReadWrite`, or a set
    /// joined by `,`, `|` or `+`; case-insensitive.
    fn from_str(s: &str) -> Result<Roles, TypesError> {
        let mut roles = Roles::VOID;
        let mut any = false;
        for part in s.split([',', '|', '+']) {
            let p = part.trim();
            let r = match p.to_ascii_lowercase().as_str() {
                "read" | "readonly" => Roles::READ,
                "write" | "writeonly" => Roles::WRITE,
                "readwrite" => Roles::READ.union(Roles::WRITE),
                "super" => Roles::SUPER,
                "admin" => Roles::ADMIN,
                "void" | "none" => Roles::VOID,
                _ => {
                    return Err(TypesError::InvalidPermission {
                        given: s.to_string(),
                        reason: format!("unknown role {p:?}"),
                    });
                }
            };
            roles = roles.union(r);
            any = true;
        }
        if !any {
            return Err(TypesError::InvalidPermission {
                given: s.to_string(),
                reason: "no role given".into(),
            });
        }
        Ok(roles)
    }
}

/// A user's permission on a database: roles plus an optional SQL whitelist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Permission {
    /// What the user may do.
    pub roles: Roles,
    /// Exact-match SQL statements the user may run; empty = any statement.
    pub patterns: Vec<String>,
}

impl Permission {
    /// These roles with no whitelist.
    pub fn new(roles: Roles) -> Permission {
        Permission {
            roles,
            patterns: Vec::new(),
        }
    }

    /// Whether the user may read.
    pub fn can_read(&self) -> bool {
        self.roles.contains(Roles::READ)
    }

    /// Whether the user may write.
    pub fn can_write(&self) -> bool {
        self.roles.contains(Roles::WRITE)
    }

    /// Whether the user may manage the database.
    pub fn is_super(&self) -> bool {
        self.roles.contains(Roles::SUPER)
    }

    /// Whether `sql` passes the whitelist (exact match after trimming; empty list = any).
    pub fn allows_statement(&self, sql: &str) -> bool {
        let sql = sql.trim();
        self.patterns.is_empty() || self.patterns.iter().any(|p| p.trim() == sql)
    }

    fn parse_json(s: &str) -> Result<Permission, TypesError> {
        let bad = |reason: String| TypesError::InvalidPermission {
            given: s.to_string(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| bad(format!("bad JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("JSON must be an object".into()))?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "role" | "roles" | "patterns") {
                return Err(bad(format!("unknown field {key:?}")));
            }
        }
        let role = obj
            .get("role")
            .or_else(|| obj.get("roles"))
            .ok_or_else(|| bad("missing \"role\"".into()))?;
        let roles = match role {
            serde_json::Value::String(r) => r.parse::<Roles>()?,
            serde_json::Value::Array(items) => {
                let mut roles = Roles::VOID;
                for item in items {
                    let r = item
                        .as_str()
                        .ok_or_else(|| bad("\"role\" entries must be strings".into()))?;
                    roles = roles.union(r.parse::<Roles>()?);
                }
                roles
            }
            _ => return Err(bad("\"role\" must be a string or a list of strings".into())),
        };
        let patterns = match obj.get("patterns") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad("\"patterns\" entries must be strings".into()))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("\"patterns\" must be a list of strings".into())),
        };
        Ok(Permission { roles, patterns })
    }
}

impl FromStr for Permission {
    type Err = TypesError;
    /// A role set (see [`Roles`]) or JSON `{"role":"Read","patterns":["SELECT 1"]}`.
    fn from_str(s: &str) -> Result<Permission, TypesError> {
        let t = s.trim();
        if t.starts_with('{') {
            Permission::parse_json(t)
        } else {
            Ok(Permission::new(t.parse()?))
        }
    }
}

impl fmt::Display for Permission {
    /// The role set, or the JSON form when there is a whitelist.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patterns.is_empty() {
            return write!(f, "{}", self.roles);
        }
        let json = serde_json::json!({ "role": self.roles.to_string(), "patterns": self.patterns });
        write!(f, "{json}")
    }
}

/// Whether a user may currently use a database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UserStatus {
    /// In good standing.
    #[default]
    Normal,
    /// Owes more than its advance payment covered (see
    /// [`DatabaseUser::arrears`]); miners refuse its requests until a
    /// transfer to the database's account settles the arrears.
    Arrears,
}

/// A user of a database, as the main chain records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseUser {
    /// The user's wallet address.
    pub address: Address,
    /// What the user may do.
    pub permission: Permission,
    /// Whether the user may currently use the database.
    pub status: UserStatus,
    /// What the user has paid in advance and not yet been charged.
    pub advance_payment: u64,
    /// What the user owes beyond its advance payment.
    pub arrears: u64,
}

/// A miner serving a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerAssignment {
    /// The miner's wallet address.
    pub address: Address,
    /// The miner's node id.
    pub node_id: NodeId,
    /// The miner's provider deposit when it was assigned: the stake backing
    /// this database (deposits are locked per provider, not per database).
    pub deposit: u64,
}

/// Everything the main chain knows about a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseProfile {
    /// The database id.
    pub id: DatabaseId,
    /// Who created it.
    pub owner: Address,
    /// The miners replicating it.
    pub miners: Vec<MinerAssignment>,
    /// Its users with permissions and status (the owner is an Admin user).
    pub users: Vec<DatabaseUser>,
    /// Replication mode.
    pub consistency: Consistency,
    /// The token it is paid in.
    pub token: Token,
    /// Price per billed row.
    pub gas_price: u64,
    /// Resources asked of each miner.
    pub resources: ResourceAsk,
    /// The last billing period applied (0: none yet; periods are numbered
    /// from 1 and must increase).
    pub last_billed_period: u64,
}

impl DatabaseProfile {
    /// The permission of `user`, if it is a user of this database.
    pub fn user(&self, user: &Address) -> Option<&DatabaseUser> {
        self.users.iter().find(|u| u.address == *user)
    }
}

impl Versioned for DatabaseProfile {
    const KIND: &'static str = "database profile";
    const VERSION: u16 = 1;
}

/// A miner's standing offer, from its latest `ProvideService`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderProfile {
    /// The miner's wallet address.
    pub address: Address,
    /// The miner's node id.
    pub node_id: NodeId,
    /// What it offers.
    pub resources: ResourceAsk,
    /// The lowest gas price it accepts.
    pub gas_price: u64,
    /// Users it serves exclusively; empty = everyone.
    pub target_users: Vec<Address>,
    /// Deposit locked.
    pub deposit: u64,
    /// The token of deposit and payments.
    pub token: Token,
}

impl ProviderProfile {
    /// Whether this miner accepts databases owned by `owner` (`TargetUsers`).
    pub fn accepts(&self, owner: &Address) -> bool {
        self.target_users.is_empty() || self.target_users.contains(owner)
    }
}

impl Versioned for ProviderProfile {
    const KIND: &'static str = "provider profile";
    const VERSION: u16 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::hash::hash;

    fn addr(s: &[u8]) -> Address {
        Address(hash(Tag::Message, s))
    }

    #[test]
    fn database_id_derivation_is_pinned_and_nonce_sensitive() {
        let owner = addr(b"owner");
        let a = DatabaseId::derive(&owner, 1);
        assert_ne!(a, DatabaseId::derive(&owner, 2));
        assert_ne!(a, DatabaseId::derive(&addr(b"other"), 1));
        let expected = crate::hash::sha3_256_untagged(
            &[
                b"covenant/database-id/v1".as_slice(),
                owner.as_bytes(),
                &1u64.to_be_bytes(),
            ]
            .concat(),
        );
        assert_eq!(a.0, expected);
        assert_eq!(a.account_address().0, a.0);
    }

    #[test]
    fn dsn_round_trip_and_refusal() {
        let id = DatabaseId::derive(&addr(b"o"), 0);
        let dsn = id.to_dsn();
        assert!(dsn.starts_with("covenantsql://"));
        assert_eq!(DatabaseId::from_dsn(&dsn).unwrap(), id);
        assert_eq!(id.to_hex().parse::<DatabaseId>().unwrap(), id);
        for bad in ["covenantsql://xyz", "", "covenantsql://", "mysql://00"] {
            let err = DatabaseId::from_dsn(bad).unwrap_err();
            assert!(err.to_string().contains("covenantsql://"), "{err}");
            assert_eq!(err.code(), ErrorCode::InvalidArgument);
        }
    }

    #[test]
    fn roles_parse_and_display() {
        assert_eq!("Read".parse::<Roles>().unwrap(), Roles::READ);
        assert_eq!("write".parse::<Roles>().unwrap(), Roles::WRITE);
        assert_eq!("SUPER".parse::<Roles>().unwrap(), Roles::SUPER);
        assert_eq!("Admin".parse::<Roles>().unwrap(), Roles::ADMIN);
        assert_eq!("Void".parse::<Roles>().unwrap(), Roles::VOID);
        let rw = "Read,Write".parse::<Roles>().unwrap();
        assert_eq!(rw, "ReadWrite".parse::<Roles>().unwrap());
        assert_eq!(rw.to_string(), "Read,Write");
        assert_eq!("Read|Write|Super".parse::<Roles>().unwrap(), Roles::ADMIN);
        assert_eq!(Roles::ADMIN.to_string(), "Admin");
        assert_eq!(Roles::VOID.to_string(), "Void");
        assert!(Roles::ADMIN.contains(Roles::SUPER));
        assert!(!Roles::READ.contains(Roles::WRITE));
        let err = "Owner".parse::<Roles>().unwrap_err();
        assert!(err.to_string().contains("unknown role \"Owner\""), "{err}");
        assert!("".parse::<Roles>().is_err());
        assert_eq!(Roles::from_bits(8), None);
    }

    #[test]
    fn roles_decoding_rejects_unknown_bits() {
        let ok = crate::codec::encode(&Roles::ADMIN).unwrap();
        assert_eq!(crate::codec::decode::<Roles>(&ok).unwrap(), Roles::ADMIN);
        let bad = crate::codec::encode(&0x80u8).unwrap();
        assert!(crate::codec::decode::<Roles>(&bad).is_err());
    }

    #[test]
    fn permission_plain_and_json_forms() {
        let p: Permission = "Admin".parse().unwrap();
        assert_eq!(p, Permission::new(Roles::ADMIN));
        assert!(p.can_read() && p.can_write() && p.is_super());
        let j: Permission = r#"{"role":"Read","patterns":["SELECT 1"]}"#.parse().unwrap();
        assert_eq!(j.roles, Roles::READ);
        assert_eq!(j.patterns, vec!["SELECT 1".to_string()]);
        assert!(j.allows_statement(" SELECT 1 "));
        assert!(!j.allows_statement("SELECT 2"));
        assert!(!j.can_write());
        // Display of a whitelisted permission parses back.
        assert_eq!(j.to_string().parse::<Permission>().unwrap(), j);
        let multi: Permission = r#"{"role":["Read","Write"]}"#.parse().unwrap();
        assert_eq!(multi.roles, "Read,Write".parse().unwrap());
        assert!(multi.allows_statement("anything"));
    }

    #[test]
    fn permission_refusals_are_clear() {
        for (input, why) in [
            ("Owner", "unknown role"),
            ("{", "bad JSON"),
            ("[1]", "unknown role"),
            (r#"{"patterns":[]}"#, "missing \"role\""),
            (r#"{"role":1}"#, "must be a string"),
            (
                r#"{"role":"Read","patterns":[1]}"#,
                "entries must be strings",
            ),
            (r#"{"role":"Read","extra":1}"#, "unknown field"),
        ] {
            let err = input.parse::<Permission>().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(why), "{input}: {msg}");
            assert_eq!(err.code(), ErrorCode::InvalidArgument);
        }
    }

    #[test]
    fn profiles_round_trip() {
        let owner = addr(b"owner");
        let p = DatabaseProfile {
            id: DatabaseId::derive(&owner, 0),
            owner,
            miners: vec![MinerAssignment {
                address: addr(b"m"),
                node_id: NodeId(hash(Tag::Message, b"n")),
                deposit: 10,
            }],
            users: vec![DatabaseUser {
                address: owner,
                permission: Permission::new(Roles::ADMIN),
                status: UserStatus::Normal,
                advance_payment: 5,
                arrears: 0,
            }],
            consistency: Consistency::Eventual,
            token: Token::Particle,
            gas_price: 1,
            resources: ResourceAsk::default(),
            last_billed_period: 0,
        };
        let bytes = crate::codec::encode_versioned(&p).unwrap();
        assert_eq!(
            crate::codec::decode_versioned::<DatabaseProfile>(&bytes).unwrap(),
            p
        );
        assert!(p.user(&owner).unwrap().permission.is_super());
        assert!(p.user(&addr(b"x")).is_none());
        let prov = ProviderProfile {
            address: addr(b"m"),
            node_id: NodeId(hash(Tag::Message, b"n")),
            resources: ResourceAsk::default(),
            gas_price: 1,
            target_users: vec![owner],
            deposit: 1,
            token: Token::Particle,
        };
        assert!(prov.accepts(&owner));
        assert!(!prov.accepts(&addr(b"x")));
    }
}
