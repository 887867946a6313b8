use super::*;

fn pod(phase: &str, container: ContainerState) -> Lookup<Option<PodFacts>> {
    Lookup::Done(Some(PodFacts {
        phase: Some(phase.to_owned()),
        node: Some("node-1".to_owned()),
        container,
        events: Vec::new(),
    }))
}

fn running() -> Lookup<Option<PodFacts>> {
    pod("Running", ContainerState::Running)
}

fn at(offset: i64) -> Position {
    Position {
        topic: "kelp-logs".to_owned(),
        partition: 4,
        offset,
    }
}

fn logs(found: Option<i64>, complete: bool) -> Lookup<TopicScan<Position>> {
    Lookup::Done(TopicScan {
        topic: "kelp-logs".to_owned(),
        records_scanned: 120,
        complete,
        found: found.map(at),
    })
}

fn dead_letter_record() -> DeadLetterRecord {
    DeadLetterRecord {
        position: Position {
            topic: "kelp-dead-letter".to_owned(),
            partition: 0,
            offset: 7,
        },
        stage: Some("index".to_owned()),
        status: Some("400".to_owned()),
        error_type: Some("mapper_parsing_exception".to_owned()),
        reason: Some("failed to parse field [message]".to_owned()),
        index: Some("kelp-logs-shop-2026.11.27".to_owned()),
    }
}

fn dead_letter(found: bool, complete: bool) -> Lookup<TopicScan<DeadLetterRecord>> {
    Lookup::Done(TopicScan {
        topic: "kelp-dead-letter".to_owned(),
        records_scanned: 3,
        complete,
        found: found.then(dead_letter_record),
    })
}

fn group(committed: Option<i64>) -> Lookup<GroupOffsets> {
    Lookup::Done(GroupOffsets {
        group: "kelp-shipper".to_owned(),
        committed,
        high_watermark: 50,
    })
}

fn answered() -> SearchFacts {
    SearchFacts {
        answered: 30,
        last_error: None,
    }
}

fn facts(
    pod: Lookup<Option<PodFacts>>,
    log_topic: Lookup<TopicScan<Position>>,
    dead_letter: Lookup<TopicScan<DeadLetterRecord>>,
    group: Lookup<GroupOffsets>,
) -> Facts {
    Facts {
        pod,
        log_topic,
        dead_letter,
        group,
        search: answered(),
    }
}

fn skipped<T>() -> Lookup<T> {
    Lookup::Skipped("not asked".to_owned())
}

#[test]
fn verdicts_follow_the_token_hop_by_hop() {
    let waiting = ContainerState::Waiting {
        reason: "ImagePullBackOff".to_owned(),
        message: Some("pull access denied".to_owned()),
    };
    let crashed = ContainerState::Terminated {
        exit_code: 127,
        reason: Some("Error".to_owned()),
    };
    let completed = ContainerState::Terminated {
        exit_code: 0,
        reason: Some("Completed".to_owned()),
    };
    let cases: Vec<(&str, Facts, &str)> = vec![
        (
            "image never pulled",
            facts(
                pod("Pending", waiting.clone()),
                skipped(),
                skipped(),
                skipped(),
            ),
            "pod-did-not-write",
        ),
        (
            "never scheduled",
            facts(
                Lookup::Done(Some(PodFacts {
                    phase: Some("Pending".to_owned()),
                    node: None,
                    container: ContainerState::NotReported,
                    events: vec!["Warning FailedScheduling: 0/3 nodes".to_owned()],
                })),
                skipped(),
                skipped(),
                skipped(),
            ),
            "pod-did-not-write",
        ),
        (
            "echo missing from the image",
            facts(
                pod("Failed", crashed),
                logs(None, true),
                skipped(),
                skipped(),
            ),
            "pod-did-not-write",
        ),
        (
            "a waiting pod whose token is in Kafka anyway wrote it",
            facts(
                pod("Pending", waiting),
                logs(Some(9), true),
                dead_letter(false, true),
                group(None),
            ),
            "not-indexed",
        ),
        (
            "ran, nothing in Kafka",
            facts(running(), logs(None, true), skipped(), skipped()),
            "not-in-kafka",
        ),
        (
            "completed, nothing in Kafka",
            facts(
                pod("Succeeded", completed),
                logs(None, true),
                skipped(),
                skipped(),
            ),
            "not-in-kafka",
        ),
        (
            "pod gone, nothing in Kafka",
            facts(Lookup::Done(None), logs(None, true), skipped(), skipped()),
            "not-in-kafka",
        ),
        (
            "scan cut short",
            facts(running(), logs(None, false), skipped(), skipped()),
            "unknown",
        ),
        (
            "kafka unreachable",
            facts(
                running(),
                Lookup::Failed("broker transport failure".to_owned()),
                skipped(),
                skipped(),
            ),
            "unknown",
        ),
        (
            "no kafka address given",
            facts(running(), skipped(), skipped(), skipped()),
            "unknown",
        ),
        (
            "dead-lettered",
            facts(
                running(),
                logs(Some(9), true),
                dead_letter(true, true),
                group(Some(10)),
            ),
            "dead-lettered",
        ),
        (
            "dead-lettered, found in a partial scan",
            facts(
                running(),
                logs(Some(9), true),
                dead_letter(true, false),
                group(Some(10)),
            ),
            "dead-lettered",
        ),
        (
            "no shipper ever",
            facts(
                running(),
                logs(Some(9), true),
                dead_letter(false, true),
                group(None),
            ),
            "not-indexed",
        ),
        (
            "shipper behind",
            facts(
                running(),
                logs(Some(9), true),
                dead_letter(false, true),
                group(Some(9)),
            ),
            "not-indexed",
        ),
        (
            "shipper past, search answered",
            facts(
                running(),
                logs(Some(9), true),
                dead_letter(false, true),
                group(Some(10)),
            ),
            "not-indexed",
        ),
        (
            "group offsets unreadable",
            facts(
                running(),
                logs(Some(9), true),
                Lookup::Failed("timed out".to_owned()),
                Lookup::Failed("timed out".to_owned()),
            ),
            "not-indexed",
        ),
    ];
    for (name, facts, code) in cases {
        let verdict = verdict(&facts);
        assert_eq!(verdict.code(), code, "{name}: {verdict}");
    }
}

#[test]
fn a_search_engine_that_never_answered_is_blamed_only_once_the_shipper_is_past() {
    let mut past = facts(
        running(),
        logs(Some(9), true),
        dead_letter(false, true),
        group(Some(10)),
    );
    past.search = SearchFacts {
        answered: 0,
        last_error: Some("connection refused".to_owned()),
    };
    let verdict = verdict(&past);
    assert_eq!(verdict.code(), "search-unavailable");
    assert!(
        verdict.to_string().contains("connection refused"),
        "{verdict}"
    );

    let mut behind = past.clone();
    behind.group = group(Some(3));
    assert_eq!(super::verdict(&behind).code(), "not-indexed");
}

#[test]
fn the_shipper_progress_names_group_offsets_and_lag() {
    let cases = [
        (
            None,
            ShipperProgress::NoCommit {
                group: "kelp-shipper".to_owned(),
            },
        ),
        (
            Some(2),
            ShipperProgress::Behind {
                group: "kelp-shipper".to_owned(),
                committed: 2,
                lag: 48,
            },
        ),
        (
            Some(9),
            ShipperProgress::Behind {
                group: "kelp-shipper".to_owned(),
                committed: 9,
                lag: 41,
            },
        ),
        (
            Some(10),
            ShipperProgress::Past {
                group: "kelp-shipper".to_owned(),
                committed: 10,
            },
        ),
    ];
    for (committed, want) in cases {
        let verdict = verdict(&facts(
            running(),
            logs(Some(9), true),
            dead_letter(false, true),
            group(committed),
        ));
        match verdict {
            Verdict::NotIndexed {
                source,
                shipper,
                dead_letter_note,
            } => {
                assert_eq!(source, at(9));
                assert_eq!(shipper, want, "committed {committed:?}");
                assert_eq!(dead_letter_note, None);
            }
            other => panic!("committed {committed:?}: {other:?}"),
        }
    }
}

#[test]
fn reports_say_what_was_seen() {
    let cases: Vec<(Facts, &[&str])> = vec![
        (
            facts(
                pod(
                    "Pending",
                    ContainerState::Waiting {
                        reason: "ErrImagePull".to_owned(),
                        message: None,
                    },
                ),
                skipped(),
                skipped(),
                skipped(),
            ),
            &["phase Pending", "ErrImagePull"],
        ),
        (
            facts(running(), logs(None, true), skipped(), skipped()),
            &["not in Kafka", "120 records of kelp-logs", "node-1"],
        ),
        (
            facts(
                running(),
                logs(Some(9), true),
                dead_letter(true, true),
                group(Some(10)),
            ),
            &[
                "kelp-logs partition 4 offset 9",
                "kelp-dead-letter partition 0 offset 7",
                "status 400",
                "mapper_parsing_exception: failed to parse field [message]",
                "index kelp-logs-shop-2026.11.27",
            ],
        ),
        (
            facts(
                running(),
                logs(Some(9), true),
                dead_letter(false, true),
                group(None),
            ),
            &[
                "not indexed",
                "kelp-shipper has no committed offset on partition 4",
            ],
        ),
        (
            facts(
                running(),
                logs(Some(9), true),
                dead_letter(false, false),
                group(Some(4)),
            ),
            &[
                "is at offset 4",
                "lags 46 records",
                "read only in part (3 records)",
            ],
        ),
    ];
    for (facts, needles) in cases {
        let text = verdict(&facts).to_string();
        for needle in needles {
            assert!(text.contains(needle), "{needle:?} not in {text:?}");
        }
    }
}

#[test]
fn container_states_read_as_words() {
    let cases = [
        (ContainerState::NotReported, "not reported"),
        (ContainerState::Running, "running"),
        (
            ContainerState::Waiting {
                reason: "ErrImagePull".to_owned(),
                message: Some("not found".to_owned()),
            },
            "waiting: ErrImagePull: not found",
        ),
        (
            ContainerState::Waiting {
                reason: "ContainerCreating".to_owned(),
                message: None,
            },
            "waiting: ContainerCreating",
        ),
        (
            ContainerState::Terminated {
                exit_code: 127,
                reason: None,
            },
            "terminated with code 127 (no reason given)",
        ),
    ];
    for (state, want) in cases {
        assert_eq!(state.to_string(), want);
    }
}
