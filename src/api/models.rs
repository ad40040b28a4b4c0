//! The JSON bodies of etcd 3.4's grpc-gateway, in the proto3 JSON mapping it uses.
//!
//! The gateway marshals with the proto field names (`create_revision`, `prev_kv`, but also
//! `ID`, `TTL`, `dbSize`, `peerURLs` where the proto itself spells them so), writes 64-bit
//! integers as strings, bytes as base64 and enums by name, and leaves out every field that
//! holds its default value. On input it accepts integers as strings or numbers and enums by
//! name or number. The [`proto`] module holds those encodings; the types below only say which
//! field uses which, and convert to and from keel-store's types.

use keel_store as store;
use serde::{Deserialize, Serialize};

/// Serde helpers for the proto3 JSON mapping.
pub mod proto {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use base64::Engine as _;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    /// For `skip_serializing_if`: proto3 leaves default values out.
    pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
        *value == T::default()
    }

    /// `bytes` fields: base64 (standard alphabet, padded) both ways.
    pub mod bytes {
        use super::*;

        /// Writes base64.
        pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(&STANDARD.encode(value))
        }

        /// Reads base64; `null` is empty.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<u8>, D::Error> {
            let text: Option<String> = serde::Deserialize::deserialize(deserializer)?;
            match text {
                None => Ok(Vec::new()),
                // The gateway also accepts URL-safe base64; trying it second costs nothing.
                Some(text) => STANDARD
                    .decode(text.as_bytes())
                    .or_else(|_| URL_SAFE.decode(text.as_bytes()))
                    .map_err(|e| de::Error::custom(format!("illegal base64 data: {e}"))),
            }
        }
    }

    /// `repeated bytes` fields (output only).
    pub mod bytes_list {
        use super::*;
        use serde::ser::SerializeSeq;

        /// Writes a list of base64 strings.
        pub fn serialize<S: Serializer>(
            value: &[Vec<u8>],
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(Some(value.len()))?;
            for item in value {
                seq.serialize_element(&STANDARD.encode(item))?;
            }
            seq.end()
        }

        /// Reads a list of base64 strings (for clients of the gateway).
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<Vec<u8>>, D::Error> {
            let texts: Option<Vec<String>> = serde::Deserialize::deserialize(deserializer)?;
            texts
                .unwrap_or_default()
                .iter()
                .map(|text| {
                    STANDARD
                        .decode(text.as_bytes())
                        .map_err(|e| de::Error::custom(format!("illegal base64 data: {e}")))
                })
                .collect()
        }
    }

    struct IntegerVisitor;

    impl Visitor<'_> for IntegerVisitor {
        type Value = i128;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer, or a string holding one")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
            Ok(v.into())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
            Ok(v.into())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
            if v.fract() == 0.0 && v.abs() < 1e19 {
                Ok(v as i128)
            } else {
                Err(E::custom(format!("invalid integer {v}")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format!("invalid integer {v:?}")))
        }
        fn visit_unit<E: de::Error>(self) -> Result<i128, E> {
            Ok(0)
        }
    }

    fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i128, D::Error> {
        deserializer.deserialize_any(IntegerVisitor)
    }

    /// `int64` fields: a JSON string out, a string or a number in.
    pub mod int64 {
        use super::*;

        /// Writes a decimal string.
        pub fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(value)
        }

        /// Reads a string or a number.
        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
            let v = integer(deserializer)?;
            i64::try_from(v)
                .map_err(|_| de::Error::custom(format!("{v} is out of range for int64")))
        }
    }

    /// `uint64` fields: a JSON string out, a string or a number in.
    pub mod uint64 {
        use super::*;

        /// Writes a decimal string.
        pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(value)
        }

        /// Reads a string or a number.
        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
            let v = integer(deserializer)?;
            u64::try_from(v)
                .map_err(|_| de::Error::custom(format!("{v} is out of range for uint64")))
        }
    }

    /// Declares a proto enum: written by name, read by name or number, the first variant
    /// being the proto default (0).
    macro_rules! proto_enum {
        ($(#[$meta:meta])* $name:ident as $proto:literal { $($variant:ident = $num:literal => $text:literal),+ $(,)? }) => {
            $(#[$meta])*
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
            #[allow(missing_docs)]
            pub enum $name {
                #[default]
                $($variant),+
            }

            impl serde::Serialize for $name {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_str(match self { $($name::$variant => $text),+ })
                }
            }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let value = serde_json::Value::deserialize(d)?;
                    match &value {
                        serde_json::Value::Null => Ok($name::default()),
                        serde_json::Value::String(s) => match s.as_str() {
                            $($text => Ok($name::$variant),)+
                            other => Err(serde::de::Error::custom(format!(
                                "unknown value {other:?} for enum {}", $proto))),
                        },
                        serde_json::Value::Number(n) => match n.as_i64() {
                            $(Some($num) => Ok($name::$variant),)+
                            _ => Err(serde::de::Error::custom(format!(
                                "unknown value {n} for enum {}", $proto))),
                        },
                        other => Err(serde::de::Error::custom(format!(
                            "invalid value {other} for enum {}", $proto))),
                    }
                }
            }
        };
    }
    pub(crate) use proto_enum;
}

use proto::{is_default, proto_enum};

/// `etcdserverpb.ResponseHeader`, carried by every response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponseHeader {
    /// The cluster's id.
    #[serde(with = "proto::uint64", skip_serializing_if = "is_default")]
    pub cluster_id: u64,
    /// The answering member's id.
    #[serde(with = "proto::uint64", skip_serializing_if = "is_default")]
    pub member_id: u64,
    /// The keyspace revision the response reflects.
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub revision: i64,
    /// The Raft term of the answering member.
    #[serde(with = "proto::uint64", skip_serializing_if = "is_default")]
    pub raft_term: u64,
}

impl ResponseHeader {
    /// The header nested responses of a txn carry: the revision alone, as etcd does.
    pub fn revision_only(revision: i64) -> Self {
        ResponseHeader {
            revision,
            ..Default::default()
        }
    }
}

/// `mvccpb.KeyValue`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    /// The key.
    #[serde(with = "proto::bytes", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    /// Revision of the key's creation.
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub create_revision: i64,
    /// Revision of the last write.
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub mod_revision: i64,
    /// Writes since creation.
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub version: i64,
    /// The value.
    #[serde(with = "proto::bytes", skip_serializing_if = "Vec::is_empty")]
    pub value: Vec<u8>,
    /// Attached lease.
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub lease: i64,
}

impl From<store::KeyValue> for KeyValue {
    fn from(kv: store::KeyValue) -> Self {
        KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

proto_enum! {
    /// `mvccpb.Event.EventType`.
    EventType as "mvccpb.Event_EventType" { Put = 0 => "PUT", Delete = 1 => "DELETE" }
}

/// `mvccpb.Event`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Put (omitted, being the default) or delete.
    #[serde(rename = "type", skip_serializing_if = "is_default")]
    pub kind: EventType,
    /// The key after the event.
    pub kv: KeyValue,
    /// The key before it, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValue>,
}

impl From<store::Event> for Event {
    fn from(event: store::Event) -> Self {
        Event {
            kind: match event.kind {
                store::EventType::Put => EventType::Put,
                store::EventType::Delete => EventType::Delete,
            },
            kv: event.kv.into(),
            prev_kv: event.prev_kv.map(Into::into),
        }
    }
}

// ---- KV service ----

proto_enum! {
    /// `RangeRequest.SortOrder`.
    SortOrder as "etcdserverpb.RangeRequest_SortOrder" { None = 0 => "NONE", Ascend = 1 => "ASCEND", Descend = 2 => "DESCEND" }
}

proto_enum! {
    /// `RangeRequest.SortTarget`.
    SortTarget as "etcdserverpb.RangeRequest_SortTarget" {
        Key = 0 => "KEY", Version = 1 => "VERSION", Create = 2 => "CREATE",
        Mod = 3 => "MOD", Value = 4 => "VALUE",
    }
}

/// `etcdserverpb.RangeRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct RangeRequest {
    /// First key.
    #[serde(with = "proto::bytes")]
    pub key: Vec<u8>,
    /// Range end, exclusive.
    #[serde(with = "proto::bytes", alias = "rangeEnd")]
    pub range_end: Vec<u8>,
    /// Most keys to return.
    #[serde(with = "proto::int64")]
    pub limit: i64,
    /// Revision to read at.
    #[serde(with = "proto::int64")]
    pub revision: i64,
    /// Order.
    #[serde(alias = "sortOrder")]
    pub sort_order: SortOrder,
    /// Sort field.
    #[serde(alias = "sortTarget")]
    pub sort_target: SortTarget,
    /// Skip the linearizable read barrier.
    pub serializable: bool,
    /// Leave values out.
    #[serde(alias = "keysOnly")]
    pub keys_only: bool,
    /// Return only the count.
    #[serde(alias = "countOnly")]
    pub count_only: bool,
    /// Revision filter.
    #[serde(with = "proto::int64", alias = "minModRevision")]
    pub min_mod_revision: i64,
    /// Revision filter.
    #[serde(with = "proto::int64", alias = "maxModRevision")]
    pub max_mod_revision: i64,
    /// Revision filter.
    #[serde(with = "proto::int64", alias = "minCreateRevision")]
    pub min_create_revision: i64,
    /// Revision filter.
    #[serde(with = "proto::int64", alias = "maxCreateRevision")]
    pub max_create_revision: i64,
}

impl From<RangeRequest> for store::RangeRequest {
    fn from(r: RangeRequest) -> Self {
        store::RangeRequest {
            key: r.key,
            range_end: r.range_end,
            limit: r.limit,
            revision: r.revision,
            sort_order: match r.sort_order {
                SortOrder::None => store::SortOrder::None,
                SortOrder::Ascend => store::SortOrder::Ascend,
                SortOrder::Descend => store::SortOrder::Descend,
            },
            sort_target: match r.sort_target {
                SortTarget::Key => store::SortTarget::Key,
                SortTarget::Version => store::SortTarget::Version,
                SortTarget::Create => store::SortTarget::Create,
                SortTarget::Mod => store::SortTarget::Mod,
                SortTarget::Value => store::SortTarget::Value,
            },
            serializable: r.serializable,
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: r.min_mod_revision,
            max_mod_revision: r.max_mod_revision,
            min_create_revision: r.min_create_revision,
            max_create_revision: r.max_create_revision,
        }
    }
}

/// `etcdserverpb.RangeResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RangeResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Matching keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kvs: Vec<KeyValue>,
    /// More keys matched than returned.
    #[serde(skip_serializing_if = "is_default")]
    pub more: bool,
    /// Keys in the range.
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub count: i64,
}

impl RangeResponse {
    /// Wraps the store's answer.
    pub fn new(header: ResponseHeader, r: store::RangeResponse) -> Self {
        RangeResponse {
            header,
            kvs: r.kvs.into_iter().map(Into::into).collect(),
            more: r.more,
            count: r.count,
        }
    }
}

/// `etcdserverpb.PutRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct PutRequest {
    /// The key.
    #[serde(with = "proto::bytes")]
    pub key: Vec<u8>,
    /// The value.
    #[serde(with = "proto::bytes")]
    pub value: Vec<u8>,
    /// Lease to attach.
    #[serde(with = "proto::int64")]
    pub lease: i64,
    /// Return the previous key-value.
    #[serde(alias = "prevKv")]
    pub prev_kv: bool,
    /// Keep the current value.
    #[serde(alias = "ignoreValue")]
    pub ignore_value: bool,
    /// Keep the current lease.
    #[serde(alias = "ignoreLease")]
    pub ignore_lease: bool,
}

impl From<PutRequest> for store::PutRequest {
    fn from(r: PutRequest) -> Self {
        store::PutRequest {
            key: r.key,
            value: r.value,
            lease: r.lease,
            prev_kv: r.prev_kv,
            ignore_value: r.ignore_value,
            ignore_lease: r.ignore_lease,
        }
    }
}

/// `etcdserverpb.PutResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PutResponse {
    /// The header.
    pub header: ResponseHeader,
    /// The previous key-value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValue>,
}

impl PutResponse {
    /// Wraps the store's answer.
    pub fn new(header: ResponseHeader, r: store::PutResponse) -> Self {
        PutResponse {
            header,
            prev_kv: r.prev_kv.map(Into::into),
        }
    }
}

/// `etcdserverpb.DeleteRangeRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct DeleteRangeRequest {
    /// First key.
    #[serde(with = "proto::bytes")]
    pub key: Vec<u8>,
    /// Range end.
    #[serde(with = "proto::bytes", alias = "rangeEnd")]
    pub range_end: Vec<u8>,
    /// Return the deleted key-values.
    #[serde(alias = "prevKv")]
    pub prev_kv: bool,
}

impl From<DeleteRangeRequest> for store::DeleteRangeRequest {
    fn from(r: DeleteRangeRequest) -> Self {
        store::DeleteRangeRequest {
            key: r.key,
            range_end: r.range_end,
            prev_kv: r.prev_kv,
        }
    }
}

/// `etcdserverpb.DeleteRangeResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteRangeResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Keys deleted.
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub deleted: i64,
    /// The deleted key-values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prev_kvs: Vec<KeyValue>,
}

impl DeleteRangeResponse {
    /// Wraps the store's answer.
    pub fn new(header: ResponseHeader, r: store::DeleteRangeResponse) -> Self {
        DeleteRangeResponse {
            header,
            deleted: r.deleted,
            prev_kvs: r.prev_kvs.into_iter().map(Into::into).collect(),
        }
    }
}

proto_enum! {
    /// `Compare.CompareResult`.
    CompareResult as "etcdserverpb.Compare_CompareResult" { Equal = 0 => "EQUAL", Greater = 1 => "GREATER", Less = 2 => "LESS", NotEqual = 3 => "NOT_EQUAL" }
}

proto_enum! {
    /// `Compare.CompareTarget`.
    CompareTarget as "etcdserverpb.Compare_CompareTarget" { Version = 0 => "VERSION", Create = 1 => "CREATE", Mod = 2 => "MOD", Value = 3 => "VALUE", Lease = 4 => "LEASE" }
}

/// `etcdserverpb.Compare`. The compared value is a oneof in the proto; `target` says which
/// of its fields counts, and an absent one compares as its default, as in etcd.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Compare {
    /// The relation.
    pub result: CompareResult,
    /// Which field is compared.
    pub target: CompareTarget,
    /// The key.
    #[serde(with = "proto::bytes")]
    pub key: Vec<u8>,
    /// For `VERSION`.
    #[serde(with = "proto::int64")]
    pub version: i64,
    /// For `CREATE`.
    #[serde(with = "proto::int64", alias = "createRevision")]
    pub create_revision: i64,
    /// For `MOD`.
    #[serde(with = "proto::int64", alias = "modRevision")]
    pub mod_revision: i64,
    /// For `VALUE`.
    #[serde(with = "proto::bytes")]
    pub value: Vec<u8>,
    /// For `LEASE`.
    #[serde(with = "proto::int64")]
    pub lease: i64,
    /// Compare every key in `[key, range_end)`.
    #[serde(with = "proto::bytes", alias = "rangeEnd")]
    pub range_end: Vec<u8>,
}

impl From<Compare> for store::Compare {
    fn from(c: Compare) -> Self {
        store::Compare {
            result: match c.result {
                CompareResult::Equal => store::CompareResult::Equal,
                CompareResult::Greater => store::CompareResult::Greater,
                CompareResult::Less => store::CompareResult::Less,
                CompareResult::NotEqual => store::CompareResult::NotEqual,
            },
            target: match c.target {
                CompareTarget::Version => store::CompareTarget::Version(c.version),
                CompareTarget::Create => store::CompareTarget::CreateRevision(c.create_revision),
                CompareTarget::Mod => store::CompareTarget::ModRevision(c.mod_revision),
                CompareTarget::Value => store::CompareTarget::Value(c.value),
                CompareTarget::Lease => store::CompareTarget::Lease(c.lease),
            },
            key: c.key,
            range_end: c.range_end,
        }
    }
}

/// `etcdserverpb.RequestOp`: exactly one of its fields.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOp {
    /// A range.
    #[serde(alias = "requestRange")]
    RequestRange(RangeRequest),
    /// A put.
    #[serde(alias = "requestPut")]
    RequestPut(PutRequest),
    /// A delete.
    #[serde(alias = "requestDeleteRange")]
    RequestDeleteRange(DeleteRangeRequest),
    /// A nested txn.
    #[serde(alias = "requestTxn")]
    RequestTxn(TxnRequest),
}

impl From<RequestOp> for store::RequestOp {
    fn from(op: RequestOp) -> Self {
        match op {
            RequestOp::RequestRange(r) => store::RequestOp::Range(r.into()),
            RequestOp::RequestPut(r) => store::RequestOp::Put(r.into()),
            RequestOp::RequestDeleteRange(r) => store::RequestOp::DeleteRange(r.into()),
            RequestOp::RequestTxn(r) => store::RequestOp::Txn(r.into()),
        }
    }
}

/// `etcdserverpb.TxnRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct TxnRequest {
    /// Conditions.
    pub compare: Vec<Compare>,
    /// Run when every condition holds.
    pub success: Vec<RequestOp>,
    /// Run otherwise.
    pub failure: Vec<RequestOp>,
}

impl From<TxnRequest> for store::TxnRequest {
    fn from(t: TxnRequest) -> Self {
        store::TxnRequest {
            compare: t.compare.into_iter().map(Into::into).collect(),
            success: t.success.into_iter().map(Into::into).collect(),
            failure: t.failure.into_iter().map(Into::into).collect(),
        }
    }
}

/// `etcdserverpb.ResponseOp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseOp {
    /// From a range.
    ResponseRange(RangeResponse),
    /// From a put.
    ResponsePut(PutResponse),
    /// From a delete.
    ResponseDeleteRange(DeleteRangeResponse),
    /// From a nested txn.
    ResponseTxn(TxnResponse),
}

/// `etcdserverpb.TxnResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Whether the compares held.
    #[serde(skip_serializing_if = "is_default")]
    pub succeeded: bool,
    /// One per operation run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseOp>,
}

impl TxnResponse {
    /// Wraps the store's answer. Nested responses carry a header holding only the revision,
    /// and nested txns an empty one, exactly as etcd 3.4 answers.
    pub fn new(header: ResponseHeader, t: store::TxnResponse, revision: i64) -> Self {
        let nested = ResponseHeader::revision_only(revision);
        TxnResponse {
            header,
            succeeded: t.succeeded,
            responses: t
                .responses
                .into_iter()
                .map(|op| match op {
                    store::ResponseOp::Range(r) => {
                        ResponseOp::ResponseRange(RangeResponse::new(nested, r))
                    }
                    store::ResponseOp::Put(r) => {
                        ResponseOp::ResponsePut(PutResponse::new(nested, r))
                    }
                    store::ResponseOp::DeleteRange(r) => {
                        ResponseOp::ResponseDeleteRange(DeleteRangeResponse::new(nested, r))
                    }
                    store::ResponseOp::Txn(t) => ResponseOp::ResponseTxn(TxnResponse::new(
                        ResponseHeader::default(),
                        t,
                        revision,
                    )),
                })
                .collect(),
        }
    }
}

/// `etcdserverpb.CompactionRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct CompactionRequest {
    /// Compact up to this revision.
    #[serde(with = "proto::int64")]
    pub revision: i64,
    /// Wait until the compaction is durable (every compaction here is).
    pub physical: bool,
}

/// Responses that are a header and nothing else (`CompactionResponse`, `LeaseRevokeResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeaderOnly {
    /// The header.
    pub header: ResponseHeader,
}

// ---- Lease service ----

/// `LeaseGrantRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct LeaseGrantRequest {
    /// Requested TTL, seconds.
    #[serde(rename = "TTL", with = "proto::int64")]
    pub ttl: i64,
    /// Requested id; 0 lets the server choose.
    #[serde(rename = "ID", with = "proto::int64")]
    pub id: i64,
}

/// `LeaseGrantResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseGrantResponse {
    /// The header.
    pub header: ResponseHeader,
    /// The lease id.
    #[serde(
        rename = "ID",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub id: i64,
    /// The granted TTL.
    #[serde(
        rename = "TTL",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub ttl: i64,
    /// Unused by etcd 3.4 (errors come back as errors); kept for the shape.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// `LeaseRevokeRequest`, `LeaseKeepAliveRequest` (and requests without fields): a lease id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct LeaseId {
    /// The lease id.
    #[serde(rename = "ID", with = "proto::int64")]
    pub id: i64,
}

/// `LeaseKeepAliveResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseKeepAliveResponse {
    /// The header.
    pub header: ResponseHeader,
    /// The lease id.
    #[serde(
        rename = "ID",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub id: i64,
    /// The renewed TTL; 0 (omitted) when the lease does not exist.
    #[serde(
        rename = "TTL",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub ttl: i64,
}

/// `LeaseTimeToLiveRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct LeaseTimeToLiveRequest {
    /// The lease id.
    #[serde(rename = "ID", with = "proto::int64")]
    pub id: i64,
    /// List the attached keys.
    pub keys: bool,
}

/// `LeaseTimeToLiveResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseTimeToLiveResponse {
    /// The header.
    pub header: ResponseHeader,
    /// The lease id.
    #[serde(
        rename = "ID",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub id: i64,
    /// Seconds left; -1 when the lease does not exist.
    #[serde(
        rename = "TTL",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub ttl: i64,
    /// The TTL it was granted with.
    #[serde(
        rename = "grantedTTL",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub granted_ttl: i64,
    /// Attached keys, when asked for.
    #[serde(with = "proto::bytes_list", skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Vec<u8>>,
}

/// `LeaseStatus` inside `LeaseLeasesResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseStatus {
    /// The lease id.
    #[serde(
        rename = "ID",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub id: i64,
}

/// `LeaseLeasesResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseLeasesResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Every lease.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseStatus>,
}

// ---- Watch service ----

proto_enum! {
    /// `WatchCreateRequest.FilterType`.
    FilterType as "etcdserverpb.WatchCreateRequest_FilterType" { NoPut = 0 => "NOPUT", NoDelete = 1 => "NODELETE" }
}

/// `WatchCreateRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct WatchCreateRequest {
    /// First key.
    #[serde(with = "proto::bytes")]
    pub key: Vec<u8>,
    /// Range end.
    #[serde(with = "proto::bytes", alias = "rangeEnd")]
    pub range_end: Vec<u8>,
    /// First revision to deliver.
    #[serde(with = "proto::int64", alias = "startRevision")]
    pub start_revision: i64,
    /// Send periodic progress notifications.
    #[serde(alias = "progressNotify")]
    pub progress_notify: bool,
    /// Event filters.
    pub filters: Vec<FilterType>,
    /// Attach previous key-values.
    #[serde(alias = "prevKv")]
    pub prev_kv: bool,
    /// Client-chosen watch id; 0 lets the server choose.
    #[serde(with = "proto::int64", alias = "watchId")]
    pub watch_id: i64,
    /// Split responses larger than the request limit over several, marked `fragment`.
    pub fragment: bool,
}

/// `WatchCancelRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct WatchCancelRequest {
    /// The watch to cancel.
    #[serde(with = "proto::int64", alias = "watchId")]
    pub watch_id: i64,
}

/// `WatchProgressRequest` (no fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct WatchProgressRequest {}

/// `WatchRequest`: exactly one of its fields.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchRequest {
    /// Start a watch.
    #[serde(alias = "createRequest")]
    CreateRequest(WatchCreateRequest),
    /// Stop one.
    #[serde(alias = "cancelRequest")]
    CancelRequest(WatchCancelRequest),
    /// Ask for a progress notification.
    #[serde(alias = "progressRequest")]
    ProgressRequest(WatchProgressRequest),
}

/// `WatchResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Which watch this is about (omitted when 0, as proto3 does).
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub watch_id: i64,
    /// Answer to a create request.
    #[serde(skip_serializing_if = "is_default")]
    pub created: bool,
    /// The watch is over.
    #[serde(skip_serializing_if = "is_default")]
    pub canceled: bool,
    /// Set when the watch was canceled for compaction.
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub compact_revision: i64,
    /// Why the watch was canceled.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cancel_reason: String,
    /// More events of the same revision follow in the next response (a watch created
    /// with `fragment`, whose events exceed the request limit).
    #[serde(skip_serializing_if = "is_default")]
    pub fragment: bool,
    /// The events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

/// One message of a grpc-gateway server stream: `{"result": ...}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StreamResult<T> {
    /// The message.
    pub result: T,
}

// ---- Maintenance service ----

/// `StatusResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Server version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Database size on disk.
    #[serde(
        rename = "dbSize",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub db_size: i64,
    /// The leader's member id.
    #[serde(with = "proto::uint64", skip_serializing_if = "is_default")]
    pub leader: u64,
    /// Last Raft log index.
    #[serde(
        rename = "raftIndex",
        with = "proto::uint64",
        skip_serializing_if = "is_default"
    )]
    pub raft_index: u64,
    /// Raft term.
    #[serde(
        rename = "raftTerm",
        with = "proto::uint64",
        skip_serializing_if = "is_default"
    )]
    pub raft_term: u64,
    /// Last applied index.
    #[serde(
        rename = "raftAppliedIndex",
        with = "proto::uint64",
        skip_serializing_if = "is_default"
    )]
    pub raft_applied_index: u64,
    /// Active errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Bytes in use (sled does not tell; the on-disk size is reported).
    #[serde(
        rename = "dbSizeInUse",
        with = "proto::int64",
        skip_serializing_if = "is_default"
    )]
    pub db_size_in_use: i64,
    /// Whether this member is a learner.
    #[serde(rename = "isLearner", skip_serializing_if = "is_default")]
    pub is_learner: bool,
}

/// `HashResponse`; the hash is a `uint32`, so a JSON number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HashResponse {
    /// The header.
    pub header: ResponseHeader,
    /// The checksum.
    #[serde(skip_serializing_if = "is_default")]
    pub hash: u32,
}

/// `HashKVRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct HashKvRequest {
    /// Hash up to this revision; 0 = current.
    #[serde(with = "proto::int64")]
    pub revision: i64,
}

/// `HashKVResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HashKvResponse {
    /// The header.
    pub header: ResponseHeader,
    /// The checksum.
    #[serde(skip_serializing_if = "is_default")]
    pub hash: u32,
    /// The compacted revision when hashing.
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub compact_revision: i64,
    /// The revision hashed: the one asked for, or the current one for 0 (etcd 3.5's field;
    /// 3.4 clients ignore it).
    #[serde(with = "proto::int64", skip_serializing_if = "is_default")]
    pub hash_revision: i64,
}

/// `SnapshotResponse`, one chunk of the stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotResponse {
    /// Bytes still to come after this chunk.
    #[serde(with = "proto::uint64", skip_serializing_if = "is_default")]
    pub remaining_bytes: u64,
    /// This chunk.
    #[serde(with = "proto::bytes", skip_serializing_if = "Vec::is_empty")]
    pub blob: Vec<u8>,
}

proto_enum! {
    /// `AlarmRequest.AlarmAction`.
    AlarmAction as "etcdserverpb.AlarmRequest_AlarmAction" { Get = 0 => "GET", Activate = 1 => "ACTIVATE", Deactivate = 2 => "DEACTIVATE" }
}

/// `AlarmRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct AlarmRequest {
    /// What to do.
    pub action: AlarmAction,
    /// The member (0 = all).
    #[serde(rename = "memberID", with = "proto::uint64")]
    pub member_id: u64,
    /// The alarm to activate or deactivate.
    pub alarm: AlarmType,
}

proto_enum! {
    /// `AlarmType`.
    AlarmType as "etcdserverpb.AlarmType" { None = 0 => "NONE", NoSpace = 1 => "NOSPACE", Corrupt = 2 => "CORRUPT" }
}

/// `AlarmMember`: one raised alarm.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmMember {
    /// The member that raised it.
    #[serde(
        rename = "memberID",
        with = "proto::uint64",
        skip_serializing_if = "is_default"
    )]
    pub member_id: u64,
    /// Which alarm.
    #[serde(skip_serializing_if = "is_default")]
    pub alarm: AlarmType,
}

/// `AlarmResponse`. etcd 3.4 answers without a header: `{}` when no alarm is raised.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlarmResponse {
    /// The raised alarms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmMember>,
}

/// `DefragmentResponse`: etcd 3.4 answers `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefragmentResponse {}

// ---- Cluster service ----

/// `etcdserverpb.Member`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    /// Member id.
    #[serde(
        rename = "ID",
        with = "proto::uint64",
        skip_serializing_if = "is_default"
    )]
    pub id: u64,
    /// Human-readable name (empty until the member has started).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Peer URLs.
    #[serde(rename = "peerURLs", skip_serializing_if = "Vec::is_empty")]
    pub peer_urls: Vec<String>,
    /// Client URLs.
    #[serde(rename = "clientURLs", skip_serializing_if = "Vec::is_empty")]
    pub client_urls: Vec<String>,
    /// Learner or voter.
    #[serde(rename = "isLearner", skip_serializing_if = "is_default")]
    pub is_learner: bool,
}

impl From<crate::replica::Member> for Member {
    fn from(m: crate::replica::Member) -> Self {
        Member {
            id: m.id,
            name: m.name,
            peer_urls: m.peer_urls,
            client_urls: m.client_urls,
            is_learner: m.is_learner,
        }
    }
}

/// `MemberListResponse` (and the remove / update / promote responses, same shape).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberListResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Every member.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// `MemberAddRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct MemberAddRequest {
    /// Peer URLs of the new member.
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    /// Add as a learner.
    #[serde(rename = "isLearner")]
    pub is_learner: bool,
}

/// `MemberAddResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberAddResponse {
    /// The header.
    pub header: ResponseHeader,
    /// The new member.
    pub member: Member,
    /// Every member after the change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// `MemberRemoveRequest`, `MemberPromoteRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct MemberId {
    /// Member id.
    #[serde(rename = "ID", with = "proto::uint64")]
    pub id: u64,
}

/// `MemberUpdateRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct MemberUpdateRequest {
    /// Member id.
    #[serde(rename = "ID", with = "proto::uint64")]
    pub id: u64,
    /// New peer URLs.
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
}

/// `MoveLeaderRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct MoveLeaderRequest {
    /// The member to hand the leadership to.
    #[serde(rename = "targetID", with = "proto::uint64")]
    pub target_id: u64,
}

/// `MoveLeaderResponse`. etcd answers `{}` (no header) when the target already leads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct MoveLeaderResponse {
    /// Response header.
    pub header: ResponseHeader,
}

// ---- HTTP endpoints outside the gRPC services ----

/// `GET /health`: etcd writes the boolean as a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"true"` or `"false"`.
    pub health: String,
    /// Why not healthy.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

/// `GET /version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Server version.
    pub etcdserver: String,
    /// Cluster version.
    pub etcdcluster: String,
    /// keel's own version (etcd has no such field; clients ignore it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keel: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_accept_strings_and_numbers_and_write_strings() {
        let r: RangeRequest = serde_json::from_value(json!({"limit": "3", "revision": 7})).unwrap();
        assert_eq!((r.limit, r.revision), (3, 7));
        let h = ResponseHeader {
            cluster_id: u64::MAX,
            revision: 5,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(h).unwrap(),
            json!({"cluster_id": "18446744073709551615", "revision": "5"})
        );
        assert!(serde_json::from_value::<RangeRequest>(json!({"limit": "abc"})).is_err());
    }

    #[test]
    fn enums_by_name_or_number_and_defaults_omitted() {
        let r: RangeRequest =
            serde_json::from_value(json!({"sort_order": "DESCEND", "sort_target": 3})).unwrap();
        assert_eq!(
            (r.sort_order, r.sort_target),
            (SortOrder::Descend, SortTarget::Mod)
        );
        let err = serde_json::from_value::<RangeRequest>(json!({"sort_order": "BOGUS"}));
        assert!(err.unwrap_err().to_string().contains("unknown value"));
        let put = Event {
            kind: EventType::Put,
            kv: KeyValue::default(),
            prev_kv: None,
        };
        assert_eq!(serde_json::to_value(put).unwrap(), json!({"kv": {}}));
    }

    #[test]
    fn compare_reads_the_field_its_target_names() {
        let c: Compare = serde_json::from_value(json!({
            "key": "YQ==", "target": "MOD", "result": "LESS", "mod_revision": "9"
        }))
        .unwrap();
        let c: store::Compare = c.into();
        assert_eq!(c.target, store::CompareTarget::ModRevision(9));
        assert_eq!(c.result, store::CompareResult::Less);
        assert_eq!(c.key, b"a");
    }

    #[test]
    fn request_ops_are_a_oneof() {
        let t: TxnRequest = serde_json::from_value(json!({
            "success": [{"request_put": {"key": "YQ=="}}, {"request_txn": {}}]
        }))
        .unwrap();
        assert!(matches!(t.success[0], RequestOp::RequestPut(_)));
        assert!(matches!(t.success[1], RequestOp::RequestTxn(_)));
    }
}
