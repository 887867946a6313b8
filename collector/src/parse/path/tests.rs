use proptest::prelude::*;

use super::*;

const ID: &str = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

fn meta(
    namespace: &str,
    pod: &str,
    pod_uid: Option<&str>,
    container: &str,
    container_id: Option<&str>,
    restart: Option<u32>,
) -> PathMeta {
    PathMeta {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        pod_uid: pod_uid.map(str::to_owned),
        container: container.to_owned(),
        container_id: container_id.map(str::to_owned),
        restart,
    }
}

#[test]
fn parse_path_reads_both_kubelet_layouts() {
    let uid = "0b1c2d3e-1111-2222-3333-444455556666";
    // The kubelet cuts `<pod>_<ns>_<container>-<id>` to 251 bytes, then adds `.log`.
    let long_pod = "p".repeat(200);
    let cut_in_id = format!(
        "/var/log/containers/{}.log",
        &format!("{long_pod}_default_sidecar-{ID}")[..251]
    );
    let table: Vec<(String, Option<PathMeta>)> = vec![
        (
            format!("/var/log/pods/default_web-7d4b9c-abcde_{uid}/nginx/0.log"),
            Some(meta("default", "web-7d4b9c-abcde", Some(uid), "nginx", None, Some(0))),
        ),
        // Rotated files, plain and compressed.
        (
            format!("/var/log/pods/default_web_{uid}/nginx/3.log.20261127-201729"),
            Some(meta("default", "web", Some(uid), "nginx", None, Some(3))),
        ),
        (
            format!("/var/log/pods/default_web_{uid}/nginx/3.log.20261127-201729.gz"),
            Some(meta("default", "web", Some(uid), "nginx", None, Some(3))),
        ),
        // Dots in pod names; a static pod's config hash in place of the uid.
        (
            "/var/log/pods/kube-system_etcd-node-1.example.com_9f8e7d6c5b4a39281706f5e4d3c2b1a0/etcd/12.log".to_owned(),
            Some(meta("kube-system", "etcd-node-1.example.com", Some("9f8e7d6c5b4a39281706f5e4d3c2b1a0"), "etcd", None, Some(12))),
        ),
        // Another podLogsDir, or a relative path.
        (
            format!("ns_pod_{uid}/c/1.log"),
            Some(meta("ns", "pod", Some(uid), "c", None, Some(1))),
        ),
        (
            format!("/var/log/containers/web-7d4b9c-abcde_default_nginx-{ID}.log"),
            Some(meta("default", "web-7d4b9c-abcde", None, "nginx", Some(ID), None)),
        ),
        (
            format!("/var/log/containers/api.v2_team-a_my-side-car-{ID}.log"),
            Some(meta("team-a", "api.v2", None, "my-side-car", Some(ID), None)),
        ),
        // Names the kubelet cut at 255 bytes.
        (cut_in_id, Some(meta("default", &long_pod, None, "sidecar", None, None))),
        // Without an id the rest is the container name.
        ("/var/log/containers/pod_ns_ctr.log".to_owned(), Some(meta("ns", "pod", None, "ctr", None, None))),
        ("/var/log/containers/pod_ns_ctr-abc.log".to_owned(), Some(meta("ns", "pod", None, "ctr-abc", None, None))),
        // Unknown layouts.
        ("".to_owned(), None),
        ("/".to_owned(), None),
        ("0.log".to_owned(), None),
        ("/var/log/syslog".to_owned(), None),
        ("/var/log/pods/ns_pod_uid/nginx/x.log".to_owned(), None),
        ("/var/log/pods/ns_pod_uid/nginx/0.log.".to_owned(), None),
        ("/var/log/pods/ns_pod_uid/nginx/0.logs".to_owned(), None),
        ("/var/log/pods/ns_pod_uid/nginx/99999999999.log".to_owned(), None),
        ("/var/log/pods/ns_pod/nginx/0.log".to_owned(), None),
        ("/var/log/pods/a_b_c_d/nginx/0.log".to_owned(), None),
        ("/var/log/pods/ns__uid/nginx/0.log".to_owned(), None),
        ("/var/log/pods/ns_pod_uid//0.log".to_owned(), None),
        ("/var/log/pods/ns_pod_uid/a_b/0.log".to_owned(), None),
        (format!("/var/log/containers/_ns_ctr-{ID}.log"), None),
        (format!("/var/log/containers/pod_ns_ctr-{ID}.log.1"), None),
    ];
    for (path, want) in table {
        assert_eq!(parse_path(&path), want, "{path}");
    }
}

#[test]
fn a_name_cut_before_the_id_keeps_what_is_there() {
    let pod = "q".repeat(230);
    let name = format!("{pod}_default_long-container-name-{ID}");
    let path = format!("/var/log/containers/{}.log", &name[..251]);
    let got = parse_path(&path).unwrap();
    assert_eq!(
        (got.pod.as_str(), got.namespace.as_str()),
        (pod.as_str(), "default")
    );
    assert_eq!(got.container_id, None);
    assert!(
        "long-container-name".starts_with(&got.container),
        "{}",
        got.container
    );
}

proptest! {
    #[test]
    fn parse_path_never_panics(path in ".{0,120}") {
        let _ = parse_path(&path);
    }

    #[test]
    fn parse_path_never_panics_on_path_like_input(
        parts in proptest::collection::vec("[a-z0-9._/-]{0,12}(_[a-z0-9.-]{0,8}){0,3}", 0..5),
        file in "([0-9]{1,3}\\.log(\\.[0-9-]{0,10})?|[a-z_-]{0,20}\\.log)",
    ) {
        let path = format!("{}/{file}", parts.join("/"));
        let _ = parse_path(&path);
    }

    #[test]
    fn written_paths_read_back(
        namespace in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
        pod in "[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?",
        container in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
        restart in any::<u32>(),
    ) {
        let pods = format!("/var/log/pods/{namespace}_{pod}_uid-1/{container}/{restart}.log");
        prop_assert_eq!(
            parse_path(&pods),
            Some(meta(&namespace, &pod, Some("uid-1"), &container, None, Some(restart)))
        );
        let containers = format!("/var/log/containers/{pod}_{namespace}_{container}-{ID}.log");
        prop_assert_eq!(
            parse_path(&containers),
            Some(meta(&namespace, &pod, None, &container, Some(ID), None))
        );
    }
}
