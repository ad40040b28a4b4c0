//! One scheduling decision, in kube-scheduler's framework shape: pre-filter, filter every
//! node (each node's status is the first failing plugin's), score the feasible ones with the
//! weighted plugins of the default profile, and pick the best, ties broken at random. When no
//! node fits, the result is a [`FitError`] whose text is kube-scheduler's `FailedScheduling`
//! message, preemption's verdict included.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use rand::Rng as _;

use crate::cache::{Cache, HostPort, NodeInfo};
use crate::config::ScoreWeights;
pub use crate::cycle_state::CycleState;
use crate::plugins;
use crate::plugins::default_preemption::{Candidate, Preemption};
use crate::plugins::inter_pod_affinity::Terms;
use crate::resources::{self, NonZero, Resource};

/// Highest score a plugin gives a node (`framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// Below this many nodes every node is filtered; above, the search stops once this many (or
/// a percentage) fit (`minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The least percentage of nodes searched (`minFeasibleNodesPercentageToFind`).
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// A pod with what scheduling needs of it worked out once.
#[derive(Debug)]
pub struct PodInfo {
    /// The pod as last seen.
    pub pod: Arc<Pod>,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// What it asks a node for ([`resources::pod_requests`]).
    pub requests: Resource,
    /// Cpu and memory as scoring counts them.
    pub non_zero: NonZero,
    /// Host ports its containers take.
    pub host_ports: Vec<HostPort>,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
    /// Its pod (anti-)affinity terms, worked out on first use: a cycle that scores affinity
    /// reads those of every placed pod (kube-scheduler's PodInfo keeps them too).
    affinity_terms: std::sync::OnceLock<Terms>,
}

static EMPTY_SPEC: std::sync::OnceLock<PodSpec> = std::sync::OnceLock::new();

impl PodInfo {
    /// Works out `pod`'s requests, ports and priority.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let empty = EMPTY_SPEC.get_or_init(PodSpec::default);
        let spec = pod.spec.as_ref().unwrap_or(empty);
        PodInfo {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            requests: resources::pod_requests(spec),
            non_zero: resources::pod_non_zero_requests(spec),
            host_ports: HostPort::of(spec),
            priority: spec.priority.unwrap_or(0),
            affinity_terms: std::sync::OnceLock::new(),
            pod,
        }
    }

    /// Its pod affinity and anti-affinity terms.
    pub fn affinity_terms(&self) -> &Terms {
        self.affinity_terms.get_or_init(|| Terms::of(self))
    }

    /// The pod's spec (empty when absent).
    pub fn spec(&self) -> &PodSpec {
        self.pod
            .spec
            .as_ref()
            .unwrap_or_else(|| EMPTY_SPEC.get_or_init(PodSpec::default))
    }

    /// `spec.nodeName` when set.
    pub fn node_name(&self) -> Option<&str> {
        self.spec().node_name.as_deref().filter(|n| !n.is_empty())
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// How a plugin judged a pod on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// It fits.
    Success,
    /// It does not, but removing pods (preemption) might change that.
    Unschedulable,
    /// It does not, and preemption cannot help.
    UnschedulableAndUnresolvable,
}

/// A plugin's verdict with its reasons (the strings the `FailedScheduling` message counts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The verdict.
    pub code: Code,
    /// Why not, one string per reason.
    pub reasons: Vec<String>,
}

impl Status {
    /// It fits.
    pub fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
        }
    }

    /// It does not fit, for `reasons`; preemption might help.
    pub fn unschedulable(reasons: Vec<String>) -> Status {
        Status {
            code: Code::Unschedulable,
            reasons,
        }
    }

    /// It does not fit, for `reason`, whatever is removed from the node.
    pub fn unresolvable(reason: &str) -> Status {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.to_owned()],
        }
    }

    /// Whether it fits.
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// The reasons joined as `Status.Message()` joins them.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// What a plugin's pre-filter concluded before any node was looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreFilter {
    /// Every node is worth filtering.
    AllNodes,
    /// Only these nodes can fit (NodeAffinity on `metadata.name`).
    Nodes(BTreeSet<String>),
    /// No node can fit.
    Reject(Status),
}

/// A filter plugin: whether a pod may run on a node.
///
/// Plugins that judge a node by the node alone implement [`FilterPlugin::pre_filter`] and
/// [`FilterPlugin::filter`]. Plugins that judge it by the whole cluster (pods elsewhere in
/// the node's zone) count once per cycle in [`FilterPlugin::pre_filter_in`] and read those
/// counts in [`FilterPlugin::filter_in`]; their plain `filter`, which has no counts, is the
/// node-local part only.
pub trait FilterPlugin: Send + Sync {
    /// The plugin's name in kube-scheduler's profile.
    fn name(&self) -> &'static str;

    /// Looks at the pod alone, before the nodes.
    fn pre_filter(&self, _pod: &PodInfo) -> PreFilter {
        PreFilter::AllNodes
    }

    /// The pod on this node.
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status;

    /// Looks at the pod and the whole cluster before filtering, leaving what the filter needs
    /// in `state`.
    fn pre_filter_in(&self, pod: &PodInfo, _cache: &Cache, _state: &mut CycleState) -> PreFilter {
        self.pre_filter(pod)
    }

    /// The pod on this node, with what the pre-filter left in `state`.
    fn filter_in(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        self.filter(pod, node)
    }

    /// Takes `removed`, a pod on `node`, out of what the pre-filter counted (kube's
    /// `RemovePod` pre-filter extension, for preemption's dry runs).
    fn remove_pod_in(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _removed: &PodInfo,
        _node: &NodeInfo,
        _cache: &Cache,
    ) {
    }
}

/// A score plugin: how much a feasible node suits a pod.
pub trait ScorePlugin: Send + Sync {
    /// The plugin's name in kube-scheduler's profile.
    fn name(&self) -> &'static str;

    /// Whether the plugin has anything to say about this pod (PreScore's Skip otherwise).
    fn pre_score(&self, _pod: &PodInfo) -> bool {
        true
    }

    /// The node's raw score.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64;

    /// Brings raw scores to 0..=100 (NormalizeScore); most plugins score in range already.
    fn normalize(&self, _scores: &mut [i64]) {}

    /// PreScore over the feasible `nodes` and the whole cluster, leaving what the score needs
    /// in `state`; whether the plugin scores this pod at all.
    fn pre_score_in(
        &self,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _cache: &Cache,
        _state: &mut CycleState,
    ) -> bool {
        self.pre_score(pod)
    }

    /// The node's raw score, with what the pre-score left in `state`.
    fn score_in(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        self.score(pod, node)
    }

    /// NormalizeScore over `scores`, one per node of `nodes`.
    fn normalize_in(&self, _state: &CycleState, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        self.normalize(scores)
    }
}

/// Where a pod goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleResult {
    /// The chosen node.
    pub node: String,
    /// How many nodes were looked at.
    pub evaluated: usize,
    /// How many of them fit.
    pub feasible: usize,
}

/// Why a pod could not be placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unschedulable {
    /// The cluster has no nodes.
    NoNodes,
    /// No node fits.
    Fit(FitError),
}

impl fmt::Display for Unschedulable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unschedulable::NoNodes => f.write_str("no nodes available to schedule pods"),
            Unschedulable::Fit(error) => error.fmt(f),
        }
    }
}

/// kube-scheduler's `FitError`: how many nodes there are and why each one failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FitError {
    /// All nodes in the snapshot.
    pub num_all_nodes: usize,
    /// The status of every node that was filtered and failed.
    pub statuses: BTreeMap<String, Status>,
    /// The status of nodes not in `statuses` (nodes a pre-filter ruled out).
    pub absent: Option<Status>,
    /// A pre-filter's rejection, which replaces the per-node reasons.
    pub pre_filter_msg: Option<String>,
    /// What preemption (the PostFilter) concluded, `preemption: ...`.
    pub post_filter_msg: Option<String>,
    /// Where preemption makes room, and whom it evicts (then there is no `post_filter_msg`).
    pub preemption: Option<Box<Candidate>>,
}

impl fmt::Display for FitError {
    /// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}.
    /// preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.`:
    /// reasons counted over nodes, sorted as strings, as `FitError.Error()` does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        if let Some(message) = &self.pre_filter_msg {
            write!(f, " {message}.")?;
        } else {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for status in self.statuses.values() {
                for reason in &status.reasons {
                    *counts.entry(reason).or_default() += 1;
                }
            }
            if self.statuses.len() < self.num_all_nodes {
                if let Some(absent) = &self.absent {
                    for reason in &absent.reasons {
                        *counts.entry(reason).or_default() +=
                            self.num_all_nodes - self.statuses.len();
                    }
                }
            }
            let mut histogram: Vec<String> = counts
                .iter()
                .map(|(reason, count)| format!("{count} {reason}"))
                .collect();
            histogram.sort();
            if !histogram.is_empty() {
                write!(f, " {}.", histogram.join(", "))?;
            }
        }
        if let Some(message) = &self.post_filter_msg {
            write!(f, " {message}")?;
        }
        Ok(())
    }
}

/// The nodes pre-filters narrowed the search to, and which plugins did.
struct Narrowed {
    names: BTreeSet<String>,
    plugins: Vec<&'static str>,
}

/// Folds one pre-filter's verdict into the nodes narrowed so far.
fn narrow(
    narrowed: &mut Option<Narrowed>,
    plugin: &'static str,
    verdict: PreFilter,
) -> Result<(), Status> {
    match verdict {
        PreFilter::AllNodes => {}
        PreFilter::Reject(status) => return Err(status),
        PreFilter::Nodes(names) => {
            *narrowed = Some(match narrowed.take() {
                None => Narrowed {
                    names,
                    plugins: vec![plugin],
                },
                Some(mut before) => {
                    before.names = before.names.intersection(&names).cloned().collect();
                    before.plugins.push(plugin);
                    before
                }
            });
        }
    }
    Ok(())
}

/// The plugins of one scheduling profile, in its order (kube-scheduler's default profile
/// unless a configuration file says otherwise).
pub struct Framework {
    filters: Vec<Box<dyn FilterPlugin>>,
    scores: Vec<(Box<dyn ScorePlugin>, i64)>,
    /// `percentageOfNodesToScore`; `None`: the adaptive percentage.
    percentage_of_nodes_to_score: Option<u32>,
}

impl Framework {
    /// The default profile: filters NodeUnschedulable, NodeName, TaintToleration,
    /// NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity; scores
    /// with `weights`.
    pub fn new(weights: &ScoreWeights) -> Framework {
        Framework::from_profile(&crate::profile::Profile::with_weights(
            crate::config::DEFAULT_SCHEDULER_NAME,
            weights,
        ))
    }

    /// The plugins `profile` enables, configured by its plugin arguments.
    pub fn from_profile(profile: &crate::profile::Profile) -> Framework {
        let (filters, scores) = profile.plugins();
        Framework {
            filters,
            scores,
            percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score,
        }
    }

    /// Runs the filters in order; the first failure is the node's status. Plugins that
    /// need the whole cluster judge the node alone here (see [`FilterPlugin`]).
    pub fn run_filters(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        self.run_filters_in(&CycleState::default(), pod, node)
    }

    /// Runs the filters in order with the pre-filters' `state`; the first failure is the
    /// node's status.
    pub fn run_filters_in(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for plugin in &self.filters {
            let status = plugin.filter_in(state, pod, node);
            if !status.is_success() {
                return status;
            }
        }
        Status::success()
    }

    /// The pre-filters' state for `pod` over `cache`, for dry runs such as preemption's
    /// ([`Framework::run_filters_without`]); `None` when a pre-filter rejects the pod.
    pub fn pre_filter_state(&self, pod: &PodInfo, cache: &Cache) -> Option<CycleState> {
        let mut state = CycleState::default();
        self.run_pre_filters_in(pod, cache, &mut state).ok()?;
        Some(state)
    }

    /// The filters on `node` with the pods `removed` gone from it and from the cluster-wide
    /// counts in `state` (from [`Framework::pre_filter_state`]): whether evicting them would
    /// make the pod fit, anti-affinity and topology spread included.
    pub fn run_filters_without(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        cache: &Cache,
        node: &NodeInfo,
        removed: &[&PodInfo],
    ) -> Status {
        let mut state = state.clone();
        let mut without = node.clone();
        for victim in removed {
            for plugin in &self.filters {
                plugin.remove_pod_in(&mut state, pod, victim, node, cache);
            }
            without.remove_pod(&victim.uid);
        }
        self.run_filters_in(&state, pod, &without)
    }

    /// Runs the pre-filters: the nodes worth filtering (`None`: all of them), or the
    /// rejection.
    fn run_pre_filters(&self, pod: &PodInfo) -> Result<Option<Narrowed>, Status> {
        let mut narrowed: Option<Narrowed> = None;
        for plugin in &self.filters {
            narrow(&mut narrowed, plugin.name(), plugin.pre_filter(pod))?;
        }
        Ok(narrowed)
    }

    /// Runs the pre-filters with the whole cluster at hand, filling `state`.
    fn run_pre_filters_in(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        state: &mut CycleState,
    ) -> Result<Option<Narrowed>, Status> {
        let mut narrowed: Option<Narrowed> = None;
        for plugin in &self.filters {
            narrow(
                &mut narrowed,
                plugin.name(),
                plugin.pre_filter_in(pod, cache, state),
            )?;
        }
        Ok(narrowed)
    }

    /// Runs the filters on `node` with the pods `nominated` there that matter to `pod` (equal
    /// or higher priority) counted too, then without them (`RunFilterPluginsWithNominatedPods`):
    /// the room held for a preemptor is not taken by a lower-priority pod.
    pub fn run_filters_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: &[Arc<PodInfo>],
    ) -> Status {
        let mut ahead = nominated
            .iter()
            .filter(|p| p.uid != pod.uid && p.priority >= pod.priority)
            .peekable();
        if ahead.peek().is_some() {
            let mut with = node.clone();
            for other in ahead {
                with.add_pod(Arc::clone(other));
            }
            let status = self.run_filters_in(state, pod, &with);
            if !status.is_success() {
                return status;
            }
        }
        self.run_filters_in(state, pod, node)
    }

    /// The node `pod` was nominated to, if it still fits there (kube tries it first, so a
    /// preemptor lands where its victims made room).
    fn nominated_node_fit(&self, pod: &PodInfo, cache: &Cache) -> Option<String> {
        let name = cache
            .nominated
            .node_of(&pod.uid)
            .map(str::to_owned)
            .or_else(|| {
                pod.pod
                    .status
                    .as_ref()
                    .and_then(|s| s.nominated_node_name.clone())
                    .filter(|n| !n.is_empty())
            })?;
        let node = cache.node(&name).filter(|n| n.node.is_some())?;
        let fits = match self.run_pre_filters(pod) {
            Ok(None) => true,
            Ok(Some(narrowed)) => narrowed.names.contains(&name),
            Err(_) => false,
        };
        let state = self.pre_filter_state(pod, cache)?;
        (fits
            && self
                .run_filters_with_nominated(&state, pod, node, cache.nominated.on(&name))
                .is_success())
        .then_some(name)
    }

    /// Whether `pod` would pass every pre-filter and filter on `node` as it is now: the
    /// queueing hint for "this node changed" and "a pod left this node".
    pub fn fits(&self, pod: &PodInfo, node: &NodeInfo) -> bool {
        if node.node.is_none() {
            return false;
        }
        match self.run_pre_filters(pod) {
            Err(_) => false,
            Ok(Some(narrowed)) if !narrowed.names.contains(&node.name) => false,
            Ok(_) => self.run_filters(pod, node).is_success(),
        }
    }

    /// Picks a node for `pod` among the cache's nodes, filtering from `next_start` on (and
    /// moving it past the nodes looked at, so every node gets its turn first).
    pub fn schedule(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        next_start: &mut usize,
    ) -> Result<ScheduleResult, Unschedulable> {
        let all_nodes = cache.nodes();
        if all_nodes.is_empty() {
            return Err(Unschedulable::NoNodes);
        }
        if let Some(node) = self.nominated_node_fit(pod, cache) {
            return Ok(ScheduleResult {
                node,
                evaluated: 1,
                feasible: 1,
            });
        }
        let mut diagnosis = FitError {
            num_all_nodes: all_nodes.len(),
            ..FitError::default()
        };
        let mut state = CycleState::default();
        let nodes: Vec<&NodeInfo> = match self.run_pre_filters_in(pod, cache, &mut state) {
            Err(status) => {
                diagnosis.pre_filter_msg = Some(status.message());
                diagnosis.absent = Some(status);
                self.post_filter(pod, &mut diagnosis, &all_nodes, cache);
                return Err(Unschedulable::Fit(diagnosis));
            }
            Ok(None) => all_nodes.clone(),
            Ok(Some(Narrowed { names, mut plugins })) => {
                plugins.sort_unstable();
                plugins.dedup();
                diagnosis.absent = Some(Status::unresolvable(&format!(
                    "node(s) didn't satisfy plugin(s) [{}]",
                    plugins.join(" ")
                )));
                all_nodes
                    .iter()
                    .filter(|n| names.contains(&n.name))
                    .copied()
                    .collect()
            }
        };
        let to_find = match self.percentage_of_nodes_to_score {
            Some(percentage) => nodes_to_find_at(nodes.len(), percentage),
            None => num_feasible_nodes_to_find(nodes.len()),
        };
        let no_nominations = cache.nominated.is_empty();
        let mut feasible: Vec<&NodeInfo> = Vec::new();
        let mut processed = 0;
        for i in 0..nodes.len() {
            if feasible.len() >= to_find {
                break;
            }
            let node = nodes[(*next_start + i) % nodes.len()];
            processed += 1;
            let status = if no_nominations {
                self.run_filters_in(&state, pod, node)
            } else {
                self.run_filters_with_nominated(&state, pod, node, cache.nominated.on(&node.name))
            };
            if status.is_success() {
                feasible.push(node);
            } else {
                diagnosis.statuses.insert(node.name.clone(), status);
            }
        }
        *next_start = (*next_start + processed) % all_nodes.len();
        if feasible.is_empty() {
            self.post_filter(pod, &mut diagnosis, &all_nodes, cache);
            return Err(Unschedulable::Fit(diagnosis));
        }
        let evaluated = feasible.len() + diagnosis.statuses.len();
        if feasible.len() == 1 {
            return Ok(ScheduleResult {
                node: feasible[0].name.clone(),
                evaluated,
                feasible: 1,
            });
        }
        let totals = self.prioritize_in(pod, &feasible, cache);
        Ok(ScheduleResult {
            node: feasible[select_host(&totals)].name.clone(),
            evaluated,
            feasible: feasible.len(),
        })
    }

    /// Each feasible node's weighted total over the score plugins, with `nodes` standing for
    /// the whole cluster too.
    pub fn prioritize(&self, pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
        let mut cache = Cache::default();
        for node in nodes {
            cache.insert_node_info((*node).clone());
        }
        self.prioritize_in(pod, nodes, &cache)
    }

    /// Each feasible node's weighted total over the score plugins; `cache` is the whole
    /// cluster (counts of pods in a zone, of nodes with an image).
    pub fn prioritize_in(&self, pod: &PodInfo, nodes: &[&NodeInfo], cache: &Cache) -> Vec<i64> {
        let mut totals = vec![0i64; nodes.len()];
        let mut state = CycleState::default();
        for (plugin, weight) in &self.scores {
            if !plugin.pre_score_in(pod, nodes, cache, &mut state) {
                continue;
            }
            let mut scores: Vec<i64> = nodes
                .iter()
                .map(|n| plugin.score_in(&state, pod, n))
                .collect();
            plugin.normalize_in(&state, nodes, &mut scores);
            for (total, score) in totals.iter_mut().zip(scores) {
                *total += score * weight;
            }
        }
        totals
    }

    /// DefaultPreemption's PostFilter: the node to nominate and its victims, or the
    /// `preemption: ...` message.
    fn post_filter(
        &self,
        pod: &PodInfo,
        diagnosis: &mut FitError,
        all_nodes: &[&NodeInfo],
        cache: &Cache,
    ) {
        let nominated = cache
            .nominated
            .node_of(&pod.uid)
            .map(str::to_owned)
            .or_else(|| {
                pod.pod
                    .status
                    .as_ref()
                    .and_then(|s| s.nominated_node_name.clone())
                    .filter(|n| !n.is_empty())
            });
        // The dry run takes the victims out of the cycle's cluster-wide counts too
        // (anti-affinity, spread), and holds the room of pods nominated to the node.
        let state = self.pre_filter_state(pod, cache).unwrap_or_default();
        let verdict = plugins::default_preemption::post_filter(
            pod,
            diagnosis,
            all_nodes,
            &cache.budgets(),
            nominated.as_deref(),
            |node, removed| {
                let ahead: Vec<&Arc<PodInfo>> = cache
                    .nominated
                    .on(&node.name)
                    .iter()
                    .filter(|p| p.uid != pod.uid && p.priority >= pod.priority)
                    .collect();
                if !ahead.is_empty() {
                    let mut with = node.clone();
                    for other in ahead {
                        with.add_pod(Arc::clone(other));
                    }
                    let status = self.run_filters_without(&state, pod, cache, &with, removed);
                    if !status.is_success() {
                        return status;
                    }
                }
                self.run_filters_without(&state, pod, cache, node, removed)
            },
        );
        match verdict {
            Preemption::Nominate(candidate) => diagnosis.preemption = Some(Box::new(candidate)),
            Preemption::Failed(message) => diagnosis.post_filter_msg = Some(message),
        }
    }
}

/// How many feasible nodes to find before scoring (`numFeasibleNodesToFind` with the
/// adaptive percentage: 50% minus 1% per 125 nodes, at least 5%, at least 100 nodes).
pub fn num_feasible_nodes_to_find(num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let percentage = 50usize
        .saturating_sub(num_all_nodes / 125)
        .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    (num_all_nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// How many feasible nodes to find with `percentageOfNodesToScore` set: that share of the
/// nodes, at least 100 (all of them at 100% or with fewer than 100 nodes).
pub fn nodes_to_find_at(num_all_nodes: usize, percentage: u32) -> usize {
    if percentage == 0 {
        return num_feasible_nodes_to_find(num_all_nodes);
    }
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return num_all_nodes;
    }
    (num_all_nodes * percentage as usize / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// The index of a highest total, chosen uniformly among equals (reservoir sampling, as the
/// random tie-breaker of kube-scheduler's node heap does).
pub fn select_host(totals: &[i64]) -> usize {
    let mut rng = rand::thread_rng();
    let mut best = 0;
    let mut ties = 0u32;
    for (i, &total) in totals.iter().enumerate() {
        if i == 0 || total > totals[best] {
            best = i;
            ties = 1;
        } else if total == totals[best] {
            ties += 1;
            if rng.gen_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    fn reasons(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn fit_error_counts_reasons_over_nodes_sorted_as_strings() {
        let taint = "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }";
        let error = FitError {
            num_all_nodes: 3,
            statuses: [
                (
                    "a".to_owned(),
                    Status::unschedulable(reasons(&["Insufficient cpu"])),
                ),
                ("b".to_owned(), Status::unresolvable(taint)),
                ("c".to_owned(), Status::unresolvable(taint)),
            ]
            .into(),
            post_filter_msg: Some(
                "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.".to_owned(),
            ),
            ..FitError::default()
        };
        assert_eq!(
            error.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn fit_error_sorts_counts_as_strings_and_counts_absent_nodes() {
        let mut statuses = BTreeMap::new();
        for i in 0..10 {
            statuses.insert(
                format!("n{i}"),
                Status::unschedulable(reasons(&["Insufficient cpu", "Insufficient memory"])),
            );
        }
        statuses.insert(
            "m".into(),
            Status::unresolvable("node(s) were unschedulable"),
        );
        statuses.insert(
            "o".into(),
            Status::unresolvable("node(s) were unschedulable"),
        );
        let error = FitError {
            num_all_nodes: 13,
            statuses,
            absent: Some(Status::unresolvable(
                "node(s) didn't satisfy plugin(s) [NodeAffinity]",
            )),
            ..FitError::default()
        };
        // Go's sort.Strings: "10 ..." sorts before "2 ...".
        assert_eq!(
            error.to_string(),
            "0/13 nodes are available: 1 node(s) didn't satisfy plugin(s) [NodeAffinity], 10 Insufficient cpu, 10 Insufficient memory, 2 node(s) were unschedulable."
        );
        let pre_filtered = FitError {
            num_all_nodes: 2,
            pre_filter_msg: Some("pod affinity terms conflict".into()),
            absent: Some(Status::unresolvable("pod affinity terms conflict")),
            post_filter_msg: Some(
                "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
                    .into(),
            ),
            ..FitError::default()
        };
        assert_eq!(
            pre_filtered.to_string(),
            "0/2 nodes are available: pod affinity terms conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            Unschedulable::NoNodes.to_string(),
            "no nodes available to schedule pods"
        );
    }

    #[test]
    fn feasible_nodes_to_find_follows_the_adaptive_percentage() {
        for (nodes, want) in [
            (0, 0),
            (10, 10),
            (99, 99),
            (100, 100),
            (200, 100),
            (1000, 420),
            (5000, 500),
            (6000, 300),
        ] {
            assert_eq!(num_feasible_nodes_to_find(nodes), want, "{nodes} nodes");
        }
        // percentageOfNodesToScore: that share, at least 100 nodes; 0 is the adaptive one.
        assert_eq!(nodes_to_find_at(1000, 30), 300);
        assert_eq!(nodes_to_find_at(200, 10), 100);
        assert_eq!(
            (nodes_to_find_at(1000, 0), nodes_to_find_at(50, 10)),
            (420, 50)
        );
    }

    #[test]
    fn select_host_takes_the_best_and_breaks_ties_at_random() {
        assert_eq!(select_host(&[1, 5, 3]), 1);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            seen.insert(select_host(&[2, 7, 1, 7, 7]));
        }
        assert_eq!(seen, [1, 3, 4].into());
    }

    fn cache_of(nodes: Vec<k8s_openapi::api::core::v1::Node>, pods: Vec<Pod>) -> Cache {
        let mut cache = Cache::default();
        for n in nodes {
            cache.add_node(Arc::new(n));
        }
        for p in pods {
            cache.add_pod(Arc::new(PodInfo::new(Arc::new(p))));
        }
        cache
    }

    #[test]
    fn schedule_filters_then_scores() {
        let framework = Framework::new(&ScoreWeights::default());
        let small = node("small").allocatable(&[("cpu", "1"), ("memory", "2Gi"), ("pods", "110")]);
        let busy = node("busy").allocatable(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]);
        let idle = node("idle").allocatable(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]);
        let cache = cache_of(
            vec![small.build(), busy.clone().build(), idle.clone().build()],
            vec![pod("running")
                .req(&[("cpu", "2"), ("memory", "4Gi")])
                .node("busy")
                .build()],
        );
        let wanted = PodInfo::new(Arc::new(
            pod("p").req(&[("cpu", "1500m"), ("memory", "1Gi")]).build(),
        ));
        for start in 0..3 {
            let mut next = start;
            let result = framework.schedule(&wanted, &cache, &mut next).unwrap();
            assert_eq!(result.node, "idle");
            assert_eq!((result.evaluated, result.feasible), (3, 2));
        }

        let too_big = PodInfo::new(Arc::new(pod("big").req(&[("cpu", "5")]).build()));
        let Err(Unschedulable::Fit(error)) = framework.schedule(&too_big, &cache, &mut 0) else {
            panic!("a 5-cpu pod fits nowhere");
        };
        assert_eq!(
            error.to_string(),
            "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        let tight = PodInfo::new(Arc::new(pod("tight").req(&[("cpu", "3")]).build()));
        let busy_full = cache_of(
            vec![busy.build(), idle.build()],
            vec![
                pod("r1").req(&[("cpu", "3")]).node("busy").build(),
                pod("r2").req(&[("cpu", "2")]).node("idle").build(),
            ],
        );
        let Err(Unschedulable::Fit(error)) = framework.schedule(&tight, &busy_full, &mut 0) else {
            panic!("3 cpu fits nowhere");
        };
        assert_eq!(
            error.to_string(),
            "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
        );
        assert_eq!(
            framework.schedule(&tight, &Cache::default(), &mut 0),
            Err(Unschedulable::NoNodes)
        );
    }
}
