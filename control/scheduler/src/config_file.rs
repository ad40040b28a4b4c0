//! The scheduler's configuration file: the subset of kube-scheduler's
//! `KubeSchedulerConfiguration` (`kubescheduler.config.k8s.io/v1`) that keel uses.
//!
//! ```yaml
//! apiVersion: kubescheduler.config.k8s.io/v1
//! kind: KubeSchedulerConfiguration
//! percentageOfNodesToScore: 50
//! profiles:
//! - schedulerName: default-scheduler
//! - schedulerName: bin-packing
//!   plugins:
//!     score:
//!       disabled: [{name: NodeResourcesBalancedAllocation}]
//!       enabled: [{name: NodeResourcesFit, weight: 5}]
//!   pluginConfig:
//!   - name: NodeResourcesFit
//!     args:
//!       scoringStrategy:
//!         type: MostAllocated
//!         resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
//! ```
//!
//! Each profile starts from the default profile and merges its plugin sets as kube does:
//! `multiPoint` first, then `filter` and `score`; a default plugin enabled again keeps its
//! place (with the new weight), others are appended; `disabled` may name `*`. A weight of 0
//! or none is 1. `pluginConfig` sets NodeResourcesFit's `scoringStrategy`,
//! PodTopologySpread's `defaultConstraints` / `defaultingType` and InterPodAffinity's
//! `hardPodAffinityWeight`. Fields keel has no use for (leaderElection, clientConnection,
//! other extension points) are accepted and ignored; unknown plugin names, bad weights and
//! bad arguments are errors naming the field, as kube-scheduler's validation does.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::plugins::node_resources_fit::{ScoringStrategy, StrategyKind};
use crate::plugins::pod_topology_spread::{system_default_constraints, DefaultConstraint};
use crate::profile::{Profile, FILTER_PLUGINS, KNOWN_WITHOUT_EFFECT, SCORE_PLUGINS};

/// The `apiVersion` read.
pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
/// The `kind` read.
pub const KIND: &str = "KubeSchedulerConfiguration";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    api_version: Option<String>,
    kind: Option<String>,
    percentage_of_nodes_to_score: Option<i64>,
    #[serde(default)]
    profiles: Vec<ProfileFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileFile {
    scheduler_name: Option<String>,
    percentage_of_nodes_to_score: Option<i64>,
    #[serde(default)]
    plugins: Plugins,
    #[serde(default)]
    plugin_config: Vec<PluginConfig>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Plugins {
    multi_point: Option<PluginSet>,
    filter: Option<PluginSet>,
    score: Option<PluginSet>,
    /// The other extension points: names are checked, nothing else.
    #[serde(flatten)]
    other: std::collections::BTreeMap<String, PluginSet>,
}

#[derive(Default, Deserialize)]
struct PluginSet {
    #[serde(default)]
    enabled: Vec<Plugin>,
    #[serde(default)]
    disabled: Vec<Plugin>,
}

#[derive(Deserialize)]
struct Plugin {
    name: String,
    weight: Option<i64>,
}

#[derive(Deserialize)]
struct PluginConfig {
    name: String,
    #[serde(default)]
    args: serde_yaml::Value,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FitArgs {
    scoring_strategy: Option<StrategyFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StrategyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    resources: Option<Vec<ResourceWeight>>,
    requested_to_capacity_ratio: Option<RatioFile>,
}

#[derive(Deserialize)]
struct ResourceWeight {
    name: String,
    weight: Option<i64>,
}

#[derive(Deserialize)]
struct RatioFile {
    #[serde(default)]
    shape: Vec<ShapePoint>,
}

#[derive(Deserialize)]
struct ShapePoint {
    utilization: i64,
    score: i64,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpreadArgs {
    #[serde(default)]
    default_constraints: Vec<ConstraintFile>,
    defaulting_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConstraintFile {
    max_skew: i32,
    topology_key: String,
    when_unsatisfiable: String,
    label_selector: Option<serde_yaml::Value>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AffinityArgs {
    hard_pod_affinity_weight: Option<i64>,
}

/// `field: Invalid value: value: why`, as apimachinery's field errors read.
fn invalid(field: &str, value: impl std::fmt::Display, why: &str) -> String {
    format!("{field}: Invalid value: {value}: {why}")
}

fn is_known(name: &str) -> bool {
    FILTER_PLUGINS
        .iter()
        .chain(SCORE_PLUGINS)
        .chain(KNOWN_WITHOUT_EFFECT)
        .any(|k| *k == name)
}

/// `name` at an extension point whose plugins are `point`.
fn check_name(field: &str, name: &str, point: &[&str]) -> std::result::Result<(), String> {
    if name == "*" || point.contains(&name) || KNOWN_WITHOUT_EFFECT.contains(&name) {
        Ok(())
    } else if is_known(name) {
        Err(invalid(
            field,
            format!("{name:?}"),
            "plugin does not extend this extension point",
        ))
    } else {
        Err(invalid(field, format!("{name:?}"), "unknown plugin"))
    }
}

/// `name` anywhere (multiPoint, pluginConfig, extension points keel does not run).
fn check_any(field: &str, name: &str) -> std::result::Result<(), String> {
    if name == "*" || is_known(name) {
        Ok(())
    } else {
        Err(invalid(field, format!("{name:?}"), "unknown plugin"))
    }
}

/// Merges one plugin set into `current` as kube's `mergePluginSet` does; `point` is the
/// plugins of this extension point (others named in `multiPoint` are skipped).
fn merge(
    field: &str,
    current: &mut Vec<(String, i64)>,
    set: &PluginSet,
    point: &[&str],
    multi_point: bool,
) -> std::result::Result<(), String> {
    let mut disabled = BTreeSet::new();
    for (i, plugin) in set.disabled.iter().enumerate() {
        let field = format!("{field}.disabled[{i}].name");
        if multi_point {
            check_any(&field, &plugin.name)?;
        } else {
            check_name(&field, &plugin.name, point)?;
        }
        disabled.insert(plugin.name.as_str());
    }
    let mut enabled: Vec<(String, i64)> = Vec::new();
    for (i, plugin) in set.enabled.iter().enumerate() {
        let name_field = format!("{field}.enabled[{i}].name");
        if multi_point {
            check_any(&name_field, &plugin.name)?;
        } else {
            check_name(&name_field, &plugin.name, point)?;
        }
        if plugin.name == "*" {
            return Err(invalid(
                &name_field,
                "\"*\"",
                "only disabled plugins may be \"*\"",
            ));
        }
        let weight = plugin.weight.unwrap_or(0);
        if weight < 0 {
            return Err(invalid(
                &format!("{field}.enabled[{i}].weight"),
                weight,
                "must not be negative",
            ));
        }
        if enabled.iter().any(|(n, _)| *n == plugin.name) {
            return Err(format!("{name_field}: Duplicate value: {:?}", plugin.name));
        }
        if point.contains(&plugin.name.as_str()) {
            enabled.push((plugin.name.clone(), if weight == 0 { 1 } else { weight }));
        }
    }
    let all_disabled = disabled.contains("*");
    let mut merged = Vec::new();
    for (name, weight) in current.drain(..) {
        if all_disabled || disabled.contains(name.as_str()) {
            continue;
        }
        match enabled.iter().position(|(n, _)| *n == name) {
            Some(at) => merged.push(enabled.remove(at)),
            None => merged.push((name, weight)),
        }
    }
    merged.extend(enabled);
    *current = merged;
    Ok(())
}

fn args<T: for<'de> Deserialize<'de> + Default>(
    field: &str,
    value: &serde_yaml::Value,
) -> std::result::Result<T, String> {
    if value.is_null() {
        return Ok(T::default());
    }
    serde_yaml::from_value(value.clone()).map_err(|e| format!("{field}: {e}"))
}

fn fit_strategy(field: &str, file: StrategyFile) -> std::result::Result<ScoringStrategy, String> {
    let kind = match file.kind.as_deref().unwrap_or("LeastAllocated") {
        "LeastAllocated" => StrategyKind::LeastAllocated,
        "MostAllocated" => StrategyKind::MostAllocated,
        "RequestedToCapacityRatio" => {
            let shape = file
                .requested_to_capacity_ratio
                .map(|r| r.shape)
                .unwrap_or_default();
            let shape_field = format!("{field}.requestedToCapacityRatio.shape");
            if shape.is_empty() {
                return Err(format!("{shape_field}: Required value: at least one point is required"));
            }
            let mut previous = -1;
            for (i, point) in shape.iter().enumerate() {
                if !(0..=100).contains(&point.utilization) {
                    return Err(invalid(&format!("{shape_field}[{i}].utilization"), point.utilization, "not in valid range [0-100]"));
                }
                if point.utilization <= previous {
                    return Err(invalid(&format!("{shape_field}[{i}].utilization"), point.utilization, "utilization values must be sorted in increasing order"));
                }
                previous = point.utilization;
                if !(0..=10).contains(&point.score) {
                    return Err(invalid(&format!("{shape_field}[{i}].score"), point.score, "not in valid range [0-10]"));
                }
            }
            StrategyKind::RequestedToCapacityRatio(
                shape.iter().map(|p| (p.utilization, p.score)).collect(),
            )
        }
        other => {
            return Err(format!(
                "{field}.type: Unsupported value: {other:?}: supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""
            ))
        }
    };
    let resources = match file.resources {
        None => ScoringStrategy::default().resources,
        Some(list) => {
            let mut resources = Vec::new();
            for (i, r) in list.into_iter().enumerate() {
                let weight = r.weight.unwrap_or(1);
                if !(1..=100).contains(&weight) {
                    let why = format!("resource weight of {} should be in range (0, 100]", r.name);
                    return Err(invalid(
                        &format!("{field}.resources[{i}].weight"),
                        weight,
                        &why,
                    ));
                }
                resources.push((r.name, weight));
            }
            resources
        }
    };
    Ok(ScoringStrategy { kind, resources })
}

fn spread_defaults(
    field: &str,
    parsed: SpreadArgs,
) -> std::result::Result<(Vec<DefaultConstraint>, bool), String> {
    let system = match parsed.defaulting_type.as_deref().unwrap_or("System") {
        "System" => true,
        "List" => false,
        other => {
            return Err(format!(
                "{field}.defaultingType: Unsupported value: {other:?}: supported values: \"List\", \"System\""
            ))
        }
    };
    if system {
        if !parsed.default_constraints.is_empty() {
            return Err(invalid(
                &format!("{field}.defaultingType"),
                "\"System\"",
                "when .defaultConstraints are not empty",
            ));
        }
        return Ok((system_default_constraints(), true));
    }
    let mut constraints = Vec::new();
    for (i, c) in parsed.default_constraints.into_iter().enumerate() {
        let field = format!("{field}.defaultConstraints[{i}]");
        if c.max_skew <= 0 {
            return Err(invalid(
                &format!("{field}.maxSkew"),
                c.max_skew,
                "not in valid range (0, inf)",
            ));
        }
        if c.topology_key.is_empty() {
            return Err(format!(
                "{field}.topologyKey: Required value: can not be empty"
            ));
        }
        if !matches!(
            c.when_unsatisfiable.as_str(),
            "DoNotSchedule" | "ScheduleAnyway"
        ) {
            return Err(format!(
                "{field}.whenUnsatisfiable: Unsupported value: {:?}: supported values: \"DoNotSchedule\", \"ScheduleAnyway\"",
                c.when_unsatisfiable
            ));
        }
        if c.label_selector.is_some() {
            return Err(format!("{field}.labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod"));
        }
        if constraints.iter().any(|d: &DefaultConstraint| {
            d.topology_key == c.topology_key && d.when_unsatisfiable == c.when_unsatisfiable
        }) {
            return Err(format!(
                "{field}: Duplicate value: {{{:?}, {:?}}}",
                c.topology_key, c.when_unsatisfiable
            ));
        }
        constraints.push(DefaultConstraint {
            max_skew: c.max_skew,
            topology_key: c.topology_key,
            when_unsatisfiable: c.when_unsatisfiable,
        });
    }
    Ok((constraints, false))
}

fn percentage(field: &str, value: Option<i64>) -> std::result::Result<Option<u32>, String> {
    match value {
        None | Some(0) => Ok(None),
        Some(p) if (0..=100).contains(&p) => Ok(Some(p as u32)),
        Some(p) => Err(invalid(field, p, "not in valid range [0-100]")),
    }
}

fn profile(
    i: usize,
    file: ProfileFile,
    global_percentage: Option<u32>,
) -> std::result::Result<Profile, String> {
    let at = format!("profiles[{i}]");
    let name = file
        .scheduler_name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| crate::config::DEFAULT_SCHEDULER_NAME.to_owned());
    let mut profile = Profile::default_for(&name);
    profile.percentage_of_nodes_to_score = percentage(
        &format!("{at}.percentageOfNodesToScore"),
        file.percentage_of_nodes_to_score,
    )?
    .or(global_percentage);
    let mut filters: Vec<(String, i64)> = profile.filters.iter().map(|n| (n.clone(), 0)).collect();
    let plugins = &file.plugins;
    if let Some(set) = &plugins.multi_point {
        let field = format!("{at}.plugins.multiPoint");
        merge(&field, &mut filters, set, FILTER_PLUGINS, true)?;
        merge(&field, &mut profile.scores, set, SCORE_PLUGINS, true)?;
    }
    if let Some(set) = &plugins.filter {
        merge(
            &format!("{at}.plugins.filter"),
            &mut filters,
            set,
            FILTER_PLUGINS,
            false,
        )?;
    }
    if let Some(set) = &plugins.score {
        merge(
            &format!("{at}.plugins.score"),
            &mut profile.scores,
            set,
            SCORE_PLUGINS,
            false,
        )?;
    }
    for (point, set) in &plugins.other {
        let field = format!("{at}.plugins.{point}");
        for (j, p) in set.enabled.iter().enumerate() {
            check_any(&format!("{field}.enabled[{j}].name"), &p.name)?;
        }
        for (j, p) in set.disabled.iter().enumerate() {
            check_any(&format!("{field}.disabled[{j}].name"), &p.name)?;
        }
    }
    profile.filters = filters.into_iter().map(|(n, _)| n).collect();
    let mut configured = BTreeSet::new();
    for (j, config) in file.plugin_config.into_iter().enumerate() {
        let field = format!("{at}.pluginConfig[{j}]");
        check_any(&format!("{field}.name"), &config.name)?;
        if !configured.insert(config.name.clone()) {
            return Err(format!("{field}.name: Duplicate value: {:?}", config.name));
        }
        let field = format!("{field}.args");
        match config.name.as_str() {
            "NodeResourcesFit" => {
                let parsed: FitArgs = args(&field, &config.args)?;
                if let Some(strategy) = parsed.scoring_strategy {
                    profile.fit_strategy =
                        fit_strategy(&format!("{field}.scoringStrategy"), strategy)?;
                }
            }
            "PodTopologySpread" => {
                let parsed: SpreadArgs = args(&field, &config.args)?;
                let (constraints, system) = spread_defaults(&field, parsed)?;
                profile.spread_defaults = constraints;
                profile.spread_system_defaulted = system;
            }
            "InterPodAffinity" => {
                let parsed: AffinityArgs = args(&field, &config.args)?;
                if let Some(weight) = parsed.hard_pod_affinity_weight {
                    if !(0..=100).contains(&weight) {
                        return Err(invalid(
                            &format!("{field}.hardPodAffinityWeight"),
                            weight,
                            "not in valid range [0-100]",
                        ));
                    }
                    profile.hard_pod_affinity_weight = weight;
                }
            }
            _ => {}
        }
    }
    Ok(profile)
}

/// The profiles of a `KubeSchedulerConfiguration` document (none listed: the default
/// profile).
pub fn parse(text: &str) -> std::result::Result<Vec<Profile>, String> {
    let file: File = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    if let Some(version) = file.api_version.as_deref().filter(|v| *v != API_VERSION) {
        return Err(format!(
            "apiVersion: Unsupported value: {version:?}: supported values: {API_VERSION:?}"
        ));
    }
    if let Some(kind) = file.kind.as_deref().filter(|k| *k != KIND) {
        return Err(format!(
            "kind: Unsupported value: {kind:?}: supported values: {KIND:?}"
        ));
    }
    let global = percentage(
        "percentageOfNodesToScore",
        file.percentage_of_nodes_to_score,
    )?;
    if file.profiles.is_empty() {
        let mut profile = Profile::default_for(crate::config::DEFAULT_SCHEDULER_NAME);
        profile.percentage_of_nodes_to_score = global;
        return Ok(vec![profile]);
    }
    let mut profiles: Vec<Profile> = Vec::new();
    for (i, file) in file.profiles.into_iter().enumerate() {
        let profile = profile(i, file, global)?;
        if profiles
            .iter()
            .any(|p| p.scheduler_name == profile.scheduler_name)
        {
            return Err(format!(
                "profiles[{i}].schedulerName: Duplicate value: {:?}",
                profile.scheduler_name
            ));
        }
        profiles.push(profile);
    }
    Ok(profiles)
}

/// Reads the file at `path` (see [`parse`]).
pub fn load(path: &Path) -> Result<Vec<Profile>> {
    let error = |message: String| Error::Config {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    parse(&text).map_err(error)
}

/// Table tests: what profiles a document yields, and the error (naming the field) each kind
/// of mistake gets.
#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";

    fn scores(profile: &Profile) -> Vec<(&str, i64)> {
        profile
            .scores
            .iter()
            .map(|(n, w)| (n.as_str(), *w))
            .collect()
    }

    #[test]
    fn no_profiles_is_the_default_profile() {
        let profiles = parse(&format!("{HEAD}percentageOfNodesToScore: 30\n")).unwrap();
        assert_eq!(profiles.len(), 1);
        let mut want = Profile::default_for("default-scheduler");
        want.percentage_of_nodes_to_score = Some(30);
        assert_eq!(profiles[0], want);
    }

    #[test]
    fn profiles_merge_their_plugins_into_the_defaults() {
        let text = format!(
            "{HEAD}profiles:
    - schedulerName: default-scheduler
    - schedulerName: bin-packing
      percentageOfNodesToScore: 70
      plugins:
        filter:
          disabled: [{{name: PodTopologySpread}}]
        score:
          disabled: [{{name: NodeResourcesBalancedAllocation}}, {{name: ImageLocality}}]
          enabled:
          - {{name: NodeResourcesFit, weight: 5}}
          - {{name: InterPodAffinity}}
        preBind:
          enabled: [{{name: VolumeBinding}}]
      pluginConfig:
      - name: NodeResourcesFit
        args:
          scoringStrategy:
            type: MostAllocated
            resources: [{{name: cpu, weight: 2}}, {{name: memory, weight: 1}}]
      - name: PodTopologySpread
        args:
          defaultingType: List
          defaultConstraints:
          - {{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule}}
    - schedulerName: only-fit
      plugins:
        multiPoint:
          disabled: [{{name: '*'}}]
          enabled: [{{name: NodeResourcesFit, weight: 3}}, {{name: NodeName}}]
    "
        );
        let profiles = parse(&text).unwrap();
        assert_eq!(profiles[0], Profile::default_for("default-scheduler"));
        let packing = &profiles[1];
        assert_eq!(packing.scheduler_name, "bin-packing");
        assert_eq!(packing.percentage_of_nodes_to_score, Some(70));
        assert!(!packing.filters.iter().any(|f| f == "PodTopologySpread"));
        assert_eq!(
            scores(packing),
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 5),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 1),
            ]
        );
        assert_eq!(
            packing.fit_strategy,
            ScoringStrategy {
                kind: StrategyKind::MostAllocated,
                resources: vec![("cpu".into(), 2), ("memory".into(), 1)],
            }
        );
        assert!(!packing.spread_system_defaulted);
        assert_eq!(packing.spread_defaults.len(), 1);
        let only = &profiles[2];
        assert_eq!(only.filters, ["NodeResourcesFit", "NodeName"]);
        assert_eq!(scores(only), [("NodeResourcesFit", 3)]);
    }

    #[test]
    fn requested_to_capacity_ratio_reads_its_shape() {
        let text = format!(
            "{HEAD}profiles:
    - pluginConfig:
      - name: NodeResourcesFit
        args:
          scoringStrategy:
            type: RequestedToCapacityRatio
            requestedToCapacityRatio:
              shape: [{{utilization: 0, score: 0}}, {{utilization: 100, score: 10}}]
    "
        );
        let profiles = parse(&text).unwrap();
        assert_eq!(
            profiles[0].fit_strategy.kind,
            StrategyKind::RequestedToCapacityRatio(vec![(0, 0), (100, 10)])
        );
        assert_eq!(profiles[0].scheduler_name, "default-scheduler");
    }

    #[test]
    fn mistakes_are_errors_naming_the_field() {
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "unknown plugin",
                "profiles:\n- plugins:\n    filter:\n      enabled: [{name: NodeMagic}]\n".into(),
                "profiles[0].plugins.filter.enabled[0].name: Invalid value: \"NodeMagic\": unknown plugin",
            ),
            (
                "a filter plugin as a score plugin",
                "profiles:\n- plugins:\n    score:\n      enabled: [{name: NodeName}]\n".into(),
                "profiles[0].plugins.score.enabled[0].name: Invalid value: \"NodeName\": plugin does not extend this extension point",
            ),
            (
                "a negative weight",
                "profiles:\n- plugins:\n    score:\n      enabled: [{name: ImageLocality, weight: 2}, {name: NodeAffinity, weight: -1}]\n".into(),
                "profiles[0].plugins.score.enabled[1].weight: Invalid value: -1: must not be negative",
            ),
            (
                "a duplicate scheduler name",
                "profiles:\n- schedulerName: a\n- schedulerName: a\n".into(),
                "profiles[1].schedulerName: Duplicate value: \"a\"",
            ),
            (
                "a percentage out of range",
                "percentageOfNodesToScore: 120\n".into(),
                "percentageOfNodesToScore: Invalid value: 120: not in valid range [0-100]",
            ),
            (
                "an unknown scoring strategy",
                "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {scoringStrategy: {type: Random}}\n".into(),
                "profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: \"Random\": supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\"",
            ),
            (
                "a resource weight out of range",
                "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {scoringStrategy: {resources: [{name: cpu, weight: 101}]}}\n".into(),
                "profiles[0].pluginConfig[0].args.scoringStrategy.resources[0].weight: Invalid value: 101: resource weight of cpu should be in range (0, 100]",
            ),
            (
                "default constraints with the System defaulting type",
                "profiles:\n- pluginConfig:\n  - name: PodTopologySpread\n    args:\n      defaultConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]\n".into(),
                "profiles[0].pluginConfig[0].args.defaultingType: Invalid value: \"System\": when .defaultConstraints are not empty",
            ),
            (
                "an unknown plugin's config",
                "profiles:\n- pluginConfig:\n  - name: Nope\n".into(),
                "profiles[0].pluginConfig[0].name: Invalid value: \"Nope\": unknown plugin",
            ),
        ];
        for (name, body, want) in cases {
            assert_eq!(
                parse(&format!("{HEAD}{body}")),
                Err(want.to_owned()),
                "{name}"
            );
        }
        assert_eq!(
            parse("apiVersion: kubescheduler.config.k8s.io/v1beta3\nkind: KubeSchedulerConfiguration\n"),
            Err("apiVersion: Unsupported value: \"kubescheduler.config.k8s.io/v1beta3\": supported values: \"kubescheduler.config.k8s.io/v1\"".to_owned())
        );
        let error = load(Path::new("/nonexistent/keel-scheduler.yaml")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid scheduler configuration /nonexistent/keel-scheduler.yaml: "),
            "{error}"
        );
    }
}
