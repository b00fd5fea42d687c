//! Tenant ids, as Loki accepts them in `X-Scope-OrgID`.

/// Checks a tenant id: 1 to 150 characters from `[a-zA-Z0-9!-_.*'()]`, not `.` or `..`
/// (Loki's rules; tenant ids become path components in Loki, and label values here).
pub fn validate(tenant: &str) -> Result<(), String> {
    if tenant.is_empty() {
        return Err("tenant id is empty".into());
    }
    if tenant.len() > 150 {
        return Err(format!(
            "tenant id is {} characters long, at most 150 are allowed",
            tenant.len()
        ));
    }
    if tenant == "." || tenant == ".." {
        return Err(format!("tenant id {tenant:?} is not allowed"));
    }
    if let Some(c) = tenant
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
    {
        return Err(format!(
            "tenant id {tenant:?} contains {c:?}; allowed are letters, digits and !-_.*'()"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tenant_rules() {
        for ok in ["fake", "team-a", "a.b_c*(1)'!"] {
            super::validate(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a|b", "a b", &"x".repeat(151)] {
            assert!(super::validate(bad).is_err(), "{bad}");
        }
    }
}
