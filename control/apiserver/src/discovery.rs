//! Discovery: what kubectl reads before any command to learn the resources.
//!
//! Aggregated discovery (`apidiscovery.k8s.io` v2, and v2beta1 for older clients) is served
//! only to an Accept header that lists it, with its exact Content-Type, since kubectl decodes
//! by Content-Type; everyone else gets the legacy documents (`APIVersions`, `APIGroupList`,
//! `APIResourceList`), which `kubectl drain` reads even when aggregated discovery is there.

use serde_json::{json, Value};

use crate::registry::{Registry, Resource, Subresource};
use crate::rest::Reply;

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The aggregated format an Accept header asks for, if any: (version, Content-Type).
fn aggregated(accept: &str) -> Option<(&'static str, &'static str)> {
    for media in accept.split(',') {
        if !media.contains("g=apidiscovery.k8s.io") || !media.contains("as=APIGroupDiscoveryList") {
            continue;
        }
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        if params.contains(&"v=v2") {
            return Some((
                "v2",
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            ));
        }
        if params.contains(&"v=v2beta1") {
            return Some((
                "v2beta1",
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
            ));
        }
    }
    None
}

/// The kind, group and version a subresource answers with (the schemas' table).
fn subresource_kind(
    resource: &Resource,
    sub: Subresource,
) -> (&'static str, &'static str, &'static str) {
    let gvk = crate::schema::subresource_kind(sub, crate::schema::Gvk::of(resource));
    (gvk.group, gvk.version, gvk.kind)
}

fn subresource_verbs(sub: Subresource) -> &'static [&'static str] {
    match sub {
        Subresource::Status | Subresource::Scale | Subresource::Approval => {
            &["get", "patch", "update"]
        }
        Subresource::Finalize => &["update"],
        Subresource::Binding | Subresource::Eviction | Subresource::Token => &["create"],
        Subresource::Log => &["get"],
        Subresource::Exec | Subresource::Attach | Subresource::PortForward => &["create", "get"],
    }
}

fn aggregated_resource(resource: &Resource) -> Value {
    let subresources: Vec<Value> = resource
        .subresources
        .iter()
        .map(|&sub| {
            let (group, version, kind) = subresource_kind(resource, sub);
            json!({"subresource": sub.name(), "verbs": subresource_verbs(sub),
                "responseKind": {"group": group, "version": version, "kind": kind}})
        })
        .collect();
    let mut entry = json!({
        "resource": resource.plural,
        "responseKind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": resource.singular,
        "verbs": VERBS,
    });
    if !resource.short_names.is_empty() {
        entry["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        entry["categories"] = json!(resource.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

fn aggregated_list(registry: &Registry, core: bool, version: &str) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(group, _)| group.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = registry
                        .in_group_version(group, v)
                        .iter()
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {}, "items": items})
}

/// `/api`.
pub fn core_versions(registry: &Registry, accept: &str, server_address: &str) -> Reply {
    if let Some((version, content_type)) = aggregated(accept) {
        return Reply::Typed(200, aggregated_list(registry, true, version), content_type);
    }
    Reply::Object(
        200,
        json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}),
    )
}

fn group_entry(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
}

/// `/apis`.
pub fn groups(registry: &Registry, accept: &str) -> Reply {
    if let Some((version, content_type)) = aggregated(accept) {
        return Reply::Typed(200, aggregated_list(registry, false, version), content_type);
    }
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| group_entry(group, &versions))
        .collect();
    Reply::Object(
        200,
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

/// `/apis/GROUP`; `None` for a group not served.
pub fn group(registry: &Registry, name: &str) -> Option<Reply> {
    let (group, versions) = registry
        .groups()
        .into_iter()
        .find(|(g, _)| *g == name && !g.is_empty())?;
    let mut entry = group_entry(group, &versions);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(Reply::Object(200, entry))
}

/// `/api/v1` or `/apis/GROUP/VERSION`; `None` for a group version not served.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Reply> {
    let mut resources = Vec::new();
    for resource in &registry.in_group_version(group, version) {
        let mut entry = json!({"name": resource.plural, "singularName": resource.singular,
            "namespaced": resource.namespaced, "kind": resource.kind, "verbs": VERBS});
        if !resource.short_names.is_empty() {
            entry["shortNames"] = json!(resource.short_names);
        }
        if !resource.categories.is_empty() {
            entry["categories"] = json!(resource.categories);
        }
        resources.push(entry);
        for &sub in resource.subresources {
            let (sub_group, sub_version, kind) = subresource_kind(resource, sub);
            let mut entry = json!({"name": format!("{}/{}", resource.plural, sub.name()),
                "singularName": "", "namespaced": resource.namespaced, "kind": kind,
                "verbs": subresource_verbs(sub)});
            if (sub_group, sub_version) != (group, version) {
                entry["group"] = json!(sub_group);
                entry["version"] = json!(sub_version);
            }
            resources.push(entry);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(Reply::Object(
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    #[test]
    fn aggregated_discovery_only_when_asked() {
        let registry = Registry::default();
        let Reply::Typed(_, body, content_type) = groups(&registry, KUBECTL_ACCEPT) else {
            panic!("kubectl's Accept gets aggregated discovery")
        };
        assert_eq!(
            content_type,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        let apps = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let deployments = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deployments["shortNames"], json!(["deploy"]));
        assert_eq!(
            deployments["subresources"][1]["responseKind"]["kind"],
            "Scale"
        );
        let old = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(matches!(groups(&registry, old), Reply::Typed(_, _, t) if t.contains("v2beta1")));
        assert!(matches!(
            groups(&registry, "application/json"),
            Reply::Object(..)
        ));
    }

    #[test]
    fn legacy_core_list_advertises_eviction() {
        let registry = Registry::default();
        let Some(Reply::Object(_, body)) = resource_list(&registry, "", "v1") else {
            panic!("core v1 is served")
        };
        let eviction = body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .unwrap();
        assert_eq!(eviction["group"], "policy");
        assert_eq!(eviction["verbs"], json!(["create"]));
        assert!(resource_list(&registry, "nope", "v1").is_none());
    }
}
