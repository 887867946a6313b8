//! Whether a Ceph client's caps let ceph-csi work on a pool: a pure check
//! of the caps `ceph auth get` prints, against what ceph-csi documents:
//! `mon 'profile rbd'`, `osd 'profile rbd pool=P'`, `mgr 'profile rbd pool=P'`.

use std::collections::BTreeMap;
use std::fmt;

/// The daemons a client has caps for that ceph-csi needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Monitors: maps, and `osd blocklist` to fence a dead node's client.
    Mon,
    /// OSDs: reading and writing the pool's images.
    Osd,
    /// Managers: the `rbd_support` tasks (trash purge, flatten).
    Mgr,
}

impl Service {
    /// All of them, in the order `ceph auth caps` takes.
    pub const ALL: [Service; 3] = [Service::Mon, Service::Osd, Service::Mgr];

    /// The name in a caps map (`mon`).
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Mon => "mon",
            Service::Osd => "osd",
            Service::Mgr => "mgr",
        }
    }
}

/// The caps kelp gives the clients it creates, per service.
pub fn required(service: Service, pool: &str) -> String {
    match service {
        Service::Mon => "profile rbd".to_owned(),
        Service::Osd | Service::Mgr => format!("profile rbd pool={pool}"),
    }
}

/// `mon 'profile rbd' osd 'profile rbd pool=P' mgr 'profile rbd pool=P'`,
/// quoted for a shell.
pub fn required_args(pool: &str) -> String {
    Service::ALL
        .iter()
        .map(|service| format!("{} '{}'", service.as_str(), required(*service, pool)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One service whose caps fall short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapProblem {
    /// Which service.
    pub service: Service,
    /// The caps the client has for it (`None`: none at all).
    pub have: Option<String>,
    /// What it needs.
    pub need: String,
}

impl fmt::Display for CapProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.have {
            Some(have) => write!(
                f,
                "{} caps '{have}' do not grant '{}'",
                self.service.as_str(),
                self.need
            ),
            None => write!(
                f,
                "no {} caps (needs '{}')",
                self.service.as_str(),
                self.need
            ),
        }
    }
}

/// The services whose caps are not enough for ceph-csi on `pool`; empty
/// when the client can do everything ceph-csi does.
pub fn check(caps: &BTreeMap<String, String>, pool: &str) -> Vec<CapProblem> {
    Service::ALL
        .into_iter()
        .filter(|service| {
            !caps
                .get(service.as_str())
                .is_some_and(|spec| grants(spec).iter().any(|g| g.suffices(*service, pool)))
        })
        .map(|service| CapProblem {
            service,
            have: caps.get(service.as_str()).cloned(),
            need: required(service, pool),
        })
        .collect()
}

/// One grant of a caps string (`profile rbd pool=k`, `allow rwx`).
#[derive(Debug, PartialEq, Eq)]
enum Grant {
    /// `profile NAME [pool=P] [namespace=N]`.
    Profile {
        name: String,
        pool: Option<String>,
        namespace: Option<String>,
    },
    /// `allow PERMS [pool=P] [namespace=N]` or the old `allow pool P PERMS`.
    Allow {
        perms: String,
        pool: Option<String>,
        namespace: Option<String>,
    },
    /// Anything else (`allow command ...`, tags): never enough alone.
    Other,
}

impl Grant {
    fn suffices(&self, service: Service, pool: &str) -> bool {
        let (pool_ok, namespace_ok) = match self {
            Grant::Profile {
                pool: p,
                namespace: n,
                ..
            }
            | Grant::Allow {
                pool: p,
                namespace: n,
                ..
            } => (p.as_deref().is_none_or(|p| p == pool), n.is_none()),
            Grant::Other => return false,
        };
        // Images live in the pool's default namespace; a restriction to
        // another namespace (or pool) hides them.
        let scope_ok = match service {
            Service::Mon => true,
            Service::Osd | Service::Mgr => pool_ok && namespace_ok,
        };
        let power_ok = match self {
            Grant::Profile { name, .. } => name == "rbd",
            Grant::Allow { perms, .. } => match service {
                Service::Osd => {
                    full(perms)
                        || (perms.contains('r') && perms.contains('w') && perms.contains('x'))
                }
                // blocklisting needs write on the monitors; rbd_support tasks on the manager
                Service::Mon | Service::Mgr => {
                    full(perms) || (perms.contains('r') && perms.contains('w'))
                }
            },
            Grant::Other => false,
        };
        scope_ok && power_ok
    }
}

fn full(perms: &str) -> bool {
    perms == "*" || perms == "all"
}

/// Splits a caps string into grants (`,` or `;` between them).
fn grants(spec: &str) -> Vec<Grant> {
    spec.split([',', ';'])
        .map(str::trim)
        .filter(|grant| !grant.is_empty())
        .map(grant)
        .collect()
}

fn grant(text: &str) -> Grant {
    let words: Vec<&str> = text.split_whitespace().collect();
    let value = |key: &str| {
        words.iter().find_map(|word| {
            word.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix('='))
                .map(|v| v.trim_matches(['"', '\'']).to_owned())
        })
    };
    let is_perms =
        |word: &str| full(word) || (!word.is_empty() && word.chars().all(|c| "rwx".contains(c)));
    match words.as_slice() {
        ["profile", name, ..] => Grant::Profile {
            name: (*name).to_owned(),
            pool: value("pool"),
            namespace: value("namespace"),
        },
        // the pre-Luminous order: `allow pool P rwx`
        ["allow", "pool", pool, perms, ..] if is_perms(perms) => Grant::Allow {
            perms: (*perms).to_owned(),
            pool: Some((*pool).to_owned()),
            namespace: None,
        },
        ["allow", perms, ..] if is_perms(perms) => Grant::Allow {
            perms: (*perms).to_owned(),
            pool: value("pool"),
            namespace: value("namespace"),
        },
        _ => Grant::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(mon: Option<&str>, osd: Option<&str>, mgr: Option<&str>) -> BTreeMap<String, String> {
        [("mon", mon), ("osd", osd), ("mgr", mgr)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
            .collect()
    }

    #[test]
    fn caps_are_checked_per_service() {
        use Service::{Mgr, Mon, Osd};
        let pool = "kubernetes";
        let rbd = Some("profile rbd pool=kubernetes");
        // (mon, osd, mgr caps) and the services that fall short
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            &'a [Service],
        );
        let cases: [Case; 17] = [
            // what kelp creates
            (Some("profile rbd"), rbd, rbd, &[]),
            // profile rbd without a pool covers every pool
            (
                Some("profile rbd"),
                Some("profile rbd"),
                Some("profile rbd"),
                &[],
            ),
            // an admin
            (Some("allow *"), Some("allow *"), Some("allow *"), &[]),
            (
                Some("allow rwx"),
                Some("allow rwx pool=kubernetes"),
                Some("allow rw"),
                &[],
            ),
            // read-only monitors cannot blocklist
            (Some("allow r"), rbd, rbd, &[Mon]),
            // only mon caps
            (Some("allow r"), None, None, &[Mon, Osd, Mgr]),
            (None, None, None, &[Mon, Osd, Mgr]),
            // another pool
            (
                Some("profile rbd"),
                Some("profile rbd pool=other"),
                Some("profile rbd pool=other"),
                &[Osd, Mgr],
            ),
            // one of several grants suffices
            (
                Some("profile rbd"),
                Some("profile rbd pool=other, profile rbd pool=kubernetes"),
                rbd,
                &[],
            ),
            (
                Some("profile rbd"),
                Some("profile rbd-read-only pool=kubernetes"),
                rbd,
                &[Osd],
            ),
            // a namespace restriction hides the default namespace
            (
                Some("profile rbd"),
                Some("profile rbd pool=kubernetes namespace=ns1"),
                rbd,
                &[Osd],
            ),
            (
                Some("profile rbd"),
                Some("allow rw pool=kubernetes"),
                rbd,
                &[Osd],
            ),
            (
                Some("profile rbd"),
                Some("allow pool kubernetes rwx"),
                rbd,
                &[],
            ),
            (
                Some("profile rbd"),
                Some("allow pool other rwx"),
                rbd,
                &[Osd],
            ),
            (Some("profile rbd"), rbd, Some("allow r"), &[Mgr]),
            (Some("allow command \"osd blocklist\""), rbd, rbd, &[Mon]),
            (
                Some("profile rbd"),
                Some("allow rwx pool=\"kubernetes\""),
                rbd,
                &[],
            ),
        ];
        for (mon, osd, mgr, want) in cases {
            let problems = check(&caps(mon, osd, mgr), pool);
            let got: Vec<Service> = problems.iter().map(|p| p.service).collect();
            assert_eq!(got, want, "mon={mon:?} osd={osd:?} mgr={mgr:?}");
        }
    }

    #[test]
    fn problems_say_what_is_missing() {
        let problems = check(&caps(Some("allow r"), None, None), "k");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "mon caps 'allow r' do not grant 'profile rbd'",
                "no osd caps (needs 'profile rbd pool=k')",
                "no mgr caps (needs 'profile rbd pool=k')",
            ]
        );
        assert_eq!(
            required_args("k"),
            "mon 'profile rbd' osd 'profile rbd pool=k' mgr 'profile rbd pool=k'"
        );
    }
}
