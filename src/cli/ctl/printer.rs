//! The one place keelctl writes its output: each response in the format of `-w`.
//!
//! `simple` follows etcdctl's lines byte for byte where keel has the same data (keys and
//! values written raw, so binary values survive a pipe); `json` is the gateway's answer;
//! `table` uses comfy-table; `fields` is etcdctl's `"Field" : value` form.

use std::io::Write as _;

use comfy_table::{presets::ASCII_FULL, Table};
use serde::Serialize;

use super::OutputFormat;
use crate::api::auth_models::{
    AuthStatusResponse, PermissionType, RoleGetResponse, UserGetResponse,
};
use crate::api::models::{
    AlarmMember, AlarmResponse, DefragmentResponse, DeleteRangeResponse, Event, EventType,
    KeyValue, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseTimeToLiveResponse, Member, PutResponse, RangeResponse, ResponseHeader, ResponseOp,
    StatusResponse, TxnResponse,
};

/// Writes responses to stdout in the chosen format.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    /// The format.
    pub format: OutputFormat,
    /// Keys and values as hex.
    pub hex: bool,
}

/// What `get` leaves out of its simple output.
#[derive(Clone, Copy, Debug, Default)]
pub struct RangeView {
    /// Only keys.
    pub keys_only: bool,
    /// Only values.
    pub values_only: bool,
    /// Only the count.
    pub count_only: bool,
}

/// One endpoint's answer (or failure) for `endpoint status|health|hashkv`.
pub struct EndpointRow<T> {
    /// The endpoint.
    pub endpoint: String,
    /// Its answer.
    pub answer: T,
}

impl Printer {
    /// A printer.
    pub fn new(format: OutputFormat, hex: bool) -> Printer {
        Printer { format, hex }
    }

    fn write(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`keelctl get … | head`) is not worth a panic.
        let _ = out.write_all(bytes).and_then(|_| out.flush());
    }

    /// One line of text.
    pub fn line(&self, text: &str) {
        self.write(format!("{text}\n").as_bytes());
    }

    /// Bytes as a line: raw, or hex with `--hex`.
    fn bytes_line(&self, bytes: &[u8]) {
        if self.hex {
            self.line(&hex(bytes));
        } else {
            let mut line = bytes.to_vec();
            line.push(b'\n');
            self.write(&line);
        }
    }

    /// Bytes for a table cell or a message: text when printable UTF-8, hex otherwise or
    /// with `--hex` (raw control bytes would garble a table).
    pub fn text(&self, bytes: &[u8]) -> String {
        match std::str::from_utf8(bytes) {
            Ok(text) if !self.hex && !text.chars().any(char::is_control) => text.to_owned(),
            _ => hex(bytes),
        }
    }

    /// Any response as the gateway's JSON.
    pub fn json<T: Serialize>(&self, value: &T) {
        self.line(&serde_json::to_string(value).expect("response models always serialize"));
    }

    /// A table of strings.
    pub fn table(&self, headers: &[&str], rows: Vec<Vec<String>>) {
        let mut table = Table::new();
        table.load_preset(ASCII_FULL).set_header(headers.to_vec());
        for row in rows {
            table.add_row(row);
        }
        self.line(&table.to_string());
    }

    fn header_fields(&self, header: &ResponseHeader) {
        self.line(&format!("\"ClusterID\" : {}", header.cluster_id));
        self.line(&format!("\"MemberID\" : {}", header.member_id));
        self.line(&format!("\"Revision\" : {}", header.revision));
        self.line(&format!("\"RaftTerm\" : {}", header.raft_term));
    }

    fn kv_simple(&self, kv: &KeyValue, view: RangeView) {
        if !view.values_only {
            self.bytes_line(&kv.key);
        }
        if !view.keys_only {
            self.bytes_line(&kv.value);
        }
    }

    fn kv_fields(&self, kv: &KeyValue) {
        self.line(&format!("\"Key\" : {:?}", self.text(&kv.key)));
        self.line(&format!("\"CreateRevision\" : {}", kv.create_revision));
        self.line(&format!("\"ModRevision\" : {}", kv.mod_revision));
        self.line(&format!("\"Version\" : {}", kv.version));
        self.line(&format!("\"Value\" : {:?}", self.text(&kv.value)));
        self.line(&format!("\"Lease\" : {}", kv.lease));
    }

    fn kv_table(&self, kvs: &[KeyValue]) {
        let rows = kvs
            .iter()
            .map(|kv| {
                vec![
                    self.text(&kv.key),
                    self.text(&kv.value),
                    kv.create_revision.to_string(),
                    kv.mod_revision.to_string(),
                    kv.version.to_string(),
                    lease_hex(kv.lease),
                ]
            })
            .collect();
        self.table(
            &["KEY", "VALUE", "CREATE REV", "MOD REV", "VERSION", "LEASE"],
            rows,
        );
    }

    /// `get`.
    pub fn range(&self, response: &RangeResponse, view: RangeView) {
        match self.format {
            OutputFormat::Json => self.json(response),
            OutputFormat::Table => self.kv_table(&response.kvs),
            OutputFormat::Fields => {
                self.header_fields(&response.header);
                for kv in &response.kvs {
                    self.kv_fields(kv);
                }
                self.line(&format!("\"More\" : {}", response.more));
                self.line(&format!("\"Count\" : {}", response.count));
            }
            OutputFormat::Simple if view.count_only => self.line(&response.count.to_string()),
            OutputFormat::Simple => {
                for kv in &response.kvs {
                    self.kv_simple(kv, view);
                }
            }
        }
    }

    /// `put`.
    pub fn put(&self, response: &PutResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            OutputFormat::Fields => {
                self.header_fields(&response.header);
                if let Some(prev) = &response.prev_kv {
                    self.kv_fields(prev);
                }
            }
            _ => {
                self.line("OK");
                if let Some(prev) = &response.prev_kv {
                    self.kv_simple(prev, RangeView::default());
                }
            }
        }
    }

    /// `del`.
    pub fn delete(&self, response: &DeleteRangeResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            OutputFormat::Fields => {
                self.header_fields(&response.header);
                self.line(&format!("\"Deleted\" : {}", response.deleted));
                for kv in &response.prev_kvs {
                    self.kv_fields(kv);
                }
            }
            _ => {
                self.line(&response.deleted.to_string());
                for kv in &response.prev_kvs {
                    self.kv_simple(kv, RangeView::default());
                }
            }
        }
    }

    /// `txn`: SUCCESS or FAILURE, a blank line, then each operation's answer.
    pub fn txn(&self, response: &TxnResponse) {
        if self.format == OutputFormat::Json {
            return self.json(response);
        }
        self.line(if response.succeeded {
            "SUCCESS"
        } else {
            "FAILURE"
        });
        for op in &response.responses {
            self.line("");
            match op {
                ResponseOp::ResponseRange(r) => self.range(r, RangeView::default()),
                ResponseOp::ResponsePut(r) => self.put(r),
                ResponseOp::ResponseDeleteRange(r) => self.delete(r),
                ResponseOp::ResponseTxn(t) => self.txn(t),
            }
        }
    }

    /// One watch event, as etcdctl prints it: type, (previous key and value,) key, value.
    pub fn event(&self, event: &Event) {
        if self.format == OutputFormat::Json {
            return self.json(event);
        }
        self.line(match event.kind {
            EventType::Put => "PUT",
            EventType::Delete => "DELETE",
        });
        if let Some(prev) = &event.prev_kv {
            self.kv_simple(prev, RangeView::default());
        }
        self.kv_simple(&event.kv, RangeView::default());
    }

    /// `lease grant`.
    pub fn lease_grant(&self, response: &LeaseGrantResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            _ => self.line(&format!(
                "lease {} granted with TTL({}s)",
                lease_hex(response.id),
                response.ttl
            )),
        }
    }

    /// `lease timetolive`.
    pub fn lease_ttl(&self, response: &LeaseTimeToLiveResponse, with_keys: bool) {
        if self.format == OutputFormat::Json {
            return self.json(response);
        }
        let id = lease_hex(response.id);
        if response.ttl == -1 {
            return self.line(&format!("lease {id} already expired"));
        }
        let mut text = format!(
            "lease {id} granted with TTL({}s), remaining({}s)",
            response.granted_ttl, response.ttl
        );
        if with_keys {
            let keys: Vec<String> = response.keys.iter().map(|k| self.text(k)).collect();
            text.push_str(&format!(", attached keys([{}])", keys.join(" ")));
        }
        self.line(&text);
    }

    /// `lease list`.
    pub fn leases(&self, response: &LeaseLeasesResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            OutputFormat::Table => self.table(
                &["ID"],
                response
                    .leases
                    .iter()
                    .map(|l| vec![lease_hex(l.id)])
                    .collect(),
            ),
            _ => {
                self.line(&format!("found {} leases", response.leases.len()));
                for lease in &response.leases {
                    self.line(&lease_hex(lease.id));
                }
            }
        }
    }

    /// `lease keep-alive`.
    pub fn keep_alive(&self, response: &LeaseKeepAliveResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            _ => self.line(&format!(
                "lease {} keepalived with TTL({})",
                lease_hex(response.id),
                response.ttl
            )),
        }
    }

    /// `member list`.
    pub fn members(&self, members: &[Member], json: &impl Serialize) {
        let rows: Vec<Vec<String>> = members
            .iter()
            .map(|m| {
                vec![
                    format!("{:x}", m.id),
                    if m.name.is_empty() {
                        "unstarted".into()
                    } else {
                        "started".into()
                    },
                    m.name.clone(),
                    m.peer_urls.join(","),
                    m.client_urls.join(","),
                    m.is_learner.to_string(),
                ]
            })
            .collect();
        match self.format {
            OutputFormat::Json => self.json(json),
            OutputFormat::Table => self.table(
                &[
                    "ID",
                    "STATUS",
                    "NAME",
                    "PEER ADDRS",
                    "CLIENT ADDRS",
                    "IS LEARNER",
                ],
                rows,
            ),
            _ => {
                for row in rows {
                    self.line(&row.join(", "));
                }
            }
        }
    }

    /// `endpoint status`.
    pub fn endpoint_status(&self, rows: &[EndpointRow<StatusResponse>]) {
        #[derive(Serialize)]
        struct Entry<'a> {
            #[serde(rename = "Endpoint")]
            endpoint: &'a str,
            #[serde(rename = "Status")]
            status: &'a StatusResponse,
        }
        if self.format == OutputFormat::Json {
            let entries: Vec<Entry> = rows
                .iter()
                .map(|r| Entry {
                    endpoint: &r.endpoint,
                    status: &r.answer,
                })
                .collect();
            return self.json(&entries);
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let s = &r.answer;
                vec![
                    r.endpoint.clone(),
                    format!("{:x}", s.header.member_id),
                    s.version.clone(),
                    human_bytes(s.db_size.max(0) as u64),
                    (s.leader != 0 && s.leader == s.header.member_id).to_string(),
                    s.is_learner.to_string(),
                    s.raft_term.to_string(),
                    s.raft_index.to_string(),
                    s.raft_applied_index.to_string(),
                    s.errors.join(", "),
                ]
            })
            .collect();
        match self.format {
            OutputFormat::Table => self.table(
                &[
                    "ENDPOINT",
                    "ID",
                    "VERSION",
                    "DB SIZE",
                    "IS LEADER",
                    "IS LEARNER",
                    "RAFT TERM",
                    "RAFT INDEX",
                    "RAFT APPLIED INDEX",
                    "ERRORS",
                ],
                cells,
            ),
            _ => {
                for row in cells {
                    self.line(&row.join(", "));
                }
            }
        }
    }

    /// `compaction`.
    pub fn compacted(&self, revision: i64, response: &impl Serialize) {
        match self.format {
            OutputFormat::Json => self.json(response),
            _ => self.line(&format!("compacted revision {revision}")),
        }
    }

    /// `defrag`, one endpoint.
    pub fn defragmented(&self, endpoint: &str, response: &DefragmentResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            _ => self.line(&format!("Finished defragmenting etcd member[{endpoint}]")),
        }
    }

    /// `alarm list` and `alarm disarm`: etcdctl's `memberID:… alarm:…` lines.
    pub fn alarms(&self, alarms: &[AlarmMember]) {
        match self.format {
            OutputFormat::Json => self.json(&AlarmResponse {
                alarms: alarms.to_vec(),
            }),
            _ => {
                for alarm in alarms {
                    let name = serde_json::to_value(alarm.alarm).unwrap_or_default();
                    let name = name.as_str().unwrap_or("NONE").to_owned();
                    self.line(&format!("memberID:{} alarm:{name} ", alarm.member_id));
                }
            }
        }
    }

    /// A change that answers with a header: etcdctl's message (`User alice created`), or the
    /// gateway's JSON.
    pub fn done(&self, message: &str, response: &impl Serialize) {
        match self.format {
            OutputFormat::Json => self.json(response),
            _ => self.line(message),
        }
    }

    /// `user list`, `role list`: one name a line.
    pub fn names(&self, names: &[String], response: &impl Serialize) {
        match self.format {
            OutputFormat::Json => self.json(response),
            OutputFormat::Table => self.table(
                &["NAME"],
                names.iter().map(|name| vec![name.clone()]).collect(),
            ),
            _ => {
                for name in names {
                    self.line(name);
                }
            }
        }
    }

    /// `user get`: etcdctl's `User:` and `Roles:` lines.
    pub fn user(&self, name: &str, response: &UserGetResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            _ => {
                self.line(&format!("User: {name}"));
                let roles: String = response.roles.iter().map(|r| format!(" {r}")).collect();
                self.line(&format!("Roles:{roles}"));
            }
        }
    }

    /// `role get`: etcdctl's `KV Read:` / `KV Write:` sections.
    pub fn role(&self, name: &str, response: &RoleGetResponse) {
        if self.format == OutputFormat::Json {
            return self.json(response);
        }
        self.line(&format!("Role {name}"));
        for (title, skipped) in [
            ("KV Read:", PermissionType::Write),
            ("KV Write:", PermissionType::Read),
        ] {
            self.line(title);
            for perm in response.perm.iter().filter(|p| p.perm_type != skipped) {
                self.line(&format!(
                    "\t{}",
                    self.permission_range(&perm.key, &perm.range_end)
                ));
            }
        }
    }

    /// A permission's range as etcdctl prints it: the key, or `[key, end)` with
    /// `(prefix key)` when the range is a prefix, or `<open ended>`.
    pub fn permission_range(&self, key: &[u8], range_end: &[u8]) -> String {
        let key_text = self.text(key);
        if range_end.is_empty() {
            return key_text;
        }
        if range_end == [0] {
            return format!("[{key_text}, <open ended>)");
        }
        let range = format!("[{key_text}, {})", self.text(range_end));
        if super::range_end(key, true, false) == range_end {
            format!("{range} (prefix {key_text})")
        } else {
            range
        }
    }

    /// `auth status`.
    pub fn auth_status(&self, response: &AuthStatusResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            _ => {
                self.line(&format!("Authentication Status: {}", response.enabled));
                self.line(&format!("AuthRevision: {}", response.auth_revision));
            }
        }
    }
}

/// Lease ids are printed in hex, as etcdctl does.
pub fn lease_hex(id: i64) -> String {
    format!("{:x}", id)
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sizes as etcdctl prints them (`25 kB`), in powers of 1000.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// A value for a person: text when printable UTF-8, pretty JSON when it is JSON, hex
/// otherwise (`ls` and `inspect`).
pub fn show_value(bytes: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if value.is_object() || value.is_array() {
            return serde_json::to_string_pretty(&value).expect("a Value serializes");
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(text)
            if text
                .chars()
                .all(|c| !c.is_control() || c == '\n' || c == '\t') =>
        {
            text.to_owned()
        }
        _ => hex(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_for_people() {
        assert_eq!(show_value(b"plain"), "plain");
        assert_eq!(show_value(br#"{"a":1}"#), "{\n  \"a\": 1\n}");
        assert_eq!(show_value(&[0, 0xff]), "00ff");
        assert_eq!(human_bytes(25_000), "25 kB");
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(lease_hex(255), "ff");
    }
}
