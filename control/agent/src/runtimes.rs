//! The runtimes a node offers, by RuntimeClass handler. [`keel_runtime::Runtime`]'s methods
//! return `impl Future` (no boxing on the hot path of a runtime), which makes the trait
//! unusable as `dyn`; [`DynRuntime`] is its boxed twin, implemented for every `Runtime`, so a
//! node can hold `hollow`, `host` and later ones side by side and pick one per pod by
//! `spec.runtimeClassName`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use keel_runtime::{
    ContainerConfig, ContainerId, ContainerStatus, ExecOutput, ExecProcess, ExecRequest, Result,
    Runtime, Sandbox, SandboxConfig, SandboxId, SandboxInfo,
};

/// A boxed future of a runtime call.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// [`Runtime`] with boxed futures, so it can be a trait object.
#[allow(missing_docs)] // each method is the Runtime method of the same name
pub trait DynRuntime: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn run_sandbox<'a>(&'a self, config: &'a SandboxConfig) -> BoxFuture<'a, Sandbox>;
    fn stop_sandbox<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, ()>;
    fn remove_sandbox<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, ()>;
    fn create_container<'a>(
        &'a self,
        sandbox: &'a SandboxId,
        config: &'a ContainerConfig,
    ) -> BoxFuture<'a, ContainerId>;
    fn start_container<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, ()>;
    fn stop_container<'a>(&'a self, id: &'a ContainerId, grace: Duration) -> BoxFuture<'a, ()>;
    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, ()>;
    fn container_status<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, ContainerStatus>;
    fn list_sandboxes(&self) -> BoxFuture<'_, Vec<SandboxInfo>>;
    fn list_containers(&self) -> BoxFuture<'_, Vec<ContainerStatus>>;
    fn exec_sync<'a>(
        &'a self,
        id: &'a ContainerId,
        argv: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, ExecOutput>;
    fn exec<'a>(
        &'a self,
        id: &'a ContainerId,
        request: &'a ExecRequest,
    ) -> BoxFuture<'a, ExecProcess>;
    fn attach<'a>(&'a self, id: &'a ContainerId, stdin: bool) -> BoxFuture<'a, ExecProcess>;
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ContainerId>;
}

impl<R: Runtime> DynRuntime for R {
    fn name(&self) -> &str {
        Runtime::name(self)
    }
    fn run_sandbox<'a>(&'a self, config: &'a SandboxConfig) -> BoxFuture<'a, Sandbox> {
        Box::pin(Runtime::run_sandbox(self, config))
    }
    fn stop_sandbox<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, ()> {
        Box::pin(Runtime::stop_sandbox(self, id))
    }
    fn remove_sandbox<'a>(&'a self, id: &'a SandboxId) -> BoxFuture<'a, ()> {
        Box::pin(Runtime::remove_sandbox(self, id))
    }
    fn create_container<'a>(
        &'a self,
        sandbox: &'a SandboxId,
        config: &'a ContainerConfig,
    ) -> BoxFuture<'a, ContainerId> {
        Box::pin(Runtime::create_container(self, sandbox, config))
    }
    fn start_container<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, ()> {
        Box::pin(Runtime::start_container(self, id))
    }
    fn stop_container<'a>(&'a self, id: &'a ContainerId, grace: Duration) -> BoxFuture<'a, ()> {
        Box::pin(Runtime::stop_container(self, id, grace))
    }
    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, ()> {
        Box::pin(Runtime::remove_container(self, id))
    }
    fn container_status<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, ContainerStatus> {
        Box::pin(Runtime::container_status(self, id))
    }
    fn list_sandboxes(&self) -> BoxFuture<'_, Vec<SandboxInfo>> {
        Box::pin(Runtime::list_sandboxes(self))
    }
    fn list_containers(&self) -> BoxFuture<'_, Vec<ContainerStatus>> {
        Box::pin(Runtime::list_containers(self))
    }
    fn exec_sync<'a>(
        &'a self,
        id: &'a ContainerId,
        argv: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, ExecOutput> {
        Box::pin(Runtime::exec_sync(self, id, argv, timeout))
    }
    fn exec<'a>(
        &'a self,
        id: &'a ContainerId,
        request: &'a ExecRequest,
    ) -> BoxFuture<'a, ExecProcess> {
        Box::pin(Runtime::exec(self, id, request))
    }
    fn attach<'a>(&'a self, id: &'a ContainerId, stdin: bool) -> BoxFuture<'a, ExecProcess> {
        Box::pin(Runtime::attach(self, id, stdin))
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ContainerId> {
        Runtime::subscribe(self)
    }
}

/// The runtimes of one node, by handler name.
#[derive(Clone, Default)]
pub struct Runtimes {
    by_handler: BTreeMap<String, Arc<dyn DynRuntime>>,
}

impl Runtimes {
    /// No runtimes yet.
    pub fn new() -> Runtimes {
        Runtimes::default()
    }

    /// Adds `runtime` under its own name.
    pub fn with(mut self, runtime: impl Runtime) -> Runtimes {
        let runtime: Arc<dyn DynRuntime> = Arc::new(runtime);
        self.by_handler
            .insert(DynRuntime::name(&*runtime).to_owned(), runtime);
        self
    }

    /// The runtime of `handler`.
    pub fn get(&self, handler: &str) -> Option<&Arc<dyn DynRuntime>> {
        self.by_handler.get(handler)
    }

    /// Every runtime, with its handler.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn DynRuntime>)> {
        self.by_handler.iter().map(|(h, r)| (h.as_str(), r))
    }
}

/// What a node's runtimes are made from once the node knows its pod CIDR.
pub struct RuntimeContext<'a> {
    /// The node.
    pub node_name: &'a str,
    /// The node's pod CIDR (`spec.podCIDR` or `--pod-cidr`).
    pub pod_cidr: Option<&'a str>,
    /// The agent's data dir for this node.
    pub data_dir: &'a std::path::Path,
}

/// Makes a node's runtimes (the root crate decides which exist).
pub type MakeRuntimes = Arc<dyn Fn(&RuntimeContext<'_>) -> Result<Runtimes, String> + Send + Sync>;
