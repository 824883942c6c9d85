use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = std::env::temp_dir().join(format!("vigil-cfg-{}", crate::secrets::random_hex(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("vigil.toml");
    std::fs::write(&p, text).unwrap();
    let out = Config::load(
        Some(&p),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    );
    std::fs::remove_dir_all(&dir).ok();
    out
}

#[test]
fn defaults_file_then_env() {
    let c = load("[http]\naddr = \"127.0.0.1:9000\"\n", &[]).unwrap();
    assert_eq!(c.http.addr.port(), 9000);
    assert_eq!(c.mqtt.addr.port(), 1883);
    let c = load(
        "[http]\naddr = \"127.0.0.1:9000\"\n",
        &[
            ("VIGIL_HTTP_ADDR", "127.0.0.1:9100"),
            ("VIGIL_DATA_DIR", "/tmp/x"),
            ("VIGIL_HTTP_SESSION_TTL_HOURS", "3"),
            ("VIGIL_MQTT_BROKER_URL", "mqtt://127.0.0.1:1999"),
            ("VIGIL_BIN", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(c.http.addr.port(), 9100);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(c.http.session_ttl_hours, 3);
    assert_eq!(c.mqtt.broker_url, "mqtt://127.0.0.1:1999");
}

#[test]
fn password_file_wins_over_password() {
    let dir = std::env::temp_dir().join(format!("vigil-pw-{}", crate::secrets::random_hex(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("pw");
    std::fs::write(&f, "from-file\nignored second line\n").unwrap();
    let mut m = MqttConfig {
        password: "inline".into(),
        ..Default::default()
    };
    assert_eq!(m.password().unwrap(), "inline");
    m.password_file = f.display().to_string();
    assert_eq!(m.password().unwrap(), "from-file");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_file_names_key_and_line() {
    let err = load("data_dir = \"x\"\n\n[http]\naddr = 8080\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("addr"), "{err}");
    let err = load("[mqtt]\nbrokr_url = \"x\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("brokr_url") && err.contains("line 2"), "{err}");
    let err = load(
        "[http]\nsession_ttl_hours = 1\n",
        &[("VIGIL_HTTP_SESSION_TTL_HOURS", "soon")],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("VIGIL_HTTP_SESSION_TTL_HOURS"), "{err}");
}

/// `docs/configuration.md` and `vigil.example.toml` stay true: every key is documented and
/// the example holds exactly the defaults.
#[test]
fn docs_and_example_match_the_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = Config::load(Some(&root.join("vigil.example.toml")), std::iter::empty()).unwrap();
    assert_eq!(
        toml::to_string(&example).unwrap(),
        toml::to_string(&Config::default()).unwrap()
    );
    let doc = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let table = toml::Table::try_from(Config::default()).unwrap();
    for (k, v) in &table {
        match v.as_table() {
            Some(t) => {
                for key in t.keys() {
                    let env = format!("VIGIL_{}_{}", k.to_uppercase(), key.to_uppercase());
                    assert!(
                        doc.contains(&format!("`{k}.{key}`")),
                        "{k}.{key} undocumented"
                    );
                    assert!(doc.contains(&env), "{env} undocumented");
                }
            }
            None => assert!(doc.contains(&format!("`{k}`")), "{k} undocumented"),
        }
    }
}
