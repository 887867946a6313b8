//! The monitors a `ceph.conf` names (`mon_host`), for the reachability
//! check that runs before any `ceph` command could hang on them. Pure.

/// One monitor: the `host:port` addresses it may answer on (v2 and v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    /// As written in `mon_host`, for messages.
    pub spec: String,
    /// `host:port` candidates; the monitor is reachable if one accepts.
    pub addresses: Vec<String>,
}

/// What is wrong with the file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfError {
    /// No `mon_host` / `mon host` in `[global]`.
    #[error(
        "the ceph.conf has no `mon host` in [global]: copy the cluster's /etc/ceph/ceph.conf \
         (or write `[global]` and `mon host = <ip>:6789`)"
    )]
    NoMonHost,
    /// A `mon_host` entry that is not an address.
    #[error("the ceph.conf's `mon host` entry {0:?} is not an address like 10.0.0.1:6789")]
    BadAddress(String),
}

/// The monitors of `[global] mon host` (Ceph treats spaces, dashes and
/// underscores in keys alike). Ports default to 3300 (v2) and 6789 (v1).
pub fn monitors(text: &str) -> Result<Vec<Monitor>, ConfError> {
    let mut section = String::new();
    let mut value = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(['#', ';']) || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            continue;
        }
        let Some((key, rest)) = line.split_once('=') else {
            continue;
        };
        let key: String = key
            .trim()
            .chars()
            .map(|c| if c == ' ' || c == '-' { '_' } else { c })
            .collect();
        if section == "global" && key == "mon_host" {
            // `#` and `;` start a comment anywhere in a line
            let rest = rest.split_once(['#', ';']).map_or(rest, |(v, _)| v);
            value = Some(rest.trim().trim_matches('"').to_owned());
        }
    }
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or(ConfError::NoMonHost)?;
    split_top_level(&value)
        .into_iter()
        .map(|spec| monitor(&spec))
        .collect()
}

/// Splits on `,` and spaces outside brackets.
fn split_top_level(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0u32;
    for c in value.chars() {
        match c {
            '[' => {
                depth += 1;
                current.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ',' | ' ' | '\t' if depth == 0 => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn monitor(spec: &str) -> Result<Monitor, ConfError> {
    let bad = || ConfError::BadAddress(spec.to_owned());
    let inner = spec.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
    let addresses = match inner {
        // an address vector: [v2:ip:3300,v1:ip:6789]
        Some(inner) if inner.starts_with("v1:") || inner.starts_with("v2:") => inner
            .split(',')
            .map(|entry| typed(entry.trim()).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?,
        _ => match typed(spec) {
            Some(address) => vec![address],
            None => {
                let (host, port) = host_port(spec).ok_or_else(bad)?;
                match port {
                    Some(port) => vec![format!("{host}:{port}")],
                    None => vec![format!("{host}:3300"), format!("{host}:6789")],
                }
            }
        },
    };
    if addresses.is_empty() {
        return Err(bad());
    }
    Ok(Monitor {
        spec: spec.to_owned(),
        addresses,
    })
}

/// `v1:ip:port` or `v2:ip[:port]` (the `/nonce` suffix dropped).
fn typed(entry: &str) -> Option<String> {
    let (default_port, rest) = if let Some(rest) = entry.strip_prefix("v2:") {
        (3300, rest)
    } else {
        (6789, entry.strip_prefix("v1:")?)
    };
    let rest = rest.split_once('/').map_or(rest, |(a, _)| a);
    let (host, port) = host_port(rest)?;
    Some(format!("{host}:{}", port.unwrap_or(default_port)))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() {
        return None;
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((format!("[{host}]"), port));
    }
    match text.split_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host.to_owned(), Some(port.parse().ok()?))),
        Some(_) => None,
        None => Some((text.to_owned(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mon_host_forms() {
        // the ceph.conf, and each monitor's candidate addresses
        type Case<'a> = (&'a str, Result<Vec<Vec<&'a str>>, ConfError>);
        let cases: [Case; 9] = [
            (
                "[global]\nfsid = x\nmon host = [v2:127.0.0.1:29397,v1:127.0.0.1:23981]\n",
                Ok(vec![vec!["127.0.0.1:29397", "127.0.0.1:23981"]]),
            ),
            (
                "[global]\n\tmon_host = 10.0.0.1,10.0.0.2:6790 ; x\n",
                Ok(vec![
                    vec!["10.0.0.1:3300", "10.0.0.1:6789"],
                    vec!["10.0.0.2:6790"],
                ]),
            ),
            (
                "[global]\nmon-host = [v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0] [v2:10.0.0.2:3300/0,v1:10.0.0.2:6789/0] # two\n",
                Ok(vec![
                    vec!["10.0.0.1:3300", "10.0.0.1:6789"],
                    vec!["10.0.0.2:3300", "10.0.0.2:6789"],
                ]),
            ),
            (
                "[global]\nmon host = [fd00::1]:6789, v1:mon.example:6789\n",
                Ok(vec![vec!["[fd00::1]:6789"], vec!["mon.example:6789"]]),
            ),
            (
                "[global]\nmon host = v2:10.0.0.1\n",
                Ok(vec![vec!["10.0.0.1:3300"]]),
            ),
            // only [global] counts
            ("[client]\nmon host = 10.0.0.1\n", Err(ConfError::NoMonHost)),
            ("[global]\nfsid = x\n", Err(ConfError::NoMonHost)),
            ("[global]\nmon host =\n", Err(ConfError::NoMonHost)),
            (
                "[global]\nmon host = 10.0.0.1:notaport\n",
                Err(ConfError::BadAddress("10.0.0.1:notaport".to_owned())),
            ),
        ];
        for (text, want) in cases {
            let got = monitors(text)
                .map(|mons| mons.into_iter().map(|m| m.addresses).collect::<Vec<_>>());
            let want = want.map(|mons| {
                mons.into_iter()
                    .map(|m| m.into_iter().map(str::to_owned).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            });
            assert_eq!(got, want, "{text}");
        }
    }
}
