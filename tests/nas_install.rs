//! The NAS packaging kept honest: the Unraid template (`packaging/unraid/`) and the TrueNAS
//! SCALE and Synology compose files (`packaging/compose/`) parse, name only variables the
//! daemon reads (by the real binary's `--help`), agree with the Dockerfile and the release
//! workflow, and the first start each describes (its variables only, an empty config folder,
//! the status page on a port) runs with the real binary against the fake Twitch: the page
//! shows the login code, and after the code is approved it shows the user connected, with the
//! tokens in the config folder and the file's health check passing. The page is also rendered
//! in headless Chromium when the machine has it (`.ci/run` installs it), as
//! `tests/browser.rs` does.

mod common;

#[path = "common/chromium.rs"]
mod chromium;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use chromium::{chromium, run_chromium};
use common::*;
use fake_twitch::FakeTwitch;
use yaml_rust2::{Yaml, YamlLoader};

const TEMPLATE: &str = "packaging/unraid/twitch-colorchanger.xml";
const COMPOSE_FILES: [&str; 2] = [
    "packaging/compose/truenas.yaml",
    "packaging/compose/synology.yaml",
];
/// The image the release workflow publishes, as the packaging names it: `OWNER` is the
/// GitHub owner, which no file here knows (README says so).
const IMAGE: &str = "ghcr.io/OWNER/twitch-colorchanger:latest";
/// The variables a person fills in on the first start; everything else has a default.
const FIRST_START_VARIABLES: [&str; 2] = ["TWITCH_USERNAME_1", "TWITCH_CLIENT_ID_1"];
const SECRET_VARIABLES: [&str; 3] = [
    "TWITCH_CLIENT_SECRET_1",
    "TWITCH_ACCESS_TOKEN_1",
    "TWITCH_REFRESH_TOKEN_1",
];

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn repo_file(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// One `<Config>` entry of the Unraid template.
#[derive(Debug)]
struct TemplateConfig {
    kind: String,
    name: String,
    target: String,
    default: String,
    mode: String,
    display: String,
    required: bool,
    mask: bool,
    value: String,
}

/// The Unraid template: its top-level elements by name, and its `<Config>` entries.
struct Template {
    elements: BTreeMap<String, String>,
    configs: Vec<TemplateConfig>,
}

impl Template {
    fn read() -> Template {
        let text = repo_file(TEMPLATE);
        let document = roxmltree::Document::parse(&text).expect("the template is well-formed XML");
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "Container");
        assert_eq!(root.attribute("version"), Some("2"));
        let mut elements = BTreeMap::new();
        let mut configs = Vec::new();
        for child in root.children().filter(roxmltree::Node::is_element) {
            let text = child.text().unwrap_or_default().trim().to_string();
            if child.tag_name().name() != "Config" {
                let repeated = elements.insert(child.tag_name().name().to_string(), text);
                assert!(repeated.is_none(), "{} twice", child.tag_name().name());
                continue;
            }
            let attribute = |name: &str| {
                child
                    .attribute(name)
                    .unwrap_or_else(|| panic!("a Config without {name}: {child:?}"))
                    .to_string()
            };
            let flag = |name: &str| match attribute(name).as_str() {
                "true" => true,
                "false" => false,
                other => panic!("{name}={other:?} in {child:?}"),
            };
            configs.push(TemplateConfig {
                kind: attribute("Type"),
                name: attribute("Name"),
                target: attribute("Target"),
                default: attribute("Default"),
                mode: attribute("Mode"),
                display: attribute("Display"),
                required: flag("Required"),
                mask: flag("Mask"),
                value: text,
            });
        }
        Template { elements, configs }
    }

    fn element(&self, name: &str) -> &str {
        self.elements
            .get(name)
            .unwrap_or_else(|| panic!("the template has no <{name}>"))
    }

    fn configs_of(&self, kind: &str) -> Vec<&TemplateConfig> {
        self.configs
            .iter()
            .filter(|config| config.kind == kind)
            .collect()
    }

    fn variable(&self, target: &str) -> &TemplateConfig {
        self.configs_of("Variable")
            .into_iter()
            .find(|config| config.target == target)
            .unwrap_or_else(|| panic!("the template has no variable {target}"))
    }

    /// The environment the container gets: every variable with its value as the template
    /// sets it (Unraid passes empty ones too).
    fn environment(&self) -> BTreeMap<String, String> {
        self.configs_of("Variable")
            .into_iter()
            .map(|config| (config.target.clone(), config.value.clone()))
            .collect()
    }
}

/// One compose file's service, as far as the first start goes.
struct ComposeService {
    image: String,
    user: String,
    environment: BTreeMap<String, String>,
    /// `host:container` port pairs.
    ports: Vec<(u16, u16)>,
    /// `host:container` volume pairs.
    volumes: Vec<(String, String)>,
    healthcheck: Vec<String>,
}

impl ComposeService {
    fn read(file: &'static str) -> ComposeService {
        let documents = YamlLoader::load_from_str(&repo_file(file))
            .unwrap_or_else(|error| panic!("{file} is not YAML: {error}"));
        assert_eq!(documents.len(), 1, "{file}: one document");
        let services = documents[0]["services"]
            .as_hash()
            .unwrap_or_else(|| panic!("{file}: no services"));
        assert_eq!(services.len(), 1, "{file}: one service");
        let service = &documents[0]["services"]["twitch-colorchanger"];
        let text = |value: &Yaml, what: &str| -> String {
            value
                .as_str()
                .unwrap_or_else(|| panic!("{file}: {what} is not a string: {value:?}"))
                .to_string()
        };
        let list = |value: &Yaml, what: &str| -> Vec<String> {
            value
                .as_vec()
                .unwrap_or_else(|| panic!("{file}: {what} is not a list"))
                .iter()
                .map(|item| text(item, what))
                .collect()
        };
        let environment = service["environment"]
            .as_hash()
            .unwrap_or_else(|| panic!("{file}: environment is not a map"))
            .iter()
            .map(|(key, value)| (text(key, "a variable"), text(value, "a value")))
            .collect();
        let ports = list(&service["ports"], "ports")
            .iter()
            .map(|pair| {
                let (host, container) = pair.split_once(':').expect("host:container");
                (host.parse().unwrap(), container.parse().unwrap())
            })
            .collect();
        let volumes = list(&service["volumes"], "volumes")
            .iter()
            .map(|pair| {
                let (host, container) = pair.split_once(':').expect("host:container");
                (host.to_string(), container.to_string())
            })
            .collect();
        ComposeService {
            image: text(&service["image"], "image"),
            user: text(&service["user"], "user"),
            environment,
            ports,
            volumes,
            healthcheck: list(&service["healthcheck"]["test"], "healthcheck.test"),
        }
    }
}

/// The environment variables `--help` lists, `_N` names as they are written there.
fn variables_in_help() -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_twitch-colorchanger"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let section = help
        .split_once("\nEnvironment:\n")
        .expect("--help has an Environment section")
        .1;
    let section = section.split("\n\n").next().unwrap();
    section
        .split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|word| word.contains('_'))
        .map(str::to_string)
        .collect()
}

/// Whether `--help` lists `variable`: by name, or as `NAME_N` for `NAME_1`, `NAME_2` ….
fn help_lists(help: &BTreeSet<String>, variable: &str) -> bool {
    if help.contains(variable) {
        return true;
    }
    match variable.rsplit_once('_') {
        Some((prefix, number))
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            help.contains(&format!("{prefix}_N"))
        }
        _ => false,
    }
}

/// The value of `NAME=value` in the Dockerfile's runtime `ENV`.
fn dockerfile_env(name: &str) -> String {
    let dockerfile = repo_file("Dockerfile");
    let start = dockerfile
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("the Dockerfile sets no {name}"));
    dockerfile[start + name.len() + 1..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The port of an `IP:PORT` listen address whose IP is every address.
fn all_interfaces_port(listen: &str) -> u16 {
    let address: SocketAddr = listen
        .parse()
        .unwrap_or_else(|_| panic!("{listen:?} is not IP:PORT"));
    assert!(
        address.ip().is_unspecified(),
        "{listen}: inside a container the page must listen on all addresses"
    );
    address.port()
}

#[test]
fn the_help_check_tells_variables_the_daemon_reads_from_others() {
    let help = variables_in_help();
    let cases = [
        ("TWITCH_USERNAME_1", true),
        ("TWITCH_CLIENT_ID_12", true),
        ("TWITCH_HTTP_LISTEN", true),
        ("TWITCH_CONF_FILE", true),
        ("LOG_LEVEL", true),
        ("TWITCH_USERNAME", false),
        ("TWITCH_USERNAME_", false),
        ("TWITCH_USERNAME_X", false),
        ("TWITCH_PASSWORD_1", false),
        ("PUID", false),
        ("PGID", false),
    ];
    for (variable, expected) in cases {
        assert_eq!(help_lists(&help, variable), expected, "{variable}");
    }
}

#[test]
fn the_packaging_names_only_variables_the_daemon_reads() {
    let help = variables_in_help();
    let mut sources: Vec<(String, BTreeMap<String, String>)> =
        vec![(TEMPLATE.to_string(), Template::read().environment())];
    for file in COMPOSE_FILES {
        sources.push((file.to_string(), ComposeService::read(file).environment));
    }
    for (file, environment) in sources {
        for variable in environment.keys() {
            assert!(
                help_lists(&help, variable),
                "{file}: {variable} is not a variable the daemon reads (--help: {help:?})"
            );
        }
        for variable in FIRST_START_VARIABLES
            .into_iter()
            .chain(["TWITCH_HTTP_LISTEN"])
        {
            assert!(environment.contains_key(variable), "{file}: no {variable}");
        }
    }
}

#[test]
fn the_unraid_template_describes_the_image() {
    let template = Template::read();
    for name in [
        "Name",
        "Repository",
        "Registry",
        "Support",
        "Project",
        "Overview",
        "Category",
        "Icon",
        "WebUI",
        "TemplateURL",
        "ExtraParams",
    ] {
        assert!(!template.element(name).is_empty(), "<{name}> is empty");
    }
    assert_eq!(template.element("Repository"), IMAGE);
    // No PUID/PGID entrypoint in a FROM scratch image: Docker's --user picks the owner of
    // the appdata folder, nobody:users.
    assert!(
        template
            .element("ExtraParams")
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|pair| pair == ["--user", "99:100"]),
        "{}",
        template.element("ExtraParams")
    );
    // The icon and the template's own address name files of this repository.
    for name in ["Icon", "TemplateURL"] {
        let url = template.element(name);
        let path = url
            .split_once("/twitch-colorchanger/main/")
            .unwrap_or_else(|| panic!("{name}: {url}"))
            .1;
        assert!(
            repo_path(path).is_file(),
            "{name}: {path} is not in the repo"
        );
    }
    assert!(template.element("TemplateURL").ends_with(TEMPLATE));

    // One config folder, where the image keeps its config.
    let paths = template.configs_of("Path");
    assert_eq!(paths.len(), 1, "{paths:?}");
    let config_path = paths[0];
    assert_eq!(config_path.target, "/config");
    assert_eq!(config_path.mode, "rw");
    assert_eq!(config_path.default, "/mnt/user/appdata/twitch-colorchanger");
    assert_eq!(config_path.value, config_path.default);
    assert!(config_path.required);

    // The page's port: the WebUI, the port entry and the listen variable agree.
    let ports = template.configs_of("Port");
    assert_eq!(ports.len(), 1, "{ports:?}");
    let port = ports[0];
    assert_eq!(port.mode, "tcp");
    let listen = template.variable("TWITCH_HTTP_LISTEN");
    assert_eq!(listen.value, listen.default);
    let container_port = all_interfaces_port(&listen.value);
    assert_eq!(port.target, container_port.to_string());
    assert_eq!(
        template.element("WebUI"),
        format!("http://[IP]:[PORT:{container_port}]/")
    );

    // What a person must fill in is on show; secrets are advanced and masked.
    for variable in FIRST_START_VARIABLES {
        let config = template.variable(variable);
        assert!(config.required, "{variable}");
        assert_eq!(config.display, "always", "{variable}");
        assert!(
            config.value.is_empty(),
            "{variable} is the owner's to fill in"
        );
    }
    for variable in SECRET_VARIABLES {
        let config = template.variable(variable);
        assert!(config.mask, "{variable} is masked");
        assert!(!config.required, "{variable}");
        assert_eq!(config.display, "advanced", "{variable}");
    }
    for config in &template.configs {
        assert!(!config.name.is_empty(), "{config:?}");
        assert!(
            ["always", "advanced"].contains(&config.display.as_str()),
            "{config:?}"
        );
        // A choice (`a|b|c`) offers the value it sets.
        if config.default.contains('|') {
            assert!(
                config
                    .default
                    .split('|')
                    .any(|choice| choice == config.value),
                "{config:?}"
            );
        }
        assert!(
            !config.mask || SECRET_VARIABLES.contains(&config.target.as_str()),
            "only secrets are masked: {config:?}"
        );
    }
}

#[test]
fn the_compose_files_run_the_image_as_the_owner_of_the_config_folder() {
    let entrypoint = repo_file("Dockerfile");
    assert!(entrypoint.contains("ENTRYPOINT [\"/twitch-colorchanger\"]"));
    assert!(entrypoint.contains("VOLUME /config"));
    assert!(entrypoint.contains("CMD [\"/twitch-colorchanger\", \"health\"]"));
    assert!(dockerfile_env("TWITCH_CONF_FILE").starts_with("/config/"));
    for file in COMPOSE_FILES {
        let service = ComposeService::read(file);
        assert_eq!(service.image, IMAGE, "{file}");
        let (uid, gid) = service.user.split_once(':').expect("user: UID:GID");
        assert!(
            uid.parse::<u32>().is_ok_and(|uid| uid != 0) && gid.parse::<u32>().is_ok(),
            "{file}: user {}",
            service.user
        );
        assert_eq!(
            service.healthcheck,
            ["CMD", "/twitch-colorchanger", "health"],
            "{file}"
        );
        let targets: Vec<&str> = service.volumes.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(targets, ["/config"], "{file}");
        let container_port = all_interfaces_port(&service.environment["TWITCH_HTTP_LISTEN"]);
        assert!(
            service
                .ports
                .iter()
                .any(|(_, container)| *container == container_port),
            "{file}: the page's port is not published"
        );
    }
}

/// Every value a template dropdown offers (`Default="a|b|c"`) is one the daemon takes, with
/// the rest of the template as it is and the two first-start variables filled in.
#[test]
fn every_choice_the_unraid_template_offers_is_accepted() {
    let template = Template::read();
    let mut environment = template.environment();
    environment.insert("TWITCH_USERNAME_1".into(), "nasalice".into());
    environment.insert("TWITCH_CLIENT_ID_1".into(), "nasclientid".into());
    let mut n_choices = 0;
    for config in template.configs_of("Variable") {
        for choice in config
            .default
            .split('|')
            .filter(|_| config.default.contains('|'))
        {
            n_choices += 1;
            let dir = tempfile::tempdir().unwrap();
            let output = Command::new(env!("CARGO_BIN_EXE_twitch-colorchanger"))
                .env_clear()
                .envs(&environment)
                .env(&config.target, choice)
                .env(
                    "TWITCH_CONF_FILE",
                    dir.path().join("twitch_colorchanger.conf"),
                )
                .arg("check")
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}={choice}: {}",
                config.target,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    assert!(n_choices >= 9, "{n_choices} choices");
}

/// The file's values left as they are: the daemon refuses them and names the variable.
#[test]
fn compose_files_left_unfilled_are_refused_with_the_variable_to_fill_in() {
    for file in COMPOSE_FILES {
        let service = ComposeService::read(file);
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_twitch-colorchanger"))
            .env_clear()
            .envs(&service.environment)
            .env(
                "TWITCH_CONF_FILE",
                dir.path().join("twitch_colorchanger.conf"),
            )
            .arg("check")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains("TWITCH_USERNAME_1"), "{file}: {stderr}");
    }
}

/// One request for `path` on a fresh connection; the status code and the body.
fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: nas\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

/// The page's DOM as headless Chromium renders it.
fn rendered_dom(binary: &str, profile: &Path, url: &str) -> String {
    run_chromium(binary, profile, &["--dump-dom".to_string()], url)
}

/// The page while the login waits, and after it: as served, and as Chromium shows it.
fn pages(address: SocketAddr, profile: &Path) -> Vec<String> {
    let (status, page) = get(address, "/");
    assert_eq!(status, 200, "{page}");
    let mut pages = vec![page];
    if let Some(binary) = chromium() {
        pages.push(rendered_dom(binary, profile, &format!("http://{address}/")));
    } else {
        eprintln!("chromium is not installed; the page was checked over HTTP only");
    }
    pages
}

/// Runs the first start `environment` describes, as a person does it: fills in the login
/// and the client id, starts the container with an empty config folder, reads the code on
/// the page, approves it, and sees "connected".
fn first_start(source: &str, mut environment: BTreeMap<String, String>, chromium_profile: &Path) {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "nasalice", "7101", "#1E90FF", true);
    twitch.set_device_interval(0);
    environment.insert("TWITCH_USERNAME_1".into(), "nasalice".into());
    environment.insert("TWITCH_CLIENT_ID_1".into(), alice.client_id.clone());
    // The page listens on every address as the file says, on a free port.
    let listen_port = all_interfaces_port(&environment["TWITCH_HTTP_LISTEN"]);
    environment.insert(
        "TWITCH_HTTP_LISTEN".into(),
        environment["TWITCH_HTTP_LISTEN"].replace(&format!(":{listen_port}"), ":0"),
    );
    // The status writer's debug lines say when the board reached a state.
    environment.insert("LOG_LEVEL".into(), "debug".into());

    // The config folder (the volume at /config), empty; the image says where in it the
    // config goes.
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("appdata");
    std::fs::create_dir(&config_dir).unwrap();
    let config_file = dockerfile_env("TWITCH_CONF_FILE");
    let config_path = config_dir.join(config_file.strip_prefix("/config/").unwrap());
    let mut command = binary_for(dir.path(), &twitch);
    command
        .envs(&environment)
        .env("TWITCH_CONF_FILE", &config_path);
    let process = Process::spawn(command);

    let serving = process
        .wait_line(|line| line.contains("status page on http://"), WAIT)
        .unwrap_or_else(|| panic!("{source}: no status page"));
    let port: u16 = serving
        .split("status page on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|address| address.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{serving}"));
    let address = SocketAddr::from(([127, 0, 0, 1], port));

    let user_code = twitch.wait_device_user_code(WAIT).expect("a device code");
    process
        .wait_line(
            |line| line.contains(&format!("nasalice needs-login (code {user_code})")),
            WAIT,
        )
        .unwrap_or_else(|| panic!("{source}: the code never reached the status file"));
    for page in pages(address, &chromium_profile.join("waiting")) {
        let login_box = page
            .find("id=\"login-nasalice\"")
            .map(|start| &page[start..])
            .unwrap_or_else(|| panic!("{source}: no login box: {page}"));
        let login_box = &login_box[..login_box.find("</section>").unwrap()];
        // The link and the code are said once, in the box; the card and the header point
        // to it instead of repeating them, and a prompt is no "Last error".
        let outside = page.replace(login_box, "");
        assert!(
            !outside.contains(&user_code),
            "{source}: the code outside its box: {page}"
        );
        assert!(
            outside.contains("the link and the code to log in are above"),
            "{source}: {page}"
        );
        for expected in [
            "nasalice: log in".to_string(),
            format!("<p class=\"code\">{user_code}</p>"),
            "<a href=\"".to_string(),
        ] {
            assert!(
                login_box.contains(&expected),
                "{source}: {expected}: {page}"
            );
        }
    }

    twitch.approve_device(&user_code, "nasalice");
    process
        .wait_line(
            |line| line.contains("status file written: nasalice connected"),
            WAIT,
        )
        .unwrap_or_else(|| panic!("{source}: never connected"));
    let access_token = twitch.access_token("nasalice");
    for page in pages(address, &chromium_profile.join("connected")) {
        let card = page
            .find("id=\"user-nasalice\"")
            .map(|start| &page[start..])
            .unwrap_or_else(|| panic!("{source}: no card: {page}"));
        assert!(card.contains("connected for"), "{source}: {page}");
        assert!(
            card.contains("<dt>Last error</dt><dd>none</dd>"),
            "{source}: the finished login is no error: {page}"
        );
        assert!(!page.contains("class=\"login\""), "{source}: {page}");
        assert!(!page.contains("enter the code"), "{source}: {page}");
        assert!(
            !page.contains(&access_token),
            "{source}: a token on the page"
        );
    }

    // The file's health check, in the container's environment.
    let output = binary_for(dir.path(), &twitch)
        .envs(&environment)
        .env("TWITCH_CONF_FILE", &config_path)
        .arg("health")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.contains("1 user connected"),
        "{source}: health: {said}{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{source}: {output}");
    assert!(
        !output.contains(&access_token),
        "{source}: a token in the log"
    );
    // The tokens are in the config folder, for every start after this one.
    let saved = read_config(&config_path);
    let user = user_entry(&saved, "nasalice");
    assert_eq!(user["access_token"], access_token.as_str(), "{source}");
    assert_eq!(
        user["refresh_token"],
        twitch.refresh_token("nasalice").as_str(),
        "{source}"
    );
    assert_eq!(user["client_id"], alice.client_id.as_str(), "{source}");
}

#[test]
fn the_unraid_first_start_shows_the_code_then_connected_with_tokens_in_appdata() {
    let profiles = tempfile::tempdir().unwrap();
    first_start(TEMPLATE, Template::read().environment(), profiles.path());
}

#[test]
fn the_compose_first_starts_show_the_code_then_connected_with_tokens_in_the_folder() {
    let profiles = tempfile::tempdir().unwrap();
    for (n, file) in COMPOSE_FILES.into_iter().enumerate() {
        first_start(
            file,
            ComposeService::read(file).environment,
            &profiles.path().join(n.to_string()),
        );
    }
}
