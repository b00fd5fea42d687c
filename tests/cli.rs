//! The command-line interface: `schema`, `check`, and start-up refusals.

mod common;

use std::io::{Read, Write};
use std::process::Output;

use common::{clickhouse_url, skip};

fn sluice(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = common::clean_sluice_command(args);
    cmd.envs(env.iter().copied());
    cmd.output().expect("run sluice")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn schema_prints_the_ddl() {
    let o = sluice(&["schema"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("CREATE DATABASE IF NOT EXISTS `sluice`;"),
        "{out}"
    );
    assert!(
        out.contains("CREATE TABLE IF NOT EXISTS `sluice`.`logs`"),
        "{out}"
    );
    assert!(
        out.contains("CREATE TABLE IF NOT EXISTS `sluice`.`streams`"),
        "{out}"
    );
    assert!(!out.contains("ON CLUSTER"));

    let o = sluice(
        &["schema"],
        &[
            ("SLUICE_CLICKHOUSE_CLUSTER", "prod"),
            ("SLUICE_CLICKHOUSE_DATABASE", "logs_db"),
        ],
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("CREATE TABLE IF NOT EXISTS `logs_db`.`logs_local` ON CLUSTER `prod`"),
        "{out}"
    );
    assert!(
        out.contains("ENGINE = Distributed(`prod`, `logs_db`, `logs_local`, StreamId)"),
        "{out}"
    );
}

#[test]
fn check_config_only() {
    let o = sluice(
        &["check", "--config-only"],
        &[("SLUICE_CLICKHOUSE_PASSWORD", "secret")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("configuration: ok"), "{out}");
    assert!(out.contains("listen = \"127.0.0.1:3100\""), "{out}");
    assert!(!out.contains("secret"), "password must be masked: {out}");

    let o = sluice(
        &["check", "--config-only"],
        &[("SLUICE_LISTEN", "not-an-address")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("listen \"not-an-address\""),
        "{}",
        text(&o)
    );

    let o = sluice(&["check", "--config-only"], &[("SLUICE_INGST_TYPO", "1")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("unknown environment variable SLUICE_INGST_TYPO"),
        "{}",
        text(&o)
    );
}

#[test]
fn check_reaches_clickhouse_or_says_why_not() {
    if skip() {
        return;
    }
    let o = sluice(&["check"], &[("SLUICE_CLICKHOUSE_URL", &clickhouse_url())]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("at {}: ok", clickhouse_url())),
        "{}",
        text(&o)
    );

    let port = common::free_port();
    let dead = format!("http://127.0.0.1:{port}");
    let o = sluice(&["check"], &[("SLUICE_CLICKHOUSE_URL", &dead)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(&format!("ClickHouse at {dead}")),
        "{}",
        text(&o)
    );
}

#[test]
fn old_clickhouse_is_refused() {
    let url = common::fake_clickhouse("18.16.1", false);
    let env = [
        ("SLUICE_CLICKHOUSE_URL", url.as_str()),
        ("SLUICE_CLICKHOUSE_COMPRESSION", "none"),
        ("SLUICE_LISTEN", "127.0.0.1:0"),
    ];
    for args in [&["check"][..], &["serve"][..]] {
        let o = sluice(args, &env);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("ClickHouse 18.16.1 is too old: sluice needs 23.8 or newer"),
            "{args:?}: {}",
            text(&o)
        );
    }
}

/// A table that cannot take sluice's rows (here made by hand with another type for `StreamId`) is
/// refused at start-up with the column that differs, not on every batch.
#[test]
fn a_table_of_another_shape_is_refused_at_start_up() {
    if skip() {
        return;
    }
    let db = format!("cli_shape_{}", std::process::id());
    let run = |sql: String| {
        let o = std::process::Command::new("curl")
            .args([
                "-sS",
                "--fail-with-body",
                "--data-binary",
                &sql,
                &clickhouse_url(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{sql}: {}", text(&o));
    };
    run(format!("CREATE DATABASE IF NOT EXISTS {db}"));
    run(format!(
        "CREATE TABLE {db}.logs (Timestamp DateTime64(9), Tenant LowCardinality(String), \
         StreamId UInt32, Body String) ENGINE = MergeTree ORDER BY Timestamp"
    ));
    let o = sluice(
        &["serve"],
        &[
            ("SLUICE_CLICKHOUSE_URL", clickhouse_url().as_str()),
            ("SLUICE_CLICKHOUSE_DATABASE", db.as_str()),
            ("SLUICE_LISTEN", "127.0.0.1:0"),
        ],
    );
    run(format!("DROP DATABASE IF EXISTS {db}"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("table logs: column StreamId is UInt32, not UInt64"),
        "{}",
        text(&o)
    );
}

/// Readiness means "pushes are acknowledged": a node whose ClickHouse fails still takes them
/// into its write-ahead log, so it stays in the balancer and says what is wrong.
#[test]
fn ready_reports_a_failing_clickhouse_while_the_log_takes_pushes() {
    let url = common::fake_clickhouse("26.9.1.1", true);
    let listen = format!("127.0.0.1:{}", common::free_port());
    let data = std::env::temp_dir().join(format!("sluice-cli-ready-{}", std::process::id()));
    let mut child = common::clean_sluice_command(&["serve"])
        .envs([
            ("SLUICE_DATA_DIR", data.to_str().unwrap()),
            ("SLUICE_CLICKHOUSE_URL", url.as_str()),
            ("SLUICE_CLICKHOUSE_COMPRESSION", "none"),
            ("SLUICE_LISTEN", listen.as_str()),
            ("SLUICE_LOG", "warn"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let answer = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(&listen) {
            s.write_all(
                format!("GET /ready HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sluice did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("ClickHouse is not answering"), "{answer}");
    assert!(answer.contains("fake network trouble"), "{answer}");
    assert!(answer.contains("write-ahead log"), "{answer}");
}

#[test]
fn logql_prints_canonical_form_or_says_why_not() {
    // Parsed and supported: canonical form on stdout, exit 0.
    let o = sluice(
        &[
            "logql",
            r#"sum by(level)(count_over_time({app =  "web"}|="x"[5m]))"#,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        r#"sum by (level)(count_over_time({app="web"} |= "x"[5m]))"#
    );
    // --sql: the stream look-up and the pre-aggregated bucket query, values as parameters.
    let o = sluice(&["logql", r#"rate({app="web"} |= "x"[1m])"#, "--sql"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("FROM streams WHERE Tenant = {p0:String}"),
        "{out}"
    );
    assert!(out.contains("count() AS entries"), "{out}");
    assert!(out.contains(r#"Str("%x%")"#), "{out}");
    assert!(!out.contains("'web'"), "{out}");
    // Syntax error: exit 1 with the byte position.
    let o = sluice(&["logql", r#"{app="web" |= "x""#], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("parse error at line 1, col 12") && err.contains("(byte 11)"),
        "{err}"
    );
    // Valid LogQL sluice does not run: exit 3 naming the feature.
    let o = sluice(&["logql", r#"approx_topk(2, rate({app="web"}[1m]))"#], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("approx_topk"));
}
