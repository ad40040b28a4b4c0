//! What a request asks for, read from its path, method and query the way kube-apiserver's
//! RequestInfoFactory reads them.

use std::collections::HashMap;

/// The verb, as authorization and errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// Its lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    /// Whether it writes (create, update, patch, delete, deletecollection).
    pub fn is_mutating(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// A request for a resource: `/api/v1/...` or `/apis/GROUP/VERSION/...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRequest {
    /// API group, "" for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// The namespace from the path, if any.
    pub namespace: Option<String>,
    /// Plural resource.
    pub resource: String,
    /// Object name, if the path names one.
    pub name: Option<String>,
    /// Subresource, if any.
    pub subresource: Option<String>,
    /// The verb.
    pub verb: Verb,
}

/// Where a path leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A resource request.
    Resource(ResourceRequest),
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/api/v1` or `/apis/GROUP/VERSION`: the resource list.
    GroupVersion {
        /// Group, "" for core.
        group: String,
        /// Version.
        version: String,
    },
    /// `/apis/GROUP`.
    Group(String),
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their `/...` checks).
    Health,
    /// `/openapi/<rest>`: the OpenAPI documents.
    OpenApi(String),
    /// `/metrics`: kube-apiserver's metrics, Prometheus text format.
    Metrics,
    /// Anything else.
    Unknown,
}

/// Subresources of namespaces: `namespaces/NAME/status` is not a namespace's collection.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Reads the route of `method` on `path` with query `query`.
pub fn route(method: &str, path: &str, query: &Query) -> Route {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::Groups,
        ["api", version] => {
            return Route::GroupVersion {
                group: String::new(),
                version: (*version).into(),
            }
        }
        ["apis", group] => return Route::Group((*group).into()),
        ["apis", group, version] => {
            return Route::GroupVersion {
                group: (*group).into(),
                version: (*version).into(),
            }
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        ["version"] => return Route::Version,
        ["healthz" | "livez" | "readyz", ..] => return Route::Health,
        ["openapi", rest @ ..] => return Route::OpenApi(rest.join("/")),
        ["metrics"] if matches!(method, "GET" | "HEAD") => return Route::Metrics,
        _ => return Route::Unknown,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..]
            if !tail.is_empty() && !NAMESPACE_SUBRESOURCES.contains(&tail[0]) =>
        {
            (Some((*ns).to_owned()), tail)
        }
        _ => (None, rest),
    };
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
        _ => return Route::Unknown,
    };
    if resource.is_empty() || name.is_some_and(str::is_empty) {
        return Route::Unknown;
    }
    let verb = match (method, name.is_some()) {
        ("GET" | "HEAD", true) => Verb::Get,
        ("GET" | "HEAD", false) if query.flag("watch") => Verb::Watch,
        ("GET" | "HEAD", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", _) => Verb::Update,
        ("PATCH", _) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return Route::Unknown,
    };
    // Connecting to a pod is `create` whatever the method: kube-apiserver asks for create on a
    // WebSocket GET too (AuthorizePodWebsocketUpgradeCreatePermission, on since 1.30).
    let verb = match (resource, subresource) {
        ("pods", Some("exec" | "attach" | "portforward")) => Verb::Create,
        _ => verb,
    };
    Route::Resource(ResourceRequest {
        group: group.into(),
        version: version.into(),
        namespace,
        resource: resource.into(),
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
        verb,
    })
}

/// The query parameters (the last value wins for repeated ones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A non-empty parameter's value.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A boolean flag (`true` or `1`).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    /// An integer parameter; an error message for a malformed one.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, String> {
        match self.non_empty(name) {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| format!("invalid value for {name}: {text:?} is not an integer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: &str, path: &str, query: &str) -> ResourceRequest {
        match route(method, path, &Query::parse(Some(query))) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_read_as_kube_reads_them() {
        let r = resource("GET", "/api/v1/namespaces/default/pods", "watch=true");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.resource, "pods");
        assert_eq!(r.verb, Verb::Watch);

        let r = resource(
            "PATCH",
            "/apis/apps/v1/namespaces/d/deployments/web/scale",
            "",
        );
        assert_eq!(
            (
                r.group.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("apps", Some("web"), Some("scale"))
        );

        let r = resource("GET", "/api/v1/namespaces/kube-system", "");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let r = resource("PUT", "/api/v1/namespaces/x/status", "");
        assert_eq!(r.subresource.as_deref(), Some("status"));
        assert_eq!(r.name.as_deref(), Some("x"));

        let r = resource("DELETE", "/api/v1/pods", "");
        assert_eq!(r.verb, Verb::DeleteCollection);
        assert_eq!(
            route("GET", "/apis/apps/v1", &Query::default()),
            Route::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(route("GET", "/nope", &Query::default()), Route::Unknown);
    }

    #[test]
    fn query_values_decode() {
        let q = Query::parse(Some("labelSelector=app+in+%28x%2Cy%29&limit=2&watch=1"));
        assert_eq!(q.get("labelSelector"), Some("app in (x,y)"));
        assert_eq!(q.integer("limit"), Ok(Some(2)));
        assert!(q.flag("watch"));
        assert!(q.integer("watch").is_ok());
        assert!(Query::parse(Some("limit=x")).integer("limit").is_err());
    }
}
