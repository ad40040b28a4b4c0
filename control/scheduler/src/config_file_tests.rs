//! Table tests of the configuration file: what profiles a document yields, and the error
//! (naming the field) each kind of mistake gets.

use super::*;

const HEAD: &str = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";

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
