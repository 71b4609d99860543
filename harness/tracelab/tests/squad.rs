//! `tracelab export --format squad --url …` against a real SQUAD server on 127.0.0.1 (the
//! `squad` package from PyPI in the venv `scripts/squad-deps` makes and `./lab test` names
//! in `TRACELAB_SQUAD_VENV`; SQLite, migrated and started here): the reference dataset is
//! submitted, every metric read back through SQUAD's REST API with its value and unit, and
//! a refused token and an unreachable server each end in a one-line error.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn dataset() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../results/reference/dataset")
}

/// A SQUAD server of its own: a temporary SQLite database, killed when dropped.
struct Server {
    child: std::process::Child,
    url: String,
    token: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn squad_admin(venv: &Path, data: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(venv.join("bin/squad-admin"));
    c.env(
        "DATABASE",
        format!(
            "ENGINE=django.db.backends.sqlite3:NAME={}",
            data.join("db.sqlite3").display()
        ),
    )
    .env("SECRET_KEY", "tracelab-test")
    .env("XDG_DATA_HOME", data)
    .current_dir(data);
    c
}

fn start() -> Server {
    let venv = PathBuf::from(std::env::var_os("TRACELAB_SQUAD_VENV").expect(
        "TRACELAB_SQUAD_VENV is not set: run the tests with `./lab test` (it makes the venv with SQUAD)",
    ));
    let data = tempfile::tempdir().expect("tempdir");
    let migrate = squad_admin(&venv, data.path())
        .args(["migrate", "-v0"])
        .output()
        .expect("squad-admin migrate");
    assert!(
        migrate.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let setup = squad_admin(&venv, data.path())
        .args([
            "shell",
            "-c",
            "from django.contrib.auth.models import User\n\
             from rest_framework.authtoken.models import Token\n\
             from squad.core.models import Group\n\
             u = User.objects.create_superuser('lab', 'lab@example.org', 'lab')\n\
             Group.objects.create(slug='tracelab').projects.create(slug='nightly')\n\
             print(Token.objects.create(user=u).key)",
        ])
        .output()
        .expect("squad-admin shell");
    assert!(
        setup.status.success(),
        "setup: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let token = String::from_utf8_lossy(&setup.stdout)
        .lines()
        .last()
        .expect("a token")
        .trim()
        .to_string();
    let port = free_port();
    let child = squad_admin(&venv, data.path())
        .args(["runserver", "--noreload", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("squad-admin runserver");
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        token,
        _data: data,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while get(&format!("{}/api/", server.url)).is_none() {
        assert!(Instant::now() < deadline, "SQUAD did not start in 120 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn get(url: &str) -> Option<Value> {
    let mut r = ureq::get(url).call().ok()?;
    serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()
}

/// Every metric SQUAD holds: name → (value, unit), following its pages.
fn metrics(server: &Server) -> Vec<(String, f64, String)> {
    let mut out = Vec::new();
    let mut next = Some(format!("{}/api/metrics/", server.url));
    while let Some(url) = next {
        let page = get(&url).expect("a page of metrics");
        for m in page["results"].as_array().expect("results") {
            out.push((
                m["name"].as_str().expect("name").to_string(),
                m["result"].as_f64().expect("result"),
                m["unit"].as_str().expect("unit").to_string(),
            ));
        }
        next = page["next"].as_str().map(str::to_string);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The flags that send the export to the SQUAD at `url`, as `nightly` of group `tracelab`.
fn to(url: &str) -> [&str; 6] {
    [
        "--url",
        url,
        "--project",
        "tracelab/nightly",
        "--build",
        "2026-12-06-1",
    ]
}

fn export(args: &[&str], token: &str) -> assert_cmd::assert::Assert {
    Command::cargo_bin("tracelab")
        .expect("tracelab binary")
        .arg("export")
        .arg(dataset())
        .args(["--format", "squad"])
        .args(args)
        .env("SQUAD_TOKEN", token)
        .assert()
}

#[test]
fn a_night_goes_into_squad_and_comes_back_with_its_values_and_units() {
    let server = start();
    // What would be sent: printed without --url.
    let printed = export(&[], "").success();
    let payload: Value =
        serde_json::from_slice(&printed.get_output().stdout).expect("the payload as JSON");
    let mut want: Vec<(String, f64, String)> = payload["metrics"]
        .as_object()
        .expect("metrics")
        .iter()
        .map(|(name, m)| {
            (
                name.clone(),
                m["value"].as_f64().expect("value"),
                m["unit"].as_str().expect("unit").to_string(),
            )
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(want.len() > 20, "{} metrics", want.len());

    let target = to(&server.url);
    // A token SQUAD does not know: refused, nothing stored, one line naming the endpoint.
    let refused = export(&target, "not-a-token").failure();
    let err = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("/api/submit/tracelab/nightly/2026-12-06-1/tracelab")
            && (err.contains("HTTP 401") || err.contains("HTTP 403"))
            && err.contains("nothing was stored"),
        "{err}"
    );
    assert!(metrics(&server).is_empty());

    let sent = export(&target, &server.token).success();
    let said = String::from_utf8_lossy(&sent.get_output().stdout).into_owned();
    assert!(
        said.starts_with(&format!("submitted {} metrics", want.len())),
        "{said}"
    );
    let got = metrics(&server);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0);
        assert_eq!(g.2, w.2, "{}: unit", g.0);
        assert!(
            (g.1 - w.1).abs() <= 1e-9 * w.1.abs().max(1.0),
            "{}: {} sent, {} stored",
            g.0,
            w.1,
            g.1
        );
    }
    assert!(got.iter().any(|m| m.2 == "insn"));

    // A server that is not there: one line, the submission not confirmed.
    drop(server);
    let url = format!("http://127.0.0.1:{}", free_port());
    let gone = export(&to(&url), "x").failure();
    let err = String::from_utf8_lossy(&gone.get_output().stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("did not answer") && err.contains(&url),
        "{err}"
    );
}

#[test]
fn squad_flags_are_checked_before_anything_is_sent() {
    for (args, token, says) in [
        (
            vec!["--url", "ftp://x", "--project", "a/b", "--build", "1"],
            "t",
            "http:// or https://",
        ),
        (
            vec!["--url", "http://x", "--project", "ab", "--build", "1"],
            "t",
            "group/project",
        ),
        (
            vec!["--url", "http://x", "--project", "a/b", "--build", "a b"],
            "t",
            "letters, digits",
        ),
        (
            vec!["--url", "http://x", "--project", "a/b", "--build", "1"],
            "",
            "SQUAD_TOKEN",
        ),
    ] {
        let out = export(&args, token).failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// A server that fails (HTTP 500): one line naming the endpoint and the status, and the
/// submission said not stored.
#[test]
fn a_failing_server_is_one_line_with_its_status() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        // The whole request (its head, then Content-Length bytes of body): replying
        // before it is read would reset the connection instead.
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = conn.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    break;
                }
            }
        }
        conn.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\noops\n",
        )
        .expect("reply");
    });
    let url = format!("http://127.0.0.1:{port}");
    let failed = export(&to(&url), "t").failure();
    server.join().expect("server");
    let err = String::from_utf8_lossy(&failed.get_output().stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{url}/api/submit/tracelab/nightly/2026-12-06-1/tracelab"
        )) && err.contains("HTTP 500")
            && err.contains("nothing was stored"),
        "{err}"
    );
}
