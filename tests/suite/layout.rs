//! The source tree keeps the shape the README's code map describes: each
//! top-level module of `src/` uses only the modules below it, no file grows
//! past 900 lines, and Burn's backends are named in `src/backend/` alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The library's top-level modules, lowest first: each may use only those
/// before it. The binary (`main.rs`, `cli/`) stands above them all.
const LAYERS: [&str; 18] = [
    "util", "heatmap", "video", "dataset", "backend", "model", "hub", "net", "infer", "timeline", "live", "preview",
    "eval", "share", "train", "demo", "bench", "app",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a file of `src/` belongs to (`None` for the crate roots and the CLI).
fn top_module(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy().to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (!["lib", "main", "cli"].contains(&name.as_str())).then_some(name)
}

/// The `crate::NAME` paths a text uses (in code and docs alike).
fn crate_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `mycrate::`
        }
        let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let rank: BTreeMap<&str, usize> = LAYERS.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut wrong = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (path, text) in sources(&src()) {
        let Some(top) = top_module(&path) else { continue };
        seen.insert(top.clone());
        let Some(&mine) = rank.get(top.as_str()) else {
            wrong.push(format!("{}: module `{top}` is not in LAYERS", path.display()));
            continue;
        };
        for used in crate_refs(&text) {
            if used == top {
                continue;
            }
            match rank.get(used.as_str()) {
                Some(&r) if r < mine => {}
                _ => wrong.push(format!("{}: `{top}` uses `crate::{used}`", path.display())),
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "imports against the layer order {LAYERS:?}:\n{}", wrong.join("\n"));
    let missing: Vec<_> = LAYERS.iter().filter(|m| !seen.contains(**m)).collect();
    assert!(missing.is_empty(), "LAYERS names modules that are gone: {missing:?}");
}

#[test]
fn no_source_file_is_over_900_lines() {
    let long: Vec<String> = sources(&src())
        .into_iter()
        .map(|(p, t)| (p, t.lines().count()))
        .filter(|(_, n)| *n > 900)
        .map(|(p, n)| format!("{}: {n} lines", p.display()))
        .collect();
    assert!(long.is_empty(), "files over 900 lines:\n{}", long.join("\n"));
}

#[test]
fn burn_backends_are_named_in_src_backend_only() {
    let names = ["burn_flex", "burn_autodiff", "Flex", "Autodiff<", "Device::flex", "Device::wgpu", "burn::backend"];
    let backend = src().join("backend");
    let mut found = Vec::new();
    for (path, text) in sources(&src()) {
        if path.starts_with(&backend) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            for n in names {
                let hit = line.match_indices(n).any(|(at, _)| {
                    // Whole identifiers only (`Flex` is not `FlexLayout`).
                    let after = line[at + n.len()..].chars().next();
                    !n.ends_with(|c: char| c.is_alphanumeric())
                        || !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if hit {
                    found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "Burn backend names outside src/backend/:\n{}", found.join("\n"));
}

/// Every read of a device tensor back to the host goes through
/// `src/backend/host.rs`, which counts those off the CPU (what
/// `gpu::training_steps_on_wgpu_read_nothing_back_until_the_log` checks).
#[test]
fn device_tensors_are_read_back_in_src_backend_only() {
    let reads = [".into_scalar", ".into_data", ".to_data(", ".try_into_data"];
    let backend = src().join("backend");
    let found: Vec<String> = sources(&src())
        .into_iter()
        .filter(|(path, _)| !path.starts_with(&backend))
        .flat_map(|(path, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| reads.iter().any(|r| line.contains(r)))
                .map(|(i, line)| format!("{}:{}: {}", path.display(), i + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(found.is_empty(), "device reads outside src/backend/:\n{}", found.join("\n"));
}
