//! A dibao reviewer's day in the web UI, in headless Chromium (Debian's `chromium`), driven over
//! the DevTools protocol: sign in, open the worklist, filter it, open a case and see the evidence
//! side by side, assign it, verify it and record the outcome, then verify a household and open
//! its printable report. Screenshots (and the report as PDF) are kept as artefacts in
//! `target/tmp/hedui-browser/`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::common::*;
use crate::server::*;

/// Where the screenshots go: kept after the run, for people to look at.
fn artefacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hedui-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The DevTools targets. Chromium keeps this connection open, so the body is read by its length.
fn json_list(addr: &str) -> Value {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /json/list HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Headless Chromium with one page, spoken to over its DevTools WebSocket.
struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1366,768",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's chromium (apt-get install chromium; .ci/run installs it)");
        // Chromium writes the port it took into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        let port: u16 = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Some(p) = text.lines().next().and_then(|l| l.trim().parse().ok())
            {
                break p;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromium did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let addr = format!("127.0.0.1:{port}");
        let pages = json_list(&addr);
        let url = pages
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["type"] == "page")
            .unwrap()["webSocketDebuggerUrl"]
            .as_str()
            .unwrap()
            .to_string();
        let stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream).unwrap();
        let mut b = Browser {
            child,
            ws,
            next_id: 1,
            _profile: profile,
        };
        b.send("Page.enable", json!({}));
        b.send("Runtime.enable", json!({}));
        b.send(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    /// One DevTools command and its result (events in between are skipped).
    fn send(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).unwrap();
        loop {
            let msg = self.ws.read().unwrap();
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// A script's value (promises awaited).
    fn eval(&mut self, script: &str) -> Value {
        let r = self.send(
            "Runtime.evaluate",
            json!({"expression": script, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(
            r["exceptionDetails"].is_null(),
            "{script}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Wait until a script is true, or fail with what the page shows.
    fn wait_for(&mut self, script: &str) {
        let started = Instant::now();
        while self.eval(&format!("!!({script})")) != json!(true) {
            if started.elapsed() > Duration::from_secs(20) {
                let shown = self.eval("document.getElementById('main').innerText");
                panic!("waited for {script}; the page shows: {shown}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn goto(&mut self, url: &str) {
        self.send("Page.navigate", json!({"url": url}));
    }

    fn click(&mut self, selector: &str) {
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.click(); return true; }})()"
        ));
        assert_eq!(found, json!(true), "nothing to click at {selector}");
    }

    fn fill(&mut self, selector: &str, value: &str) {
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.value = {value:?}; e.dispatchEvent(new Event('input', {{bubbles: true}})); e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()"
        ));
        assert_eq!(found, json!(true), "nothing to fill at {selector}");
    }

    fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "(document.querySelector({selector:?}) || {{innerText: ''}}).innerText"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    fn screenshot(&mut self, name: &str) {
        let r = self.send("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(artefacts().join(format!("{name}.png")), png).unwrap();
    }

    /// The page fits 1366 pixels: no horizontal scrolling.
    fn assert_fits(&mut self, page: &str) {
        let width = self
            .eval("document.documentElement.scrollWidth")
            .as_i64()
            .unwrap();
        assert!(width <= 1366, "{page} is {width} px wide at 1366x768");
    }
}

#[test]
fn a_dibao_reviewers_day_in_the_browser() {
    let srv = start_checked(None);
    let token = token(&srv.lake, "dibao_reviewer", Some(CITY));
    let base = format!("http://{}/ui/", srv.http);
    let mut b = Browser::launch();

    // Sign in.
    b.goto(&base);
    b.wait_for("document.querySelector('#login')");
    b.screenshot("01-sign-in");
    b.fill("#token", &token);
    b.click("#login button[type=submit]");

    // The worklist: open cases of the dibao queue, overdue first.
    b.wait_for("document.querySelector('#cases-table tbody tr')");
    let nav = b.text("#nav");
    assert!(nav.contains("工作台") && nav.contains("家庭核对"), "{nav}");
    assert!(!nav.contains("SQL"), "no SQL console for reviewers: {nav}");
    b.assert_fits("the worklist");
    b.screenshot("02-worklist");
    b.fill("#f-rule", "R5");
    b.click("#f-apply");
    b.wait_for(
        "[...document.querySelectorAll('#cases-table tbody tr')].every(r => r.children[1].innerText === 'R5')",
    );

    // One case: the evidence from each source side by side.
    let case_id = b
        .eval("document.querySelector('#cases-table tbody tr').dataset.case")
        .as_str()
        .unwrap()
        .to_string();
    let household = b
        .eval("document.querySelector('#cases-table tbody tr').children[2].innerText")
        .as_str()
        .unwrap()
        .to_string();
    b.click("#cases-table tbody tr a");
    b.wait_for("document.querySelector('#evidence .card')");
    let sources = b
        .eval("[...document.querySelectorAll('#evidence .card')].map(c => c.dataset.dataset)")
        .as_array()
        .unwrap()
        .len();
    assert!(sources >= 2, "the payment and what disqualifies it");
    let tops = b.eval(
        "[...document.querySelectorAll('#evidence .card')].slice(0, 2).map(c => Math.round(c.getBoundingClientRect().top))",
    );
    assert_eq!(tops[0], tops[1], "two sources side by side");
    b.assert_fits("the case page");
    b.screenshot("03-case");

    // Assign by region, verify, confirm with the amount, record the recovery.
    b.click("#form-assign button");
    b.wait_for("document.querySelector('#case-state')?.innerText.includes('已分派')");
    assert!(b.text("#case-info").contains("grid-"));
    b.fill(
        "#form-verifying textarea",
        "已预约入户调查 home visit booked",
    );
    b.click("#form-verifying button");
    b.wait_for("document.querySelector('#case-state')?.innerText.includes('核查中')");
    b.fill(
        "#form-confirmed textarea",
        "入户核实：家庭有登记在用的小汽车",
    );
    b.click("#form-confirmed button");
    b.wait_for("document.querySelector('#case-state')?.innerText.includes('已确认')");
    // A first instalment: the case stays confirmed until the recoveries add up.
    b.fill("#form-recovered input[name=amount]", "1200.00");
    b.fill("#form-recovered input[name=on]", "2026-11-20");
    b.fill("#form-recovered textarea", "首期退回");
    b.click("#form-recovered button");
    b.wait_for("document.querySelector('#case-info')?.innerText.includes('¥1,200.00')");
    assert!(b.text("#case-state").contains("已确认"));
    let (_, confirmed) = call(
        &srv,
        "GET",
        &format!("/api/v1/cases/{case_id}"),
        &token,
        None,
    );
    let rest = confirmed["confirmed_cents"].as_i64().unwrap() - 120_000;
    b.fill(
        "#form-recovered input[name=amount]",
        &hedui_model::Money::from_cents(rest).to_string(),
    );
    b.fill("#form-recovered input[name=on]", "2026-11-25");
    b.fill("#form-recovered textarea", "余款已全额退回");
    b.click("#form-recovered button");
    b.wait_for("document.querySelector('#case-state')?.innerText.includes('已追回')");
    let history = b.text("#history");
    assert_eq!(
        history.lines().filter(|l| !l.trim().is_empty()).count(),
        6,
        "{history}"
    );
    b.screenshot("04-outcome");
    // The server agrees.
    let (_, case) = call(
        &srv,
        "GET",
        &format!("/api/v1/cases/{case_id}"),
        &token,
        None,
    );
    assert_eq!(case["state"], "recovered");
    assert_eq!(case["recovered_cents"], confirmed["confirmed_cents"]);

    let members = household_members(&srv, &household);
    // Verify the household and open its report.
    b.click("[data-page=household]");
    b.wait_for("document.querySelector('#household-form')");
    b.fill("#members", &members.join("\n"));
    b.click("#verify");
    b.wait_for("document.querySelector('#household-msg .error')");
    assert!(
        b.text("#household-msg").contains("授权"),
        "refused without authorisation"
    );
    b.fill("#authorisation", "SQ-2026-000777");
    b.click("#verify");
    b.wait_for("document.querySelector('#report')");
    assert_eq!(b.text("#report-auth"), "SQ-2026-000777");
    assert!(b.text("#verdict").contains("不符合"));
    assert!(
        b.text("#sources").contains("2025-"),
        "each source's as-of date"
    );
    b.assert_fits("the report");
    b.screenshot("05-report");
    // It prints: A4 pages without the navigation.
    let nav_hidden = b.eval(
        "(() => { const s = [...document.styleSheets].flatMap(x => [...x.cssRules]).find(r => r.media && r.media.mediaText === 'print'); return !!s && s.cssText.includes('display: none'); })()",
    );
    assert_eq!(nav_hidden, json!(true));
    let pdf = b.send(
        "Page.printToPDF",
        json!({"paperWidth": 8.27, "paperHeight": 11.69, "printBackground": true, "preferCSSPageSize": true}),
    );
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(pdf["data"].as_str().unwrap())
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    std::fs::write(artefacts().join("06-report.pdf"), pdf).unwrap();
}

#[test]
fn analysts_and_administrators_see_sql_data_and_the_dashboard() {
    let srv = start_checked(None);
    let analyst = token(&srv.lake, "analyst", None);
    let admin = token(&srv.lake, "admin", None);
    let base = format!("http://{}/ui/", srv.http);
    let mut b = Browser::launch();

    // A social-security clerk checks an applicant at application time: a planted R1 person.
    let truth = city().truth();
    let dead = truth["rules"]["R1"]["hits"][0]["subject"].as_str().unwrap();
    // Clerks work their district: a reviewer token of the person's registered region.
    let region = run_ok(
        hedui()
            .args(["sql", "--format", "csv", "--lake"])
            .arg(&srv.lake)
            .arg(format!(
                "SELECT region_code FROM persons WHERE person_id = '{dead}'"
            )),
    );
    let region = region.lines().nth(1).unwrap().trim().to_string();
    let reviewer = token(&srv.lake, "reviewer", Some(&region));
    b.goto(&format!("{base}#token={reviewer}&next=/person"));
    b.wait_for("document.querySelector('#person-form')");
    b.fill("#person-id", dead);
    b.fill("#person-purpose", "SQ-2026-000888");
    b.click("#person-check");
    b.wait_for("document.querySelector('#person-table')");
    assert_eq!(
        b.eval("document.querySelectorAll('#person-table tr').length")
            .as_u64(),
        Some(6),
        "the five person rules"
    );
    let r1 = b.eval("[...document.querySelectorAll('#person-table tr')].find(r => r.children[0].innerText === 'R1').children[2].innerText");
    assert!(r1.as_str().unwrap().contains("是"), "{r1}");
    b.assert_fits("the person check");
    b.screenshot("08-person-check");

    // An analyst: the SQL console, its table and its CSV download; no worklist.
    b.goto(&format!("{base}#token={analyst}&next=/sql"));
    b.wait_for("document.querySelector('#sql-text')");
    let nav = b.text("#nav");
    assert!(nav.contains("SQL") && !nav.contains("工作台"), "{nav}");
    b.fill(
        "#sql-text",
        "SELECT status, count(*) AS n FROM persons GROUP BY status ORDER BY status",
    );
    b.click("#sql-run");
    b.wait_for("document.querySelectorAll('#sql-table tr').length >= 3");
    assert!(b.text("#sql-table").contains("active"));
    b.assert_fits("the SQL console");
    b.screenshot("09-sql");
    // The download is a file the browser saves: catch the link and read what it holds.
    b.eval(
        "window.__saved = null; window.__click = HTMLAnchorElement.prototype.click; const make = URL.createObjectURL; URL.createObjectURL = (blob) => { window.__blob = blob; return make(blob); }; HTMLAnchorElement.prototype.click = function () { const a = this; window.__blob.text().then(t => { window.__saved = {name: a.download, text: t}; }); }",
    );
    b.click("#sql-csv");
    b.wait_for("window.__saved");
    let saved = b.eval("window.__saved");
    assert_eq!(saved["name"], "hedui-query.csv");
    let csv = saved["text"].as_str().unwrap();
    assert!(csv.starts_with("status,n"), "{csv}");
    b.eval("HTMLAnchorElement.prototype.click = window.__click; true");
    assert_eq!(
        csv.lines().count(),
        1 + b
            .eval("document.querySelectorAll('#sql-table tr').length - 1")
            .as_u64()
            .unwrap() as usize
    );
    // Writing through SQL is refused, and says so.
    b.fill("#sql-text", "DELETE FROM persons");
    b.click("#sql-run");
    b.wait_for("document.querySelector('#sql-out .error')");

    // An administrator: the data page with sources, counts and the quarantine's reasons.
    b.goto(&format!("{base}#token={admin}&next=/data"));
    b.wait_for("document.querySelector('#quarantine-table tr + tr')");
    let datasets = b.text("#datasets-table");
    assert!(
        datasets.contains("户籍人口") && datasets.contains("2025-"),
        "{datasets}"
    );
    let reasons = b.text("#quarantine-table");
    assert!(
        reasons.lines().count() > 2,
        "the generator's broken rows, with reasons"
    );
    b.assert_fits("the data page");
    b.screenshot("10-data");

    // The dashboard: a bar per rule with hits.
    b.click("[data-page=dashboard]");
    b.wait_for("document.querySelector('#chart-rules svg rect')");
    let bars = b
        .eval("document.querySelectorAll('#chart-rules svg rect').length")
        .as_u64()
        .unwrap();
    assert_eq!(
        bars, 7,
        "the seven rules each have cases in the generated city"
    );
    assert!(b.text("#totals").contains("案件"));
    b.assert_fits("the dashboard");
    b.screenshot("11-dashboard");
}
