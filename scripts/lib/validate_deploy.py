#!/usr/bin/env python3
"""Validates deploy/ and schemas/asyncapi.yaml against the code, offline (scripts/validate-deploy).

    python3 scripts/lib/validate_deploy.py ROOT

What it knows about the code it reads from Package.swift and Sources/ at each run: the worker
executables and their default HTTP ports (Sources/<Worker>/main.swift), each worker's name,
inputs, outputs, reference tables and whether it is stateful (Sources/ClearwayWorkers), the
topics and their partitions (every `TopicDeclaration("…")`), the CLEARWAY_* variables the code
reads, the metrics it exports (swift-metrics `Counter`/`Timer`/`Recorder`/`Gauge`/… labels, named as
swift-prometheus renders them) and the CloudEvents and DLQ header names. Prints every problem
found and exits 1 if there is any; 2 on a set-up error (a tool missing).

Tools, from scripts/validate-deploy's environment: CLEARWAY_VALIDATE_HADOLINT (the hadolint
binary), CLEARWAY_VALIDATE_COMPOSE_SCHEMA (the Compose specification's JSON Schema), and the
Python packages pyyaml, jsonschema and kubernetes-validate on the path.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

try:
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as error:
    sys.exit(f"validate-deploy: {error}; run scripts/validate-deploy, which installs the tools")

# Kubernetes versions the manifests are checked against: the oldest they are meant for (the
# PodDisruptionBudget's unhealthyPodEvictionPolicy is GA from 1.31) and the newest the schemas know.
KUBERNETES_VERSIONS = ["1.31.0", kubernetes_validate.latest_version()]

# KEDA's documented ScaledObject fields (keda.sh/docs, "Scaling Deployments, StatefulSets & Custom
# Resources", ScaledObject specification) and the kafka scaler's trigger metadata ("Apache
# Kafka" scaler), which no JSON Schema here knows: a field not in these lists is a typo or a field
# of another KEDA version.
KEDA_SCALED_OBJECT_SPEC = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod", "idleReplicaCount",
    "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
}
KEDA_SCALE_TARGET_REF = {"apiVersion", "kind", "name", "envSourceContainerName"}
KEDA_FALLBACK = {"failureThreshold", "replicas", "behavior"}
KEDA_ADVANCED = {"restoreToOriginalReplicaCount", "horizontalPodAutoscalerConfig", "scalingModifiers"}
KEDA_HPA_CONFIG = {"name", "behavior"}
KEDA_TRIGGER = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
KEDA_AUTHENTICATION_REF = {"name", "kind"}
KEDA_KAFKA_METADATA = {
    "bootstrapServers", "bootstrapServersFromEnv", "consumerGroup", "consumerGroupFromEnv", "topic",
    "topicFromEnv", "partitionLimitation", "lagThreshold", "activationLagThreshold", "offsetResetPolicy",
    "allowIdleConsumers", "excludePersistentLag", "scaleToZeroOnInvalidOffset", "limitToPartitionsWithLag",
    "ensureEvenDistributionOfPartitions", "version", "sasl", "saslFromEnv", "tls", "tlsFromEnv", "unsafeSsl",
}
KEDA_KAFKA_REQUIRED = {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"}
KEDA_TRIGGER_AUTHENTICATION_SPEC = {
    "podIdentity", "secretTargetRef", "env", "hashiCorpVault", "azureKeyVault", "gcpSecretManager",
    "awsSecretManager", "configMapTargetRef", "boundServiceAccountToken",
}
KEDA_SECRET_TARGET_REF = {"parameter", "name", "key"}
# The kafka scaler's authentication parameters (TriggerAuthentication secretTargetRef.parameter).
KEDA_KAFKA_AUTH_PARAMETERS = {
    "sasl", "username", "password", "tls", "ca", "cert", "key", "keyPassword", "oauthTokenEndpointUri",
    "scopes", "oauthExtensions", "realm", "kerberosConfig", "serviceName", "keytab", "awsRegion",
}

# Series Prometheus makes itself for every scrape target: not exported by a worker, always there.
PROMETHEUS_SYNTHETIC = {"up"}
# Labels Prometheus adds to what it scrapes (deploy/prometheus/prometheus.yml adds `deployment`).
SCRAPE_LABELS = {"job", "instance", "deployment"}

PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_quantile", "histogram_count", "histogram_sum", "histogram_fraction", "holt_winters",
    "double_exponential_smoothing", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time",
    "ln", "log10", "log2", "max_over_time", "min_over_time", "minute", "month", "predict_linear",
    "present_over_time", "quantile_over_time", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc",
    "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "time", "timestamp", "vector", "year",
    "label_values", "query_result", "metrics", "label_names",
}
PROMQL_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
    "limitk", "limit_ratio",
}
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan",
}


class Problems:
    def __init__(self):
        self.items = []
        self.section = ""

    def add(self, message):
        self.items.append(f"{self.section}: {message}")


problems = Problems()


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_yaml(path):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as error:
        problems.add(f"{path}: cannot be read as YAML: {error}")
        return None


def load_mapping(root, relative):
    """The YAML document at `relative` (under root) when it is a mapping; else a problem and None."""
    document = load_yaml(os.path.join(root, relative))
    if not isinstance(document, dict):
        problems.add(f"{relative} is missing or empty")
        return None
    return document


def rel(root, path):
    return os.path.relpath(path, root)


def balanced(text, open_index):
    """The text from an opening parenthesis to its closing one (string literals not special-cased:
    the Swift here has no unbalanced parenthesis in a string inside these calls)."""
    depth = 0
    for index in range(open_index, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return text[open_index:index + 1]
    return text[open_index:]


def balanced_calls(text, function):
    """Every `function(…)` call's text in Swift source, comments left out."""
    code = re.sub(r"//[^\n]*", "", text)
    return [balanced(code, match.end() - 1) for match in re.finditer(r"\b" + function + r"\(", code)]


# ------------------------------------------------------------------------------------------------
# What the code says
# ------------------------------------------------------------------------------------------------


class Code:
    """Facts read from Package.swift and Sources/ (never from the deploy files)."""

    def __init__(self, root):
        self.root = root
        self.swift = {}
        for path in sorted(glob.glob(os.path.join(root, "Sources", "**", "*.swift"), recursive=True)):
            self.swift[rel(root, path)] = read(path)
        self.package = read(os.path.join(root, "Package.swift"))
        self._worker_names()
        self._topics()
        self._workers()
        self._environment()
        self._metrics()
        self._headers()

    def files(self, folder):
        return {p: t for p, t in self.swift.items() if p.startswith(folder)}

    def _worker_names(self):
        text = self.swift.get("Sources/ClearwayContract/WorkerName.swift", "")
        self.worker_name_cases = {}
        for case, raw in re.findall(r'\bcase\s+(\w+)(?:\s*=\s*"([^"]+)")?', text):
            self.worker_name_cases[case] = raw or case

    def _resolve(self, name):
        def case(match):
            return self.worker_name_cases.get(match.group(1), match.group(0))

        return re.sub(r"\\\(WorkerName\.(\w+)\.rawValue\)", case, name)

    def _topics(self):
        worker_swift = self.swift.get("Sources/ClearwayRuntime/Worker.swift", "")
        default = re.search(r"partitions:\s*Int32\s*=\s*(\d+)", worker_swift)
        self.default_partitions = int(default.group(1)) if default else 6
        # Every TopicDeclaration("…") in the code, by its Swift name where it has one.
        self.topics = {}  # topic name -> {"partitions": int, "compacted": bool, "retention_ms": int|None}
        self.topic_symbols = {}  # "Topics.orders" / "StandardTopics.dlq" -> topic name
        declarations = []
        for path, text in self.swift.items():
            for match in re.finditer(r'TopicDeclaration\(\s*"((?:[^"\\]|\\.)*)"', text):
                start = match.start()
                call = balanced(text, text.index("(", start))
                before = text[max(0, start - 200):start]
                symbol = re.search(r"static\s+let\s+(\w+)\s*(?::[^=]*)?=\s*$", before)
                declarations.append((path, self._resolve(match.group(1)), call, symbol.group(1) if symbol else None))
        partitions_of_symbol = {}
        for path, name, call, symbol in declarations:
            if "\\(" in name:
                continue  # a template (Worker.swift's "\(name).changelog"), not a topic
            owner = "StandardTopics" if "enum StandardTopics" in self.swift[path] else "Topics"
            literal = re.search(r"partitions:\s*(\d+)", call)
            reference = re.search(r"partitions:\s*(\w+)\.partitions", call)
            retention = re.search(r"retention:\s*\.seconds\(([\d\s*]+)\)", call)
            self.topics[name] = {
                "partitions": int(literal.group(1)) if literal else None,
                "partitions_of": reference.group(1) if reference else None,
                "compacted": bool(re.search(r"compacted:\s*true", call)),
                "retention_ms": eval(retention.group(1)) * 1000 if retention else None,  # noqa: S307 digits and *
                "file": path,
            }
            if symbol:
                self.topic_symbols[f"{owner}.{symbol}"] = name
                partitions_of_symbol[symbol] = name
        for name, topic in self.topics.items():
            if topic["partitions"] is None:
                source = topic["partitions_of"]
                if source:
                    target = partitions_of_symbol.get(source)
                    source_topic = self.topics.get(target, {})
                    topic["partitions"] = source_topic.get("partitions") or self.default_partitions
                else:
                    topic["partitions"] = self.default_partitions
        # Aliases such as `public static let dlq = StandardTopics.dlq` in Topics.
        for text in self.swift.values():
            for alias, owner, symbol in re.findall(r"static\s+let\s+(\w+)\s*=\s*(StandardTopics|Topics)\.(\w+)\b", text):
                target = self.topic_symbols.get(f"{owner}.{symbol}")
                if target:
                    self.topic_symbols[f"Topics.{alias}"] = target

    def _workers(self):
        # Executable products and their targets.
        self.executables = dict(re.findall(r'\.executable\(\s*name:\s*"([^"]+)",\s*targets:\s*\[\s*"([^"]+)"\s*\]', self.package))
        self.cli_executable = next((p for p, t in self.executables.items() if t == "ClearwayCLI"), None)
        handler_names = {}
        for path, text in self.files("Sources/ClearwayWorkers/").items():
            for handler in re.findall(r"struct\s+(\w+Handler)\b", text):
                folder = os.path.dirname(path)
                handler_names.setdefault(handler, folder)
        self.workers = {}  # worker name -> facts
        for product, target in sorted(self.executables.items()):
            main = self.swift.get(f"Sources/{target}/main.swift")
            if not main or "WorkerMain.run(" not in main:
                continue
            call = re.search(r"WorkerMain\.run\(\s*name:\s*(\w+)\.name,\s*defaultHTTPPort:\s*(\d+)", main)
            if not call:
                problems.add(f"Sources/{target}/main.swift: cannot read the worker's name and defaultHTTPPort")
                continue
            handler, port = call.group(1), int(call.group(2))
            folder = handler_names.get(handler)
            folder_text = "\n".join(t for p, t in self.swift.items() if folder and p.startswith(folder + "/"))
            name_match = re.search(r"static\s+let\s+name\s*=\s*WorkerName\.(\w+)\.rawValue", folder_text)
            name = self.worker_name_cases.get(name_match.group(1)) if name_match else None
            definition = next((call for call in balanced_calls(folder_text, "WorkerDefinition")
                               if re.search(r"\bname:", call) and re.search(r"\binputs:", call)), None)
            if not name or not definition:
                problems.add(f"{folder}: cannot read {handler}'s worker name or WorkerDefinition")
                continue

            def topic_list(field, text):
                match = re.search(field + r":\s*\[(.*?)\]", text, re.S)
                if not match:
                    return []
                names = []
                for symbol in re.findall(r"\b((?:Standard)?Topics\.\w+)", match.group(1)):
                    topic = self.topic_symbols.get(symbol)
                    if topic is None:
                        problems.add(f"{folder}: {symbol} is not a declared topic")
                    else:
                        names.append(topic)
                return names

            whole = definition
            self.workers[name] = {
                "executable": product,
                "port": port,
                "handler": handler,
                "folder": folder,
                "inputs": topic_list("inputs", whole),
                "outputs": topic_list("outputs", whole),
                "tables": topic_list("tables", whole),
                "stateful": bool(re.search(r"isStateful:\s*true", whole)),
            }
            if product != name:
                problems.add(f"Package.swift: the executable {product} runs the worker {name}: the deploy files assume they are named alike")
        for name, worker in self.workers.items():
            worker["changelog"] = f"{name}.changelog" if worker["stateful"] else None
            if worker["changelog"] and worker["changelog"] not in self.topics:
                problems.add(f"code: the stateful {name} has no declared {worker['changelog']} (Topics.changelogs)")

    def _environment(self):
        self.env_exact = set()
        self.env_prefixes = set()
        for text in self.swift.values():
            for name in re.findall(r'"(CLEARWAY_[A-Z0-9_]*)"', text):
                (self.env_prefixes if name.endswith("_") else self.env_exact).add(name)
        erp = self.swift.get("Sources/ClearwayERP/ERPDirectory.swift", "")
        self.erp_suffixes = set(re.findall(r'settings\.(?:required|optional|integer)\(\s*"([A-Z0-9_]+)"', erp))
        self.erp_suffixes |= set(re.findall(r'\b(?:required|optional|integer)\(\s*"([A-Z0-9_]+)"', erp))

    def env_problem(self, name):
        """Why `name` is not a variable the code reads, or None when it is."""
        if name in self.env_exact:
            return None
        if name.startswith("CLEARWAY_KAFKA_") and "CLEARWAY_KAFKA_" in self.env_prefixes:
            rest = name[len("CLEARWAY_KAFKA_"):]
            if rest.endswith("_FILE"):
                rest = rest[:-5]
            if re.fullmatch(r"[A-Z0-9]+(_[A-Z0-9]+)*", rest):
                return None
            return "not a CLEARWAY_KAFKA_<PROPERTY>[_FILE] name"
        if name.startswith("CLEARWAY_ERP_") and "CLEARWAY_ERP_" in self.env_prefixes:
            rest = name[len("CLEARWAY_ERP_"):]
            for suffix in sorted(self.erp_suffixes, key=len, reverse=True):
                if rest.endswith("_" + suffix) and len(rest) > len(suffix) + 1:
                    return None
            return f"CLEARWAY_ERP_<SYSTEM>_ takes {', '.join(sorted(self.erp_suffixes))} (Sources/ClearwayERP/ERPDirectory.swift)"
        return "no code reads it (not a string in Sources/)"

    def _metrics(self):
        self.metrics = {}  # name -> kind (counter, gauge, histogram)
        pattern = re.compile(
            r"\b(FloatingPointCounter|Counter|Timer|Recorder|Gauge|Meter)\(\s*label:\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"([^)]*)\)")
        for text in self.swift.values():
            for kind, name, rest in pattern.findall(text):
                if kind in ("Counter", "FloatingPointCounter"):
                    rendered = "counter"
                elif kind == "Timer":
                    rendered = "histogram"  # swift-prometheus: a DurationHistogram
                elif kind == "Recorder":
                    rendered = "gauge" if re.search(r"aggregate:\s*false", rest) else "histogram"
                else:
                    rendered = "gauge"
                self.metrics[name] = rendered
        self.series = set(PROMETHEUS_SYNTHETIC)
        for name, kind in self.metrics.items():
            if kind == "histogram":
                self.series |= {name + "_bucket", name + "_sum", name + "_count"}
            else:
                self.series.add(name)
        # Labels the metrics carry (their dimensions) and what the scrape adds.
        self.labels = set(SCRAPE_LABELS) | {"le"}
        for text in self.swift.values():
            for dimensions in re.findall(r"dimensions:\s*\[(.*?)\]", text, re.S):
                self.labels |= set(re.findall(r'\(\s*"([a-z_]+)"\s*,', dimensions))
            for dimensions in re.findall(r"let\s+labels\s*=\s*\[(.*?)\]", text, re.S):
                self.labels |= set(re.findall(r'\(\s*"([a-z_]+)"\s*,', dimensions))

    def _headers(self):
        runtime = self.files("Sources/ClearwayRuntime/")
        names = set()
        for text in runtime.values():
            names |= set(re.findall(r'KafkaHeader\(\s*name:\s*"([^"]+)"', text))
        self.ce_headers = {n for n in names if n.startswith("ce_") or n in ("content-type", "traceparent")}
        self.dlq_headers = {n for n in names if n.startswith("dlq.")}
        changelog = self.swift.get("Sources/ClearwayRuntime/Loop/ChangelogRestorer.swift", "")
        self.changelog_headers = set(re.findall(r'static\s+let\s+\w+\s*=\s*"(clearway\.[a-z.]+)"', changelog))
        self.event_types = set()
        for path, text in self.swift.items():
            if path.startswith(("Sources/ClearwayWorkers/", "Sources/ClearwayContract/")):
                self.event_types |= set(re.findall(r'"(clearway\.[a-z-]+(?:\.[a-z-]+)*\.v\d+)"', text))


# ------------------------------------------------------------------------------------------------
# Dockerfiles and the entrypoint
# ------------------------------------------------------------------------------------------------


def shared_blocks(text):
    blocks = {}
    for name in ("head", "tail"):
        match = re.search(
            r"^# ---- shared runtime: %s [^\n]*\n(.*?)^# ---- end of shared runtime: %s ----$" % (name, name),
            text, re.S | re.M)
        blocks[name] = match.group(1) if match else None
    return blocks


def check_dockerfiles(root, code):
    problems.section = "Dockerfile"
    dockerfile = os.path.join(root, "deploy", "Dockerfile")
    runtime = os.path.join(root, "deploy", "runtime.Dockerfile")
    for path in (dockerfile, runtime):
        if not os.path.isfile(path):
            problems.add(f"{rel(root, path)} is missing")
            return
    hadolint = os.environ.get("CLEARWAY_VALIDATE_HADOLINT", "")
    if not os.access(hadolint, os.X_OK):
        print("validate-deploy: hadolint is not installed (CLEARWAY_VALIDATE_HADOLINT); run scripts/validate-deploy",
              file=sys.stderr)
        sys.exit(2)
    for path in (dockerfile, runtime):
        result = subprocess.run([hadolint, "--no-color", path], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            for line in (result.stdout + result.stderr).strip().splitlines():
                problems.add(f"hadolint: {line}")
    main, local = read(dockerfile), read(runtime)
    main_blocks, local_blocks = shared_blocks(main), shared_blocks(local)
    for name in ("head", "tail"):
        if main_blocks[name] is None or local_blocks[name] is None:
            problems.add(f"the shared runtime {name} block (its marker comments) is missing from one of the Dockerfiles")
        elif main_blocks[name] != local_blocks[name]:
            problems.add(f"the shared runtime {name} differs between deploy/Dockerfile and deploy/runtime.Dockerfile: keep them identical")
    # The products built are the worker executables and the CLI.
    products = re.search(r'^ARG PRODUCTS="([^"]*)"', main, re.M)
    expected = {w["executable"] for w in code.workers.values()} | ({code.cli_executable} if code.cli_executable else set())
    if not products:
        problems.add("deploy/Dockerfile: no ARG PRODUCTS with the products to build")
    elif set(products.group(1).split()) != expected:
        problems.add(f"deploy/Dockerfile: PRODUCTS is {sorted(products.group(1).split())}; Package.swift's workers and CLI are {sorted(expected)}")
    tail = main_blocks["tail"] or ""
    exposed = set()
    for line in re.findall(r"^EXPOSE\s+(.*)$", tail, re.M):
        exposed |= {int(p.split("/")[0]) for p in line.split()}
    ports = {w["port"] for w in code.workers.values()}
    if exposed != ports:
        problems.add(f"EXPOSE {sorted(exposed)}; the workers' default ports are {sorted(ports)}")
    for required, what in (
        (r"^USER\s+10001(:10001)?$", "USER 10001"),
        (r'^VOLUME\s+\["/var/lib/clearway"\]$', "VOLUME /var/lib/clearway"),
        (r"^HEALTHCHECK\b[^\n]*(?:\\\n[^\n]*)*clearway-entrypoint\", \"healthcheck", "a HEALTHCHECK through the entrypoint"),
        (r'^ENTRYPOINT\s+\["/usr/local/bin/clearway-entrypoint"\]$', "ENTRYPOINT clearway-entrypoint"),
    ):
        if not re.search(required, tail, re.M):
            problems.add(f"the shared runtime tail has no {what}")
    if "FROM debian:bookworm-slim" not in (main_blocks["head"] or ""):
        problems.add("the runtime stage is not FROM debian:bookworm-slim")
    if not re.search(r"^FROM swift:6\.3-bookworm AS build$", main, re.M):
        problems.add("deploy/Dockerfile's build stage is not FROM swift:6.3-bookworm AS build")
    # The entrypoint's table of default ports is the code's.
    problems.section = "entrypoint"
    entrypoint = os.path.join(root, "deploy", "clearway-entrypoint")
    if not os.path.isfile(entrypoint):
        problems.add("deploy/clearway-entrypoint is missing")
        return
    if not os.access(entrypoint, os.X_OK):
        problems.add("deploy/clearway-entrypoint is not executable")
    table = dict(re.findall(r"^\s*\[([a-z-]+)\]=(\d+)\s*$", read(entrypoint), re.M))
    expected_table = {name: str(w["port"]) for name, w in code.workers.items()}
    if table != expected_table:
        problems.add(f"default_ports {table} differs from the code's {expected_table} (Sources/<Worker>/main.swift)")
    syntax = subprocess.run(["bash", "-n", entrypoint], capture_output=True, text=True)
    if syntax.returncode != 0:
        problems.add(f"bash -n: {syntax.stderr.strip()}")


# ------------------------------------------------------------------------------------------------
# Compose
# ------------------------------------------------------------------------------------------------


def clearway_program(service):
    """The program a service of the Clearway image runs (a worker, or clearway), else None."""
    image = str(service.get("image", ""))
    build = service.get("build") or {}
    dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
    if not (image.startswith("clearway:") or image == "clearway" or dockerfile.endswith("deploy/Dockerfile")):
        return None
    command = service.get("command")
    if isinstance(command, str):
        command = command.split()
    return command[0] if command else "help"


def environment_of(service):
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    return environment


def check_compose(root, code):
    problems.section = "compose"
    document = load_mapping(root, "deploy/compose.yaml")
    if document is None:
        return None
    schema_path = os.environ.get("CLEARWAY_VALIDATE_COMPOSE_SCHEMA", "")
    if not os.path.isfile(schema_path):
        print("validate-deploy: the Compose schema is not installed (CLEARWAY_VALIDATE_COMPOSE_SCHEMA)", file=sys.stderr)
        sys.exit(2)
    schema = json.loads(read(schema_path))
    # That schema (2021) predates the top-level `name` of today's Compose specification.
    schema["properties"].setdefault("name", {"type": "string"})
    validator = jsonschema.Draft201909Validator(schema)
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in error.path) or "(top level)"
        problems.add(f"schema: {where}: {error.message[:300]}")
    services = document.get("services") or {}
    secrets = document.get("secrets") or {}
    for name, secret in secrets.items():
        file = (secret or {}).get("file")
        if file and not os.path.isfile(os.path.join(root, "deploy", file)):
            problems.add(f"secret {name}: {file} does not exist")
    programs = {}
    for name, service in services.items():
        service = service or {}
        for dependency in service.get("depends_on") or []:
            if dependency not in services:
                problems.add(f"{name} depends on {dependency}, which is not a service")
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith("."):
                if not os.path.exists(os.path.join(root, "deploy", source)):
                    problems.add(f"{name} mounts {source}, which does not exist beside compose.yaml")
        environment = environment_of(service)
        for variable, value in environment.items():
            if variable.startswith("CLEARWAY_"):
                why = code.env_problem(variable)
                if why:
                    problems.add(f"{name}: {variable}: {why}")
                if variable.endswith("_FILE"):
                    mounted = {s if isinstance(s, str) else s.get("target") or s.get("source") for s in service.get("secrets") or []}
                    match = re.fullmatch(r"/run/secrets/([^/]+)", str(value))
                    if not match or match.group(1) not in mounted:
                        problems.add(f"{name}: {variable}={value} is not one of its secrets (/run/secrets/<name>)")
        program = clearway_program(service)
        if program is None:
            continue
        programs.setdefault(program, []).append(name)
        if program in code.workers:
            if "container_name" in service:
                problems.add(f"{name}: a worker service with a container_name cannot be scaled (--scale)")
            if service.get("ports"):
                problems.add(f"{name}: a worker service with host ports cannot be scaled (--scale)")
            for required in ("CLEARWAY_BOOTSTRAP_SERVERS", "CLEARWAY_TOPIC_PREFIX"):
                if required not in environment:
                    problems.add(f"{name}: {required} is not set")
        elif program == code.cli_executable:
            pass
        elif program not in ("help",):
            problems.add(f"{name}: runs {program}, which is neither a worker nor {code.cli_executable}")
    for worker in code.workers:
        if worker not in programs:
            problems.add(f"the worker {worker} has no service")
    # The one-shot that creates the topics, and the simulators for a local trial.
    topics_services = [n for n, s in services.items()
                       if clearway_program(s or {}) == code.cli_executable and (s or {}).get("command", [])[1:3] == ["topics", "apply"]]
    if not topics_services:
        problems.add("no service runs `clearway topics apply`")
    for name, service in services.items():
        depends = (service or {}).get("depends_on") or {}
        if clearway_program(service or {}) in code.workers:
            if not any(t in depends for t in topics_services):
                problems.add(f"{name} does not wait for the topics service")
    erp_sim = "erp-sim" in read(os.path.join(root, "Sources", "ClearwayCLI", "ErpSimCommand.swift")) \
        if os.path.isfile(os.path.join(root, "Sources", "ClearwayCLI", "ErpSimCommand.swift")) else False
    if erp_sim and not any(clearway_program(s or {}) == code.cli_executable and "erp-sim" in (s or {}).get("command", [])
                           for s in services.values()):
        problems.add("no service runs the ERP simulator (clearway erp-sim)")
    # Kafka in KRaft mode, one node, replication factor 1 for the internal topics.
    kafka = [s for s in services.values() if str((s or {}).get("image", "")).startswith("apache/kafka:")]
    if not kafka:
        problems.add("no apache/kafka service")
    else:
        environment = {k: str(v) for k, v in environment_of(kafka[0]).items()}
        expected = {
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        }
        for key, value in expected.items():
            if environment.get(key) != value:
                problems.add(f"kafka: {key} should be {value}")
        if "controller" not in environment.get("KAFKA_PROCESS_ROLES", ""):
            problems.add("kafka: not in KRaft mode (KAFKA_PROCESS_ROLES has no controller)")
    for image in ("prom/prometheus:", "grafana/grafana"):
        if not any(str((s or {}).get("image", "")).startswith(image) for s in services.values()):
            problems.add(f"no {image.rstrip(':')} service")
    return {"services": services, "programs": programs}


def check_prometheus_config(root, code, compose):
    problems.section = "prometheus.yml"
    document = load_mapping(root, "deploy/prometheus/prometheus.yml")
    if document is None:
        return
    rule_files = document.get("rule_files") or []
    if not any(os.path.basename(f) == "alerts.yaml" for f in rule_files):
        problems.add("alerts.yaml is not among rule_files")
    scraped = {}
    for job in document.get("scrape_configs") or []:
        for sd in job.get("dns_sd_configs") or []:
            for name in sd.get("names") or []:
                scraped[name] = (sd.get("port"), sd.get("type", "SRV"), job.get("job_name"))
    services = (compose or {}).get("services", {})
    for worker, facts in code.workers.items():
        service_names = (compose or {}).get("programs", {}).get(worker, [])
        for service in service_names:
            port = environment_of(services[service]).get("CLEARWAY_HTTP_PORT", facts["port"])
            if service not in scraped:
                problems.add(f"the {worker} service {service} is not scraped through dns_sd_configs")
            elif str(scraped[service][0]) != str(port) or scraped[service][1] != "A":
                problems.add(f"{service}: scraped as type {scraped[service][1]} on port {scraped[service][0]}; the worker listens on {port} (type A)")


# ------------------------------------------------------------------------------------------------
# Kubernetes
# ------------------------------------------------------------------------------------------------

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
                  "StorageClass", "ClusterTriggerAuthentication"}


def render_kustomization(folder):
    """What `kustomize build` makes of this folder for the features it uses: resources (files),
    namespace, images. Anything else in kustomization.yaml is reported, not guessed at."""
    kustomization = load_yaml(os.path.join(folder, "kustomization.yaml")) or {}
    known = {"apiVersion", "kind", "namespace", "resources", "images"}
    for key in kustomization:
        if key not in known:
            problems.add(f"kustomization.yaml: {key} is not rendered by this validator (only {sorted(known)}); extend it")
    objects = []
    for resource in kustomization.get("resources") or []:
        path = os.path.join(folder, resource)
        if not os.path.isfile(path):
            problems.add(f"kustomization.yaml: resource {resource} is not a file here")
            continue
        try:
            with open(path, encoding="utf-8") as f:
                for document in yaml.safe_load_all(f):
                    if document:
                        document.setdefault("metadata", {})
                        objects.append((resource, document))
        except yaml.YAMLError as error:
            problems.add(f"{resource}: {error}")
    namespace = kustomization.get("namespace")
    images = {i["name"]: i for i in kustomization.get("images") or []}
    for _, document in objects:
        if namespace and document.get("kind") not in CLUSTER_SCOPED:
            document["metadata"]["namespace"] = namespace
        for container in containers_of(document):
            image = container.get("image", "")
            name = re.split(r"[:@]", image, maxsplit=1)[0]
            if name in images:
                spec = images[name]
                tag = spec.get("newTag") or (image.split(":", 1)[1] if ":" in image else None)
                container["image"] = (spec.get("newName") or name) + (f":{tag}" if tag else "")
    return objects


def pod_spec(document):
    spec = document.get("spec") or {}
    template = spec.get("template") or {}
    return template.get("spec") or {}


def containers_of(document):
    if document.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        pod = pod_spec(document)
        return (pod.get("containers") or []) + (pod.get("initContainers") or [])
    return []


def check_keda_fields(where, mapping, allowed, problems_prefix=""):
    for key in mapping or {}:
        if key not in allowed:
            problems.add(f"{where}: {problems_prefix}{key} is not a documented KEDA field")


def check_kubernetes(root, code):
    problems.section = "kubernetes"
    folder = os.path.join(root, "deploy", "kubernetes")
    if not os.path.isfile(os.path.join(folder, "kustomization.yaml")):
        problems.add("deploy/kubernetes/kustomization.yaml is missing")
        return
    objects = render_kustomization(folder)
    # Compare with kustomize itself where kubectl is installed (it is not needed).
    kubectl = shutil.which("kubectl")
    if kubectl:
        try:
            result = subprocess.run([kubectl, "kustomize", folder], capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                problems.add(f"kubectl kustomize failed: {result.stderr.strip()[:500]}")
            else:
                theirs = sorted((d.get("kind"), d["metadata"].get("name"), d["metadata"].get("namespace"))
                                for d in yaml.safe_load_all(result.stdout) if d)
                ours = sorted((d.get("kind"), d["metadata"].get("name"), d["metadata"].get("namespace")) for _, d in objects)
                if theirs != ours:
                    problems.add(f"kubectl kustomize renders {theirs}, this validator {ours}")
        except (OSError, subprocess.TimeoutExpired) as error:
            problems.add(f"kubectl kustomize could not run: {error}")
    by_kind = {}
    for source, document in objects:
        by_kind.setdefault(document.get("kind"), {})[document["metadata"].get("name")] = (source, document)
    # kubernetes-validate: every built-in object, strict (no unknown field), on each version.
    for source, document in objects:
        if str(document.get("apiVersion", "")).startswith("keda.sh/"):
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                problems.add(f"{source}: {document.get('kind')}/{document['metadata'].get('name')} (Kubernetes {error.version}): {path}: {error.message}")
            except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as error:
                problems.add(f"{source}: {document.get('kind')} {document.get('apiVersion')}: no schema ({error.message})")
    config_maps = {name: (doc.get("data") or {}) for name, (_, doc) in by_kind.get("ConfigMap", {}).items()}
    config = config_maps.get("clearway-config", {})
    prefix = config.get("CLEARWAY_TOPIC_PREFIX")
    bootstrap = config.get("CLEARWAY_BOOTSTRAP_SERVERS")
    if prefix is None or bootstrap is None:
        problems.add("the clearway-config ConfigMap lacks CLEARWAY_TOPIC_PREFIX or CLEARWAY_BOOTSTRAP_SERVERS")
        prefix = prefix or "clearway."
    for name, data in config_maps.items():
        for variable in data:
            if variable.startswith("CLEARWAY_"):
                why = code.env_problem(variable)
                if why:
                    problems.add(f"ConfigMap {name}: {variable}: {why}")
    trigger_authentications = set(by_kind.get("TriggerAuthentication", {}))
    for name, (source, document) in by_kind.get("TriggerAuthentication", {}).items():
        check_keda_fields(f"{source}: TriggerAuthentication/{name}", document.get("spec"), KEDA_TRIGGER_AUTHENTICATION_SPEC, "spec.")
        for entry in (document.get("spec") or {}).get("secretTargetRef") or []:
            check_keda_fields(f"{source}: TriggerAuthentication/{name}", entry, KEDA_SECRET_TARGET_REF, "secretTargetRef.")
            if entry.get("parameter") not in KEDA_KAFKA_AUTH_PARAMETERS:
                problems.add(f"{source}: TriggerAuthentication/{name}: {entry.get('parameter')} is not a kafka scaler parameter")
    scaled = {}
    for name, (source, document) in by_kind.get("ScaledObject", {}).items():
        where = f"{source}: ScaledObject/{name}"
        if document.get("apiVersion") != "keda.sh/v1alpha1":
            problems.add(f"{where}: apiVersion {document.get('apiVersion')}, not keda.sh/v1alpha1")
        spec = document.get("spec") or {}
        check_keda_fields(where, spec, KEDA_SCALED_OBJECT_SPEC, "spec.")
        check_keda_fields(where, spec.get("scaleTargetRef"), KEDA_SCALE_TARGET_REF, "scaleTargetRef.")
        check_keda_fields(where, spec.get("fallback"), KEDA_FALLBACK, "fallback.")
        check_keda_fields(where, spec.get("advanced"), KEDA_ADVANCED, "advanced.")
        check_keda_fields(where, (spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig"), KEDA_HPA_CONFIG,
                          "advanced.horizontalPodAutoscalerConfig.")
        for number in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
            if number in spec and not isinstance(spec[number], int):
                problems.add(f"{where}: {number} must be a whole number")
        for trigger in spec.get("triggers") or []:
            check_keda_fields(where, trigger, KEDA_TRIGGER, "triggers[].")
            check_keda_fields(where, trigger.get("authenticationRef"), KEDA_AUTHENTICATION_REF, "authenticationRef.")
            if trigger.get("type") == "kafka":
                metadata = trigger.get("metadata") or {}
                check_keda_fields(where, metadata, KEDA_KAFKA_METADATA, "kafka metadata ")
                for key in KEDA_KAFKA_REQUIRED - set(metadata):
                    problems.add(f"{where}: the kafka trigger has no {key}")
                for key, value in metadata.items():
                    if not isinstance(value, str):
                        problems.add(f"{where}: kafka metadata {key} must be a string (quote it)")
                reference = (trigger.get("authenticationRef") or {}).get("name")
                if reference and reference not in trigger_authentications:
                    problems.add(f"{where}: authenticationRef {reference} is not a TriggerAuthentication here")
        scaled[(spec.get("scaleTargetRef") or {}).get("kind", "Deployment"), (spec.get("scaleTargetRef") or {}).get("name")] = (where, spec)
    # Each worker: a Deployment (stateless) or a StatefulSet with a volume (stateful), probes,
    # resources, security, a PodDisruptionBudget, a Service and a ScaledObject on its real group.
    workloads = {}
    for kind in ("Deployment", "StatefulSet"):
        for name, (source, document) in by_kind.get(kind, {}).items():
            containers = pod_spec(document).get("containers") or []
            args = (containers[0].get("args") or containers[0].get("command") or [None]) if containers else [None]
            workloads.setdefault(args[0], []).append((kind, name, source, document))
    for worker, facts in code.workers.items():
        found = workloads.get(worker, [])
        expected_kind = "StatefulSet" if facts["stateful"] else "Deployment"
        if not found:
            problems.add(f"the worker {worker} has no Deployment or StatefulSet (container args [\"{worker}\"])")
            continue
        for kind, name, source, document in found:
            where = f"{source}: {kind}/{name}"
            if kind != expected_kind:
                problems.add(f"{where}: the {worker} is {'stateful' if facts['stateful'] else 'stateless'} (isStateful in its definition): it should be a {expected_kind}")
            spec = document.get("spec") or {}
            if kind == "StatefulSet" and not spec.get("volumeClaimTemplates"):
                problems.add(f"{where}: no volumeClaimTemplates for its state")
            if "replicas" in spec:
                problems.add(f"{where}: sets replicas, which fights the ScaledObject that owns the count")
            pod = pod_spec(document)
            container = pod["containers"][0]
            env = {e.get("name"): e for e in container.get("env") or []}
            for variable in env:
                if variable and variable.startswith("CLEARWAY_"):
                    why = code.env_problem(variable)
                    if why:
                        problems.add(f"{where}: {variable}: {why}")
            for source_ref in container.get("envFrom") or []:
                reference = (source_ref.get("configMapRef") or {}).get("name")
                if reference and reference not in config_maps:
                    problems.add(f"{where}: envFrom ConfigMap {reference} is not in the kustomization")
            mounts = {m.get("mountPath"): m.get("name") for m in container.get("volumeMounts") or []}
            volumes = {v.get("name"): v for v in pod.get("volumes") or []}
            claims = {c.get("metadata", {}).get("name") for c in spec.get("volumeClaimTemplates") or []}
            for mount_name in mounts.values():
                if mount_name not in volumes and mount_name not in claims:
                    problems.add(f"{where}: volumeMount {mount_name} has no volume")
            for variable, entry in env.items():
                if variable and variable.endswith("_FILE") and "value" in entry:
                    if not any(entry["value"].startswith(path.rstrip("/") + "/") for path in mounts):
                        problems.add(f"{where}: {variable}={entry['value']} is not under a mounted volume")
            for variable, value in config_maps.get("clearway-erp-config", {}).items():
                if variable.endswith("_FILE") and worker == "erp-writeback":
                    if not any(str(value).startswith(path.rstrip("/") + "/") for path in mounts):
                        problems.add(f"{where}: {variable}={value} (clearway-erp-config) is not under a mounted volume")
            state_dir = (env.get("CLEARWAY_STATE_DIR") or {}).get("value", f"/var/lib/clearway/{worker}")
            if not any(state_dir.startswith(path.rstrip("/") + "/") for path in mounts):
                problems.add(f"{where}: the state directory {state_dir} is not under a mounted volume")
            if not any(path == "/tmp" for path in mounts):
                problems.add(f"{where}: /tmp is not a volume (the root file system is read-only)")
            port = int((env.get("CLEARWAY_HTTP_PORT") or {}).get("value", facts["port"]))
            ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
            if ports.get("http") != port:
                problems.add(f"{where}: containerPort http is {ports.get('http')}; the worker listens on {port}")
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                get = (container.get(probe) or {}).get("httpGet") or {}
                if get.get("path") != path:
                    problems.add(f"{where}: {probe} is not GET {path}")
                elif get.get("port") not in ("http", port):
                    problems.add(f"{where}: {probe} is not on the worker's port")
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(part) or {}):
                        problems.add(f"{where}: no {part}.{resource}")
            pod_security = pod.get("securityContext") or {}
            security = container.get("securityContext") or {}
            if not pod_security.get("runAsNonRoot") or pod_security.get("runAsUser") != 10001:
                problems.add(f"{where}: the pod does not run as the image's non-root user 10001")
            if not security.get("readOnlyRootFilesystem"):
                problems.add(f"{where}: the root file system is not read-only")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.add(f"{where}: allowPrivilegeEscalation is not false")
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}

            def selects(selector):
                return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

            if not any(selects(((d.get("spec") or {}).get("selector") or {}).get("matchLabels"))
                       for _, d in by_kind.get("PodDisruptionBudget", {}).values()):
                problems.add(f"{where}: no PodDisruptionBudget selects its pods")
            if not any(selects((d.get("spec") or {}).get("selector")) for _, d in by_kind.get("Service", {}).values()):
                problems.add(f"{where}: no Service selects its pods")
            if kind == "StatefulSet" and spec.get("serviceName") not in by_kind.get("Service", {}):
                problems.add(f"{where}: serviceName {spec.get('serviceName')} is not a Service here")
            target = scaled.get((kind, name))
            if not target:
                problems.add(f"{where}: no ScaledObject scales it")
                continue
            scaled_where, scaled_spec = target
            kafka = [t for t in scaled_spec.get("triggers") or [] if t.get("type") == "kafka"]
            if not kafka:
                problems.add(f"{scaled_where}: no kafka trigger")
                continue
            metadata = kafka[0].get("metadata") or {}
            group = prefix + worker
            if metadata.get("consumerGroup") != group:
                problems.add(f"{scaled_where}: consumerGroup {metadata.get('consumerGroup')}; the worker's group is {group} (<prefix><worker>)")
            inputs = [prefix + t for t in facts["inputs"]]
            if metadata.get("topic") not in inputs:
                problems.add(f"{scaled_where}: topic {metadata.get('topic')}; the worker reads {inputs}")
            if bootstrap and metadata.get("bootstrapServers") != bootstrap:
                problems.add(f"{scaled_where}: bootstrapServers {metadata.get('bootstrapServers')} differs from clearway-config's {bootstrap}")
            if not str(metadata.get("lagThreshold", "")).isdigit():
                problems.add(f"{scaled_where}: lagThreshold must be a whole number (as a string)")
            partitions = min((code.topics[t]["partitions"] for t in facts["inputs"] if t in code.topics), default=0)
            maximum = scaled_spec.get("maxReplicaCount")
            if not isinstance(maximum, int) or maximum > partitions:
                problems.add(f"{scaled_where}: maxReplicaCount {maximum} is over its input's {partitions} partitions")
            if (scaled_spec.get("minReplicaCount") or 0) < 1:
                problems.add(f"{scaled_where}: minReplicaCount under 1 stops the worker (timers, outbox, cold starts)")
    for kind, name in scaled:
        if name not in by_kind.get(kind, {}):
            problems.add(f"ScaledObject targets {kind}/{name}, which is not here")


# ------------------------------------------------------------------------------------------------
# Metrics in the alert rules and the dashboard
# ------------------------------------------------------------------------------------------------


def promql_names(expression):
    """The metric names and label names a PromQL expression uses (Grafana's $variables removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expression)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "1", text)
    labels = set()
    # Grafana's label_values(metric, label) / label_values(label)
    def label_values(match):
        arguments = [a.strip() for a in match.group(1).rsplit(",", 1)]
        labels.add(arguments[-1])
        return arguments[0] if len(arguments) == 2 else " "

    text = re.sub(r"\blabel_values\((.*)\)", label_values, text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations

    def matchers(match):
        for label in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", match.group(1)):
            labels.add(label)
        return " "

    text = re.sub(r"\{([^}]*)\}", matchers, text)

    def grouping(match):
        labels.update(re.findall(r"[a-zA-Z_]\w*", match.group(2)))
        return " "

    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", grouping, text)
    metrics = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name in PROMQL_KEYWORDS or name in PROMQL_AGGREGATIONS or name in PROMQL_FUNCTIONS:
            continue
        if re.fullmatch(r"\d+[smhdwy]?|e\d+", name):
            continue
        metrics.add(name)
    return metrics, labels


def expressions_in(dashboard):
    """The PromQL of a Grafana dashboard: its panels' targets (rows' panels too) and its query
    variables' definitions."""
    found = []

    def panels(items):
        for panel in items or []:
            for target in panel.get("targets") or []:
                if isinstance(target.get("expr"), str):
                    found.append(target["expr"])
            panels(panel.get("panels"))

    panels(dashboard.get("panels"))
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query") if isinstance(query, dict) else query
            found.append(variable.get("definition") or text or "")
    return found


def check_metrics(root, code):
    problems.section = "metrics"
    if not code.metrics:
        problems.add("found no metrics in Sources/ (Counter(label: …) etc.): the validator's reading of the code is broken")
        return
    alerts_path = os.path.join(root, "deploy", "prometheus", "alerts.yaml")
    dashboard_path = os.path.join(root, "deploy", "grafana", "dashboards", "clearway.json")
    used = {}
    alerts = load_yaml(alerts_path) or {}
    names = set()
    alert_expressions = []
    for group in alerts.get("groups") or []:
        if not group.get("name") or not group.get("rules"):
            problems.add("alerts.yaml: a group without a name or rules")
        for rule in group.get("rules") or []:
            if "alert" not in rule or "expr" not in rule:
                problems.add(f"alerts.yaml: a rule without alert or expr in {group.get('name')}")
                continue
            if rule["alert"] in names:
                problems.add(f"alerts.yaml: {rule['alert']} twice")
            names.add(rule["alert"])
            if "for" in rule and not re.fullmatch(r"(\d+[smhdwy])+", str(rule["for"])):
                problems.add(f"alerts.yaml: {rule['alert']}: for: {rule['for']} is not a duration")
            alert_expressions.append(rule["expr"])
            used.setdefault(f"alerts.yaml ({rule['alert']})", []).append(rule["expr"])
    try:
        dashboard = json.loads(read(dashboard_path))
    except (OSError, ValueError) as error:
        problems.add(f"deploy/grafana/dashboards/clearway.json: {error}")
        dashboard = {}
    dashboard_expressions = expressions_in(dashboard)
    for expression in dashboard_expressions:
        used.setdefault("clearway.json", []).append(expression)
    alert_metrics, dashboard_metrics = set(), set()
    for where, expressions in used.items():
        for expression in expressions:
            metrics, labels = promql_names(expression)
            (alert_metrics if where.startswith("alerts") else dashboard_metrics).update(metrics)
            for metric in metrics:
                if metric not in code.series:
                    problems.add(f"{where}: {metric} is not a metric the workers export ({', '.join(sorted(code.series))})")
            for label in labels:
                if label not in code.labels:
                    problems.add(f"{where}: label {label} is neither a metric dimension in Sources/ nor a scrape label ({', '.join(sorted(code.labels))})")
    # What the issue asks each to show.
    for metric, what in (("clearway_consumer_lag", "lag"), ("clearway_dlq_records_total", "the DLQ rate"),
                         ("clearway_transactions_aborted_total", "aborted transactions"),
                         ("clearway_restore_records", "a long restore")):
        if metric not in alert_metrics:
            problems.add(f"alerts.yaml: no rule on {what} ({metric})")
    wanted = ["clearway_records_in_total", "clearway_records_out_total", "clearway_consumer_lag",
              "clearway_handler_duration_seconds_bucket", "clearway_commit_duration_seconds_bucket",
              "clearway_dlq_records_total", "clearway_retries_total"]
    for metric in wanted:
        if metric not in dashboard_metrics:
            problems.add(f"clearway.json: no panel uses {metric}")


# ------------------------------------------------------------------------------------------------
# AsyncAPI
# ------------------------------------------------------------------------------------------------


def resolve(document, reference, base):
    """An internal reference (#/a/b) of the document, or None."""
    if not reference.startswith("#/"):
        return None
    node = document
    for part in reference[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def deref(document, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 10:
        node = resolve(document, node["$ref"], None)
        seen += 1
    return node


def collect_headers(document, node, pick):
    """What `pick` takes from a header schema's properties, through its `allOf` parts."""
    node = deref(document, node)
    found = set()
    if not isinstance(node, dict):
        return found
    for part in node.get("allOf") or []:
        found |= collect_headers(document, part, pick)
    return found | pick(node.get("properties") or {})


def header_names(document, node):
    return collect_headers(document, node, lambda properties: set(properties.keys()))


def header_types(document, node):
    def ce_types(properties):
        ce_type = properties.get("ce_type") or {}
        return set(ce_type.get("enum") or []) | ({ce_type["const"]} if "const" in ce_type else set())

    return collect_headers(document, node, ce_types)


def check_asyncapi(root, code):
    problems.section = "asyncapi"
    document = load_mapping(root, "schemas/asyncapi.yaml")
    if document is None:
        return
    if document.get("asyncapi") != "3.0.0":
        problems.add(f"asyncapi: {document.get('asyncapi')!r}, not '3.0.0'")
    for required in ("info", "channels", "operations"):
        if required not in document:
            problems.add(f"no {required}")
    info = document.get("info") or {}
    if not info.get("title") or not info.get("version"):
        problems.add("info needs a title and a version")
    # Every internal $ref resolves, every file $ref exists.
    def walk(node, trail):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    if value.startswith("#/"):
                        if resolve(document, value, None) is None:
                            problems.add(f"{trail}: $ref {value} does not resolve")
                    else:
                        file = value.split("#", 1)[0]
                        if not os.path.isfile(os.path.join(root, "schemas", file)):
                            problems.add(f"{trail}: $ref {value}: no such file in schemas/")
                else:
                    walk(value, f"{trail}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{trail}/{index}")

    walk(document, "")
    channels = document.get("channels") or {}
    by_topic = {}
    for channel_id, channel in channels.items():
        address = str((channel or {}).get("address", ""))
        if not address.startswith("{prefix}"):
            problems.add(f"channel {channel_id}: address {address} does not start with {{prefix}} (CLEARWAY_TOPIC_PREFIX)")
        topic = address.replace("{prefix}", "", 1)
        if topic in by_topic:
            problems.add(f"channel {channel_id}: {topic} is also channel {by_topic[topic]}")
        by_topic[topic] = channel_id
        for parameter in re.findall(r"\{(\w+)\}", address):
            if parameter not in ((channel or {}).get("parameters") or {}):
                problems.add(f"channel {channel_id}: address parameter {parameter} is not declared")
    declared = set(code.topics)
    for topic in sorted(declared - set(by_topic)):
        problems.add(f"the topic {topic} ({code.topics[topic]['file']}) has no channel")
    for topic in sorted(set(by_topic) - declared):
        problems.add(f"channel {by_topic[topic]}: {topic} is not a topic declared in code")
    written_by_workers = set()
    for facts in code.workers.values():
        written_by_workers |= set(facts["outputs"]) | {"dlq.v1"} | ({facts["changelog"]} if facts["changelog"] else set())
    for topic, channel_id in by_topic.items():
        if topic not in code.topics:
            continue
        channel = channels[channel_id]
        facts = code.topics[topic]
        kafka = ((channel.get("bindings") or {}).get("kafka")) or {}
        if kafka.get("partitions") != facts["partitions"]:
            problems.add(f"channel {channel_id}: partitions {kafka.get('partitions')}; the code declares {facts['partitions']}")
        configuration = kafka.get("topicConfiguration") or {}
        policy = configuration.get("cleanup.policy") or []
        if ("compact" in policy) != facts["compacted"]:
            problems.add(f"channel {channel_id}: cleanup.policy {policy}; the code declares compacted={facts['compacted']}")
        if facts["retention_ms"] and configuration.get("retention.ms") != facts["retention_ms"]:
            problems.add(f"channel {channel_id}: retention.ms {configuration.get('retention.ms')}; the code declares {facts['retention_ms']}")
        messages = channel.get("messages") or {}
        if not messages:
            problems.add(f"channel {channel_id}: no message")
        schema_file = f"{topic}.schema.json"
        has_schema = os.path.isfile(os.path.join(root, "schemas", schema_file))
        for message_id, message in messages.items():
            message = deref(document, message) or {}
            payload = message.get("payload") or {}
            reference = payload.get("$ref", "") if isinstance(payload, dict) else ""
            if has_schema and reference.lstrip("./") != schema_file:
                problems.add(f"channel {channel_id}: message {message_id}'s payload is not $ref ./{schema_file}")
            if not (((message.get("bindings") or {}).get("kafka") or {}).get("key")):
                problems.add(f"channel {channel_id}: message {message_id} does not describe its key (bindings.kafka.key)")
            headers = header_names(document, message.get("headers"))
            if topic == "dlq.v1":
                missing = code.dlq_headers - headers
                if missing:
                    problems.add(f"channel {channel_id}: the DLQ headers {sorted(missing)} (Sources/ClearwayRuntime) are not described")
            elif topic in written_by_workers and not topic.endswith(".changelog"):
                missing = code.ce_headers - headers
                if missing:
                    problems.add(f"channel {channel_id}: the CloudEvents headers {sorted(missing)} the runtime writes are not described")
                unknown = header_types(document, message.get("headers")) - code.event_types
                if unknown:
                    problems.add(f"channel {channel_id}: ce_type {sorted(unknown)} is not an event type in Sources/")
            elif topic.endswith(".changelog"):
                missing = code.changelog_headers - headers
                if missing:
                    problems.add(f"channel {channel_id}: the changelog headers {sorted(missing)} are not described")
    # Operations: each worker sends its outputs, the DLQ and its changelog; receives its inputs,
    # its reference tables and its changelog.
    operations = document.get("operations") or {}
    sends, receives = {}, {}
    for operation_id, operation in operations.items():
        operation = operation or {}
        action = operation.get("action")
        if action not in ("send", "receive"):
            problems.add(f"operation {operation_id}: action {action!r}")
            continue
        worker = operation.get("x-worker")
        if worker not in code.workers:
            problems.add(f"operation {operation_id}: x-worker {worker!r} is not a worker ({', '.join(sorted(code.workers))})")
            continue
        reference = (operation.get("channel") or {}).get("$ref", "")
        channel_id = reference[len("#/channels/"):] if reference.startswith("#/channels/") else None
        if channel_id not in channels:
            problems.add(f"operation {operation_id}: channel {reference} is not a channel")
            continue
        for message in operation.get("messages") or []:
            if not str(message.get("$ref", "")).startswith(f"#/channels/{channel_id}/messages/"):
                problems.add(f"operation {operation_id}: message {message.get('$ref')} is not one of its channel's")
        topic = str(channels[channel_id].get("address", "")).replace("{prefix}", "", 1)
        (sends if action == "send" else receives).setdefault(worker, set()).add(topic)
    for worker, facts in code.workers.items():
        changelog = {facts["changelog"]} if facts["changelog"] else set()
        expected_sends = set(facts["outputs"]) | {"dlq.v1"} | changelog
        expected_receives = set(facts["inputs"]) | set(facts["tables"]) | changelog
        if sends.get(worker, set()) != expected_sends:
            problems.add(f"the {worker} sends {sorted(expected_sends)} (its definition), the document says {sorted(sends.get(worker, set()))}")
        if receives.get(worker, set()) != expected_receives:
            problems.add(f"the {worker} receives {sorted(expected_receives)} (its definition), the document says {sorted(receives.get(worker, set()))}")


# ------------------------------------------------------------------------------------------------


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
    started = time.monotonic()
    problems.section = "code"
    code = Code(root)
    if not code.workers:
        problems.add("found no worker executables in Package.swift / Sources/<Worker>/main.swift")
    print(f"[validate-deploy] from the code: {len(code.workers)} workers ({', '.join(sorted(code.workers))}), "
          f"{len(code.topics)} topics, {len(code.metrics)} metrics, {len(code.env_exact)} CLEARWAY_* variables "
          f"(+ {', '.join(sorted(p + '*' for p in code.env_prefixes))})", flush=True)
    check_dockerfiles(root, code)
    compose = check_compose(root, code)
    check_prometheus_config(root, code, compose)
    check_kubernetes(root, code)
    check_metrics(root, code)
    check_asyncapi(root, code)
    elapsed = time.monotonic() - started
    if problems.items:
        for item in problems.items:
            print(f"[validate-deploy] FAIL {item}", file=sys.stderr)
        print(f"[validate-deploy] {len(problems.items)} problem(s) in {elapsed:.1f} s", file=sys.stderr)
        sys.exit(1)
    print(f"[validate-deploy] deploy/ and schemas/asyncapi.yaml agree with the code ({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
