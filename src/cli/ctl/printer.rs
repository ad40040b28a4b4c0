//! The one place keelctl writes its output: each response in the format of `-w`.
//!
//! `simple` follows etcdctl's lines byte for byte where keel has the same data (keys and
//! values written raw, so binary values survive a pipe); `json` is the gateway's answer;
//! `table` uses comfy-table; `fields` is etcdctl's `"Field" : value` form.

use std::io::Write as _;

use comfy_table::{presets::ASCII_FULL, Table};
use serde::Serialize;

use super::OutputFormat;
use crate::api::models::{
    AlarmMember, AlarmResponse, DefragmentResponse, DeleteRangeResponse, Event, EventType,
    HashKvResponse, HeaderOnly, KeyValue, LeaseGrantResponse, LeaseKeepAliveResponse,
    LeaseLeasesResponse, LeaseTimeToLiveResponse, MemberAddResponse, MemberListResponse,
    MoveLeaderResponse, PutResponse, RangeResponse, ResponseHeader, ResponseOp, StatusResponse,
    TxnResponse, WatchResponse,
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

    /// A string field as Go's `%q` writes it (`--hex` writes the hex digits instead).
    fn quoted(&self, bytes: &[u8]) -> String {
        if self.hex {
            go_quote(hex(bytes).as_bytes())
        } else {
            go_quote(bytes)
        }
    }

    /// etcdctl's key-value fields; `prefix` is `Prev` for a previous value.
    fn kv_fields(&self, prefix: &str, kv: &KeyValue) {
        self.line(&format!("\"{prefix}Key\" : {}", self.quoted(&kv.key)));
        self.line(&format!(
            "\"{prefix}CreateRevision\" : {}",
            kv.create_revision
        ));
        self.line(&format!("\"{prefix}ModRevision\" : {}", kv.mod_revision));
        self.line(&format!("\"{prefix}Version\" : {}", kv.version));
        self.line(&format!("\"{prefix}Value\" : {}", self.quoted(&kv.value)));
        self.line(&format!("\"{prefix}Lease\" : {}", kv.lease));
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
                    self.kv_fields("", kv);
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
                    self.kv_fields("Prev", prev);
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
                    self.kv_fields("Prev", kv);
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
        match self.format {
            OutputFormat::Json => return self.json(response),
            OutputFormat::Fields => return self.txn_fields(response),
            OutputFormat::Simple | OutputFormat::Table => {}
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

    /// `txn -w fields`: the header, whether it succeeded, then each operation's fields.
    fn txn_fields(&self, response: &TxnResponse) {
        self.header_fields(&response.header);
        self.line(&format!("\"Succeeded\" : {}", response.succeeded));
        for op in &response.responses {
            match op {
                ResponseOp::ResponseRange(r) => self.range(r, RangeView::default()),
                ResponseOp::ResponsePut(r) => self.put(r),
                ResponseOp::ResponseDeleteRange(r) => self.delete(r),
                ResponseOp::ResponseTxn(t) => self.txn_fields(t),
            }
        }
    }

    /// One watch response with events: a JSON line, fields, or etcdctl's lines per event.
    pub fn watch_response(&self, response: &WatchResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            OutputFormat::Fields => {
                self.header_fields(&response.header);
                for event in &response.events {
                    self.line(&format!("\"Type\" : {}", event_type(event.kind)));
                    if let Some(prev) = &event.prev_kv {
                        self.kv_fields("Prev", prev);
                    }
                    self.kv_fields("", &event.kv);
                }
            }
            OutputFormat::Simple | OutputFormat::Table => {
                for event in &response.events {
                    self.event(event);
                }
            }
        }
    }

    /// One watch event, as etcdctl prints it: type, (previous key and value,) key, value.
    pub fn event(&self, event: &Event) {
        if self.format == OutputFormat::Json {
            return self.json(event);
        }
        self.line(event_type(event.kind));
        if let Some(prev) = &event.prev_kv {
            self.kv_simple(prev, RangeView::default());
        }
        self.kv_simple(&event.kv, RangeView::default());
    }

    /// `lease grant`.
    pub fn lease_grant(&self, response: &LeaseGrantResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            OutputFormat::Fields => {
                self.header_fields(&response.header);
                self.line(&format!("\"ID\" : {}", response.id));
                self.line(&format!("\"TTL\" : {}", response.ttl));
            }
            _ => self.line(&format!(
                "lease {} granted with TTL({}s)",
                lease_hex(response.id),
                response.ttl
            )),
        }
    }

    /// `lease revoke`.
    pub fn lease_revoked(&self, id: i64, response: &HeaderOnly) {
        match self.format {
            OutputFormat::Json => self.json(response),
            OutputFormat::Fields => self.header_fields(&response.header),
            _ => self.line(&format!("lease {} revoked", lease_hex(id))),
        }
    }

    /// `lease timetolive`.
    pub fn lease_ttl(&self, response: &LeaseTimeToLiveResponse, with_keys: bool) {
        match self.format {
            OutputFormat::Json => return self.json(response),
            OutputFormat::Fields => {
                self.header_fields(&response.header);
                self.line(&format!("\"ID\" : {}", response.id));
                self.line(&format!("\"TTL\" : {}", response.ttl));
                self.line(&format!("\"GrantedTTL\" : {}", response.granted_ttl));
                for key in &response.keys {
                    self.line(&format!("\"Key\" : {}", self.quoted(key)));
                }
                return;
            }
            OutputFormat::Simple | OutputFormat::Table => {}
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
            OutputFormat::Fields => {
                self.header_fields(&response.header);
                for lease in &response.leases {
                    self.line(&format!("\"ID\" : {}", lease.id));
                }
            }
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
            OutputFormat::Fields => {
                self.header_fields(&response.header);
                self.line(&format!("\"ID\" : {}", response.id));
                self.line(&format!("\"TTL\" : {}", response.ttl));
            }
            _ => self.line(&format!(
                "lease {} keepalived with TTL({})",
                lease_hex(response.id),
                response.ttl
            )),
        }
    }

    /// `member list`.
    pub fn members(&self, response: &MemberListResponse) {
        if self.format == OutputFormat::Fields {
            return self.member_fields(response);
        }
        let rows: Vec<Vec<String>> = response
            .members
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
            OutputFormat::Json => self.json(response),
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

    fn member_fields(&self, response: &MemberListResponse) {
        self.header_fields(&response.header);
        for member in &response.members {
            self.line(&format!("\"ID\" : {}", member.id));
            self.line(&format!("\"Name\" : {}", go_quote(member.name.as_bytes())));
            for url in &member.peer_urls {
                self.line(&format!("\"PeerURL\" : {}", go_quote(url.as_bytes())));
            }
            for url in &member.client_urls {
                self.line(&format!("\"ClientURL\" : {}", go_quote(url.as_bytes())));
            }
            self.line(&format!("\"IsLearner\" : {}", member.is_learner));
            self.line("");
        }
    }

    /// `member add`: etcdctl 3.4's line (ids as Go's `%16x`), then the environment the new
    /// member starts with. In `ETCD_INITIAL_CLUSTER` the new member, which has no name until
    /// it starts, goes by the name given on the command line.
    pub fn member_added(&self, name: &str, response: &MemberAddResponse) {
        if self.format == OutputFormat::Json {
            return self.json(response);
        }
        let added = &response.member;
        self.line(&format!(
            "Member {:16x} added to cluster {:16x}",
            added.id, response.header.cluster_id
        ));
        let cluster: Vec<String> = response
            .members
            .iter()
            .flat_map(|member| {
                let member_name = if member.id == added.id {
                    name
                } else {
                    member.name.as_str()
                };
                member
                    .peer_urls
                    .iter()
                    .map(move |url| format!("{member_name}={url}"))
            })
            .collect();
        self.line("");
        self.line(&format!("ETCD_NAME={name:?}"));
        self.line(&format!("ETCD_INITIAL_CLUSTER={:?}", cluster.join(",")));
        self.line(&format!(
            "ETCD_INITIAL_ADVERTISE_PEER_URLS={:?}",
            added.peer_urls.join(",")
        ));
        self.line("ETCD_INITIAL_CLUSTER_STATE=\"existing\"");
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
        if self.format == OutputFormat::Fields {
            for row in rows {
                let s = &row.answer;
                self.header_fields(&s.header);
                self.line(&format!("\"Version\" : {}", go_quote(s.version.as_bytes())));
                self.line(&format!("\"DBSize\" : {}", s.db_size));
                self.line(&format!("\"Leader\" : {}", s.leader));
                self.line(&format!("\"IsLearner\" : {}", s.is_learner));
                self.line(&format!("\"RaftIndex\" : {}", s.raft_index));
                self.line(&format!("\"RaftTerm\" : {}", s.raft_term));
                self.line(&format!("\"RaftAppliedIndex\" : {}", s.raft_applied_index));
                // Go's Println of a []string.
                self.line(&format!("\"Errors\" : [{}]", s.errors.join(" ")));
                self.line(&format!(
                    "\"Endpoint\" : {}",
                    go_quote(row.endpoint.as_bytes())
                ));
                self.line("");
            }
            return;
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

    /// `move-leader`: etcdctl's line, ids in hex.
    pub fn moved_leader(&self, from: u64, to: u64, response: &MoveLeaderResponse) {
        match self.format {
            OutputFormat::Json => self.json(response),
            OutputFormat::Fields => self.header_fields(&response.header),
            _ => self.line(&format!("Leadership transferred from {from:x} to {to:x}")),
        }
    }

    /// `endpoint hashkv`.
    pub fn endpoint_hashes(&self, rows: &[EndpointRow<HashKvResponse>]) {
        match self.format {
            OutputFormat::Json => {
                #[derive(Serialize)]
                struct Entry<'a> {
                    #[serde(rename = "Endpoint")]
                    endpoint: &'a str,
                    #[serde(rename = "HashKV")]
                    hash: &'a HashKvResponse,
                }
                let entries: Vec<Entry> = rows
                    .iter()
                    .map(|r| Entry {
                        endpoint: &r.endpoint,
                        hash: &r.answer,
                    })
                    .collect();
                self.json(&entries);
            }
            OutputFormat::Fields => {
                for row in rows {
                    self.header_fields(&row.answer.header);
                    self.line(&format!(
                        "\"Endpoint\" : {}",
                        go_quote(row.endpoint.as_bytes())
                    ));
                    self.line(&format!("\"Hash\" : {}", row.answer.hash));
                    self.line("");
                }
            }
            OutputFormat::Table => self.table(
                &["ENDPOINT", "HASH"],
                rows.iter()
                    .map(|r| vec![r.endpoint.clone(), r.answer.hash.to_string()])
                    .collect(),
            ),
            OutputFormat::Simple => {
                for row in rows {
                    self.line(&format!("{}, {}", row.endpoint, row.answer.hash));
                }
            }
        }
    }

    /// `endpoint health`: healthy endpoints on stdout; in the simple form, unhealthy ones on
    /// stderr, as etcdctl writes them.
    pub fn endpoint_health(&self, rows: &[EndpointHealth]) {
        match self.format {
            OutputFormat::Json => self.json(&rows),
            OutputFormat::Fields => {
                for row in rows {
                    self.line(&format!(
                        "\"Endpoint\" : {}",
                        go_quote(row.endpoint.as_bytes())
                    ));
                    self.line(&format!("\"Health\" : {}", row.health));
                    self.line(&format!("\"Took\" : {}", row.took));
                    self.line(&format!("\"Error\" : {}", row.error));
                    self.line("");
                }
            }
            OutputFormat::Table => self.table(
                &["ENDPOINT", "HEALTH", "TOOK", "ERROR"],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.endpoint.clone(),
                            r.health.to_string(),
                            r.took.clone(),
                            r.error.clone(),
                        ]
                    })
                    .collect(),
            ),
            OutputFormat::Simple => {
                for row in rows {
                    if row.health {
                        self.line(&format!(
                            "{} is healthy: successfully committed proposal: took = {}",
                            row.endpoint, row.took
                        ));
                    } else {
                        eprintln!(
                            "{} is unhealthy: failed to commit proposal: {}",
                            row.endpoint, row.error
                        );
                    }
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
            // No header: the alarms are gathered from every endpoint.
            OutputFormat::Fields => {
                for alarm in alarms {
                    self.line(&format!("\"MemberID\" : {}", alarm.member_id));
                    self.line(&format!("\"AlarmType\" : {}", alarm_name(alarm)));
                    self.line("");
                }
            }
            _ => {
                for alarm in alarms {
                    let name = alarm_name(alarm);
                    self.line(&format!("memberID:{} alarm:{name} ", alarm.member_id));
                }
            }
        }
    }
}

/// One endpoint's health, as etcdctl reports it (its JSON names).
#[derive(Clone, Debug, Serialize)]
pub struct EndpointHealth {
    /// The endpoint.
    pub endpoint: String,
    /// Whether a linearizable read succeeded and no alarm is raised.
    pub health: bool,
    /// How long the check took, as Go prints a duration.
    pub took: String,
    /// Why it is unhealthy.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// etcd's name of an event type.
fn event_type(kind: EventType) -> &'static str {
    match kind {
        EventType::Put => "PUT",
        EventType::Delete => "DELETE",
    }
}

/// etcd's name of an alarm (`NOSPACE`).
pub fn alarm_name(alarm: &AlarmMember) -> String {
    let name = serde_json::to_value(alarm.alarm).unwrap_or_default();
    name.as_str().unwrap_or("NONE").to_owned()
}

/// `bytes` quoted as Go's `%q` quotes a string, which is how etcdctl's fields form writes
/// keys and values: printable characters as they are, the usual escapes, `\xNN` for bytes
/// that are not UTF-8 and `\u` for other unprintable characters.
pub fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::from('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('"');
    out
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
        assert_eq!(go_quote(b"a/b c"), r#""a/b c""#);
        assert_eq!(go_quote(b"say \"hi\"\n"), r#""say \"hi\"\n""#);
        assert_eq!(go_quote(b"\x00\xff\xe2\x82\xac"), r#""\x00\xff€""#);
    }
}
