//! Pure parsers for the JSON the `ceph` CLI prints with `--format json`.
//! Each takes the CLI's stdout and returns only what kelp uses, so a field
//! Ceph adds later changes nothing.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::CephKey;

/// What the CLI's output did not contain.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("parsing the output of `{command}` failed: {reason}")]
pub struct ParseError {
    /// The command whose output this was, e.g. `ceph mon dump`.
    pub command: &'static str,
    /// What was wrong with it.
    pub reason: String,
}

fn parse<'a, T: Deserialize<'a>>(command: &'static str, stdout: &'a str) -> Result<T, ParseError> {
    serde_json::from_str(stdout.trim()).map_err(|error| ParseError {
        command,
        reason: error.to_string(),
    })
}

/// `ceph fsid -f json`: the cluster's fsid, ceph-csi's `clusterID`.
pub fn fsid(stdout: &str) -> Result<String, ParseError> {
    #[derive(Deserialize)]
    struct Fsid {
        fsid: String,
    }
    let Fsid { fsid } = parse("ceph fsid", stdout)?;
    if fsid.len() != 36 {
        return Err(ParseError {
            command: "ceph fsid",
            reason: format!("{fsid:?} is not a uuid"),
        });
    }
    Ok(fsid)
}

/// `ceph mon dump -f json`: each monitor's msgr v1 address (`ip:port`), the
/// form ceph-csi's config and the kernel RBD client take. A monitor without
/// a v1 address is listed with its legacy `addr` only if that one is v1.
pub fn monitors(stdout: &str) -> Result<Vec<String>, ParseError> {
    #[derive(Deserialize)]
    struct MonMap {
        mons: Vec<Mon>,
    }
    #[derive(Deserialize)]
    struct Mon {
        name: String,
        #[serde(default)]
        public_addrs: Option<AddrVec>,
    }
    #[derive(Deserialize)]
    struct AddrVec {
        addrvec: Vec<Addr>,
    }
    #[derive(Deserialize)]
    struct Addr {
        #[serde(rename = "type")]
        kind: String,
        addr: String,
    }
    let map: MonMap = parse("ceph mon dump", stdout)?;
    let mut out = Vec::new();
    for mon in map.mons {
        let v1 = mon
            .public_addrs
            .into_iter()
            .flat_map(|addrs| addrs.addrvec)
            .find(|addr| addr.kind == "v1");
        match v1 {
            Some(addr) => out.push(addr.addr),
            None => {
                return Err(ParseError {
                    command: "ceph mon dump",
                    reason: format!(
                        "monitor {} has no msgr v1 address (ceph-csi's kernel client needs one: \
                         enable ms_bind_msgr1)",
                        mon.name
                    ),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(ParseError {
            command: "ceph mon dump",
            reason: "the monitor map lists no monitors".to_owned(),
        });
    }
    Ok(out)
}

/// `ceph osd pool application get P -f json`: the applications enabled on
/// the pool (`rbd` after `rbd pool init`).
pub fn applications(stdout: &str) -> Result<Vec<String>, ParseError> {
    let map: BTreeMap<String, serde_json::Value> = parse("ceph osd pool application get", stdout)?;
    Ok(map.into_keys().collect())
}

/// One client from `ceph auth get client.X -f json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEntity {
    /// `client.kelp`.
    pub entity: String,
    /// The client's secret key.
    pub key: CephKey,
    /// Caps by service (`mon`, `osd`, `mgr`), as Ceph prints them.
    pub caps: BTreeMap<String, String>,
}

/// `ceph auth get client.X -f json` (also what `auth get-or-create` prints).
pub fn auth_entity(stdout: &str) -> Result<AuthEntity, ParseError> {
    #[derive(Deserialize)]
    struct Entry {
        entity: String,
        key: String,
        #[serde(default)]
        caps: BTreeMap<String, String>,
    }
    let entries: Vec<Entry> = parse("ceph auth get", stdout)?;
    let mut entries = entries.into_iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Ok(AuthEntity {
            entity: entry.entity,
            key: CephKey::new(entry.key),
            caps: entry.caps,
        }),
        (None, _) => Err(ParseError {
            command: "ceph auth get",
            reason: "no entity in the output".to_owned(),
        }),
        (Some(_), Some(_)) => Err(ParseError {
            command: "ceph auth get",
            reason: "more than one entity in the output".to_owned(),
        }),
    }
}

/// `ceph osd pool ls -f json`: the pool names.
pub fn pools(stdout: &str) -> Result<Vec<String>, ParseError> {
    parse("ceph osd pool ls", stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MON_DUMP: &str = r#"{"epoch":1,"fsid":"feaefd74-8eac-4829-b3dc-3c93463b404e","mons":[{"rank":0,"name":"a","public_addrs":{"addrvec":[{"type":"v2","addr":"127.0.0.1:29397","nonce":0},{"type":"v1","addr":"127.0.0.1:23981","nonce":0}]},"addr":"127.0.0.1:23981/0","public_addr":"127.0.0.1:23981/0","priority":0,"weight":0,"crush_location":"{}"}],"quorum":[0]}"#;

    #[test]
    fn monitors_are_the_v1_addresses() {
        let three = r#"{"mons":[
            {"name":"a","public_addrs":{"addrvec":[{"type":"v2","addr":"10.0.0.1:3300"},{"type":"v1","addr":"10.0.0.1:6789"}]}},
            {"name":"b","public_addrs":{"addrvec":[{"type":"v1","addr":"10.0.0.2:6789"}]}},
            {"name":"c","public_addrs":{"addrvec":[{"type":"v2","addr":"[fd00::3]:3300"},{"type":"v1","addr":"[fd00::3]:6789"}]}}]}"#;
        let cases: [(&str, Result<Vec<&str>, &str>); 5] = [
            (MON_DUMP, Ok(vec!["127.0.0.1:23981"])),
            (
                three,
                Ok(vec!["10.0.0.1:6789", "10.0.0.2:6789", "[fd00::3]:6789"]),
            ),
            (
                r#"{"mons":[{"name":"a","public_addrs":{"addrvec":[{"type":"v2","addr":"10.0.0.1:3300"}]}}]}"#,
                Err("monitor a has no msgr v1 address"),
            ),
            (r#"{"mons":[]}"#, Err("lists no monitors")),
            ("Error EACCES: access denied", Err("expected value")),
        ];
        for (input, want) in cases {
            match (monitors(input), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{input}"),
                (Err(error), Err(want)) => {
                    assert!(error.to_string().contains(want), "{error} vs {want}")
                }
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn fsid_must_be_a_uuid() {
        assert_eq!(
            fsid("\n{\"fsid\":\"feaefd74-8eac-4829-b3dc-3c93463b404e\"}\n"),
            Ok("feaefd74-8eac-4829-b3dc-3c93463b404e".to_owned())
        );
        assert!(fsid(r#"{"fsid":"x"}"#).is_err());
        assert!(fsid(r#"{"id":"feaefd74-8eac-4829-b3dc-3c93463b404e"}"#).is_err());
    }

    #[test]
    fn applications_are_the_keys() {
        let cases: [(&str, Vec<&str>); 3] = [
            (r#"{"rbd":{}}"#, vec!["rbd"]),
            (r#"{}"#, vec![]),
            (
                r#"{"cephfs":{"data":"fs"},"rbd":{}}"#,
                vec!["cephfs", "rbd"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(applications(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn auth_entity_reads_key_and_caps() {
        let out = r#"[{"entity":"client.kelp","key":"AQA9EAprtisMBhAA1pLhlCcRdtaAHzoTlalOeQ==","caps":{"mgr":"profile rbd pool=kubernetes","mon":"profile rbd","osd":"profile rbd pool=kubernetes"}}]"#;
        let entity = auth_entity(out).unwrap();
        assert_eq!(entity.entity, "client.kelp");
        assert_eq!(
            entity.key.expose(),
            "AQA9EAprtisMBhAA1pLhlCcRdtaAHzoTlalOeQ=="
        );
        assert_eq!(entity.caps["mon"], "profile rbd");
        assert_eq!(entity.caps["osd"], "profile rbd pool=kubernetes");
        let no_caps = auth_entity(r#"[{"entity":"client.x","key":"k"}]"#).unwrap();
        assert!(no_caps.caps.is_empty());
        assert!(auth_entity("[]").is_err());
        assert!(auth_entity(&format!("[{0},{0}]", &out[1..out.len() - 1])).is_err());
    }

    #[test]
    fn pools_are_names() {
        assert_eq!(
            pools(r#"["device_health_metrics","kubernetes"]"#).unwrap(),
            vec!["device_health_metrics", "kubernetes"]
        );
        assert!(pools(r#"{"pools":[]}"#).is_err());
    }
}
