//! `tracelab report` end to end: a dataset on disk becomes an HTML page that headless
//! Chromium loads without an error, and a screenshot of it.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Chromium with the flags that keep a headless run quiet and offline.
fn headless(binary: &Path, profile: &Path) -> Command {
    let mut c = Command::new(binary);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .timeout(Duration::from_secs(120));
    c
}

/// The DOM of `url` as headless Chromium built it, with its console on stderr: the load
/// succeeded and nothing was logged as an error or failed to load.
fn clean_dom(browser: &Path, profile: &Path, url: &str) -> String {
    let dom = headless(browser, profile)
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(url)
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed: {stderr}");
    for line in stderr.lines() {
        let bad = line.contains(":CONSOLE(")
            || line.contains("Uncaught")
            || line.contains("net::ERR_")
            || line.contains("Failed to load");
        assert!(!bad, "browser reported: {line}");
    }
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

fn report_of_a_dataset(dir: &Path) -> PathBuf {
    let runs = tracelab::synthetic::matrix(&["x86_64", "arm64"], &["6.1", "6.12", "7.3"], 5, 3.0);
    let ds = dir.join("ds");
    tracelab::synthetic::write_dataset(&ds, &runs).expect("dataset");
    let out = dir.join("report");
    Command::cargo_bin("tracelab")
        .expect("tracelab binary")
        .arg("report")
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    for f in [
        "report.html",
        "report.md",
        "figures/overhead-x86_64-insn.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    out.join("report.html")
}

#[test]
fn report_loads_in_headless_chromium_without_errors() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed (scripts/install-deps installs it)"
        );
        eprintln!("SKIPPED: no chromium on PATH; scripts/install-deps installs it");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let html = report_of_a_dataset(dir.path());
    let url = format!("file://{}", html.display());

    // The DOM as Chromium built it, with the console on stderr: every figure is there
    // and nothing was logged as an error or failed to load.
    let stdout = clean_dom(&browser, &dir.path().join("profile-dom"), &url);
    assert_eq!(stdout.matches("<svg").count(), 4, "figures in the DOM");
    assert!(stdout.contains("Environment of each run"));

    // A screenshot, kept beside the report for a person to look at.
    let shot = html.with_file_name("screenshot.png");
    let run = headless(&browser, &dir.path().join("profile-shot"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,2400")
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "screenshot suspiciously small: {} bytes",
        png.len()
    );
    if let Some(keep) = std::env::var_os("TRACELAB_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("copy screenshot");
    }
}

#[test]
fn report_and_compare_reject_what_is_not_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [vec!["report", "--out", "x"], vec!["compare"]] {
        Command::cargo_bin("tracelab")
            .expect("tracelab binary")
            .args(&args)
            .arg(dir.path())
            .arg(dir.path())
            .assert()
            .code(2)
            .stderr(predicates::str::contains("neither a results directory"));
    }
}

#[test]
fn compare_exits_1_on_a_regression_and_writes_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = tracelab::synthetic::matrix(&["x86_64"], &["6.12"], 3, 0.0);
    let mut cand = base.clone();
    for c in &mut cand[0].cells {
        if let Some(s) = c.summary.as_mut() {
            if c.measured.mechanism == "kprobe" {
                s.overhead *= 1.5;
                s.overhead_min *= 1.5;
                s.overhead_max *= 1.5;
                s.overhead_ci_low = s.overhead_ci_low.map(|x| x * 1.5);
                s.overhead_ci_high = s.overhead_ci_high.map(|x| x * 1.5);
            }
        }
    }
    tracelab::synthetic::write_dataset(&dir.path().join("a"), &base).expect("a");
    tracelab::synthetic::write_dataset(&dir.path().join("b"), &cand).expect("b");
    let out = Command::cargo_bin("tracelab")
        .expect("tracelab binary")
        .arg("compare")
        .arg(dir.path().join("a"))
        .arg(dir.path().join("b"))
        .args(["--format", "json", "--threshold", "10%"])
        .output()
        .expect("compare");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["counts"]["regressed"], 1);
    assert_eq!(json["cells"][0]["mechanism"], "kprobe");
    assert_eq!(json["cells"][0]["verdict"], "regressed");
    // The same data against itself: no regression, exit 0.
    Command::cargo_bin("tracelab")
        .expect("tracelab binary")
        .arg("compare")
        .arg(dir.path().join("a"))
        .arg(dir.path().join("a"))
        .assert()
        .code(0);
}

/// A store of 12 nights of one guest, fprobe-exit stepping by +16% on the 8th, when the
/// kernel release changes.
fn store_with_a_step(dir: &Path) -> PathBuf {
    use tracelab::synthetic::{self, CellSpec};
    let store = dir.join("store");
    for night in 1..=12 {
        let exit = if night < 8 { 1106.35 } else { 1283.37 };
        let mut run = synthetic::run(
            "x86_64",
            "6.12",
            tracelab_model::schema::Unit::Insn,
            &[
                CellSpec::ok("kprobe", 820.56),
                CellSpec::ok("fprobe-exit", exit),
            ],
            3,
        );
        run.meta.kernel_release = Some(if night < 8 { "6.12.95" } else { "6.12.117" }.into());
        let dest = store.join(format!("night=2026-11-{night:02}-a"));
        synthetic::write_dataset(&dest, &[run]).expect("night");
    }
    store
}

#[test]
fn published_site_loads_in_headless_chromium_and_every_link_resolves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_a_step(dir.path());
    let site = dir.path().join("site");
    let out = Command::cargo_bin("tracelab")
        .expect("tracelab binary")
        .arg("publish")
        .arg(&store)
        .arg("--out")
        .arg(&site)
        .output()
        .expect("publish");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 series, 1 changes"), "{stdout}");
    // Every local link of every page resolves to a file of the site; nothing is remote.
    let mut pages = vec![site.join("index.html"), site.join("changes.html")];
    for d in ["series", "nights"] {
        for e in std::fs::read_dir(site.join(d)).expect("dir").flatten() {
            pages.push(e.path());
        }
    }
    assert_eq!(pages.len(), 2 + 2 + 12);
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("page");
        assert!(
            !text.contains("src=\"http")
                && !text.contains("href=\"http")
                && !text.contains("url(http"),
            "{}",
            page.display()
        );
        for href in text
            .split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
        {
            let target = page.parent().expect("parent").join(href);
            assert!(target.is_file(), "{}: broken link {href}", page.display());
        }
    }
    let feed = std::fs::read_to_string(site.join("feed.xml")).expect("feed");
    assert!(
        feed.starts_with("<?xml") && feed.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\">")
    );
    assert_eq!(feed.matches("<entry>").count(), 1);
    assert!(feed.contains("regression x86_64 6.12 getppid fprobe-exit: 1106.35 → 1283.37 insn/call (+16.0%) on 2026-11-08-a"), "{feed}");
    let series = pages
        .iter()
        .find(|p| p.to_string_lossy().contains("fprobe-exit"))
        .expect("fprobe-exit page");
    let text = std::fs::read_to_string(series).expect("series page");
    assert!(
        text.contains("kernel 6.12.95 → 6.12.117"),
        "the change names the kernel"
    );

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed (scripts/install-deps installs it)"
        );
        eprintln!("SKIPPED: no chromium on PATH; scripts/install-deps installs it");
        return;
    };
    for (n, page) in [site.join("index.html"), series.clone()].iter().enumerate() {
        let profile = dir.path().join(format!("profile-{n}"));
        let dom = clean_dom(&browser, &profile, &format!("file://{}", page.display()));
        assert!(dom.contains("<svg"), "{}", page.display());
    }
    let shot = site.join("screenshot.png");
    let run = headless(&browser, &dir.path().join("profile-shot"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,1400")
        .arg(format!("file://{}", series.display()))
        .output()
        .expect("run chromium");
    assert!(run.status.success());
    if let Some(keep) = std::env::var_os("TRACELAB_KEEP_SITE_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("copy screenshot");
    }
}
