//! `deploy/kubernetes/`: the manifests parse, fit together (the ConfigMap the Deployment
//! mounts, the paths its environment names, the socket both containers share), and the
//! ConfigMap's `settings.json` is an operator settings file that the real quickstart applies.
//! Where `kubernetes-validate` (PyPI) is installed, the manifests are also checked against the
//! Kubernetes schemas.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

fn manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/kubernetes")
        .join(name)
}

/// The one document of a manifest, as JSON.
fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(manifest(name)).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: one document");
    to_json(&docs[0])
}

fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(s) => json!(s.parse::<f64>().unwrap()),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = k
                        .as_str()
                        .unwrap_or_else(|| panic!("a key that is no string: {k:?}"));
                    (key.to_owned(), to_json(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("not plain data: {other:?}"),
    }
}

/// The item of `list` whose `name` is `name`.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|item| item["name"] == name)
        .unwrap_or_else(|| panic!("no [{name}] in {list}"))
}

fn env<'a>(container: &'a Value, name: &str) -> &'a str {
    named(&container["env"], name)["value"].as_str().unwrap()
}

/// Where `container` mounts the volume `volume`.
fn mount<'a>(container: &'a Value, volume: &str) -> &'a Value {
    named(&container["volumeMounts"], volume)
}

#[test]
fn the_deployment_mounts_the_configmap_and_shares_the_admin_socket() {
    let deployment = load("deployment.yaml");
    let configmap = load("configmap.yaml");
    assert_eq!(
        (&deployment["apiVersion"], &deployment["kind"]),
        (&json!("apps/v1"), &json!("Deployment"))
    );
    assert_eq!(
        (&configmap["apiVersion"], &configmap["kind"]),
        (&json!("v1"), &json!("ConfigMap"))
    );
    let spec = &deployment["spec"];
    assert_eq!(
        spec["selector"]["matchLabels"],
        spec["template"]["metadata"]["labels"]
    );
    let pod = &spec["template"]["spec"];
    // More than the quickstart's 5 s of graceful shutdown.
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > 5);
    let app = named(&pod["containers"], "app");
    let admin = named(&pod["containers"], "admin");

    // The probes, on the app's port.
    assert_eq!(app["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(app["readinessProbe"]["httpGet"]["path"], "/readyz");
    let port = named(&app["ports"], "http")["containerPort"]
        .as_u64()
        .unwrap();
    assert_eq!(env(app, "QUICKSTART_ADDR"), format!("0.0.0.0:{port}"));

    // The operator settings: the ConfigMap's directory, mounted whole (a subPath mount is
    // never updated), and its settings.json the file the app is given.
    let volume = named(&pod["volumes"], "operator-settings");
    assert_eq!(volume["configMap"]["name"], configmap["metadata"]["name"]);
    let at = mount(app, "operator-settings");
    assert!(
        at.get("subPath").is_none(),
        "a subPath mount is never updated"
    );
    assert_eq!(
        Path::new(env(app, "UNDERSCORE_OPERATOR_SETTINGS")),
        Path::new(at["mountPath"].as_str().unwrap()).join("settings.json")
    );

    // The admin socket: in an emptyDir both containers mount at the same place, where both
    // look for it, under one uid (the socket is 0600).
    assert!(named(&pod["volumes"], "admin-socket")
        .get("emptyDir")
        .is_some());
    assert_eq!(
        mount(app, "admin-socket")["mountPath"],
        mount(admin, "admin-socket")["mountPath"]
    );
    let socket = env(app, "UNDERSCORE_SOCKET");
    assert_eq!(socket, env(admin, "UNDERSCORE_SOCKET"));
    assert!(socket.starts_with(mount(app, "admin-socket")["mountPath"].as_str().unwrap()));
    assert!(pod["securityContext"]["runAsUser"].is_u64());
    // Persistent settings in a writable volume (the root file system is read-only).
    let state = Path::new(env(app, "UNDERSCORE_SETTINGS"));
    assert!(state.starts_with(mount(app, "state")["mountPath"].as_str().unwrap()));
}

#[test]
fn the_configmap_holds_an_operator_settings_file_the_quickstart_applies() {
    let configmap = load("configmap.yaml");
    let file = configmap["data"]["settings.json"].as_str().unwrap();
    let version = underscore_actix::core::settings::operator::check(file.as_bytes())
        .unwrap_or_else(|e| panic!("configmap.yaml's settings.json: {e}"));

    // The real app, given the file: applied, whole, to the routes it names.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(&path, file).unwrap();
    let socket = dir.path().join("admin.sock");
    let (mut child, _, _) = common::spawn_quickstart_with(
        &socket,
        &dir.path().join("persistent.json"),
        &[("UNDERSCORE_OPERATOR_SETTINGS", path.as_os_str())],
    );
    let op = common::curl_unix(&socket, "GET", "/_operator/settings", None).json();
    let slow = common::curl_unix(&socket, "GET", "/_routes/slow/settings", None).json();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        (op["status"].clone(), op["version"].clone()),
        (json!("ok"), json!(version))
    );
    assert_eq!(slow["slow"]["operator"]["limits"]["max_in_flight"], 8);
}

#[test]
fn the_manifests_match_the_kubernetes_schemas_where_a_validator_is_installed() {
    // `pip install kubernetes-validate`: it ships the schemas, and checks offline.
    let files = [manifest("deployment.yaml"), manifest("configmap.yaml")];
    let out = match std::process::Command::new("kubernetes-validate")
        .args(["--strict"])
        .args(&files)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("kubernetes-validate is not installed ({e}): schema check skipped");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
