//! `hedui serve` on a generated city: each role through HTTP, the Postgres wire protocol (the
//! real `psql`) and the command line gets the same rows and masks; escapes are refused and
//! audited; the audit chain catches an edited byte. This module starts servers and talks to
//! them; the tests are in its submodules.

mod api;
mod audit;
mod clients;
mod continuous;
mod households;
mod interfaces;
mod live;
mod workflow;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;

pub struct Server {
    child: Child,
    pub http: String,
    pub pg: (String, u16),
    pub lake: PathBuf,
    /// The hedui.toml the server runs with, for command-line runs beside it.
    pub config: Option<PathBuf>,
    /// What the server wrote to stderr (its log).
    pub stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// `kill -9`: no chance to finish anything.
    pub fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city().data(), &lake);
    start_on(dir, lake)
}

pub fn start_on(dir: tempfile::TempDir, lake: PathBuf) -> Server {
    start_with(dir, lake, None)
}

/// A served city whose rules have run: its hits are cases in the store beside the lake. With
/// `config`, a hedui.toml of that text is used by both the check and the server.
pub fn start_checked(config: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city().data(), &lake);
    let config = config.map(|text| {
        let path = dir.path().join("hedui.toml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let mut check = hedui();
    if let Some(c) = &config {
        check.arg("--config").arg(c);
    }
    run_ok(
        check
            .args(["check", "--format", "csv", "--lake"])
            .arg(&lake),
    );
    start_with(dir, lake, config)
}

pub fn start_with(dir: tempfile::TempDir, lake: PathBuf, config: Option<PathBuf>) -> Server {
    start_as(dir, lake, config, None)
}

/// A served city whose server may hold at most `nofile` file descriptors.
pub fn start_limited(config: &str, nofile: u32) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city().data(), &lake);
    let path = dir.path().join("hedui.toml");
    std::fs::write(&path, config).unwrap();
    start_as(dir, lake, Some(path), Some(nofile))
}

fn start_as(
    dir: tempfile::TempDir,
    lake: PathBuf,
    config: Option<PathBuf>,
    nofile: Option<u32>,
) -> Server {
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}"))
                .arg("--")
                .arg(env!("CARGO_BIN_EXE_hedui"));
            c
        }
        None => hedui(),
    };
    if let Some(c) = &config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--pg",
            "127.0.0.1:0",
            "--lake",
        ])
        .arg(&lake)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("serve.stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut http, mut pg) = (None, None);
    while http.is_none() || pg.is_none() {
        let line = lines.next().expect("serve prints its addresses").unwrap();
        if let Some(rest) = line.trim().strip_prefix("HTTP      http://") {
            http = Some(rest.split('/').next().unwrap().to_string());
        }
        if line.trim().starts_with("Postgres") {
            let host = line
                .split("host=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            let port = line
                .split("port=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            pg = Some((host.to_string(), port.parse().unwrap()));
        }
    }
    // Keep draining stdout so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Server {
        config,
        stderr: dir.path().join("serve.stderr"),
        child,
        http: http.unwrap(),
        pg: pg.unwrap(),
        lake,
        _dir: dir,
    }
}

/// A JSON call: status and the parsed body (Null when empty or not JSON).
pub fn call(
    srv: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let mut headers = vec![("Authorization", auth.as_str())];
    if !text.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    let (status, _, body) = http(&srv.http, method, path, &headers, &text);
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// The members of a dibao household, read as the local operator.
pub fn household_members(srv: &Server, household: &str) -> Vec<String> {
    let out = run_ok(
        hedui()
            .args(["sql", "--format", "csv", "--lake"])
            .arg(&srv.lake)
            .arg(format!(
                "SELECT person_id FROM dibao_members WHERE household_no = '{household}' ORDER BY relation, person_id"
            )),
    );
    out.lines().skip(1).map(|l| l.trim().to_string()).collect()
}

/// The audit log's entries as JSON.
pub fn audit_entries(srv: &Server) -> Vec<serde_json::Value> {
    let log = srv.lake.parent().unwrap().join("hedui-audit.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn token(lake: &Path, role: &str, region: Option<&str>) -> String {
    let mut cmd = hedui();
    cmd.args(["token", "--role", role, "--lake"]).arg(lake);
    if let Some(r) = region {
        cmd.args(["--region", r]);
    }
    run_ok(&mut cmd).trim().to_string()
}

/// A token of `role` for the subject `subject` (its own privacy budget).
pub fn token_as(lake: &Path, role: &str, subject: &str) -> String {
    run_ok(
        hedui()
            .args(["token", "--role", role, "--subject", subject, "--lake"])
            .arg(lake),
    )
    .trim()
    .to_string()
}

/// A minimal HTTP/1.1 client: status, headers (lower-cased) and the de-chunked body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    (status, headers, body)
}

pub fn sql_http(srv: &Server, token: &str, sql: &str, format: &str) -> (u16, Vec<u8>) {
    let body = serde_json::json!({"sql": sql, "format": format}).to_string();
    let auth = format!("Bearer {token}");
    let (status, _, body) = http(
        &srv.http,
        "POST",
        "/api/v1/sql",
        &[("Authorization", &auth)],
        &body,
    );
    (status, body)
}

/// What each interface answered: rows as `a|b|c` lines, or refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Rows(Vec<String>),
    Refused,
}

pub fn via_http(srv: &Server, token: &str, sql: &str) -> Answer {
    let (status, body) = sql_http(srv, token, sql, "csv");
    match status {
        200 => Answer::Rows(
            String::from_utf8(body)
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| l.replace(',', "|"))
                .collect(),
        ),
        403 => Answer::Refused,
        other => panic!("{sql}: HTTP {other}"),
    }
}

pub fn psql(srv: &Server, token: &str, commands: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("psql");
    cmd.env("PGPASSWORD", token)
        .env("PGCONNECT_TIMEOUT", "10")
        .arg("-X")
        .arg("-A")
        .arg("-t")
        .args(["-F", "|"])
        .arg(format!(
            "host={} port={} user=tester dbname=hedui",
            srv.pg.0, srv.pg.1
        ));
    // A command longer than the system lets an argument be goes in on standard input.
    if commands.iter().any(|c| c.len() > 100_000) {
        use std::io::Write;
        let mut child = cmd
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql is installed");
        let mut stdin = child.stdin.take().unwrap();
        for c in commands {
            let _ = writeln!(stdin, "{c};");
        }
        drop(stdin);
        return child.wait_with_output().unwrap();
    }
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.output().expect("psql is installed")
}

pub fn via_psql(srv: &Server, token: &str, sql: &str) -> Answer {
    let out = psql(srv, token, &[sql]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ERROR") {
        assert!(
            stderr.contains("not available") || stderr.contains("aggregates only"),
            "{sql}: {stderr}"
        );
        return Answer::Refused;
    }
    assert!(out.status.success(), "{sql}: {stderr}");
    Answer::Rows(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect(),
    )
}

pub fn via_cli(srv: &Server, token: &str, sql: &str) -> Answer {
    let out = run(hedui()
        .args(["sql", "--format", "csv", "--token", token, "--lake"])
        .arg(&srv.lake)
        .arg(sql));
    if out.status.code() == Some(2) {
        return Answer::Refused;
    }
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Answer::Rows(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.replace(',', "|"))
            .collect(),
    )
}

pub const DISTRICT: &str = "420502";
/// The whole generated city (宜昌市): a city-level office's region.
pub const CITY: &str = "4205";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}
