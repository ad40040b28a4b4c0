//! Indexed completion mode: each pod of the Job runs one index in `0..completions`, and the
//! Job is done once every index has a succeeded pod.
//!
//! A pod's index travels in the `batch.kubernetes.io/job-completion-index` annotation (and
//! label, as kube's PodIndexLabel does), reaches its containers as `JOB_COMPLETION_INDEX`
//! through the downward API, and names it: generateName `JOB-INDEX-` and hostname
//! `JOB-INDEX` (the subdomain stays the template's, so a headless Service of that name makes
//! `JOB-INDEX.SUBDOMAIN` resolvable, as in kube). The status keeps the succeeded indexes in
//! kube's compressed interval form, `completedIndexes: "1,3-5"`.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};

/// The annotation (and label) holding a pod's completion index.
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";

/// The environment variable the index reaches the containers in.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// A set of indexes, written as kube writes `completedIndexes`: ascending, runs of
/// consecutive indexes as `first-last`, separated by commas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Indexes(BTreeSet<i32>);

impl Indexes {
    /// Reads `text` ("1,3-5"); indexes at or past `limit`, and malformed parts, are left out
    /// (kube ignores them likewise: the completions may have shrunk, or the text been edited).
    pub fn parse(text: &str, limit: i32) -> Indexes {
        let mut set = BTreeSet::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((first, last)) => (first.parse::<i32>(), last.parse::<i32>()),
                None => (part.parse::<i32>(), part.parse::<i32>()),
            };
            let (Ok(first), Ok(last)) = (first, last) else {
                continue;
            };
            set.extend((first.max(0)..=last.min(limit - 1)).filter(|i| *i >= first));
        }
        Indexes(set)
    }

    /// Adds `index`.
    pub fn insert(&mut self, index: i32) {
        self.0.insert(index);
    }

    /// Whether `index` is in the set.
    pub fn contains(&self, index: i32) -> bool {
        self.0.contains(&index)
    }

    /// How many indexes the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Indexes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut runs: Vec<(i32, i32)> = Vec::new();
        for &index in &self.0 {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == index => *last = index,
                _ => runs.push((index, index)),
            }
        }
        for (i, (first, last)) in runs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if first == last {
                write!(f, "{first}")?;
            } else {
                write!(f, "{first}-{last}")?;
            }
        }
        Ok(())
    }
}

/// The completion index of `pod`, from its annotation (or its label): None when missing or
/// not a number.
pub fn index_of(pod: &Pod) -> Option<i32> {
    let meta = &pod.metadata;
    let from = |map: Option<&std::collections::BTreeMap<String, String>>| {
        map.and_then(|m| m.get(INDEX_KEY))
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|i| *i >= 0)
    };
    from(meta.annotations.as_ref()).or_else(|| from(meta.labels.as_ref()))
}

/// The first `count` indexes below `completions` that neither succeeded nor have a pod
/// running, lowest first (kube's `firstPendingIndexes`).
pub fn pending(
    completions: i32,
    completed: &Indexes,
    active: &BTreeSet<i32>,
    count: usize,
) -> Vec<i32> {
    (0..completions)
        .filter(|i| !completed.contains(*i) && !active.contains(i))
        .take(count)
        .collect()
}

/// Makes `pod` (built from the Job's template) the pod of `index` of Job `job`.
pub fn assign(pod: &mut Pod, job: &str, index: i32) {
    let value = index.to_string();
    let meta = &mut pod.metadata;
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(INDEX_KEY.into(), value.clone());
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(INDEX_KEY.into(), value);
    meta.generate_name = Some(generate_name(job, index));
    if let Some(spec) = pod.spec.as_mut() {
        spec.hostname = Some(format!("{job}-{index}"));
        let env = EnvVar {
            name: INDEX_ENV.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.annotations['{INDEX_KEY}']"),
                }),
                ..EnvVarSource::default()
            }),
        };
        let containers = spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten());
        for container in containers {
            let vars = container.env.get_or_insert_with(Vec::new);
            if !vars.iter().any(|v| v.name == INDEX_ENV) {
                vars.push(env.clone());
            }
        }
    }
}

/// `JOB-INDEX-`, the Job's name cut so the whole prefix stays within the 58 characters a
/// generated name's prefix may have (kube's `podGenerateNameWithIndex`).
fn generate_name(job: &str, index: i32) -> String {
    let appendix = format!("-{index}-");
    let room = 58usize.saturating_sub(appendix.len());
    let cut: String = job.chars().take(room).collect();
    format!("{cut}{appendix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn set(indexes: &[i32]) -> Indexes {
        let mut s = Indexes::default();
        for i in indexes {
            s.insert(*i);
        }
        s
    }

    #[test]
    fn completed_indexes_are_written_as_kube_writes_them() {
        assert_eq!(set(&[]).to_string(), "");
        assert_eq!(set(&[0]).to_string(), "0");
        assert_eq!(set(&[1, 3, 4, 5]).to_string(), "1,3-5");
        assert_eq!(set(&[0, 1, 7, 8, 9, 11]).to_string(), "0-1,7-9,11");
        assert_eq!(set(&[5, 2, 3]).to_string(), "2-3,5");
    }

    #[test]
    fn completed_indexes_read_back_within_the_completions() {
        assert_eq!(Indexes::parse("1,3-5", 10), set(&[1, 3, 4, 5]));
        assert_eq!(Indexes::parse("", 10), set(&[]));
        assert_eq!(Indexes::parse("0-2,8-12", 10), set(&[0, 1, 2, 8, 9]));
        assert_eq!(Indexes::parse("x,2,5-3,4", 10), set(&[2, 4]));
        for text in ["0", "1,3-5", "0-1,7-9,11"] {
            assert_eq!(Indexes::parse(text, 100).to_string(), text);
        }
    }

    #[test]
    fn pending_indexes_skip_completed_and_running_ones() {
        let active = BTreeSet::from([1, 4]);
        assert_eq!(pending(6, &set(&[0, 2]), &active, 10), [3, 5]);
        assert_eq!(pending(6, &set(&[]), &active, 2), [0, 2]);
        assert_eq!(
            pending(3, &set(&[0, 1, 2]), &BTreeSet::new(), 5),
            Vec::<i32>::new()
        );
    }

    #[test]
    fn an_indexed_pod_carries_its_index_everywhere_kube_puts_it() {
        let mut pod = Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ..Container::default()
                }],
                init_containers: Some(vec![Container {
                    name: "i".into(),
                    ..Container::default()
                }]),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assign(&mut pod, "render", 3);
        assert_eq!(index_of(&pod), Some(3));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()[INDEX_KEY], "3");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("render-3-"));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("render-3"));
        for container in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let env = container.env.as_ref().unwrap();
            assert_eq!(env.len(), 1);
            assert_eq!(
                env[0]
                    .value_from
                    .as_ref()
                    .unwrap()
                    .field_ref
                    .as_ref()
                    .unwrap()
                    .field_path,
                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            );
        }
        let long = "j".repeat(70);
        assert_eq!(generate_name(&long, 12), format!("{}-12-", "j".repeat(54)));
    }
}
