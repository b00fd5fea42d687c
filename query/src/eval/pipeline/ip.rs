//! `ip("...")` filters: a single address, a range `a-b` or a CIDR, matched against addresses
//! found in a line or a label value the way Loki scans for them.

use std::net::IpAddr;

/// What an `ip(...)` pattern matches.
#[derive(Clone, Debug)]
pub(crate) enum IpMatcher {
    Addr(IpAddr),
    /// Inclusive, same family.
    Range(IpAddr, IpAddr),
    /// Network address (masked) and prefix length.
    Prefix(IpAddr, u8),
}

impl IpMatcher {
    /// Parses Loki's pattern forms; the error text is Loki's.
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        if let Some(a) = parse_addr(pattern) {
            return Ok(IpMatcher::Addr(a));
        }
        if let Some((a, bits)) = pattern.split_once('/')
            && let Some(addr) = parse_addr(a)
            && !bits.is_empty()
            && bits.bytes().all(|b| b.is_ascii_digit())
            && !(bits.len() > 1 && bits.starts_with('0'))
            && let Ok(n) = bits.parse::<u8>()
        {
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if n <= max {
                return Ok(IpMatcher::Prefix(mask(addr, n), n));
            }
        }
        if let Some((a, b)) = pattern.split_once('-')
            && let (Some(a), Some(b)) = (parse_addr(a), parse_addr(b))
            && a.is_ipv4() == b.is_ipv4()
            && a <= b
        {
            return Ok(IpMatcher::Range(a, b));
        }
        Err(format!(
            "ip: invalid pattern: {}",
            super::convert::go_quote(pattern)
        ))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            IpMatcher::Addr(a) => a == ip,
            IpMatcher::Range(a, b) => a.is_ipv4() == ip.is_ipv4() && a <= ip && ip <= b,
            IpMatcher::Prefix(net, bits) => net.is_ipv4() == ip.is_ipv4() && mask(ip, bits) == net,
        }
    }

    /// True when the text contains an address this matcher accepts (Loki's scan: IPv4 and IPv6
    /// prefix hints, then the longest run of address characters).
    pub(crate) fn matches_in(&self, line: &str) -> bool {
        let b = line.as_bytes();
        let n = b.len();
        if n == 0 {
            return false;
        }
        let at = |i: usize| if i < n { b[i] } else { 0 };
        let mut i = 0;
        while i < n {
            if i + 3 < n && ipv4_hint(b[i], b[i + 1], b[i + 2], b[i + 3]) {
                let len = span(&b[i..], IPV4_CHARS);
                if let Some(ip) = std::str::from_utf8(&b[i..i + len])
                    .ok()
                    .and_then(parse_addr)
                    && self.contains(ip)
                {
                    return true;
                }
                i += len + 1;
                continue;
            }
            if ipv6_hint([at(i), at(i + 1), at(i + 2), at(i + 3), at(i + 4)]) {
                let len = span(&b[i..], IPV6_CHARS);
                if let Some(ip) = std::str::from_utf8(&b[i..i + len])
                    .ok()
                    .and_then(parse_addr)
                    && self.contains(ip)
                {
                    return true;
                }
                i += len + 1;
                continue;
            }
            i += 1;
        }
        false
    }
}

const IPV4_CHARS: &[u8] = b"0123456789.";
const IPV6_CHARS: &[u8] = b"0123456789abcdefABCDEF:.";

fn span(s: &[u8], accept: &[u8]) -> usize {
    s.iter()
        .position(|c| !accept.contains(c))
        .unwrap_or(s.len())
}

fn ipv4_hint(a: u8, b: u8, c: u8, d: u8) -> bool {
    a.is_ascii_digit() && (b == b'.' || c == b'.' || d == b'.')
}

fn ipv6_hint(p: [u8; 5]) -> bool {
    let h = |c: u8| c.is_ascii_hexdigit();
    (p[0] == b':' && p[1] == b':' && h(p[2]))
        || (h(p[0]) && p[1] == b':')
        || (h(p[0]) && h(p[1]) && p[2] == b':')
        || (h(p[0]) && h(p[1]) && h(p[2]) && p[3] == b':')
        || (h(p[0]) && h(p[1]) && h(p[2]) && h(p[3]) && p[4] == b':')
}

/// Go's `netip.ParseAddr` for the forms the scanner can see (no zones).
fn parse_addr(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        s.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        // Rust rejects leading zeros in IPv4 octets, as Go's netip does.
        s.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

fn mask(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m: u32 = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m: u128 = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}
