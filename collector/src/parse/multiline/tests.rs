use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::parse::{Stream, Timestamp};

fn timestamp(second: u32) -> Timestamp {
    Timestamp::parse(format!("2026-11-27T20:17:{:02}Z", second % 60).as_bytes()).unwrap()
}

/// The lines of `text` as assembled stdout lines, one second apart.
fn lines(text: &str) -> Vec<Assembled> {
    let mut offset = 0;
    text.split('\n')
        .enumerate()
        .map(|(index, line)| {
            let assembled = Assembled {
                offset,
                timestamp: timestamp(index as u32),
                stream: Stream::Stdout,
                content: line.as_bytes().to_vec(),
                flags: Vec::new(),
            };
            offset += line.len() as u64 + 1;
            assembled
        })
        .collect()
}

fn run(config: Config, input: Vec<Assembled>) -> Vec<Assembled> {
    let mut multiline = Multiline::new(config);
    let mut out = Vec::new();
    for line in input {
        multiline.push(0, line, &mut out);
    }
    multiline.flush(&mut out);
    out
}

/// Runs `text` through `rule` and compares the events' contents and flags;
/// also checks each event keeps its first line's offset and timestamp.
#[track_caller]
fn check(rule: Rule, text: &str, want: &[(&str, &[Flag])]) {
    let input = lines(text);
    let first_lines: HashMap<u64, (String, Timestamp)> = input
        .iter()
        .map(|line| {
            (
                line.offset,
                (
                    String::from_utf8(line.content.clone()).unwrap(),
                    line.timestamp,
                ),
            )
        })
        .collect();
    let got = run(Config::new(rule), input);
    for event in &got {
        let content = String::from_utf8(event.content.clone()).unwrap();
        let (first_line, timestamp) = &first_lines[&event.offset];
        assert_eq!(
            content.split('\n').next(),
            Some(first_line.as_str()),
            "offset of {content:?}"
        );
        assert_eq!(&event.timestamp, timestamp, "timestamp of {content:?}");
    }
    let got: Vec<(String, Vec<Flag>)> = got
        .into_iter()
        .map(|event| (String::from_utf8(event.content).unwrap(), event.flags))
        .collect();
    let want: Vec<(String, Vec<Flag>)> = want
        .iter()
        .map(|&(content, flags)| (content.to_owned(), flags.to_vec()))
        .collect();
    assert_eq!(got, want);
}

/// The events expected: content and flags.
type Want<'a> = Vec<(&'a str, &'a [Flag])>;

const M: &[Flag] = &[Flag::Multiline];
const NONE: &[Flag] = &[];

const SPRING_ERROR: &str = "\
2026-11-27T20:17:31.402Z ERROR 1 --- [           main] o.s.boot.SpringApplication               : Application run failed
org.springframework.beans.factory.UnsatisfiedDependencyException: Error creating bean with name 'orderController': Unsatisfied dependency expressed through constructor parameter 0
\tat org.springframework.beans.factory.support.ConstructorResolver.createArgumentArray(ConstructorResolver.java:795) ~[spring-beans-6.1.14.jar!/:6.1.14]
\tat org.springframework.beans.factory.support.ConstructorResolver.autowireConstructor(ConstructorResolver.java:237) ~[spring-beans-6.1.14.jar!/:6.1.14]
\tat org.springframework.boot.SpringApplication.run(SpringApplication.java:335) ~[spring-boot-3.3.5.jar!/:3.3.5]
\tat com.example.demo.DemoApplication.main(DemoApplication.java:10) ~[!/:0.0.1-SNAPSHOT]
Caused by: org.springframework.beans.factory.BeanCreationException: Error creating bean with name 'orderService': Invocation of init method failed
\tat org.springframework.beans.factory.annotation.InitDestroyAnnotationBeanPostProcessor.postProcessBeforeInitialization(InitDestroyAnnotationBeanPostProcessor.java:222) ~[spring-beans-6.1.14.jar!/:6.1.14]
\t... 12 common frames omitted
Caused by: java.lang.IllegalStateException: database unreachable
\tat com.example.demo.OrderService.init(OrderService.java:31) ~[!/:0.0.1-SNAPSHOT]
\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103) ~[na:na]
\t... 12 more";

#[test]
fn java_joins_a_spring_boot_failure_with_its_message() {
    let starting = "2026-11-27T20:17:29.120Z  INFO 1 --- [           main] c.e.demo.DemoApplication                 : Starting DemoApplication v0.0.1 using Java 21.0.5";
    let after = "2026-11-27T20:17:31.410Z  INFO 1 --- [           main] o.s.b.a.l.ConditionEvaluationReportLogger : report";
    check(
        Rule::Java,
        &format!("{starting}\n{SPRING_ERROR}\n{after}"),
        &[(starting, NONE), (SPRING_ERROR, M), (after, NONE)],
    );
}

#[test]
fn java_keeps_traces_and_lines_apart() {
    let npe = "java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"s\" is null\n\tat com.example.Foo.bar(Foo.java:12)\n\tat com.example.Foo.main(Foo.java:5)";
    let iae = "java.lang.IllegalArgumentException: bad\n\tat com.example.Foo.baz(Foo.java:20)";
    let uncaught = "Exception in thread \"main\" java.lang.RuntimeException: boom\n\tat Main.main(Main.java:3)";
    let suppressed = "java.io.IOException: close failed\n\tat com.example.Res.close(Res.java:9)\n\tSuppressed: java.lang.IllegalStateException: inner\n\t\tat com.example.Res.read(Res.java:4)\n\t\t... 1 more";
    let retrying = format!("retrying\n{iae}");
    let later = format!("later line\n{iae}");
    let dotnet = "System.InvalidOperationException: Sequence contains no elements\n   at System.Linq.ThrowHelper.ThrowNoElementsException()\n   at Program.Main() in /src/Program.cs:line 9\n--- End of stack trace from previous location ---\n   at Program.Run()";
    let table: &[(String, Want<'_>)] = &[
        // printStackTrace() twice: two events.
        (format!("{npe}\n{iae}"), vec![(npe, M), (iae, M)]),
        (uncaught.to_owned(), vec![(uncaught, M)]),
        (suppressed.to_owned(), vec![(suppressed, M)]),
        (dotnet.to_owned(), vec![(dotnet, M)]),
        // Plain lines stay single, a blank line too.
        (
            "one\ntwo\n\nthree".to_owned(),
            vec![("one", NONE), ("two", NONE), ("", NONE), ("three", NONE)],
        ),
        // Only the line right before an exception is its message.
        (
            format!("request failed\nretrying\n{iae}\nok"),
            vec![("request failed", NONE), (&retrying, M), ("ok", NONE)],
        ),
        // A message never attaches to a trace that already has frames.
        (
            format!("{npe}\nlater line\n{iae}"),
            vec![(npe, M), (&later, M)],
        ),
        // A blank line is not a message.
        (format!("\n{iae}"), vec![("", NONE), (iae, M)]),
        // Frames after an unrecognised exception line still join it.
        (
            "com.example.Boom: custom failure\n\tat com.example.A.b(A.java:1)".to_owned(),
            vec![(
                "com.example.Boom: custom failure\n\tat com.example.A.b(A.java:1)",
                M,
            )],
        ),
        // A stray frame with nothing before it starts an event of its own.
        (
            "\tat com.example.A.b(A.java:1)\n\t... 3 more\nnext".to_owned(),
            vec![
                ("\tat com.example.A.b(A.java:1)\n\t... 3 more", M),
                ("next", NONE),
            ],
        ),
        // Text that merely mentions an exception is not one.
        (
            "got java.lang.IllegalStateException from upstream\nat noon".to_owned(),
            vec![
                ("got java.lang.IllegalStateException from upstream", NONE),
                ("at noon", NONE),
            ],
        ),
    ];
    for (text, want) in table {
        check(Rule::Java, text, want);
    }
}

const GO_PANIC: &str = "\
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]

goroutine 1 [running]:
main.(*Server).handle(0x0, {0x5c3e80, 0xc000012345})
\t/app/server.go:42 +0x2c
main.main()
\t/app/main.go:17 +0x1d

goroutine 18 [select]:
net/http.(*conn).serve(0xc0000a4000, {0x5c4f10, 0xc000078000})
\t/usr/local/go/src/net/http/server.go:2039 +0x8ad
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3285 +0x4b4
exit status 2";

const GO_DEADLOCK: &str = "\
fatal error: all goroutines are asleep - deadlock!

goroutine 1 [chan receive]:
main.main()
\t/app/main.go:9 +0x2d";

const GO_HTTP_PANIC: &str = "\
2026/11/27 20:17:29 http: panic serving 10.0.0.7:52044: runtime error: index out of range [3] with length 3
goroutine 34 [running]:
net/http.(*conn).serve.func1()
\t/usr/local/go/src/net/http/server.go:1947 +0xbe
panic({0x6c2f40?, 0xc0001a2018?})
\t/usr/local/go/src/runtime/panic.go:785 +0x132
main.handler({0x7f1b2c, 0xc0001c0000}, 0xc0001b4000)
\t/app/main.go:21 +0x65
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3285 +0x4b4";

const GO_STACK_OVERFLOW: &str = "\
runtime: goroutine stack exceeds 1000000000-byte limit
runtime: sp=0xc020160398 stack=[0xc020160000, 0xc040160000]
fatal error: stack overflow

runtime stack:
runtime.throw({0x4a1b2e?, 0x0?})
\t/usr/local/go/src/runtime/panic.go:1023 +0x5c fp=0x7ffd4ab1c5a8 sp=0x7ffd4ab1c578 pc=0x4373bc
...additional frames elided...

goroutine 1 gp=0xc000002380 m=0 mp=0x4fe3a0 [running]:
main.recurse(0x0?)
\t/app/main.go:5 +0x1e fp=0xc0201603a8 sp=0xc0201603a0 pc=0x45e5fe";

#[test]
fn go_joins_panics_with_their_goroutine_dumps() {
    let table: &[(String, Want<'_>)] = &[
        (
            format!("2026/11/27 20:17:29 starting server on :8080\n{GO_PANIC}"),
            vec![
                ("2026/11/27 20:17:29 starting server on :8080", NONE),
                (GO_PANIC, M),
            ],
        ),
        // A blank line after the dump is not part of it, nor is the next line.
        (
            format!("{GO_DEADLOCK}\n\nrestarted"),
            vec![(GO_DEADLOCK, M), ("", NONE), ("restarted", NONE)],
        ),
        (
            format!("{GO_HTTP_PANIC}\n2026/11/27 20:17:30 GET /healthz 200"),
            vec![
                (GO_HTTP_PANIC, M),
                ("2026/11/27 20:17:30 GET /healthz 200", NONE),
            ],
        ),
        (GO_STACK_OVERFLOW.to_owned(), vec![(GO_STACK_OVERFLOW, M)]),
        // Two panics are two events.
        (
            format!("{GO_DEADLOCK}\n{GO_DEADLOCK}"),
            vec![(GO_DEADLOCK, M), (GO_DEADLOCK, M)],
        ),
        // A panic line alone, then ordinary lines: nothing is swallowed.
        (
            "panic: early\nlevel=info msg=\"up\"\n\tindented".to_owned(),
            vec![
                ("panic: early", NONE),
                ("level=info msg=\"up\"", NONE),
                ("\tindented", NONE),
            ],
        ),
        // Outside a panic Go's frame shapes mean nothing.
        (
            "main.main()\ngoroutine 1 [running]:".to_owned(),
            vec![("main.main()", NONE), ("goroutine 1 [running]:", NONE)],
        ),
    ];
    for (text, want) in table {
        check(Rule::Go, text, want);
    }
}

const PY_CHAINED: &str = "\
ERROR:app:job 42 failed
Traceback (most recent call last):
  File \"/app/worker.py\", line 12, in run
    result = int(payload[\"count\"])
             ^^^^^^^^^^^^^^^^^^^^^^
KeyError: 'count'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File \"/app/worker.py\", line 14, in run
    raise JobError(\"bad payload\")
app.errors.JobError: bad payload

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File \"/app/main.py\", line 30, in <module>
    main()
RuntimeError: worker crashed";

const PY_GROUP: &str = "\
  + Exception Group Traceback (most recent call last):
  |   File \"/app/main.py\", line 3, in <module>
  |     raise ExceptionGroup(\"two\", [ValueError(1), TypeError(2)])
  | ExceptionGroup: two (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | ValueError: 1
    +---------------- 2 ----------------
    | TypeError: 2
    +------------------------------------";

#[test]
fn python_joins_chained_tracebacks_with_their_message() {
    let simple = "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nZeroDivisionError: division by zero";
    let bare = "Traceback (most recent call last):\n  File \"x.py\", line 2, in <module>\nKeyboardInterrupt";
    let table: &[(String, Want<'_>)] = &[
        (
            format!("INFO:app:starting worker\n{PY_CHAINED}\nINFO:app:shutting down"),
            vec![
                ("INFO:app:starting worker", NONE),
                (PY_CHAINED, M),
                ("INFO:app:shutting down", NONE),
            ],
        ),
        // Back to back, and after a blank line: separate events.
        (format!("{simple}\n{bare}"), vec![(simple, M), (bare, M)]),
        (
            format!("{simple}\n\n{simple}"),
            vec![(simple, M), ("", NONE), (simple, M)],
        ),
        (
            format!("{simple}\n\nafter"),
            vec![(simple, M), ("", NONE), ("after", NONE)],
        ),
        (PY_GROUP.to_owned(), vec![(PY_GROUP, M)]),
        // A traceback cut short ends at the first line that is not part of it.
        (
            "Traceback (most recent call last):\n  File \"x.py\", line 1\n2026-11-27 next"
                .to_owned(),
            vec![
                (
                    "Traceback (most recent call last):\n  File \"x.py\", line 1",
                    M,
                ),
                ("2026-11-27 next", NONE),
            ],
        ),
        ("a\nb".to_owned(), vec![("a", NONE), ("b", NONE)]),
    ];
    for (text, want) in table {
        check(Rule::Python, text, want);
    }
}

#[test]
fn none_and_custom_rules() {
    check(
        Rule::None,
        "a\n\tat b\nc",
        &[("a", NONE), ("\tat b", NONE), ("c", NONE)],
    );
    // Every event starts with a timestamp; anything else continues it.
    let custom = Rule::custom(r"^\d{4}-\d{2}-\d{2}", r"^[^0-9]").unwrap();
    check(
        custom,
        "orphan\n2026-11-27 one\n  more\n| table\n2026-11-27 two\n2026-11-27 three\nx",
        &[
            ("orphan", NONE),
            ("2026-11-27 one\n  more\n| table", M),
            ("2026-11-27 two", NONE),
            ("2026-11-27 three\nx", M),
        ],
    );
    // The continuation pattern is checked first, as in Fluent Bit.
    let greedy = Rule::custom(r"^start", r".").unwrap();
    check(
        greedy,
        "start a\nstart b\n\nstart c",
        &[("start a\nstart b", M), ("", NONE), ("start c", NONE)],
    );
    assert!(matches!(
        Rule::custom("(", "x"),
        Err(RuleError::Pattern { which: "start", .. })
    ));
    assert!(matches!(
        Rule::custom("x", "[z-a]"),
        Err(RuleError::Pattern {
            which: "continue",
            ..
        })
    ));
}

#[test]
fn rule_names_parse() {
    let table: &[(&str, Option<RuleName>)] = &[
        ("none", Some(RuleName::None)),
        ("java", Some(RuleName::Java)),
        ("JAVA", Some(RuleName::Java)),
        (" go ", Some(RuleName::Go)),
        ("python", Some(RuleName::Python)),
        ("", None),
        ("ruby", None),
    ];
    for &(name, want) in table {
        assert_eq!(name.parse::<RuleName>().ok(), want, "{name:?}");
    }
    for name in RuleName::ALL {
        assert_eq!(name.to_string().parse::<RuleName>(), Ok(name));
    }
    assert_eq!(
        "ruby".parse::<RuleName>().unwrap_err().to_string(),
        "choosing multiline rule \"ruby\" failed: expected none, java, go or python"
    );
}

#[test]
fn constant_patterns_compile() {
    for regex in [&*JAVA_EXCEPTION, &*GO_GOROUTINE, &*GO_FRAME, &*PY_ERROR] {
        assert!(!regex.as_str().is_empty());
    }
}

#[test]
fn streams_are_joined_separately() {
    let mut multiline = Multiline::new(Config::new(Rule::Java));
    let mut out = Vec::new();
    let line = |offset, stream, text: &str| Assembled {
        offset,
        timestamp: timestamp(0),
        stream,
        content: text.as_bytes().to_vec(),
        flags: Vec::new(),
    };
    multiline.push(0, line(0, Stream::Stdout, "failed"), &mut out);
    multiline.push(
        0,
        line(10, Stream::Stderr, "\tat a.B.c(B.java:1)"),
        &mut out,
    );
    multiline.push(0, line(20, Stream::Stdout, "java.lang.Error: x"), &mut out);
    multiline.push(0, line(30, Stream::Stderr, "other"), &mut out);
    multiline.push(
        0,
        line(40, Stream::Stdout, "\tat a.B.d(B.java:2)"),
        &mut out,
    );
    multiline.flush(&mut out);
    let got: Vec<(u64, &str)> = out
        .iter()
        .map(|event| (event.offset, std::str::from_utf8(&event.content).unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (10, "\tat a.B.c(B.java:1)"),
            (0, "failed\njava.lang.Error: x\n\tat a.B.d(B.java:2)"),
            (30, "other"),
        ]
    );
}

#[test]
fn silence_flushes_a_pending_event() {
    let mut config = Config::new(Rule::Go);
    config.flush_timeout_ms = 100;
    let mut multiline = Multiline::new(config);
    let mut out = Vec::new();
    let input = lines("panic: boom\n\ngoroutine 1 [running]:\n\nlater");
    let mut input = input.into_iter();
    let mut push = |multiline: &mut Multiline, now, out: &mut Vec<Assembled>| {
        multiline.push(now, input.next().unwrap(), out);
    };
    push(&mut multiline, 1000, &mut out); // panic: boom
    assert_eq!(multiline.next_deadline_ms(), Some(1100));
    push(&mut multiline, 1050, &mut out); // blank, held
    assert_eq!(multiline.next_deadline_ms(), Some(1150));
    multiline.flush_expired(1149, &mut out);
    assert!(out.is_empty());
    push(&mut multiline, 1100, &mut out); // goroutine: joins with the blank
    push(&mut multiline, 1110, &mut out); // blank, held
    assert_eq!(multiline.pending_offset(), Some(0));
    assert_eq!(multiline.pending_offset_of(Stream::Stdout), Some(0));
    assert_eq!(multiline.pending_offset_of(Stream::Stderr), None);
    multiline.flush_expired(1210, &mut out);
    let got: Vec<&str> = out
        .iter()
        .map(|event| std::str::from_utf8(&event.content).unwrap())
        .collect();
    assert_eq!(got, ["panic: boom\n\ngoroutine 1 [running]:", ""]);
    assert_eq!(multiline.next_deadline_ms(), None);
    assert_eq!(multiline.pending_offset(), None);
    // After a flush the stream starts afresh.
    push(&mut multiline, 5000, &mut out);
    assert_eq!(out.len(), 3);
}

#[test]
fn java_message_waits_for_the_timeout_or_the_next_line() {
    let mut multiline = Multiline::new(Config::new(Rule::Java));
    let mut out = Vec::new();
    let mut input = lines("only line").into_iter();
    multiline.push(0, input.next().unwrap(), &mut out);
    multiline.flush_expired(DEFAULT_FLUSH_TIMEOUT_MS - 1, &mut out);
    assert!(out.is_empty());
    multiline.flush_expired(DEFAULT_FLUSH_TIMEOUT_MS, &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].flags.is_empty());
}

#[test]
fn limits_cut_events_but_not_the_lines_after() {
    let trace =
        "failed\njava.lang.Error: x\n\tat a(A.java:1)\n\tat b(A.java:2)\n\tat c(A.java:3)\nnext";
    let mut config = Config::new(Rule::Java);
    config.max_lines = 3;
    let got = run(config, lines(trace));
    let got: Vec<(&str, &[Flag])> = got
        .iter()
        .map(|event| {
            (
                std::str::from_utf8(&event.content).unwrap(),
                event.flags.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "failed\njava.lang.Error: x\n\tat a(A.java:1)",
                &[Flag::Multiline, Flag::Truncated][..]
            ),
            ("next", &[][..]),
        ]
    );

    let table: &[(usize, &str)] = &[
        (0, ""),
        (1, "f"),
        (6, "failed"),
        // No separator without some of the next line after it.
        (7, "failed"),
        (8, "failed\nj"),
        (30, "failed\njava.lang.Error: x\n\tat "),
    ];
    for &(max, want) in table {
        let mut config = Config::new(Rule::Java);
        config.max_event_bytes = max;
        let got = run(config, lines(trace));
        assert_eq!(
            std::str::from_utf8(&got[0].content).unwrap(),
            want,
            "max {max}"
        );
        assert!(got[0].flags.contains(&Flag::Truncated), "max {max}");
        assert_eq!(
            std::str::from_utf8(&got[1].content).unwrap(),
            &"next"[..max.min(4)],
            "max {max}"
        );
    }
}

#[test]
fn flags_of_joined_lines_are_kept() {
    let mut input = lines("failed\njava.lang.Error: x");
    input[1].flags = vec![Flag::Partial, Flag::Truncated];
    let got = run(Config::new(Rule::Java), input);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].flags,
        [Flag::Partial, Flag::Truncated, Flag::Multiline]
    );
}

/// Lines that exercise every rule's grammar.
const VOCABULARY: &[&str] = &[
    "",
    "  ",
    "hello",
    "2026-11-27 ERROR failed",
    "\tat a.B.c(B.java:1)",
    "Caused by: a.B: c",
    "\t... 3 more",
    "java.lang.IllegalStateException: x",
    "Exception in thread \"main\" java.lang.Error",
    "panic: boom",
    "fatal error: x",
    "runtime: x",
    "[signal SIGSEGV: x]",
    "goroutine 1 [running]:",
    "runtime stack:",
    "main.main()",
    "\t/app/main.go:1 +0x1",
    "created by main.main in goroutine 1",
    "x http: panic serving 1.2.3.4:5: y",
    "Traceback (most recent call last):",
    "  File \"x.py\", line 1, in <module>",
    "ValueError: x",
    "KeyboardInterrupt",
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
    "  + Exception Group Traceback (most recent call last):",
];

fn any_rule() -> impl Strategy<Value = Rule> {
    prop_oneof![
        Just(Rule::None),
        Just(Rule::Java),
        Just(Rule::Go),
        Just(Rule::Python),
        Just(Rule::custom(r"^[A-Z0-9]", r"^\s").unwrap()),
    ]
}

proptest! {
    /// Nothing is lost, duplicated or reordered: per stream, the emitted
    /// events split at `\n` give back the input lines.
    #[test]
    fn every_line_comes_out_once_in_order(
        rule in any_rule(),
        steps in proptest::collection::vec(
            (0..VOCABULARY.len(), any::<bool>(), 0u64..3000, any::<bool>()),
            0..60,
        ),
    ) {
        let mut multiline = Multiline::new(Config::new(rule));
        let mut out = Vec::new();
        let mut now = 0;
        let mut sent: [Vec<&str>; 2] = [Vec::new(), Vec::new()];
        for (offset, &(word, stderr, pause, flush)) in steps.iter().enumerate() {
            now += pause;
            let stream = if stderr { Stream::Stderr } else { Stream::Stdout };
            sent[stream_index(stream)].push(VOCABULARY[word]);
            let line = Assembled {
                offset: offset as u64,
                timestamp: timestamp(0),
                stream,
                content: VOCABULARY[word].as_bytes().to_vec(),
                flags: Vec::new(),
            };
            multiline.push(now, line, &mut out);
            if flush {
                multiline.flush_expired(now, &mut out);
            }
        }
        multiline.flush(&mut out);
        for stream in [Stream::Stdout, Stream::Stderr] {
            let events: Vec<&Assembled> = out.iter().filter(|event| event.stream == stream).collect();
            prop_assert!(events.windows(2).all(|pair| pair[0].offset < pair[1].offset));
            let got: Vec<&str> = events
                .iter()
                .flat_map(|event| std::str::from_utf8(&event.content).unwrap().split('\n'))
                .collect();
            prop_assert_eq!(&got, &sent[stream_index(stream)]);
            for event in events {
                let joined = event.content.contains(&b'\n');
                prop_assert_eq!(event.flags.contains(&Flag::Multiline), joined);
            }
        }
    }

    #[test]
    fn multiline_never_panics_and_stays_within_limits(
        rule in any_rule(),
        max_event_bytes in 0usize..80,
        max_lines in 0usize..5,
        lines in proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>().prop_map(|b| if b == b'\n' { b'x' } else { b }), 0..30),
                any::<bool>(),
                0u64..3000,
            ),
            0..40,
        ),
    ) {
        let mut multiline = Multiline::new(Config { rule, flush_timeout_ms: 1000, max_event_bytes, max_lines });
        let mut out = Vec::new();
        let mut now = 0;
        for (offset, (content, stderr, pause)) in lines.into_iter().enumerate() {
            now += pause;
            let line = Assembled {
                offset: offset as u64,
                timestamp: timestamp(0),
                stream: if stderr { Stream::Stderr } else { Stream::Stdout },
                content,
                flags: Vec::new(),
            };
            multiline.push(now, line, &mut out);
            multiline.flush_expired(now, &mut out);
        }
        multiline.flush(&mut out);
        for event in &out {
            prop_assert!(event.content.len() <= max_event_bytes);
            let line_count = event.content.iter().filter(|&&b| b == b'\n').count() + 1;
            prop_assert!(line_count <= max_lines.max(1) || event.flags.contains(&Flag::Truncated));
        }
    }
}

#[test]
fn reconfigure_to_another_rule_emits_pending_events_then_applies_the_new_rule() {
    let input = lines(
        "Exception in thread \"main\" java.lang.Error: x\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\n\tat a.B.e(B.java:3)",
    );
    let mut multiline = Multiline::new(Config::new(Rule::Java));
    let mut out = Vec::new();
    let mut input = input.into_iter();
    for line in input.by_ref().take(2) {
        multiline.push(0, line, &mut out);
    }
    assert!(out.is_empty(), "the trace is pending");

    // Same rule, other limits: the pending event goes on.
    let mut limits = Config::new(Rule::Java);
    limits.max_lines = 100;
    multiline.reconfigure(limits, &mut out);
    assert!(out.is_empty());
    assert!(multiline.pending_offset().is_some());

    // Another rule: the pending event is emitted as it is.
    multiline.reconfigure(Config::new(Rule::None), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        String::from_utf8(out[0].content.clone()).unwrap(),
        "Exception in thread \"main\" java.lang.Error: x\n\tat a.B.c(B.java:1)"
    );
    assert_eq!(multiline.pending_offset(), None);
    out.clear();
    for line in input {
        multiline.push(0, line, &mut out);
    }
    multiline.flush(&mut out);
    assert_eq!(out.len(), 2, "rule none: one event per line");
}

#[test]
fn same_as_compares_rules_and_custom_patterns() {
    assert!(Rule::Java.same_as(&Rule::Java));
    assert!(!Rule::Java.same_as(&Rule::Go));
    let custom = |start, cont| Rule::custom(start, cont).unwrap();
    assert!(custom("^a", "^b").same_as(&custom("^a", "^b")));
    assert!(!custom("^a", "^b").same_as(&custom("^a", "^c")));
    assert!(!custom("^a", "^b").same_as(&Rule::None));
}
