"""Validation of the Docker stack on a machine without a container engine.

Run from the repository root:

    .local/venv/bin/python -m unittest discover -s deploy/tests -v

Parses deploy/docker-compose.yml, the Dockerfile, vector.toml (and the scale profile's Vector
config), loki-config.yaml, prometheus.yml, the nginx load balancer config and the Grafana
provisioning files, and checks that every reference between them resolves: service names,
ports, volumes, mounted files, data source URLs and uids, the sluice endpoints Vector and
Prometheus call, pinned image tags, health checks. Then it runs the sluice binary
(`cargo build -j2 -p sluice`, a no-op when fresh) with exactly the environment the compose file
gives each sluice service and requires `sluice check --config-only` to accept it, and broken
values to be refused with a message.

Needs PyYAML (deploy/tests/requirements.txt) and Python 3.11+ (tomllib).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
import unittest
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_PATH = DEPLOY / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BUILD_SCRIPT = ROOT / "scripts" / "build-image-steps.sh"
LOKI_CONFIG = ROOT / "loki-config.yaml"
DOCS_DOCKER = ROOT / "docs" / "docker.md"
DOCS_SCALING = ROOT / "docs" / "scaling.md"

# The SLUICE_* variables a deployment may set (DESIGN.md, `sluice check --config-only`).
SLUICE_ENV_NAMES = {
    "SLUICE_LISTEN",
    "SLUICE_DATA_DIR",
    "SLUICE_CLICKHOUSE_URL",
    "SLUICE_CLICKHOUSE_DATABASE",
    "SLUICE_CLICKHOUSE_USER",
    "SLUICE_CLICKHOUSE_PASSWORD",
    "SLUICE_CLICKHOUSE_COMPRESSION",
    "SLUICE_CLICKHOUSE_CLUSTER",
    "SLUICE_LOG",
}
SLUICE_ENV_REQUIRED = {
    "SLUICE_LISTEN",
    "SLUICE_DATA_DIR",
    "SLUICE_CLICKHOUSE_URL",
    "SLUICE_CLICKHOUSE_DATABASE",
    "SLUICE_CLICKHOUSE_USER",
    "SLUICE_CLICKHOUSE_PASSWORD",
}

# Ports the images listen on by default, where no file of this repository sets them: the
# ClickHouse image's EXPOSE (8123 HTTP, 9000 native, 9009 interserver), Grafana's default
# http_port, Prometheus' default --web.listen-address. sluice, Loki and the nginx balancer get
# their ports from SLUICE_LISTEN, loki-config.yaml and the nginx config.
IMAGE_DEFAULT_PORTS = {
    "clickhouse": {8123, 9000, 9009},
    "grafana/grafana": {3000},
    "prom/prometheus": {9090},
    "timberio/vector": set(),
}

# Paths that HTTP clients in the stack call on sluice, from DESIGN.md's stable interface.
SLUICE_PUSH_PATH = "/loki/api/v1/push"
SLUICE_JSONLINE_PATH = "/insert/jsonline"
SLUICE_STACK_PATHS = {SLUICE_PUSH_PATH, SLUICE_JSONLINE_PATH, "/ready", "/metrics"}
# Loki's push path (the loki sink's default `path`).
LOKI_PUSH_PATH = "/loki/api/v1/push"

# Fields every Vector log event has without a transform (Vector's log schema).
VECTOR_STANDARD_FIELDS = {"message", "timestamp", "host", "source_type"}

# The OpenTelemetry column map of Grafana's ClickHouse plugin 4.20 for logs (otel.ts, schema
# 1.2.9, which "latest" picks when the table has TimestampTime). The plugin's OTel mode selects
# all of them, so the logs table must have every one.
GRAFANA_OTEL_LOG_COLUMNS = {
    "TimestampTime",
    "Timestamp",
    "Body",
    "SeverityText",
    "TraceId",
    "ResourceAttributes",
    "ScopeAttributes",
    "LogAttributes",
}

# Metrics the dashboard may show before the code that exports them lands (the query cache).
PENDING_METRICS: set[str] = set()

PRUNED_DIRS = {"target", ".git", ".local", "node_modules", "__pycache__"}


# ------------------------------------------------------------------------------------------
# Loading and interpolation


_COMPOSE_VAR = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
)


def compose_interpolate(value: str, missing: list[str]) -> str:
    """Compose's interpolation with an empty host environment: every variable takes its
    default. Variables without a default are collected in `missing`."""

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("braced") or m.group("plain")
        op, arg = m.group("op"), m.group("arg")
        if op in (":-", "-"):
            return arg
        if op in (":+", "+"):
            return ""
        missing.append(name)
        return ""

    return _COMPOSE_VAR.sub(repl, value)


def _walk_interpolate(node, missing):
    if isinstance(node, str):
        return compose_interpolate(node, missing)
    if isinstance(node, list):
        return [_walk_interpolate(v, missing) for v in node]
    if isinstance(node, dict):
        return {k: _walk_interpolate(v, missing) for k, v in node.items()}
    return node


@lru_cache(maxsize=None)
def compose_raw() -> dict:
    with COMPOSE_PATH.open() as f:
        return yaml.safe_load(f)


@lru_cache(maxsize=None)
def compose_and_missing() -> tuple[dict, tuple[str, ...]]:
    missing: list[str] = []
    doc = _walk_interpolate(compose_raw(), missing)
    return doc, tuple(missing)


def compose() -> dict:
    return compose_and_missing()[0]


def services() -> dict:
    return compose()["services"]


def env_of(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            key, _, value = item.partition("=")
            out[key] = value
        return out
    return {k: "" if v is None else str(v) for k, v in env.items()}


def profiles_of(svc: dict) -> set[str]:
    return set(svc.get("profiles") or [])


def depends_of(svc: dict) -> dict[str, dict]:
    dep = svc.get("depends_on") or {}
    if isinstance(dep, list):
        return {name: {"condition": "service_started"} for name in dep}
    return dep


def volume_mounts(svc: dict) -> list[tuple[str, str, str]]:
    """(kind, source, target) for each entry of `volumes`; kind is 'bind' or 'volume'."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            out.append((v.get("type", "volume"), str(v.get("source", "")), v["target"]))
            continue
        parts = v.split(":")
        source, target = parts[0], parts[1]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        out.append((kind, source, target))
    return out


def host_path(source: str) -> Path:
    return (DEPLOY / source).resolve() if not source.startswith("/") else Path(source)


def bind_source_for(svc: dict, target: str) -> Path | None:
    for kind, source, tgt in volume_mounts(svc):
        if kind == "bind" and tgt == target:
            return host_path(source)
    return None


def image_name(svc: dict) -> str:
    """The image without tag or digest: `grafana/loki:3.7.6` -> `grafana/loki`."""
    image = (svc.get("image") or "").split("@")[0]
    return image.rsplit(":", 1)[0] if ":" in image else image


def is_sluice_service(svc: dict) -> bool:
    return "SLUICE_LISTEN" in env_of(svc)


def port_of_address(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


@lru_cache(maxsize=None)
def loki_config() -> dict:
    with LOKI_CONFIG.open() as f:
        return yaml.safe_load(f)


def nginx_conf_of(svc: dict) -> str | None:
    path = bind_source_for(svc, "/etc/nginx/nginx.conf")
    return path.read_text() if path and path.is_file() else None


def nginx_listen_ports(conf: str) -> set[int]:
    return {int(p) for p in re.findall(r"^\s*listen\s+(?:[\d.]+:)?(\d+)", conf, re.M)}


def nginx_upstream_servers(conf: str) -> list[tuple[str, int]]:
    out = []
    for body in re.findall(r"upstream\s+\S+\s*\{(.*?)\}", conf, re.S):
        for host, port in re.findall(r"^\s*server\s+([A-Za-z0-9_.-]+):(\d+)", body, re.M):
            out.append((host, int(port)))
    return out


def listen_ports(name: str) -> set[int]:
    """Container ports the service listens on, from the configuration that sets them."""
    svc = services()[name]
    ports: set[int] = set()
    env = env_of(svc)
    if "SLUICE_LISTEN" in env:
        ports.add(port_of_address(env["SLUICE_LISTEN"]))
    image = image_name(svc)
    if image == "grafana/loki":
        ports.add(int(loki_config()["server"]["http_listen_port"]))
    if image == "nginx":
        conf = nginx_conf_of(svc)
        if conf:
            ports |= nginx_listen_ports(conf)
    ports |= IMAGE_DEFAULT_PORTS.get(image, set())
    return ports


def active_with(consumer: dict, target: dict) -> bool:
    """True if `target` runs whenever `consumer` does (same profile, or no profile)."""
    tp = profiles_of(target)
    return not tp or bool(tp & profiles_of(consumer))


@lru_cache(maxsize=None)
def rust_sources() -> tuple[tuple[Path, str], ...]:
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in PRUNED_DIRS]
        for fn in filenames:
            if fn.endswith(".rs"):
                p = Path(dirpath) / fn
                out.append((p, p.read_text(errors="replace")))
    return tuple(out)


@lru_cache(maxsize=None)
def sluice_routes() -> frozenset[str]:
    """Paths sluice's axum routers register: `.route("/p", ...)`, also under `.nest("/n", ...)`."""
    routes, nests = set(), set()
    for _, text in rust_sources():
        routes |= set(re.findall(r'\.route\(\s*"([^"]+)"', text))
        nests |= set(re.findall(r'\.nest\(\s*"([^"]+)"', text))
    full = set(routes)
    for n in nests:
        for r in routes:
            full.add(n.rstrip("/") + r)
    return frozenset(full)


@lru_cache(maxsize=None)
def sluice_metric_names() -> frozenset[str]:
    names = set()
    for _, text in rust_sources():
        names |= set(re.findall(r'"(sluice_[a-z0-9_]+)"', text))
    return frozenset(names)


def dockerfile_instructions() -> list[tuple[str, str]]:
    out, cur = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        s = raw.strip()
        if s.startswith("#") or (not s and not cur):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def url_in(text: str) -> str:
    m = re.search(r"https?://[^\s\"'\]]+", text)
    if not m:
        raise AssertionError(f"no URL in {text!r}")
    return m.group(0)


def healthcheck_text(hc: dict) -> str:
    test = hc.get("test")
    return " ".join(test) if isinstance(test, list) else str(test)


def vector_services() -> dict[str, dict]:
    return {n: s for n, s in services().items() if image_name(s) == "timberio/vector"}


def vector_config_path(svc: dict) -> Path:
    cmd = svc.get("command") or []
    if isinstance(cmd, str):
        cmd = cmd.split()
    target = None
    for i, arg in enumerate(cmd):
        if arg in ("--config", "-c") and i + 1 < len(cmd):
            target = cmd[i + 1]
        elif arg.startswith("--config="):
            target = arg.split("=", 1)[1]
    if target is None:
        raise AssertionError("vector service has no --config argument")
    src = bind_source_for(svc, target)
    if src is None:
        raise AssertionError(f"vector config {target} is not bind-mounted")
    return src


def load_toml(path: Path) -> dict:
    with path.open("rb") as f:
        return tomllib.load(f)


def remap_assigned_fields(source: str) -> set[str]:
    """Top-level event fields a VRL program assigns (`.name = ...`)."""
    return set(re.findall(r"^\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*=[^=]", source, re.M))


def upstream_fields(cfg: dict, component: str) -> set[str]:
    """Fields an event can carry when it leaves `component`: the standard ones, the source
    type's own, and those assigned by remaps on the way."""
    transforms = cfg.get("transforms", {})
    sources = cfg.get("sources", {})
    fields = set(VECTOR_STANDARD_FIELDS)
    seen, stack = set(), [component]
    while stack:
        c = stack.pop()
        if c in seen:
            continue
        seen.add(c)
        if c in transforms:
            t = transforms[c]
            if t.get("type") == "remap":
                fields |= remap_assigned_fields(t.get("source", ""))
            stack.extend(t.get("inputs", []))
        elif c in sources and sources[c].get("type") == "docker_logs":
            fields |= {"container_id", "container_name", "image", "label", "stream", "container_created_at"}
    return fields


def template_fields(template: str) -> set[str]:
    return set(re.findall(r"\{\{\s*\.?([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", template))


# ------------------------------------------------------------------------------------------
# Compose


class ComposeFile(unittest.TestCase):
    def test_expected_services(self):
        expected = {"clickhouse", "sluice", "vector", "loki", "prometheus", "grafana",
                    "sluice-a", "sluice-b", "sluice-lb"}
        self.assertLessEqual(expected, set(services()))

    def test_every_variable_has_a_default(self):
        _, missing = compose_and_missing()
        self.assertEqual(missing, (), "`up` without an .env file would leave these empty")

    def test_images_pinned(self):
        for name, svc in services().items():
            with self.subTest(service=name):
                image = svc.get("image")
                if image is None:
                    self.assertIn("build", svc, "a service needs an image or a build")
                    continue
                ref = image.split("@")[0]
                self.assertIn(":", ref, f"{image}: no tag")
                tag = ref.rsplit(":", 1)[1]
                self.assertNotIn(tag, {"latest", "", "stable", "mainline", "lts"}, image)
                if "build" not in svc:
                    self.assertRegex(tag, r"^v?\d+\.\d+(\.\d+)+", f"{image}: not an exact version")

    def test_depends_on_resolves(self):
        for name, svc in services().items():
            for dep, spec in depends_of(svc).items():
                with self.subTest(service=name, depends_on=dep):
                    self.assertIn(dep, services())
                    self.assertTrue(active_with(svc, services()[dep]),
                                    f"{name} runs without the profile of {dep}")
                    cond = spec.get("condition", "service_started")
                    self.assertIn(cond, {"service_started", "service_healthy",
                                         "service_completed_successfully"})
                    if cond == "service_healthy":
                        self.assertIn("healthcheck", services()[dep])

    def test_named_volumes_declared_and_used(self):
        declared = set((compose().get("volumes") or {}).keys())
        used = set()
        for name, svc in services().items():
            for kind, source, _ in volume_mounts(svc):
                if kind == "volume":
                    with self.subTest(service=name, volume=source):
                        self.assertIn(source, declared)
                    used.add(source)
        self.assertEqual(declared - used, set(), "declared but unused volumes")

    def test_bind_mounts_exist_in_repo(self):
        for name, svc in services().items():
            for kind, source, target in volume_mounts(svc):
                if kind != "bind" or source.startswith("/var/run/docker.sock"):
                    continue
                with self.subTest(service=name, source=source):
                    path = host_path(source)
                    self.assertTrue(path.exists(), f"{path} missing")
                    self.assertTrue(str(path).startswith(str(ROOT)), "mount outside the repo")
                    if Path(target).suffix:
                        self.assertTrue(path.is_file(), f"{path} should be a file for {target}")

    def test_every_service_has_a_healthcheck(self):
        for name, svc in services().items():
            with self.subTest(service=name):
                hc = svc.get("healthcheck")
                self.assertIsInstance(hc, dict)
                self.assertFalse(hc.get("disable", False))
                self.assertTrue(hc.get("test"))

    def test_published_ports(self):
        seen = {}
        for name, svc in services().items():
            for spec in svc.get("ports") or []:
                parts = str(spec).split(":")
                container = int(parts[-1].split("/")[0])
                host = parts[-2] if len(parts) >= 2 else None
                with self.subTest(service=name, port=spec):
                    self.assertIn(container, listen_ports(name),
                                  f"{name} does not listen on {container}")
                    if host is not None:
                        self.assertNotIn(host, seen, f"host port {host} also used by {seen.get(host)}")
                        seen[host] = name

    def test_sluice_services(self):
        sluices = {n: s for n, s in services().items() if is_sluice_service(s)}
        self.assertGreaterEqual(set(sluices), {"sluice", "sluice-a", "sluice-b"})
        wal_volumes = []
        ch = services()["clickhouse"]
        ch_env = env_of(ch)
        for name, svc in sluices.items():
            env = env_of(svc)
            with self.subTest(service=name):
                self.assertLessEqual(set(env), SLUICE_ENV_NAMES, "unknown SLUICE_* names")
                self.assertLessEqual(SLUICE_ENV_REQUIRED, set(env))
                self.assertIn("build", svc)
                # ClickHouse: a service, its HTTP port, the database and user it creates.
                url = urlsplit(env["SLUICE_CLICKHOUSE_URL"])
                self.assertEqual(url.scheme, "http")
                self.assertIn(url.hostname, services())
                self.assertIn(url.port, listen_ports(url.hostname))
                self.assertEqual(url.port, 8123, "the ClickHouse HTTP interface")
                self.assertEqual(depends_of(svc).get(url.hostname, {}).get("condition"), "service_healthy")
                self.assertEqual(env["SLUICE_CLICKHOUSE_DATABASE"], ch_env["CLICKHOUSE_DB"])
                self.assertEqual(env["SLUICE_CLICKHOUSE_USER"], ch_env["CLICKHOUSE_USER"])
                self.assertEqual(env["SLUICE_CLICKHOUSE_PASSWORD"], ch_env["CLICKHOUSE_PASSWORD"])
                # The write-ahead log sits on a named volume of its own.
                mounts = {t: (k, s) for k, s, t in volume_mounts(svc)}
                self.assertIn(env["SLUICE_DATA_DIR"], mounts)
                kind, source = mounts[env["SLUICE_DATA_DIR"]]
                self.assertEqual(kind, "volume")
                wal_volumes.append(source)
                # Health check on /ready at the listen port.
                hc_url = urlsplit(url_in(healthcheck_text(svc["healthcheck"])))
                self.assertEqual(hc_url.path, "/ready")
                self.assertEqual(hc_url.port, port_of_address(env["SLUICE_LISTEN"]))
                self.assertIn(hc_url.hostname, {"127.0.0.1", "localhost"})
        self.assertEqual(len(wal_volumes), len(set(wal_volumes)), "replicas must not share a WAL volume")

    def test_clickhouse_service(self):
        ch = services()["clickhouse"]
        env = env_of(ch)
        for key in ("CLICKHOUSE_DB", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"):
            self.assertTrue(env.get(key), key)
        self.assertIn(env.get("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"), {"0", "1"})
        self.assertIn("/var/lib/clickhouse", [t for k, _, t in volume_mounts(ch) if k == "volume"])
        # The health check waits for the database the entrypoint creates.
        self.assertIn(f"EXISTS+DATABASE+{env['CLICKHOUSE_DB']}", healthcheck_text(ch["healthcheck"]))

    def test_scale_profile(self):
        replicas = [n for n, s in services().items() if is_sluice_service(s) and "scale" in profiles_of(s)]
        self.assertGreaterEqual(len(replicas), 2)
        lb = services()["sluice-lb"]
        self.assertIn("scale", profiles_of(lb))
        conf = nginx_conf_of(lb)
        self.assertIsNotNone(conf, "sluice-lb mounts no nginx.conf")
        upstream = nginx_upstream_servers(conf)
        self.assertEqual(sorted(h for h, _ in upstream), sorted(replicas))
        for host, port in upstream:
            with self.subTest(upstream=host):
                self.assertIn(port, listen_ports(host))
                self.assertEqual(depends_of(lb).get(host, {}).get("condition"), "service_healthy")
        self.assertTrue(nginx_listen_ports(conf))
        hc = urlsplit(url_in(healthcheck_text(lb["healthcheck"])))
        self.assertIn(hc.port, nginx_listen_ports(conf))
        self.assertIn(hc.path, sluice_routes() | {"/ready"})


# ------------------------------------------------------------------------------------------
# Dockerfile and the build mirror


class DockerfileTests(unittest.TestCase):
    def setUp(self):
        self.instr = dockerfile_instructions()

    def args(self, word):
        return [rest for w, rest in self.instr if w == word]

    def runtime(self):
        """Instructions of the last stage."""
        last = max(i for i, (w, _) in enumerate(self.instr) if w == "FROM")
        return self.instr[last:]

    def test_base_images_pinned(self):
        stages = set()
        for rest in self.args("FROM"):
            parts = rest.split()
            image = parts[0]
            if " AS " in f" {rest.upper()} ":
                stages.add(parts[-1])
            with self.subTest(image=image):
                if image in stages:
                    continue
                self.assertIn(":", image)
                tag = image.rsplit(":", 1)[1]
                self.assertNotEqual(tag, "latest")
                self.assertRegex(tag, r"^\d+\.\d+(\.\d+)*")

    def test_runtime_matches_compose(self):
        rt = self.runtime()
        env = {}
        for w, rest in rt:
            if w == "ENV":
                for k, v in re.findall(r"([A-Z_]+)=(\S+)", rest):
                    env[k] = v
        svc = services()["sluice"]
        cenv = env_of(svc)
        expose = {int(p.split("/")[0]) for w, rest in rt if w == "EXPOSE" for p in rest.split()}
        self.assertEqual(expose, {port_of_address(env["SLUICE_LISTEN"])})
        self.assertEqual(port_of_address(env["SLUICE_LISTEN"]), port_of_address(cenv["SLUICE_LISTEN"]))
        volumes = [json.loads(rest) if rest.startswith("[") else rest.split()
                   for w, rest in rt if w == "VOLUME"]
        flat = {v for vs in volumes for v in (vs if isinstance(vs, list) else [vs])}
        self.assertEqual(flat, {env["SLUICE_DATA_DIR"]})
        self.assertEqual(env["SLUICE_DATA_DIR"], cenv["SLUICE_DATA_DIR"])
        # Same health check as compose.
        hcs = [rest for w, rest in rt if w == "HEALTHCHECK"]
        self.assertEqual(len(hcs), 1)
        self.assertEqual(url_in(hcs[0]), url_in(healthcheck_text(svc["healthcheck"])))
        self.assertIn("curl", hcs[0])
        # Non-root, entrypoint `sluice serve`.
        users = [rest for w, rest in rt if w == "USER"]
        self.assertTrue(users and users[-1].split(":")[0] not in {"root", "0"})
        entry = json.loads([rest for w, rest in rt if w == "ENTRYPOINT"][-1])
        cmd = json.loads([rest for w, rest in rt if w == "CMD"][-1])
        self.assertEqual(Path(entry[0]).name, "sluice")
        self.assertEqual(entry[1:] + cmd, ["serve"])
        # The runtime stage installs the tool its health check runs.
        runs = " ".join(rest for w, rest in rt if w == "RUN")
        self.assertIn("curl", runs)

    def test_builds_go_through_the_script(self):
        runs = self.args("RUN")
        for rest in runs:
            self.assertNotRegex(rest, r"\bcargo\b", "cargo is called only by the script")
        steps = [re.search(r"scripts/build-image-steps\.sh\s+(\S+)", r) for r in runs]
        self.assertEqual([m.group(1) for m in steps if m], ["skeleton", "deps", "release"])
        self.assertTrue(os.access(BUILD_SCRIPT, os.X_OK), "scripts/build-image-steps.sh not executable")
        out = subprocess.run(["bash", str(BUILD_SCRIPT), "print-command"], capture_output=True,
                             text=True, check=True).stdout.split()
        self.assertEqual(out[:2], ["cargo", "build"])
        for flag in ("--release", "--locked"):
            self.assertIn(flag, out)
        self.assertEqual(out[out.index("-p") + 1], "sluice")

    def test_dockerignore(self):
        patterns = [l.strip() for l in DOCKERIGNORE.read_text().splitlines()
                    if l.strip() and not l.startswith("#")]

        def ignored(path: str) -> bool:
            result = False
            for p in patterns:
                neg = p.startswith("!")
                pat = p[1:] if neg else p
                if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path.split("/")[0], pat):
                    result = not neg
            return result

        for must in ("target", ".git", ".local"):
            self.assertTrue(ignored(must), must)
        needed = ["Cargo.toml", "Cargo.lock", "scripts/build-image-steps.sh"]
        needed += [str(Path(m).parent.relative_to(ROOT)) + "/Cargo.toml" for m in workspace_manifests()]
        for path in needed:
            with self.subTest(path=path):
                self.assertFalse(ignored(path.lstrip("./")), f"{path} is needed by the build")

    def test_dependency_skeleton(self):
        meta = cargo_metadata()
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "skeleton"
            subprocess.run(["bash", str(BUILD_SCRIPT), "skeleton", str(dest)], cwd=ROOT,
                           check=True, capture_output=True, text=True)
            root = Path(meta["workspace_root"])
            for pkg in meta["packages"]:
                manifest = Path(pkg["manifest_path"]).relative_to(root)
                with self.subTest(manifest=str(manifest)):
                    self.assertEqual((dest / manifest).read_text(), (root / manifest).read_text())
                for target in pkg["targets"]:
                    rel = Path(target["src_path"]).relative_to(root)
                    with self.subTest(target=str(rel)):
                        stub = dest / rel
                        self.assertTrue(stub.is_file(), f"no stub for {rel}")
                        self.assertIn("fn main() {}", stub.read_text())
            self.assertEqual((dest / "Cargo.lock").read_bytes(), (ROOT / "Cargo.lock").read_bytes())
            # No real source leaks into the cached layer.
            stub_paths = {Path(t["src_path"]).relative_to(root) for p in meta["packages"] for t in p["targets"]}
            for rs in dest.rglob("*.rs"):
                self.assertIn(rs.relative_to(dest), stub_paths)
            # The image's dependency step builds this skeleton with --locked: it must resolve to
            # the same lockfile.
            cmd = ["cargo", "update", "--workspace", "--locked", "--quiet"]
            r = subprocess.run(cmd + ["--offline"], cwd=dest, capture_output=True, text=True)
            if r.returncode != 0 and "offline" in r.stderr:
                # A cold registry cache: ask the index (it writes nothing under --locked).
                r = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)


@lru_cache(maxsize=None)
def cargo_metadata() -> dict:
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def workspace_manifests() -> list[str]:
    return [p["manifest_path"] for p in cargo_metadata()["packages"]]


# ------------------------------------------------------------------------------------------
# Vector


class VectorConfigs(unittest.TestCase):
    def configs(self):
        out = {}
        for name, svc in vector_services().items():
            path = vector_config_path(svc)
            out[name] = (svc, path, load_toml(path))
        return out

    def test_main_config_is_repo_root_vector_toml(self):
        self.assertEqual(vector_config_path(services()["vector"]), ROOT / "vector.toml")

    def test_inputs_resolve_without_cycles(self):
        for name, (_, path, cfg) in self.configs().items():
            components = {**cfg.get("sources", {}), **cfg.get("transforms", {})}
            for kind in ("transforms", "sinks"):
                for cname, comp in cfg.get(kind, {}).items():
                    with self.subTest(config=path.name, component=cname):
                        self.assertTrue(comp.get("inputs"))
                        for i in comp["inputs"]:
                            self.assertIn(i, components)
            # Every source and transform feeds something.
            consumed = {i for k in ("transforms", "sinks") for c in cfg.get(k, {}).values() for i in c["inputs"]}
            self.assertEqual(set(components) - consumed, set(), f"{path.name}: unused components")
            # No cycles among transforms.
            transforms = cfg.get("transforms", {})

            def visit(c, trail):
                self.assertNotIn(c, trail, f"cycle through {c}")
                for i in transforms.get(c, {}).get("inputs", []):
                    visit(i, trail | {c})

            for t in transforms:
                visit(t, frozenset())

    def test_sinks_point_at_existing_endpoints(self):
        kinds = set()
        for name, (svc, path, cfg) in self.configs().items():
            for sname, sink in cfg.get("sinks", {}).items():
                with self.subTest(config=path.name, sink=sname):
                    if sink["type"] == "http":
                        url = urlsplit(sink["uri"])
                    elif sink["type"] == "loki":
                        base = urlsplit(sink["endpoint"])
                        url = urlsplit(sink["endpoint"].rstrip("/") + sink.get("path", LOKI_PUSH_PATH))
                        self.assertIn(base.path, ("", "/"))
                    else:
                        self.fail(f"unexpected sink type {sink['type']}")
                    host = url.hostname
                    self.assertIn(host, services())
                    target = services()[host]
                    self.assertTrue(active_with(svc, target), f"{host} is not up with {name}")
                    self.assertIn(url.port, listen_ports(host))
                    self.assertIn(host, depends_of(svc), f"{name} should wait for {host}")
                    if image_name(target) == "grafana/loki":
                        self.assertEqual(url.path, LOKI_PUSH_PATH)
                        kinds.add("loki")
                        continue
                    # A sluice, directly or through the balancer.
                    self.assertTrue(is_sluice_service(target) or host == "sluice-lb", host)
                    self.assertIn(url.path, sluice_routes(), f"sluice registers no route {url.path}")
                    kinds.add((sink["type"], url.path))
                    if sink["type"] == "http":
                        self.assertEqual(url.path, SLUICE_JSONLINE_PATH)
                        self.assertEqual(sink.get("method", "post"), "post")
                        self.assertEqual(sink["encoding"]["codec"], "json")
                        self.assertEqual(sink["framing"]["method"], "newline_delimited")
                    hc = sink.get("healthcheck", {}).get("uri")
                    if hc:
                        h = urlsplit(hc)
                        self.assertEqual((h.hostname, h.port), (url.hostname, url.port))
                        self.assertIn(h.path, sluice_routes())
        # The main stack exercises both of sluice's ingest protocols and feeds Loki.
        self.assertLessEqual({("http", SLUICE_JSONLINE_PATH), ("loki", SLUICE_PUSH_PATH), "loki"}, kinds)

    def test_labels_and_stream_fields_are_set_upstream(self):
        for name, (_, path, cfg) in self.configs().items():
            for sname, sink in cfg.get("sinks", {}).items():
                fields = set()
                for i in sink["inputs"]:
                    fields |= upstream_fields(cfg, i)
                with self.subTest(config=path.name, sink=sname):
                    if sink["type"] == "loki":
                        self.assertTrue(sink.get("labels"), "a Loki stream needs labels")
                        for key, value in sink["labels"].items():
                            self.assertRegex(key, r"^[A-Za-z_][A-Za-z0-9_]*$")
                            self.assertLessEqual(template_fields(value), fields, f"label {key}")
                    if sink["type"] == "http":
                        q = parse_qs(urlsplit(sink["uri"]).query)
                        for f in ",".join(q.get("_stream_fields", [])).split(","):
                            if f:
                                self.assertIn(f, fields, f"_stream_fields names {f}")

    def test_same_labels_on_every_path(self):
        """sluice and Loki get the same stream labels, so queries compare one to one."""
        _, _, cfg = self.configs()["vector"]
        label_sets = []
        for sink in cfg["sinks"].values():
            if sink["type"] == "loki":
                label_sets.append(set(sink["labels"]))
            else:
                q = parse_qs(urlsplit(sink["uri"]).query)
                label_sets.append(set(",".join(q["_stream_fields"]).split(",")))
        self.assertTrue(label_sets)
        self.assertTrue(all(s == label_sets[0] for s in label_sets), label_sets)
        self.assertIn("service_name", label_sets[0])

    def test_no_environment_interpolation(self):
        # Vector 0.57 leaves ${...} uninterpolated unless a dangerous flag is set.
        for name, (_, path, _) in self.configs().items():
            with self.subTest(config=path.name):
                self.assertNotIn("$", path.read_text())

    def test_templates_pass_vector_confinement(self):
        """Vector 0.57 refuses to start a sink whose routing template references an event field
        without a literal prefix (`"{{ host }}"`) unless the sink sets
        `dangerously_allow_unconfined_template_resolution = true` (vectordotdev/vector v0.57.0:
        `ConfinementChecker::for_template` in src/template.rs; the loki sink confines every label
        key and value, `structured_metadata` and `tenant_id`, the http sink its `uri` and
        headers)."""
        for name, (_, path, cfg) in self.configs().items():
            for sname, sink in cfg.get("sinks", {}).items():
                templates = []
                for key in ("labels", "structured_metadata"):
                    for k, v in sink.get(key, {}).items():
                        templates += [k, v]
                templates += [sink[k] for k in ("tenant_id", "uri") if k in sink]
                templates += list(sink.get("request", {}).get("headers", {}).values())
                opted_out = sink.get("dangerously_allow_unconfined_template_resolution", False)
                for t in templates:
                    if "{{" not in t:
                        continue
                    with self.subTest(config=path.name, sink=sname, template=t):
                        prefix = t.split("{{", 1)[0]
                        self.assertTrue(opted_out or prefix not in ("", "/"),
                                        "unconfined template: Vector 0.57 will not start this sink")

    def test_docker_logs_source(self):
        for name, (svc, path, cfg) in self.configs().items():
            for sname, src in cfg.get("sources", {}).items():
                if src["type"] != "docker_logs":
                    continue
                with self.subTest(config=path.name, source=sname):
                    self.assertIn("/var/run/docker.sock",
                                  [t for k, _, t in volume_mounts(svc) if k == "bind"])
                    self.assertIn(f"com.docker.compose.project={compose()['name']}",
                                  src.get("include_labels", []))

    def test_api_matches_healthcheck(self):
        for name, (svc, path, cfg) in self.configs().items():
            with self.subTest(config=path.name):
                api = cfg.get("api", {})
                self.assertTrue(api.get("enabled"))
                port = port_of_address(api.get("address", "127.0.0.1:8686"))
                text = healthcheck_text(svc["healthcheck"])
                self.assertIn(f"/dev/tcp/127.0.0.1/{port}", text)
                self.assertIn("GET /health ", text)


# ------------------------------------------------------------------------------------------
# Loki


class LokiConfig(unittest.TestCase):
    def test_single_binary_filesystem(self):
        cfg = loki_config()
        self.assertIs(cfg["auth_enabled"], False)
        common = cfg["common"]
        self.assertEqual(common["replication_factor"], 1)
        self.assertEqual(common["ring"]["kvstore"]["store"], "inmemory")
        self.assertIn("filesystem", common["storage"])

    def test_schema_is_tsdb_v13(self):
        configs = loki_config()["schema_config"]["configs"]
        latest = max(configs, key=lambda c: str(c["from"]))
        self.assertEqual((latest["store"], latest["schema"], latest["object_store"]),
                         ("tsdb", "v13", "filesystem"))
        self.assertEqual(latest["index"]["period"], "24h")

    def test_limits(self):
        cfg = loki_config()
        limits = cfg["limits_config"]
        for key in ("ingestion_rate_mb", "ingestion_burst_size_mb", "max_query_length",
                    "max_query_series", "max_entries_limit_per_query", "max_line_size",
                    "reject_old_samples", "retention_period"):
            self.assertIn(key, limits)
        self.assertGreaterEqual(limits["ingestion_burst_size_mb"], limits["ingestion_rate_mb"])
        if cfg.get("compactor", {}).get("retention_enabled"):
            self.assertTrue(cfg["compactor"].get("delete_request_store"),
                            "retention needs compactor.delete_request_store")

    def test_storage_on_the_volume_and_config_mounted(self):
        cfg = loki_config()
        svc = services()["loki"]
        volume_targets = [t for k, _, t in volume_mounts(svc) if k == "volume"]
        prefix = cfg["common"]["path_prefix"]
        self.assertIn(prefix, volume_targets)
        fs = cfg["common"]["storage"]["filesystem"]
        for d in (fs["chunks_directory"], fs["rules_directory"], cfg.get("compactor", {}).get("working_directory", prefix)):
            self.assertTrue(d.startswith(prefix + "/") or d == prefix, d)
        flag = [a for a in svc["command"] if a.startswith("-config.file=")]
        self.assertEqual(len(flag), 1)
        self.assertEqual(bind_source_for(svc, flag[0].split("=", 1)[1]), LOKI_CONFIG)
        self.assertEqual(int(cfg["server"]["http_listen_port"]), 3100, "`loki -health` asks :3100")
        self.assertIn("-health", svc["healthcheck"]["test"])


# ------------------------------------------------------------------------------------------
# Prometheus


class PrometheusConfig(unittest.TestCase):
    def config_path(self):
        svc = services()["prometheus"]
        flag = [a for a in svc["command"] if a.startswith("--config.file=")][0]
        path = bind_source_for(svc, flag.split("=", 1)[1])
        self.assertIsNotNone(path)
        self.assertEqual(path, DEPLOY / "prometheus" / "prometheus.yml")
        return path

    def test_targets_resolve_to_services(self):
        cfg = yaml.safe_load(self.config_path().read_text())
        sluice_jobs = 0
        for job in cfg["scrape_configs"]:
            for sc in job.get("static_configs", []):
                for target in sc["targets"]:
                    host, port = target.rsplit(":", 1)
                    with self.subTest(job=job["job_name"], target=target):
                        if host == "localhost":
                            self.assertIn(int(port), listen_ports("prometheus"))
                            continue
                        self.assertIn(host, services())
                        self.assertIn(int(port), listen_ports(host))
                        if is_sluice_service(services()[host]):
                            sluice_jobs += 1
                            self.assertIn(job.get("metrics_path", "/metrics"), sluice_routes())
                        # Replicas are scraped directly; through a balancer the samples of
                        # different replicas would mix in one series.
                        self.assertNotEqual(host, "sluice-lb")
        self.assertGreater(sluice_jobs, 0)

    def test_promtool_accepts_config(self):
        r = subprocess.run(["promtool", "check", "config", "--syntax-only", str(self.config_path())],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


# ------------------------------------------------------------------------------------------
# Grafana


def grafana_env() -> dict[str, str]:
    return env_of(services()["grafana"])


def grafana_interpolate(value, missing):
    if isinstance(value, str):
        def repl(m):
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(2)
            if name not in grafana_env():
                missing.append(name)
            return grafana_env().get(name, "")
        return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, value)
    if isinstance(value, list):
        return [grafana_interpolate(v, missing) for v in value]
    if isinstance(value, dict):
        return {k: grafana_interpolate(v, missing) for k, v in value.items()}
    return value


def provisioning_dir() -> Path:
    src = bind_source_for(services()["grafana"], "/etc/grafana/provisioning")
    assert src is not None, "grafana does not mount its provisioning directory"
    return src


@lru_cache(maxsize=None)
def datasources() -> tuple[dict, ...]:
    out = []
    missing: list[str] = []
    for path in sorted((provisioning_dir() / "datasources").glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text())
        assert doc["apiVersion"] == 1
        out.extend(grafana_interpolate(doc["datasources"], missing))
    assert not missing, f"provisioning uses variables grafana's environment lacks: {missing}"
    return tuple(out)


def datasource_by_uid() -> dict[str, dict]:
    return {d["uid"]: d for d in datasources()}


def dashboard_provider_paths() -> list[str]:
    out = []
    for path in sorted((provisioning_dir() / "dashboards").glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text())
        for p in doc["providers"]:
            if p.get("type", "file") == "file":
                out.append(p["options"]["path"])
    return out


def dashboards() -> list[tuple[Path, dict]]:
    out = []
    for container_path in dashboard_provider_paths():
        src = bind_source_for(services()["grafana"], container_path)
        assert src is not None, f"{container_path} is not mounted into grafana"
        for f in sorted(src.glob("*.json")):
            out.append((f, json.loads(f.read_text())))
    return out


def panels_of(dash: dict) -> list[dict]:
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows
    return out


class GrafanaProvisioning(unittest.TestCase):
    def test_datasources(self):
        by_name = {d["name"]: d for d in datasources()}
        self.assertLessEqual({"sluice", "Loki", "ClickHouse", "Prometheus"}, set(by_name))
        uids = [d["uid"] for d in datasources()]
        self.assertEqual(len(uids), len(set(uids)))
        defaults = [d["name"] for d in datasources() if d.get("isDefault")]
        self.assertEqual(defaults, ["sluice"])
        self.assertEqual(by_name["sluice"]["type"], "loki")
        self.assertEqual(by_name["Loki"]["type"], "loki")
        self.assertEqual(by_name["Prometheus"]["type"], "prometheus")
        self.assertEqual(by_name["sluice"]["url"], "http://sluice:3100")
        grafana = services()["grafana"]
        for d in datasources():
            if "url" not in d:
                continue
            url = urlsplit(d["url"])
            with self.subTest(datasource=d["name"]):
                self.assertIn(url.hostname, services())
                self.assertIn(url.port, listen_ports(url.hostname))
                self.assertTrue(active_with(grafana, services()[url.hostname]))
                if d["type"] == "loki" and is_sluice_service(services()[url.hostname]):
                    # What Grafana's Loki data source calls first.
                    self.assertIn("/ready", sluice_routes())

    def test_clickhouse_datasource(self):
        d = {x["name"]: x for x in datasources()}["ClickHouse"]
        self.assertEqual(d["type"], "grafana-clickhouse-datasource")
        j = d["jsonData"]
        ch = services()["clickhouse"]
        ch_env = env_of(ch)
        self.assertIn(j["host"], services())
        self.assertEqual(image_name(services()[j["host"]]), "clickhouse")
        self.assertIn(j["port"], listen_ports(j["host"]))
        self.assertEqual((j["protocol"], j["port"]), ("http", 8123))
        self.assertEqual(j["username"], ch_env["CLICKHOUSE_USER"])
        self.assertEqual(d["secureJsonData"]["password"], ch_env["CLICKHOUSE_PASSWORD"])
        self.assertEqual(j["defaultDatabase"], ch_env["CLICKHOUSE_DB"])
        logs = j["logs"]
        self.assertIs(logs["otelEnabled"], True)
        self.assertEqual((logs["defaultDatabase"], logs["defaultTable"]), (ch_env["CLICKHOUSE_DB"], "logs"))
        self.assertEqual(env_of(services()["sluice"])["SLUICE_CLICKHOUSE_DATABASE"], logs["defaultDatabase"])

    def test_clickhouse_plugin_pinned(self):
        env = grafana_env()
        spec = env.get("GF_PLUGINS_PREINSTALL_SYNC") or env.get("GF_PLUGINS_PREINSTALL") or ""
        legacy = env.get("GF_INSTALL_PLUGINS", "")
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        pinned = [e for e in entries if re.fullmatch(r"grafana-clickhouse-datasource@\d+\.\d+\.\d+", e)]
        pinned += [e for e in legacy.split(",") if re.fullmatch(r"\s*grafana-clickhouse-datasource \d+\.\d+\.\d+\s*", e)]
        self.assertEqual(len(pinned), 1, f"plugin not pinned: {spec!r} {legacy!r}")
        if "GF_PLUGINS_PREINSTALL_AUTO_UPDATE" in env:
            self.assertEqual(env["GF_PLUGINS_PREINSTALL_AUTO_UPDATE"], "false")

    def test_logs_drilldown_enabled(self):
        apps = []
        for path in sorted((provisioning_dir() / "plugins").glob("*.y*ml")):
            doc = yaml.safe_load(path.read_text())
            self.assertEqual(doc["apiVersion"], 1)
            apps.extend(doc.get("apps") or [])
        drilldown = [a for a in apps if a["type"] == "grafana-lokiexplore-app"]
        self.assertEqual(len(drilldown), 1, apps)
        self.assertIs(drilldown[0].get("disabled", False), False)
        # Grafana installs the app from its default preinstall list: nothing may turn that off.
        env = grafana_env()
        self.assertNotEqual(env.get("GF_PLUGINS_PREINSTALL_DISABLED", "false").lower(), "true")
        if "GF_PLUGINS_PREINSTALL" in env:
            self.assertIn("grafana-lokiexplore-app", env["GF_PLUGINS_PREINSTALL"])
        # Drilldown reads the default Loki data source, which must be sluice and serve what the
        # app asks for.
        default = [d for d in datasources() if d.get("isDefault")]
        self.assertEqual([(d["name"], d["type"]) for d in default], [("sluice", "loki")])
        for path in ("index/volume", "detected_labels", "detected_fields",
                     "detected_field/{name}/values", "patterns", "drilldown-limits", "tail"):
            self.assertIn("/loki/api/v1/" + path, sluice_routes())

    def test_dashboard_provider_and_home(self):
        paths = dashboard_provider_paths()
        self.assertTrue(paths)
        files = dashboards()
        self.assertTrue(files, "no dashboard JSON under the provider paths")
        home = grafana_env().get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
        if home:
            src = bind_source_for(services()["grafana"], str(Path(home).parent))
            self.assertIsNotNone(src)
            self.assertTrue((src / Path(home).name).is_file())

    def test_dashboard_panels_use_provisioned_datasources(self):
        uids = datasource_by_uid()
        for path, dash in dashboards():
            self.assertTrue(dash.get("uid"))
            ids = [p["id"] for p in panels_of(dash)]
            self.assertEqual(len(ids), len(set(ids)), f"{path.name}: duplicate panel ids")
            for panel in panels_of(dash):
                if panel.get("type") == "row":
                    continue
                with self.subTest(dashboard=path.name, panel=panel.get("title")):
                    self.assertIn("gridPos", panel)
                    ds = panel["datasource"]
                    mixed = ds.get("uid") == "-- Mixed --"
                    if not mixed:
                        self.assertIn(ds["uid"], uids)
                        self.assertEqual(ds["type"], uids[ds["uid"]]["type"])
                    self.assertTrue(panel.get("targets"))
                    for t in panel["targets"]:
                        tds = t.get("datasource", ds)
                        self.assertIn(tds["uid"], uids)
                        self.assertEqual(tds["type"], uids[tds["uid"]]["type"])
                        if tds["type"] == "grafana-clickhouse-datasource":
                            sql = t["rawSql"]
                            db = env_of(services()["clickhouse"])["CLICKHOUSE_DB"]
                            self.assertRegex(sql, rf"\bFROM\s+{db}\.logs\b")
                        else:
                            self.assertTrue(t.get("expr"))

    def test_dashboard_has_required_panels(self):
        exprs, logs_on = [], set()
        for _, dash in dashboards():
            for panel in panels_of(dash):
                for t in panel.get("targets", []):
                    uid = t.get("datasource", panel.get("datasource", {})).get("uid")
                    if "expr" in t:
                        exprs.append((uid, t["expr"]))
                    if panel.get("type") == "logs":
                        logs_on.add(uid)
        prom = [e for uid, e in exprs if datasource_by_uid()[uid]["type"] == "prometheus"]
        joined = "\n".join(prom)
        self.assertIn("rate(sluice_ingest_entries_total[1m])", joined)
        self.assertRegex(joined, r"by \(reason\)[^\n]*sluice_ingest_errors_total")
        self.assertRegex(joined, r"sluice_cache_hits_total.*sluice_cache_misses_total")
        self.assertRegex(joined, r"histogram_quantile\([^\n]*sluice_flush_duration_seconds_bucket")
        self.assertIn("sluice", logs_on, "a logs panel on the sluice data source")
        for uid, e in exprs:
            if datasource_by_uid()[uid]["type"] == "loki":
                self.assertRegex(e, r"\{[a-z_]+=~?\"")

    def test_promql_parses(self):
        """Each Prometheus expression of the dashboards, checked by promtool as a recording rule."""
        rules = []
        for _, dash in dashboards():
            for panel in panels_of(dash):
                for t in panel.get("targets", []):
                    ds = t.get("datasource", panel.get("datasource", {}))
                    if datasource_by_uid()[ds["uid"]]["type"] == "prometheus":
                        rules.append({"record": f"dashboard:panel{panel['id']}:{t['refId']}", "expr": t["expr"]})
        self.assertTrue(rules)
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
            f.flush()
            r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_dashboard_metrics_exist_in_sluice(self):
        used = set()
        for _, dash in dashboards():
            for panel in panels_of(dash):
                for t in panel.get("targets", []):
                    used |= set(re.findall(r"\bsluice_[a-z0-9_]+", t.get("expr", "")))
        used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in used}
        self.assertTrue(used)
        known = sluice_metric_names()
        self.assertEqual(used - known - PENDING_METRICS, set(), "metrics sluice does not export")
        for m in PENDING_METRICS & known:
            # Landed: the allowance is no longer needed (keep the dashboard as is).
            self.assertIn(m, used)


# ------------------------------------------------------------------------------------------
# The sluice binary against the compose environment


SLUICE_BIN = ROOT / "target" / "debug" / "sluice"


def base_env() -> dict[str, str]:
    """This process's environment without any SLUICE_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}


def run_sluice(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as cwd:  # no stray config file in the working directory
        return subprocess.run([str(SLUICE_BIN), *args], env={**base_env(), **env}, cwd=cwd,
                              capture_output=True, text=True, timeout=60)


class SluiceBinary(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A no-op when the binary is fresh; builds it when it is missing or stale.
        r = subprocess.run(["cargo", "build", "-j2", "-p", "sluice"], cwd=ROOT,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"cargo build -p sluice failed:\n{r.stderr[-4000:]}")
        assert SLUICE_BIN.is_file()

    def test_compose_environment_is_accepted(self):
        for name, svc in services().items():
            if not is_sluice_service(svc):
                continue
            env = env_of(svc)
            with self.subTest(service=name):
                r = run_sluice(["check", "--config-only"], env)
                out = r.stdout + r.stderr
                self.assertEqual(r.returncode, 0, out)
                for key in ("SLUICE_LISTEN", "SLUICE_DATA_DIR", "SLUICE_CLICKHOUSE_URL"):
                    self.assertIn(env[key], out, f"effective config should show {key}")
                for line in out.splitlines():
                    if "password" in line.lower():
                        self.assertNotIn(env["SLUICE_CLICKHOUSE_PASSWORD"], line,
                                         "the effective config prints the password")

    def test_broken_values_are_refused(self):
        good = env_of(services()["sluice"])
        cases = [
            ("SLUICE_LISTEN", "not-an-address", "listen"),
            ("SLUICE_CLICKHOUSE_URL", "clickhouse:8123", "url"),
            ("SLUICE_CLICKHOUSE_COMPRESSION", "brotli", "compression"),
            ("SLUICE_CLICKHOUSE_DATABASE", "sluice; DROP TABLE logs", "database"),
        ]
        for key, value, word in cases:
            with self.subTest(key=key, value=value):
                r = run_sluice(["check", "--config-only"], {**good, key: value})
                self.assertNotEqual(r.returncode, 0)
                msg = (r.stdout + r.stderr).lower()
                self.assertIn(word, msg, "the message should name the setting")

    def logs_columns(self, env):
        r = run_sluice(["schema"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        stmts = [s for s in r.stdout.split(";") if re.search(r"CREATE TABLE[^(]*\blogs(_local)?\b`?\s", s)]
        self.assertTrue(stmts, r.stdout)
        body = stmts[0].split("(", 1)[1]
        return set(re.findall(r"^\s+([A-Za-z_][A-Za-z0-9_]*)\s", body, re.M)) - {"INDEX"}, r.stdout

    def test_logs_table_fits_grafana_otel_mode(self):
        env = env_of(services()["sluice"])
        columns, _ = self.logs_columns(env)
        self.assertLessEqual(GRAFANA_OTEL_LOG_COLUMNS, columns)
        logs = {x["name"]: x for x in datasources()}["ClickHouse"]["jsonData"]["logs"]
        for key in ("timeColumn", "filterTimeColumn", "levelColumn", "messageColumn"):
            if key in logs:
                self.assertIn(logs[key], columns, key)
        for c in logs.get("contextColumns", []):
            self.assertIn(c, columns)
        for _, dash in dashboards():
            for panel in panels_of(dash):
                for t in panel.get("targets", []):
                    if "rawSql" in t:
                        for col in re.findall(r"\b([A-Z][A-Za-z]+)\b", t["rawSql"]):
                            if col not in {"SELECT", "AS", "FROM", "WHERE", "ORDER", "BY", "DESC", "LIMIT", "ASC"}:
                                self.assertIn(col, columns, f"dashboard SQL uses {col}")

    def test_dashboard_logql_runs_in_sluice(self):
        """Every LogQL expression the dashboards send to a Loki-type data source, and Grafana's
        health-check query, parse and are supported by sluice (`sluice logql` exits 0)."""
        exprs = {"vector(1)+vector(1)"}
        for _, dash in dashboards():
            for panel in panels_of(dash):
                for t in panel.get("targets", []):
                    ds = t.get("datasource", panel.get("datasource", {}))
                    if datasource_by_uid()[ds["uid"]]["type"] == "loki":
                        exprs.add(t["expr"])
        self.assertGreater(len(exprs), 1)
        for expr in sorted(exprs):
            with self.subTest(expr=expr):
                r = run_sluice(["logql", expr, "--sql"], {})
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.strip())

    def test_cluster_ddl_is_what_scaling_md_describes(self):
        env = {**env_of(services()["sluice"]), "SLUICE_CLICKHOUSE_CLUSTER": "logs_cluster"}
        r = run_sluice(["schema"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        ddl = r.stdout
        doc = DOCS_SCALING.read_text()
        self.assertIn("ON CLUSTER `logs_cluster`", ddl)
        engines = [e.rstrip(";") for e in re.findall(r"^ENGINE = .+$", ddl, re.M)]
        self.assertEqual(len(engines), 4, ddl)
        for engine in engines:
            with self.subTest(engine=engine):
                self.assertTrue(engine in doc, f"docs/scaling.md should quote {engine!r}")
        for needle in ("logs_local", "streams_local", "{shard}", "{replica}", "StreamId)"):
            self.assertIn(needle, ddl)
            self.assertTrue(needle in doc, needle)
        self.assertTrue("SLUICE_CLICKHOUSE_CLUSTER" in doc)


# ------------------------------------------------------------------------------------------
# Docs


class Docs(unittest.TestCase):
    def test_docker_md_covers_the_stack(self):
        text = DOCS_DOCKER.read_text()
        self.assertIn("docker compose -f deploy/docker-compose.yml up", text)
        self.assertIn("--profile scale", text)
        for name, svc in services().items():
            with self.subTest(service=name):
                self.assertIn(name, text)
                for spec in svc.get("ports") or []:
                    host = str(spec).split(":")[-2]
                    self.assertRegex(text, rf"localhost:{host}\b")


if __name__ == "__main__":
    unittest.main()
