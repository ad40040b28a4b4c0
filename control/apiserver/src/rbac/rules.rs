//! Policy rules as RBAC evaluates them (`rbac/v1/evaluation_helpers.go`): whether a rule
//! allows a request, whether one set of rules covers another (escalation checks), and the
//! compact text kube prints for rules a user lacks.

use serde_json::{json, Value};

use super::authorizer::Attributes;
use crate::go_format::go_quote;

/// One PolicyRule.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicyRule {
    /// Verbs (`*` for all).
    pub verbs: Vec<String>,
    /// API groups (`*` for all, "" for core).
    pub api_groups: Vec<String>,
    /// Resources, `pods` or `pods/status` (`*`, `*/status`).
    pub resources: Vec<String>,
    /// Object names (empty: every object).
    pub resource_names: Vec<String>,
    /// Non-resource paths, `/healthz` or `/apis/*`.
    pub non_resource_urls: Vec<String>,
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value[key]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl PolicyRule {
    /// A resource rule.
    pub fn resource(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: owned(verbs),
            api_groups: owned(groups),
            resources: owned(resources),
            ..PolicyRule::default()
        }
    }

    /// A non-resource rule.
    pub fn urls(verbs: &[&str], urls: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: owned(verbs),
            non_resource_urls: owned(urls),
            ..PolicyRule::default()
        }
    }

    /// The same rule restricted to `names`.
    pub fn named(mut self, names: &[&str]) -> PolicyRule {
        self.resource_names = owned(names);
        self
    }

    /// Reads a rule of a stored role.
    pub fn from_json(value: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(value, "verbs"),
            api_groups: strings(value, "apiGroups"),
            resources: strings(value, "resources"),
            resource_names: strings(value, "resourceNames"),
            non_resource_urls: strings(value, "nonResourceURLs"),
        }
    }

    /// The rule as JSON, empty lists left out as kube's encoder leaves them out.
    pub fn to_json(&self) -> Value {
        let mut rule = json!({"verbs": self.verbs});
        for (key, values) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !values.is_empty() {
                rule[key] = json!(values);
            }
        }
        rule
    }

    /// The rules of a stored Role or ClusterRole.
    pub fn of_role(role: &Value) -> Vec<PolicyRule> {
        role["rules"]
            .as_array()
            .map(|rules| rules.iter().map(PolicyRule::from_json).collect())
            .unwrap_or_default()
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    fn group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    /// `pods/status` matches `pods/status`, `*` and `*/status`.
    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || r == combined
                || (!subresource.is_empty()
                    && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
        })
    }

    fn name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    fn url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|url| {
            url == "*"
                || url == path
                || url
                    .strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix))
        })
    }

    /// Whether this rule allows the request.
    pub fn allows(&self, request: &Attributes) -> bool {
        if !self.verb_matches(&request.verb) {
            return false;
        }
        match &request.resource {
            Some(r) => {
                let combined = if r.subresource.is_empty() {
                    r.resource.clone()
                } else {
                    format!("{}/{}", r.resource, r.subresource)
                };
                self.group_matches(&r.group)
                    && self.resource_matches(&combined, &r.subresource)
                    && self.name_matches(&r.name)
            }
            None => self.url_matches(&request.path),
        }
    }

    /// Whether this (owner's) rule covers `atomic`, a rule of one verb, group, resource and
    /// at most one name or URL (kube's `ruleCovers`).
    fn covers_atomic(&self, atomic: &PolicyRule) -> bool {
        let has_all = |owner: &[String], wanted: &[String], star: bool| {
            wanted
                .iter()
                .all(|w| owner.iter().any(|o| o == w || (star && o == "*")))
        };
        let verbs = has_all(&self.verbs, &atomic.verbs, true);
        let groups = has_all(&self.api_groups, &atomic.api_groups, true);
        let resources = atomic.resources.iter().all(|wanted| {
            self.resources.iter().any(|owned| {
                owned == "*"
                    || owned == wanted
                    || (owned.starts_with("*/")
                        && wanted
                            .split_once('/')
                            .is_some_and(|(_, sub)| owned[2..] == *sub))
                    || (owned.ends_with("/*")
                        && wanted
                            .split_once('/')
                            .is_some_and(|(res, _)| owned[..owned.len() - 2] == *res))
            })
        });
        let urls = atomic.non_resource_urls.iter().all(|wanted| {
            self.non_resource_urls.iter().any(|owned| {
                owned == "*"
                    || owned == wanted
                    || owned.strip_suffix('*').is_some_and(|prefix| {
                        wanted.starts_with(prefix)
                            && (!wanted.ends_with('*') || wanted.len() >= owned.len())
                    })
            })
        });
        let names = self.resource_names.is_empty()
            || (!atomic.resource_names.is_empty()
                && has_all(&self.resource_names, &atomic.resource_names, false));
        verbs && groups && resources && urls && names
    }

    /// The rule split into atomic rules: one verb, group, resource and name (or URL) each.
    fn breakdown(&self) -> Vec<PolicyRule> {
        let mut atoms = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    let base = PolicyRule::resource(&[verb], &[group], &[resource]);
                    if self.resource_names.is_empty() {
                        atoms.push(base);
                    } else {
                        for name in &self.resource_names {
                            atoms.push(base.clone().named(&[name]));
                        }
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                atoms.push(PolicyRule::urls(&[verb], &[url]));
            }
        }
        atoms
    }

    /// kube's `CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let quoted = |items: &[String]| {
            let items: Vec<String> = items.iter().map(|i| go_quote(i)).collect();
            format!("[{}]", items.join(" "))
        };
        let mut parts = Vec::new();
        for (label, items) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !items.is_empty() {
                parts.push(format!("{label}:{}", quoted(items)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// Whether `owner` covers every rule of `requested`; if not, the atomic rules it misses.
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> = requested
        .iter()
        .flat_map(PolicyRule::breakdown)
        .filter(|atom| !owner.iter().any(|o| o.covers_atomic(atom)))
        .collect();
    (missing.is_empty(), missing)
}

/// Merges atomic resource rules that differ only in their verb (kube's `CompactRules`).
pub fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let simple = rule.resource_names.is_empty()
            && rule.non_resource_urls.is_empty()
            && rule.api_groups.len() == 1
            && rule.resources.len() == 1;
        let merged = simple
            && out.iter_mut().any(|existing| {
                let same = existing.resource_names.is_empty()
                    && existing.non_resource_urls.is_empty()
                    && existing.api_groups == rule.api_groups
                    && existing.resources == rule.resources;
                if same {
                    for verb in &rule.verbs {
                        if !existing.verbs.contains(verb) {
                            existing.verbs.push(verb.clone());
                        }
                    }
                }
                same
            });
        if !merged {
            out.push(rule);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::authorizer::ResourceAttributes;

    fn request(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            path: String::new(),
            resource: Some(ResourceAttributes {
                group: group.into(),
                resource: resource.into(),
                subresource: sub.into(),
                namespace: "default".into(),
                name: name.into(),
            }),
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let rule = PolicyRule::resource(&["get", "list"], &[""], &["pods", "*/status"]);
        assert!(rule.allows(&request("list", "", "pods", "", "")));
        assert!(!rule.allows(&request("watch", "", "pods", "", "")));
        assert!(!rule.allows(&request("get", "apps", "pods", "", "")));
        assert!(rule.allows(&request("get", "", "nodes", "status", "n1")));
        assert!(!rule.allows(&request("get", "", "pods", "log", "p")));
        let named = PolicyRule::resource(&["get"], &["*"], &["leases"]).named(&["kube-scheduler"]);
        assert!(named.allows(&request(
            "get",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-scheduler"
        )));
        assert!(!named.allows(&request(
            "get",
            "coordination.k8s.io",
            "leases",
            "",
            "other"
        )));
        assert!(!named.allows(&request("list", "coordination.k8s.io", "leases", "", "")));
        let urls = PolicyRule::urls(&["get"], &["/healthz", "/apis/*"]);
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            resource: None,
        };
        assert!(urls.allows(&path("/healthz")));
        assert!(urls.allows(&path("/apis/apps/v1")));
        assert!(!urls.allows(&path("/api")));
    }

    #[test]
    fn coverage_reports_what_is_missing_compactly() {
        let owner = [PolicyRule::resource(&["get", "list"], &[""], &["pods"])];
        let wanted = [PolicyRule::resource(
            &["get", "list", "delete", "create"],
            &[""],
            &["pods", "secrets"],
        )];
        let (covered, missing) = covers(&owner, &wanted);
        assert!(!covered);
        let text: Vec<String> = compact(missing)
            .iter()
            .map(PolicyRule::compact_string)
            .collect();
        assert_eq!(
            text,
            [
                "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\" \"create\"]}",
                "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\" \"delete\" \"create\"]}",
            ]
        );
        let admin = [PolicyRule::resource(&["*"], &["*"], &["*"])];
        assert!(covers(&admin, &wanted).0);
        let named = [PolicyRule::resource(&["get"], &[""], &["pods"]).named(&["a"])];
        assert!(!covers(&named, &[PolicyRule::resource(&["get"], &[""], &["pods"])]).0);
        assert!(
            covers(
                &named,
                &[PolicyRule::resource(&["get"], &[""], &["pods"]).named(&["a"])]
            )
            .0
        );
    }
}
