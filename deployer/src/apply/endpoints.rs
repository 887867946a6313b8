//! Where the health gates reach the applications. By default kelp
//! port-forwards to the pods; `--health-endpoint COMPONENT=ADDR` overrides
//! that per component, for clusters kelp cannot port-forward to (kwok test
//! clusters have no kubelet) or to go through an ingress. Parsing is pure.

use std::fmt;

/// A component with a health gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    /// ZooKeeper: `host:port[,host:port...]`, one per server.
    ZooKeeper,
    /// Kafka: bootstrap `host:port[,host:port...]`.
    Kafka,
    /// Elasticsearch: a URL, or `host:port`.
    Elasticsearch,
    /// Kibana: a URL, or `host:port`.
    Kibana,
}

impl Component {
    fn parse(name: &str) -> Option<Component> {
        Some(match name {
            "zookeeper" => Component::ZooKeeper,
            "kafka" => Component::Kafka,
            "elasticsearch" => Component::Elasticsearch,
            "kibana" => Component::Kibana,
            _ => return None,
        })
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Component::ZooKeeper => "zookeeper",
            Component::Kafka => "kafka",
            Component::Elasticsearch => "elasticsearch",
            Component::Kibana => "kibana",
        })
    }
}

/// The overrides given on the command line; unset components are reached
/// through a port-forward.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// ZooKeeper servers, `host:port` each.
    pub zookeeper: Option<Vec<String>>,
    /// Kafka bootstrap servers, comma-separated.
    pub kafka: Option<String>,
    /// Elasticsearch base URL.
    pub elasticsearch: Option<String>,
    /// Kibana base URL.
    pub kibana: Option<String>,
}

/// A `--health-endpoint` value kelp cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not `COMPONENT=ADDR`.
    #[error(
        "reading --health-endpoint {0:?} failed: expected COMPONENT=ADDR, e.g. kafka=127.0.0.1:9092"
    )]
    Syntax(String),
    /// An unknown component.
    #[error(
        "reading --health-endpoint {0:?} failed: the component must be zookeeper, kafka, elasticsearch or kibana"
    )]
    Component(String),
    /// The same component twice.
    #[error("reading --health-endpoint failed: {0} is given twice")]
    Twice(Component),
}

/// Parses one `COMPONENT=ADDR`.
pub fn parse_one(text: &str) -> Result<(Component, String), EndpointError> {
    let (name, address) = text
        .split_once('=')
        .filter(|(n, a)| !n.trim().is_empty() && !a.trim().is_empty())
        .ok_or_else(|| EndpointError::Syntax(text.to_owned()))?;
    let component =
        Component::parse(name.trim()).ok_or_else(|| EndpointError::Component(text.to_owned()))?;
    Ok((component, address.trim().to_owned()))
}

/// Parses every `--health-endpoint`. HTTP components without a scheme get
/// `http://`, or `https://` when `tls` (Elasticsearch security on).
pub fn parse(values: &[String], tls: bool) -> Result<Endpoints, EndpointError> {
    let mut endpoints = Endpoints::default();
    let url = |address: String| {
        if address.contains("://") {
            address
        } else if tls {
            format!("https://{address}")
        } else {
            format!("http://{address}")
        }
    };
    for value in values {
        let (component, address) = parse_one(value)?;
        let twice = match component {
            Component::ZooKeeper => endpoints
                .zookeeper
                .replace(address.split(',').map(|s| s.trim().to_owned()).collect())
                .is_some(),
            Component::Kafka => endpoints.kafka.replace(address).is_some(),
            Component::Elasticsearch => endpoints.elasticsearch.replace(url(address)).is_some(),
            // Kibana's server is plain HTTP in the rendered stack.
            Component::Kibana => endpoints
                .kibana
                .replace(if address.contains("://") {
                    address
                } else {
                    format!("http://{address}")
                })
                .is_some(),
        };
        if twice {
            return Err(EndpointError::Twice(component));
        }
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_per_component() {
        let table: [(&[&str], bool, Result<Endpoints, EndpointError>); 7] = [
            (&[], false, Ok(Endpoints::default())),
            (
                &[
                    "zookeeper=127.0.0.1:2181, 127.0.0.1:2182",
                    "kafka=127.0.0.1:9092",
                    "elasticsearch=127.0.0.1:9200",
                    "kibana=http://127.0.0.1:5601/kibana",
                ],
                false,
                Ok(Endpoints {
                    zookeeper: Some(vec!["127.0.0.1:2181".into(), "127.0.0.1:2182".into()]),
                    kafka: Some("127.0.0.1:9092".into()),
                    elasticsearch: Some("http://127.0.0.1:9200".into()),
                    kibana: Some("http://127.0.0.1:5601/kibana".into()),
                }),
            ),
            (
                &["elasticsearch=es.example.org:443", "kibana=kb:5601"],
                true,
                Ok(Endpoints {
                    elasticsearch: Some("https://es.example.org:443".into()),
                    kibana: Some("http://kb:5601".into()),
                    ..Endpoints::default()
                }),
            ),
            (
                &["kafka"],
                false,
                Err(EndpointError::Syntax("kafka".into())),
            ),
            (
                &["kafka="],
                false,
                Err(EndpointError::Syntax("kafka=".into())),
            ),
            (
                &["redis=127.0.0.1:6379"],
                false,
                Err(EndpointError::Component("redis=127.0.0.1:6379".into())),
            ),
            (
                &["kafka=a:1", "kafka=b:2"],
                false,
                Err(EndpointError::Twice(Component::Kafka)),
            ),
        ];
        for (values, tls, want) in table {
            let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
            assert_eq!(parse(&values, tls), want, "{values:?}");
        }
    }
}
