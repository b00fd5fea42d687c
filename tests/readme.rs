//! Keeps the README's configuration reference true: every setting and its environment name.

#[test]
fn readme_documents_every_setting() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", "--config-only"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut section = String::new();
    let mut missing = Vec::new();
    let mut seen = 0;
    for line in text.lines() {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        seen += 1;
        let (setting, env) = if section.is_empty() {
            (key.to_string(), format!("SLUICE_{}", key.to_uppercase()))
        } else {
            (
                format!("{section}.{key}"),
                format!(
                    "SLUICE_{}_{}",
                    section.to_uppercase().replace('.', "_"),
                    key.to_uppercase()
                ),
            )
        };
        // A list's default is described in words, not printed.
        let default = if value.starts_with('[') {
            ""
        } else {
            value.trim_matches('"')
        };
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{setting}` | `{env}` |")));
        match row {
            None => missing.push(format!("{setting} ({env})")),
            Some(row) if !default.is_empty() && !row.contains(&format!("`{default}`")) => {
                missing.push(format!("{setting}: default `{default}` not in {row:?}"))
            }
            Some(_) => {}
        }
    }
    assert!(seen > 20, "parsed only {seen} settings from:\n{text}");
    assert!(
        missing.is_empty(),
        "README configuration table is out of date:\n{}",
        missing.join("\n")
    );
}
