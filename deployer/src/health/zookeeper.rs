//! The ZooKeeper quorum gate: the `srvr` four-letter word on every server.
//!
//! A pod's readiness only says that its server serves; the rollout needs the
//! ensemble: every server answers, exactly one is the leader and the rest
//! follow it (or one `standalone` server when the ensemble is one server).
//! `srvr` must be in `4lw.commands.whitelist`, as the deployer's `zoo.cfg`
//! has it.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{CHECK_TIMEOUT, Gate, GateFuture, GateStatus, error_chain, excerpt};

/// Most of a `srvr` answer kelp reads: the real one is a few hundred bytes.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// The role a server reported in `srvr`'s `Mode:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The quorum's leader.
    Leader,
    /// A voting member following the leader.
    Follower,
    /// A non-voting member.
    Observer,
    /// A single server outside any ensemble.
    Standalone,
    /// Read-only mode: the server lost the quorum (`readonlymode.enabled`).
    ReadOnly,
    /// Another mode word.
    Other(String),
}

impl Mode {
    fn as_str(&self) -> &str {
        match self {
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::Standalone => "standalone",
            Mode::ReadOnly => "read-only",
            Mode::Other(word) => word,
        }
    }
}

/// Reads a `srvr` answer. An error says, as a predicate of the server, why
/// it has no usable mode ("is not serving requests: no quorum").
pub fn parse_srvr(answer: &str) -> Result<Mode, String> {
    let text = answer.trim();
    if text.is_empty() {
        return Err("answered nothing to srvr".to_owned());
    }
    if text.contains("not currently serving requests") {
        return Err("is not serving requests: it is not part of a quorum".to_owned());
    }
    if text.contains("not in the whitelist") {
        return Err("refuses srvr: add it to 4lw.commands.whitelist".to_owned());
    }
    let mode = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Mode:"))
        .map(str::trim);
    match mode {
        Some("leader") => Ok(Mode::Leader),
        Some("follower") => Ok(Mode::Follower),
        Some("observer") => Ok(Mode::Observer),
        Some("standalone") => Ok(Mode::Standalone),
        Some("read-only") => Ok(Mode::ReadOnly),
        Some(other) => Ok(Mode::Other(other.to_owned())),
        None => Err(format!(
            "answered srvr without a mode: {}",
            excerpt(text.as_bytes())
        )),
    }
}

/// Decides from every server's answer (`address`, mode or why none).
pub fn evaluate(answers: &[(String, Result<Mode, String>)]) -> GateStatus {
    if answers.is_empty() {
        return GateStatus::NotYet("no zookeeper server to ask".to_owned());
    }
    let failures: Vec<String> = answers
        .iter()
        .filter_map(|(address, answer)| answer.as_ref().err().map(|why| format!("{address} {why}")))
        .collect();
    if !failures.is_empty() {
        return GateStatus::NotYet(failures.join("; "));
    }
    let modes: Vec<(&str, &Mode)> = answers
        .iter()
        .filter_map(|(address, answer)| answer.as_ref().ok().map(|m| (address.as_str(), m)))
        .collect();
    if let [(address, Mode::Standalone)] = modes.as_slice() {
        return GateStatus::Healthy(format!("standalone on {address}"));
    }
    let leaders: Vec<&str> = modes
        .iter()
        .filter(|(_, m)| **m == Mode::Leader)
        .map(|(a, _)| *a)
        .collect();
    let followers = modes.iter().filter(|(_, m)| **m == Mode::Follower).count();
    if let [leader] = leaders.as_slice()
        && followers == modes.len() - 1
    {
        return GateStatus::Healthy(format!(
            "leader on {leader}, {followers} follower{}",
            if followers == 1 { "" } else { "s" }
        ));
    }
    let seen: Vec<String> = modes
        .iter()
        .map(|(address, mode)| format!("{address} {}", mode.as_str()))
        .collect();
    GateStatus::NotYet(format!(
        "want one leader and {} follower(s), got {}",
        modes.len() - 1,
        seen.join(", ")
    ))
}

/// Sends `srvr` to one server and reads the answer to the end.
async fn srvr(address: &str, timeout: Duration) -> Result<String, String> {
    let secs = timeout.as_secs();
    let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("did not answer: {}", error_chain(&e))),
        Err(_) => return Err(format!("did not answer within {secs} s")),
    };
    let exchange = async {
        stream.write_all(b"srvr").await?;
        let mut answer = Vec::new();
        // The server closes the connection after the answer.
        (&mut stream)
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut answer)
            .await?;
        Ok::<Vec<u8>, std::io::Error>(answer)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(answer)) => Ok(String::from_utf8_lossy(&answer).into_owned()),
        Ok(Err(e)) => Err(format!("did not answer srvr: {}", error_chain(&e))),
        Err(_) => Err(format!("did not finish its srvr answer within {secs} s")),
    }
}

/// The gate: every server of the ensemble answers `srvr`, one leads and the
/// others follow.
#[derive(Debug, Clone)]
pub struct ZooKeeperQuorum {
    /// `(name in messages, address)` per server.
    servers: Vec<(String, String)>,
    timeout: Duration,
}

impl ZooKeeperQuorum {
    /// The ensemble's client addresses, `host:port` each (port 2181 in the
    /// deployer's manifests); messages name the addresses.
    pub fn new(servers: Vec<String>) -> ZooKeeperQuorum {
        ZooKeeperQuorum::named(servers.into_iter().map(|a| (a.clone(), a)).collect())
    }

    /// Servers reached at one address and named by another in messages,
    /// `(name, address)`, e.g. `("zookeeper-2:2181", "127.0.0.1:40123")`
    /// through a port-forward.
    pub fn named(servers: Vec<(String, String)>) -> ZooKeeperQuorum {
        ZooKeeperQuorum {
            servers,
            timeout: CHECK_TIMEOUT,
        }
    }
}

impl Gate for ZooKeeperQuorum {
    fn name(&self) -> &str {
        "zookeeper quorum"
    }

    fn check(&self) -> GateFuture<'_> {
        Box::pin(async move {
            let asks = self.servers.iter().map(|(name, address)| async move {
                let answer = srvr(address, self.timeout).await;
                (name.clone(), answer.and_then(|text| parse_srvr(&text)))
            });
            let answers = futures::future::join_all(asks).await;
            evaluate(&answers)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER: &str = "Zookeeper version: 3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC\n\
        Latency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\nConnections: 1\nOutstanding: 0\n\
        Zxid: 0x100000000\nMode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n";

    #[test]
    fn srvr_answers_are_read() {
        let table: &[(&str, Result<Mode, &str>)] = &[
            (LEADER, Ok(Mode::Leader)),
            (
                "Zxid: 0x1d\nMode: follower\nNode count: 28\n",
                Ok(Mode::Follower),
            ),
            ("Mode: standalone\n", Ok(Mode::Standalone)),
            ("Mode: observer\r\n", Ok(Mode::Observer)),
            ("Mode: read-only\n", Ok(Mode::ReadOnly)),
            ("Mode: learner\n", Ok(Mode::Other("learner".to_owned()))),
            ("", Err("answered nothing")),
            (
                "This ZooKeeper instance is not currently serving requests\n",
                Err("not serving requests"),
            ),
            (
                "srvr is not executed because it is not in the whitelist.\n",
                Err("4lw.commands.whitelist"),
            ),
            ("Zookeeper version: 3.8.4\n", Err("without a mode")),
        ];
        for (answer, want) in table {
            match (parse_srvr(answer), want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{answer:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{answer:?}: {got}"),
                (got, want) => panic!("{answer:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn answers(list: &[(&str, Result<Mode, &str>)]) -> Vec<(String, Result<Mode, String>)> {
        list.iter()
            .map(|(a, r)| (a.to_string(), r.clone().map_err(str::to_owned)))
            .collect()
    }

    #[test]
    fn quorum_is_one_leader_and_the_rest_followers() {
        use Mode::*;
        let refused = "did not answer: connection refused";
        // (answers, healthy, text the status must contain)
        type Case<'a> = (Vec<(&'a str, Result<Mode, &'a str>)>, bool, &'a str);
        let cases: Vec<Case> = vec![
            (
                vec![
                    ("zk-0:2181", Ok(Follower)),
                    ("zk-1:2181", Ok(Leader)),
                    ("zk-2:2181", Ok(Follower)),
                ],
                true,
                "leader on zk-1:2181, 2 followers",
            ),
            (
                vec![("zk-0:2181", Ok(Standalone))],
                true,
                "standalone on zk-0:2181",
            ),
            // A one-server ensemble with standaloneEnabled=false leads itself.
            (
                vec![("zk-0:2181", Ok(Leader))],
                true,
                "leader on zk-0:2181, 0 followers",
            ),
            (
                vec![
                    ("zk-0:2181", Ok(Leader)),
                    ("zk-1:2181", Ok(Follower)),
                    ("zk-2:2181", Err(refused)),
                ],
                false,
                "zk-2:2181 did not answer: connection refused",
            ),
            (
                vec![
                    ("zk-0:2181", Ok(Follower)),
                    ("zk-1:2181", Ok(Follower)),
                    ("zk-2:2181", Ok(Follower)),
                ],
                false,
                "want one leader and 2 follower(s), got zk-0:2181 follower",
            ),
            (
                vec![("zk-0:2181", Ok(Leader)), ("zk-1:2181", Ok(Leader))],
                false,
                "zk-1:2181 leader",
            ),
            // Standalone servers that should form an ensemble do not see each other.
            (
                vec![
                    ("zk-0:2181", Ok(Standalone)),
                    ("zk-1:2181", Ok(Standalone)),
                    ("zk-2:2181", Ok(Standalone)),
                ],
                false,
                "zk-2:2181 standalone",
            ),
            (
                vec![("zk-0:2181", Ok(Leader)), ("zk-1:2181", Ok(Observer))],
                false,
                "zk-1:2181 observer",
            ),
            (vec![], false, "no zookeeper server"),
        ];
        for (list, healthy, text) in cases {
            let status = evaluate(&answers(&list));
            assert_eq!(status.is_healthy(), healthy, "{list:?}: {status:?}");
            let (GateStatus::Healthy(got) | GateStatus::NotYet(got)) = &status;
            assert!(got.contains(text), "{list:?}: {got:?} lacks {text:?}");
        }
    }

    /// The gate needs `srvr`; the rendered `zoo.cfg` must allow it.
    #[test]
    fn the_rendered_zoo_cfg_whitelists_srvr() {
        use crate::manifests::Object;
        let stack = crate::stack::Stack::default();
        let objects = crate::manifests::build_component(&stack, "zookeeper");
        let zoo_cfg = objects
            .iter()
            .find_map(|o| match o {
                Object::ConfigMap(c) => c.data.as_ref()?.get("zoo.cfg").cloned(),
                _ => None,
            })
            .expect("a zookeeper config map with zoo.cfg");
        let whitelist = zoo_cfg
            .lines()
            .find_map(|l| l.strip_prefix("4lw.commands.whitelist="))
            .expect("4lw.commands.whitelist in zoo.cfg");
        assert!(
            whitelist
                .split(',')
                .any(|w| w.trim() == "srvr" || w.trim() == "*"),
            "{whitelist}"
        );
    }

    /// A fake server that answers `answer` to whatever it is sent.
    async fn fake_zookeeper(answer: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut word = [0u8; 4];
                if stream.read_exact(&mut word).await.is_ok() && &word == b"srvr" {
                    let _ = stream.write_all(answer.as_bytes()).await;
                }
            }
        });
        address
    }

    #[tokio::test]
    async fn the_gate_asks_every_server() {
        let leader = fake_zookeeper(LEADER).await;
        let follower = fake_zookeeper("Mode: follower\n").await;
        let gate = ZooKeeperQuorum::new(vec![leader.clone(), follower]);
        assert_eq!(
            gate.check().await,
            GateStatus::Healthy(format!("leader on {leader}, 1 follower"))
        );

        // A closed port: bind, note the address, close.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let gate = ZooKeeperQuorum::new(vec![leader.clone(), closed.clone()]);
        match gate.check().await {
            GateStatus::NotYet(why) => assert!(why.starts_with(&closed), "{why}"),
            healthy => panic!("{healthy:?}"),
        }

        // Through port-forwards, messages name the pods.
        let gate = ZooKeeperQuorum::named(vec![
            ("zookeeper-0:2181".to_owned(), leader),
            ("zookeeper-2:2181".to_owned(), closed),
        ]);
        match gate.check().await {
            GateStatus::NotYet(why) => {
                assert!(why.starts_with("zookeeper-2:2181 did not answer"), "{why}")
            }
            healthy => panic!("{healthy:?}"),
        }
    }
}
