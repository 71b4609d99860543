//! `tracelab merge`: the shards of one matrix (`matrix --shard i/N` on N runners) joined
//! into one dataset, as if one machine had run it. Shards of another matrix (plan, guest
//! list) or of another lab build are refused, and so is a set with a shard missing.

use crate::dataset::{self, DatasetIndex};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// What a merge joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub shards: usize,
    pub guests: usize,
}

fn short(sha: &Option<String>) -> String {
    sha.as_deref()
        .map(|s| s.get(..12).unwrap_or(s).to_string())
        .unwrap_or_else(|| "none".into())
}

/// Checks that every shard is of one matrix and one build, and all are there.
fn check(shards: &[(PathBuf, DatasetIndex)]) -> Result<usize> {
    let (first_dir, first) = &shards[0];
    let mut seen: Vec<usize> = Vec::new();
    let mut count = None;
    for (dir, idx) in shards {
        let Some(text) = &idx.shard else {
            bail!(
                "{} is a whole matrix, not a shard (made without --shard)",
                dir.display()
            );
        };
        let shard: crate::matrix::Shard = text
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: dataset.json shard {e}", dir.display()))?;
        if *count.get_or_insert(shard.count) != shard.count {
            bail!(
                "{} is shard {shard} but {} is of {} shards: merge the shards of one matrix",
                dir.display(),
                first_dir.display(),
                count.unwrap_or(0)
            );
        }
        if idx.plan_sha256 != first.plan_sha256 || idx.matrix_guests != first.matrix_guests {
            bail!(
                "{} is a shard of another matrix than {} (plan {} vs {}): merge the shards of one matrix command",
                dir.display(),
                first_dir.display(),
                short(&idx.plan_sha256),
                short(&first.plan_sha256)
            );
        }
        if idx.git_revision != first.git_revision || idx.tracelab_version != first.tracelab_version
        {
            bail!(
                "{} was made by another lab build than {} (revision {} vs {}): rerun the shards from one build",
                dir.display(),
                first_dir.display(),
                idx.git_revision.as_deref().unwrap_or("unknown"),
                first.git_revision.as_deref().unwrap_or("unknown"),
            );
        }
        // Agents are compared per arch: a shard holds the agents of the arches it ran, so
        // shards of one arch each have disjoint sets, and that is one build.
        for (arch, build) in &idx.agents {
            if let Some((other_dir, other)) = shards
                .iter()
                .find_map(|(d, i)| i.agents.get(arch).map(|b| (d, b)))
                .filter(|(_, b)| b.sha256 != build.sha256)
            {
                bail!(
                    "{} ran another {arch} agent than {} (sha256 {} vs {}): give every shard the same agent files (build them once, set TRACELAB_AGENT_DIR)",
                    dir.display(),
                    other_dir.display(),
                    short(&Some(build.sha256.clone())),
                    short(&Some(other.sha256.clone()))
                );
            }
        }
        if seen.contains(&shard.index) {
            bail!("shard {shard} is given twice ({})", dir.display());
        }
        seen.push(shard.index);
    }
    let count = count.unwrap_or(0);
    let missing: Vec<String> = (1..=count)
        .filter(|i| !seen.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "shard {} missing: a merge needs all {count} shards",
            missing.join(", ")
        );
    }
    Ok(count)
}

/// Joins `shards` into a new dataset at `out`.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<Merged> {
    if shards.is_empty() {
        bail!("no shards given: tracelab merge <shard>... --out <dataset>");
    }
    let mut indexed = Vec::new();
    for dir in shards {
        let idx = dataset::read_index(dir)?.with_context(|| {
            format!(
                "{} is not a matrix dataset (no {}): give the --out directories of `matrix --shard`",
                dir.display(),
                dataset::INDEX_FILE
            )
        })?;
        indexed.push((dir.clone(), idx));
    }
    let count = check(&indexed)?;
    let staging = crate::results::atomic::staging_dir(out)?;
    let root = staging.path().to_path_buf();
    let order = indexed[0].1.matrix_guests.clone();
    let mut merged = indexed[0].1.clone();
    merged.shard = None;
    merged.guests.clear();
    for (dir, idx) in &indexed {
        merged.agents.extend(idx.agents.clone());
        let agents = dir.join(crate::matrix::AGENTS_DIR);
        if agents.is_dir() {
            dataset::copy_tree(&agents, &root.join(crate::matrix::AGENTS_DIR))?;
        }
        for g in &idx.guests {
            // A guest that could not start has no directory.
            if dir.join(&g.dir).is_dir() {
                dataset::copy_tree(&dir.join(&g.dir), &root.join(&g.dir))?;
            }
            merged.guests.push(g.clone());
        }
        merged.started_at = merged.started_at.clone().min(idx.started_at.clone());
    }
    merged.guests.sort_by_key(|g| {
        let label = format!("{} {}", g.arch, g.kernel);
        order.iter().position(|l| *l == label)
    });
    dataset::write_index(&root, &merged)?;
    crate::results::atomic::publish_dir(staging, out)?;
    Ok(Merged {
        shards: count,
        guests: merged.guests.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(shard: &str, plan: &str) -> DatasetIndex {
        DatasetIndex {
            index_version: dataset::INDEX_VERSION,
            started_at: "2026-12-01T00:00:00Z".into(),
            tracelab_version: "0".into(),
            git_revision: Some("abc".into()),
            command_line: vec![],
            jobs: 1,
            agents: Default::default(),
            guests: vec![],
            shard: Some(shard.into()),
            matrix_guests: vec!["x86_64 6.12".into(), "x86_64 7.3".into()],
            plan_sha256: Some(plan.into()),
        }
    }

    fn set(items: &[DatasetIndex]) -> Vec<(PathBuf, DatasetIndex)> {
        items
            .iter()
            .enumerate()
            .map(|(i, x)| (PathBuf::from(format!("s{i}")), x.clone()))
            .collect()
    }

    #[test]
    fn refuses_other_matrices_builds_duplicates_and_gaps() {
        assert_eq!(
            check(&set(&[index("1/2", "p"), index("2/2", "p")])).expect("ok"),
            2
        );
        let err = |items: &[DatasetIndex]| format!("{:#}", check(&set(items)).unwrap_err());
        assert!(err(&[index("1/2", "p"), index("2/2", "q")]).contains("another matrix"));
        let mut other = index("2/2", "p");
        other.git_revision = Some("def".into());
        assert!(err(&[index("1/2", "p"), other]).contains("another lab build"));
        assert!(err(&[index("1/2", "p"), index("1/2", "p")]).contains("given twice"));
        assert!(err(&[index("1/3", "p"), index("3/3", "p")]).contains("shard 2/3 missing"));
        assert!(err(&[index("1/2", "p"), index("1/3", "p")]).contains("of 2 shards"));
        let mut whole = index("1/2", "p");
        whole.shard = None;
        assert!(err(&[whole]).contains("not a shard"));
    }

    fn agent(sha: &str) -> dataset::AgentBuild {
        dataset::AgentBuild {
            sha256: sha.into(),
            lab_revision: Some("abc".into()),
        }
    }

    /// `matrix --arch x86_64,arm64 --shard i/2` gives each shard one arch and so only that
    /// arch's agent: the shards were once refused as "another lab build".
    #[test]
    fn shards_of_one_arch_each_merge_and_agents_compare_per_arch() {
        let mut x86 = index("1/2", "p");
        x86.agents.insert("x86_64".into(), agent("aaaa"));
        let mut arm = index("2/2", "p");
        arm.agents.insert("arm64".into(), agent("bbbb"));
        assert_eq!(check(&set(&[x86.clone(), arm.clone()])).expect("merges"), 2);
        let mut other = arm.clone();
        other.agents.insert("x86_64".into(), agent("cccc"));
        let err = format!("{:#}", check(&set(&[x86, other])).unwrap_err());
        assert!(err.contains("another x86_64 agent"), "{err}");
    }

    /// A real merge of two one-arch shards on disk: every guest and both agents are kept.
    #[test]
    fn merging_one_arch_shards_keeps_both_agents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut shards = Vec::new();
        for (i, arch, sha) in [(1, "x86_64", "aaaa"), (2, "arm64", "bbbb")] {
            let shard = dir.path().join(format!("s{i}"));
            let mut idx = index(&format!("{i}/2"), "p");
            idx.matrix_guests = vec!["x86_64 6.12".into(), "arm64 6.12".into()];
            idx.agents.insert(arch.into(), agent(sha));
            std::fs::create_dir_all(shard.join(crate::matrix::AGENTS_DIR)).expect("mkdir");
            std::fs::write(
                shard
                    .join(crate::matrix::AGENTS_DIR)
                    .join(format!("tracelab-agent-{arch}")),
                sha,
            )
            .expect("agent");
            dataset::write_index(&shard, &idx).expect("index");
            shards.push(shard);
        }
        let out = dir.path().join("merged");
        let m = merge(&shards, &out).expect("merge");
        assert_eq!(m.shards, 2);
        let idx = dataset::read_index(&out).expect("read").expect("index");
        assert_eq!(idx.agents.len(), 2, "{:?}", idx.agents);
        for arch in ["x86_64", "arm64"] {
            assert!(out
                .join(crate::matrix::AGENTS_DIR)
                .join(format!("tracelab-agent-{arch}"))
                .is_file());
        }
    }
}
