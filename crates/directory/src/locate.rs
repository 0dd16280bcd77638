//! Finding a domain controller from DNS, the way Windows' DC locator does for `Set-ADUser`
//! without `-Server`: SRV records `_ldap._tcp.dc._msdcs.<domain>` (RFC 2782), tried in
//! priority order, by weight within a priority.
//!
//! The resolver is the system's (resolv.conf on Unix, the adapters' settings on Windows)
//! unless a DNS server is given ([`Locator::dns_server`]): tests point it at the test DC's own
//! DNS without touching the machine's resolver settings. The targets' addresses are looked up
//! with the same resolver, so a DC known only to that DNS server can be reached; the
//! connection then goes to that address while TLS and Kerberos use the DC's host name.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use serde::Serialize;

use crate::DirectoryError;

/// One domain controller from DNS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainController {
    /// The SRV target, without the trailing dot (`dc1.corp.example`).
    pub host: String,
    /// The SRV port (389 for `_ldap._tcp`).
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
    /// The target's addresses, from the same resolver (empty if it had none).
    pub addresses: Vec<IpAddr>,
}

/// How to look DCs up.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    /// Ask this DNS server (UDP, TCP for long answers) instead of the system's.
    pub dns_server: Option<SocketAddr>,
    /// Limit for each DNS query (default 5 s).
    pub timeout: Option<Duration>,
}

/// The SRV name of a domain's domain controllers.
pub fn srv_name(domain: &str) -> String {
    format!(
        "_ldap._tcp.dc._msdcs.{}",
        domain.trim_end_matches('.').to_ascii_lowercase()
    )
}

/// Parse `IP` or `IP:PORT` (IPv6 as `[::1]:53`); port 53 when none is given.
pub fn parse_dns_server(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

/// The domain to look DCs up in when none is given, and where it came from: `USERDNSDOMAIN`
/// (set by Windows for a domain logon), else the realm of the Kerberos ticket, else the
/// system resolver's domain / first search domain.
pub fn default_domain(ticket_realm: Option<&str>) -> Option<(String, &'static str)> {
    if let Some(d) = std::env::var("USERDNSDOMAIN")
        .ok()
        .filter(|d| !d.trim().is_empty())
    {
        return Some((d.trim().to_ascii_lowercase(), "USERDNSDOMAIN"));
    }
    if let Some(r) = ticket_realm.filter(|r| !r.is_empty()) {
        return Some((r.to_ascii_lowercase(), "the Kerberos ticket's realm"));
    }
    let (config, _) = hickory_resolver::system_conf::read_system_conf().ok()?;
    let name = config
        .domain()
        .cloned()
        .or_else(|| config.search().first().cloned())?;
    let d = name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    (!d.is_empty() && d.contains('.')).then_some((d, "the DNS search domain"))
}

impl Locator {
    fn resolver(&self) -> Result<TokioResolver, DirectoryError> {
        let timeout = self.timeout.unwrap_or(Duration::from_secs(5));
        let mut builder = match self.dns_server {
            Some(addr) => {
                let conn = |p: ProtocolConfig| {
                    let mut c = ConnectionConfig::new(p);
                    c.port = addr.port();
                    c
                };
                let ns = NameServerConfig::new(
                    addr.ip(),
                    true,
                    vec![conn(ProtocolConfig::Udp), conn(ProtocolConfig::Tcp)],
                );
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| DirectoryError::Dns {
                name: "(system resolver settings)".into(),
                reason: e.to_string(),
            })?,
        };
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.ndots = 0;
        *builder.options_mut() = opts;
        builder.build().map_err(|e| DirectoryError::Dns {
            name: "(resolver)".into(),
            reason: e.to_string(),
        })
    }

    /// The DCs of `domain` in the order to try them: priority ascending, and within one
    /// priority by weight (RFC 2782's weighted pick, heaviest first for equal chances).
    pub async fn find(&self, domain: &str) -> Result<Vec<DomainController>, DirectoryError> {
        let resolver = self.resolver()?;
        let name = srv_name(domain);
        let fqdn = format!("{name}.");
        let lookup = match resolver.srv_lookup(fqdn.as_str()).await {
            Ok(l) => l,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {
                return Err(DirectoryError::NoDcRecord { name })
            }
            Err(e) => {
                return Err(DirectoryError::Dns {
                    name,
                    reason: e.to_string(),
                })
            }
        };
        let mut dcs: Vec<DomainController> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(DomainController {
                    host: srv
                        .target
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                    port: srv.port,
                    priority: srv.priority,
                    weight: srv.weight,
                    addresses: Vec::new(),
                }),
                _ => None,
            })
            // RFC 2782: a target of "." means the service is decidedly not available.
            .filter(|dc| !dc.host.is_empty())
            .collect();
        if dcs.is_empty() {
            return Err(DirectoryError::NoDcRecord { name });
        }
        order(&mut dcs, seed());
        for dc in &mut dcs {
            if let Ok(ips) = resolver.lookup_ip(format!("{}.", dc.host).as_str()).await {
                dc.addresses = ips.iter().collect();
            }
        }
        Ok(dcs)
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id())
}

/// RFC 2782 ordering: by priority; within a priority, repeatedly pick one at random with
/// probability proportional to its weight (weight-0 entries get a small chance).
fn order(dcs: &mut [DomainController], mut rng: u64) {
    dcs.sort_by_key(|d| d.priority);
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut start = 0;
    while start < dcs.len() {
        let prio = dcs[start].priority;
        let end = start
            + dcs[start..]
                .iter()
                .take_while(|d| d.priority == prio)
                .count();
        for i in start..end {
            let total: u64 = dcs[i..end].iter().map(|d| u64::from(d.weight) + 1).sum();
            let mut pick = next() % total;
            let mut chosen = i;
            for (j, d) in dcs.iter().enumerate().take(end).skip(i) {
                let w = u64::from(d.weight) + 1;
                if pick < w {
                    chosen = j;
                    break;
                }
                pick -= w;
            }
            dcs.swap(i, chosen);
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dc(host: &str, priority: u16, weight: u16) -> DomainController {
        DomainController {
            host: host.into(),
            port: 389,
            priority,
            weight,
            addresses: Vec::new(),
        }
    }

    #[test]
    fn srv_names_and_dns_servers() {
        assert_eq!(
            srv_name("Corp.Example."),
            "_ldap._tcp.dc._msdcs.corp.example"
        );
        assert_eq!(
            parse_dns_server("127.0.0.4"),
            Some("127.0.0.4:53".parse().expect("addr"))
        );
        assert_eq!(
            parse_dns_server("127.0.0.4:5353"),
            Some("127.0.0.4:5353".parse().expect("addr"))
        );
        assert_eq!(
            parse_dns_server("[::1]"),
            Some("[::1]:53".parse().expect("addr"))
        );
        assert_eq!(parse_dns_server("dns.example"), None);
    }

    #[test]
    fn priority_first_then_weight() {
        for seed in 1..200u64 {
            let mut dcs = vec![
                dc("c", 10, 0),
                dc("a", 0, 100),
                dc("b", 0, 0),
                dc("d", 20, 5),
            ];
            order(&mut dcs, seed);
            let prios: Vec<u16> = dcs.iter().map(|d| d.priority).collect();
            assert_eq!(prios, [0, 0, 10, 20]);
            assert_eq!(dcs[2].host, "c");
            assert_eq!(dcs[3].host, "d");
        }
        // Weight 100 against weight 0 wins the first place nearly always.
        let first_a = (1..1000u64)
            .filter(|s| {
                let mut dcs = vec![dc("b", 0, 0), dc("a", 0, 100)];
                order(&mut dcs, *s * 7919);
                dcs[0].host == "a"
            })
            .count();
        assert!(first_a > 900, "{first_a}");
    }
}
