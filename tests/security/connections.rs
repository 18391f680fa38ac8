//! Connections an attacker opens and never uses cannot take the server: more idle connections
//! than the server has file descriptors, on both listeners, and honest clients are still
//! answered once the idle ones have timed out. Each listener holds at most `max_connections`
//! (below the descriptor limit, so that the audit log and the lake's files can still be
//! opened); the rest wait in the backlog.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::*;

#[test]
fn idle_connections_beyond_the_descriptor_limit_do_not_stop_the_server() {
    let srv = start_limited(
        "[server]\nheader_timeout = \"2s\"\nmax_connections = 100\n",
        256,
    );
    let analyst = token(&srv.lake, "analyst", None);
    // More than the process may hold: the rest wait in the listen backlog, or are refused by
    // the kernel; either way nothing on the server's side ends.
    let mut idle = Vec::new();
    for addr in [srv.http.clone(), format!("{}:{}", srv.pg.0, srv.pg.1)] {
        for _ in 0..300 {
            if let Ok(s) =
                TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200))
            {
                idle.push(s);
            }
        }
    }
    assert!(
        idle.len() > 256,
        "only {} idle connections opened",
        idle.len()
    );
    // An honest client is answered within the header timeout plus a margin.
    let started = Instant::now();
    let (status, _) = sql_http(&srv, &analyst, "SELECT 1 AS one", "json");
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The idle HTTP connections that were accepted were closed by the header timeout.
    let first = &mut idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = first.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "an idle connection was kept open");
    // Postgres still takes a client too.
    drop(idle);
    let out = psql(&srv, &analyst, &["SELECT 41 + 1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    // And a request that trickles its headers is cut off as well.
    let mut slow = TcpStream::connect(&srv.http).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        rest.is_empty() || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}
