use std::sync::Mutex;
use std::time::Duration;

use super::*;

/// A gate that answers from a script; the last answer repeats.
struct Scripted {
    answers: Mutex<Vec<GateStatus>>,
}

impl Scripted {
    fn new(mut answers: Vec<GateStatus>) -> Scripted {
        answers.reverse();
        Scripted {
            answers: Mutex::new(answers),
        }
    }
}

impl Gate for Scripted {
    fn name(&self) -> &str {
        "zookeeper quorum"
    }

    fn check(&self) -> GateFuture<'_> {
        let mut answers = self.answers.lock().unwrap();
        let status = if answers.len() > 1 {
            answers.pop().unwrap()
        } else {
            answers[0].clone()
        };
        Box::pin(async move { status })
    }
}

fn not_yet(why: &str) -> GateStatus {
    GateStatus::NotYet(why.to_owned())
}

#[tokio::test]
async fn wait_polls_until_healthy_and_reports_every_check() {
    let gate = Scripted::new(vec![
        not_yet("zookeeper-2:2181 did not answer"),
        not_yet("want one leader"),
        GateStatus::Healthy("leader on zookeeper-1:2181, 2 followers".to_owned()),
    ]);
    let mut seen = Vec::new();
    let text = wait(
        &gate,
        Duration::from_secs(60),
        Duration::from_millis(1),
        |s| seen.push(s.clone()),
    )
    .await
    .unwrap();
    assert_eq!(text, "leader on zookeeper-1:2181, 2 followers");
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0], not_yet("zookeeper-2:2181 did not answer"));
    assert!(seen[2].is_healthy());
}

#[tokio::test]
async fn wait_times_out_with_the_last_reason() {
    let gate = Scripted::new(vec![
        not_yet("first reason"),
        not_yet("zookeeper-2:2181 did not answer"),
    ]);
    let mut checks = 0;
    let error = wait(
        &gate,
        Duration::from_millis(30),
        Duration::from_millis(1),
        |_| checks += 1,
    )
    .await
    .unwrap_err();
    assert!(checks >= 2, "{checks}");
    assert_eq!(error.gate, "zookeeper quorum");
    assert_eq!(error.last_reason, "zookeeper-2:2181 did not answer");
    let long = GateTimeout {
        deadline: Duration::from_secs(300),
        ..error
    };
    assert_eq!(
        long.to_string(),
        "waiting for zookeeper quorum timed out after 300 s: zookeeper-2:2181 did not answer"
    );
}

#[test]
fn passwords_never_print() {
    let auth = BasicAuth::new("elastic", "hunter2");
    let printed = format!("{auth:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(
        printed.contains("[redacted]") && printed.contains("elastic"),
        "{printed}"
    );
    assert_eq!(auth.password.expose(), "hunter2");
}

#[test]
fn colors_are_ordered() {
    assert!(ClusterColor::Green > ClusterColor::Yellow);
    assert_eq!(ClusterColor::Yellow.as_str(), "yellow");
}
