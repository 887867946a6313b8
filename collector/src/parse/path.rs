//! Kubernetes metadata from the kubelet's log file paths.

/// What a log file's path says about the container that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMeta {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's UID (a static pod's config hash); absent from
    /// `/var/log/containers` names.
    pub pod_uid: Option<String>,
    /// The container's name in the pod spec.
    pub container: String,
    /// The runtime's 64-hex container id; only `/var/log/containers` names
    /// carry it, and the kubelet cuts names longer than 255 bytes.
    pub container_id: Option<String>,
    /// The container's restart count, from the pods layout's `<n>.log`.
    pub restart: Option<u32>,
}

/// Reads metadata from a log file path in either kubelet layout:
///
/// - `.../<namespace>_<pod>_<uid>/<container>/<n>.log`, also rotated
///   `<n>.log.<timestamp>` names (the kubelet's `/var/log/pods`);
/// - `.../<pod>_<namespace>_<container>-<container id>.log` (the symlinks in
///   `/var/log/containers`).
///
/// Kubernetes names never contain `_`, so `_` separates the fields. The
/// directory the layout sits in is not checked, since the kubelet's
/// `podLogsDir` can move it. Any other path gives `None`.
pub fn parse_path(path: &str) -> Option<PathMeta> {
    let mut parts = path.rsplit('/');
    let file = parts.next()?;
    let container_dir = parts.next();
    let pod_dir = parts.next();
    pods_layout(file, container_dir, pod_dir).or_else(|| containers_layout(file))
}

fn pods_layout(file: &str, container_dir: Option<&str>, pod_dir: Option<&str>) -> Option<PathMeta> {
    let (restart, suffix) = file.split_once(".log")?;
    let rotated = suffix
        .strip_prefix('.')
        .is_some_and(|stamp| !stamp.is_empty());
    if !(suffix.is_empty() || rotated) || !restart.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let restart = restart.parse().ok()?;
    let container = name(container_dir?)?;
    let [namespace, pod, uid] = three_names(pod_dir?)?;
    Some(PathMeta {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        pod_uid: Some(uid.to_owned()),
        container: container.to_owned(),
        container_id: None,
        restart: Some(restart),
    })
}

fn containers_layout(file: &str) -> Option<PathMeta> {
    let stem = file.strip_suffix(".log")?;
    let [pod, namespace, rest] = three_names(stem)?;
    let (container, container_id) = match rest.rsplit_once('-') {
        Some((container, id)) if !container.is_empty() && is_container_id(id) => {
            (container, Some(id.to_owned()))
        }
        // The kubelet cuts names at 255 bytes: a cut id is dropped, and a
        // name cut before the id is kept as far as it goes.
        Some((container, id))
            if file.len() >= MAX_NAME_LEN && !container.is_empty() && is_hex_prefix(id) =>
        {
            (container, None)
        }
        _ => (rest, None),
    };
    Some(PathMeta {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        pod_uid: None,
        container: container.to_owned(),
        container_id,
        restart: None,
    })
}

/// Splits `a_b_c` into three non-empty names.
fn three_names(text: &str) -> Option<[&str; 3]> {
    let mut fields = text.split('_');
    let names = [
        name(fields.next()?)?,
        name(fields.next()?)?,
        name(fields.next()?)?,
    ];
    fields.next().is_none().then_some(names)
}

/// A non-empty name without separators.
fn name(text: &str) -> Option<&str> {
    (!text.is_empty() && !text.contains('_')).then_some(text)
}

/// Longest file name on ext4; the kubelet cuts symlink names to fit.
const MAX_NAME_LEN: usize = 255;

fn is_container_id(text: &str) -> bool {
    text.len() == 64 && is_hex_prefix(text)
}

fn is_hex_prefix(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;
