//! Role-based access control (`rbac.authorization.k8s.io/v1`), as kube-apiserver enforces it.
//!
//! Roles, ClusterRoles and their bindings are ordinary registry resources (validated in
//! `admission::rbac`); this module decides with them.
//!
//! # Layout
//!
//! - [`authorizer`]: a request's attributes, and the decision over the watch cache's bindings
//!   and roles, with kube's 403 message.
//! - [`rules`]: a PolicyRule's matching, coverage (for escalation checks) and compact text.
//! - [`escalation`]: who may write roles and bindings (`escalate`, `bind`, or holding the rules).
//! - [`node`]: what an agent's `system:node:<name>` identity is kept to.
//! - [`impersonation`]: `Impersonate-User` / `Impersonate-Group`.
//! - [`review`]: SelfSubjectAccessReview, SubjectAccessReview, SelfSubjectRulesReview,
//!   SelfSubjectReview (`review_proto`: their protobuf bodies).
//! - [`policy`]: the bootstrap ClusterRoles and ClusterRoleBindings.
//! - [`reconcile`]: the bootstrap policy reconciled at start; ClusterRole aggregation.

pub mod authorizer;
pub mod escalation;
pub mod impersonation;
pub mod node;
pub mod policy;
pub mod reconcile;
pub mod review;
mod review_proto;
pub mod rules;

pub use authorizer::{Attributes, Authorizer};
