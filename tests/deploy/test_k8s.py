"""deploy/k8s: every overlay builds, validates against the Kubernetes schemas offline, and keeps
the promises that matter in production (probes, limits, non-root, secrets by reference)."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import kubernetes_validate.utils  # type: ignore[import-untyped]
import pytest
import yaml

from rtmn_shared.access import broker_grant, principals
from rtmn_shared.settings import CommonSettings
from rtmn_shared.suite import SERVICES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# The Kubernetes minor whose schemas the manifests must satisfy (strict: no unknown fields).
KUBERNETES = "1.32"
# Custom resources, whose schemas live in their operators' CRDs (not shipped offline): checked
# by hand below instead.
CRDS = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
    ("rabbitmq.com/v1beta1", "User"),
    ("rabbitmq.com/v1beta1", "Permission"),
    ("rabbitmq.com/v1beta1", "TopicPermission"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}
OPERATOR_SECRETS = {"rabbitmq-default-user"}  # made by the RabbitMQ Cluster Operator
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|_KEY$|_URL$")

Objects = list[dict[str, Any]]


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    # kubernetes_validate reads and parses the large definitions file on every call; the
    # contents never change within a run, so read each file once (5x faster here).
    with pytest.MonkeyPatch.context() as patch:
        cached = functools.cache(kubernetes_validate.utils.schema_contents)
        patch.setattr(kubernetes_validate.utils, "schema_contents", cached)
        yield


def of_kind(objects: Objects, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_specs(objects: Objects) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in ("Deployment", "Job")
    ]


def test_generated_files_match_the_generator() -> None:
    done = subprocess.run(
        [sys.executable, str(K8S / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"run deploy/k8s/generate.py: {done.stderr}"


def test_the_gateway_config_in_the_base_is_deploy_gateway_s() -> None:
    base = K8S / "base" / "gateway"
    assert (base / "nginx.conf").read_text() == (ROOT / "deploy/gateway/nginx.conf").read_text()
    cluster = (ROOT / "deploy/gateway/upstreams/cluster.conf").read_text()
    assert (base / "upstreams.conf").read_text() == cluster


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_built_in_object_validates_against_the_schemas(
    built: dict[str, Objects], overlay: str
) -> None:
    objects = built[overlay]
    checked = 0
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CRDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        checked += 1
    assert checked >= 40, f"only {checked} objects validated"
    kinds = {(o["apiVersion"], o["kind"]) for o in objects}
    assert kinds - CRDS <= {
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
        ("batch/v1", "Job"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("batch/v1", "CronJob"),  # each schema owner's daily partition upkeep
    }


def test_the_validator_rejects_a_broken_deployment(built: dict[str, Objects]) -> None:
    broken = copy.deepcopy(of_kind(built["prod"], "Deployment")["payments"])
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_secrets_example_is_valid_and_defines_every_referenced_secret(
    built: dict[str, Objects],
) -> None:
    examples = [d for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if d]
    for secret in examples:
        kubernetes_validate.validate(secret, KUBERNETES, strict=True)
    defined = {s["metadata"]["name"]: set(s["stringData"]) for s in examples}
    for objects in built.values():
        for where, spec in pod_specs(objects):
            for container in spec["containers"]:
                for source in container.get("envFrom", []):
                    if "secretRef" in source:
                        assert source["secretRef"]["name"] in defined, where
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref and ref["name"] not in OPERATOR_SECRETS:
                        assert ref["key"] in defined[ref["name"]], where
        for auth in of_kind(objects, "TriggerAuthentication").values():
            for ref in auth["spec"]["secretTargetRef"]:
                assert ref["key"] in defined[ref["name"]]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_no_secret_is_inlined(built: dict[str, Objects], overlay: str) -> None:
    objects = built[overlay]
    assert not of_kind(objects, "Secret"), "Secrets are referenced, never committed"
    for where, spec in pod_specs(objects):
        for container in spec["containers"]:
            for env in container.get("env", []):
                if "value" in env and SECRET_NAME.search(env["name"]):
                    # Only references to other variables, never a literal credential.
                    assert re.fullmatch(r"[^:]*://\$\(\w+\):\$\(\w+\)@.*", env["value"]), where
    for config in of_kind(objects, "ConfigMap").values():
        for key, value in config.get("data", {}).items():
            assert not re.search(r"PASSWORD|SECRET|TOKEN|PRIVATE", key), key
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), f"credentials in {key}"
    # The example Secrets are not part of any kustomization.
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "secrets.example" not in kustomization.read_text()


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_pod_has_probes_resources_and_runs_as_non_root(
    built: dict[str, Objects], overlay: str
) -> None:
    for where, spec in pod_specs(built[overlay]):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] > 0, where
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", where
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert {"cpu", "memory"} <= limits.keys() & requests.keys(), where
            if where.startswith("Deployment/"):
                for probe in ("livenessProbe", "readinessProbe"):
                    assert container[probe]["httpGet"]["path"], f"{where} {probe}"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_service_has_its_deployments_service_autoscaler_budget_and_migration(
    built: dict[str, Objects], overlay: str
) -> None:
    objects = built[overlay]
    deployments, services = of_kind(objects, "Deployment"), of_kind(objects, "Service")
    hpas, pdbs, jobs = (
        of_kind(objects, k) for k in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Job")
    )
    for name, info in SERVICES.items():
        api = deployments[name]
        container = api["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["api"], name
        assert container["ports"][0]["containerPort"] == info.port, name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert "replicas" not in api["spec"], f"{name}: the HPA owns the replica count"
        assert services[name]["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name
        assert hpas[name]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert pdbs[name]["spec"]["selector"] == api["spec"]["selector"]
        migrate = jobs[f"{name}-migrate"]["spec"]["template"]["spec"]["containers"][0]
        assert migrate["args"] == ["migrate"]
        assert migrate["image"] == container["image"]
        # Only the migrations (and their daily upkeep) hold the schema owner's password.
        owner_secret = {"secretRef": {"name": f"rtmn-{name}-migrate"}}
        assert owner_secret in migrate["envFrom"], name
        maintain = of_kind(objects, "CronJob")[f"{name}-maintain"]["spec"]["jobTemplate"]
        assert maintain["spec"]["template"]["spec"]["containers"][0] == migrate, name
        assert all(
            owner_secret not in c.get("envFrom", [])
            for d in deployments.values()
            for c in d["spec"]["template"]["spec"]["containers"]
        ), name
        if f"{name}-worker" in deployments:
            worker = deployments[f"{name}-worker"]["spec"]["template"]["spec"]["containers"][0]
            assert worker["args"] == ["worker"]
            assert {"name": "METRICS_PORT", "value": "9100"} in worker["env"]
            # The worker's event loop serves both probes on its metrics port.
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                assert worker[probe]["httpGet"] == {"path": path, "port": "metrics"}, name
            assert f"{name}-worker" in pdbs
    for consumer in ("wallet", "notify", "analytics"):
        assert f"{consumer}-worker" in deployments
    db_init = jobs["rtmn-db-init"]["spec"]["template"]["spec"]["containers"][0]
    assert db_init["command"] == ["rtmn-db", "init"]
    assert "gateway" in deployments
    assert "gateway" in services


def test_overlays_differ_in_scale(built: dict[str, Objects]) -> None:
    dev, prod = built["dev"], built["prod"]
    assert {h["spec"]["minReplicas"] for h in of_kind(dev, "HorizontalPodAutoscaler").values()} == {
        1
    }
    assert all(
        h["spec"]["minReplicas"] >= 3 for h in of_kind(prod, "HorizontalPodAutoscaler").values()
    )
    assert of_kind(dev, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 1
    assert of_kind(prod, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 3

    def memory(objects: Objects, name: str) -> str:
        container = of_kind(objects, "Deployment")[name]["spec"]["template"]["spec"]
        return str(container["containers"][0]["resources"]["limits"]["memory"])

    assert (memory(dev, "payments"), memory(prod, "payments")) == ("512Mi", "1Gi")
    namespaces = {o["metadata"].get("namespace") for o in dev if o["kind"] != "Namespace"}
    assert namespaces == {"rtmn-dev"}


def test_custom_resources_are_well_formed(built: dict[str, Objects]) -> None:
    """The operators' CRDs are not available offline: the fields the suite relies on, by hand."""
    for objects in built.values():
        rabbit = of_kind(objects, "RabbitmqCluster")["rabbitmq"]
        assert isinstance(rabbit["spec"]["replicas"], int)
        assert {"requests", "limits"} <= rabbit["spec"]["resources"].keys()
        for line in rabbit["spec"]["rabbitmq"]["additionalConfig"].splitlines():
            assert re.fullmatch(r"[a-z_.]+ = \S+", line), line
    prod = built["prod"]
    deployments = of_kind(prod, "Deployment")
    auths = of_kind(prod, "TriggerAuthentication")
    queues = set()
    for name, scaled in of_kind(prod, "ScaledObject").items():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        assert target in deployments, name
        assert "replicas" not in deployments[target]["spec"], f"KEDA owns {target}'s replicas"
        assert scaled["spec"]["minReplicaCount"] >= 1
        service = deployments[target]["metadata"]["labels"]["app.kubernetes.io/name"]
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["type"] == "rabbitmq"
            assert trigger["authenticationRef"]["name"] in auths
            queue = trigger["metadata"]["queueName"]
            assert queue.startswith(f"{service}."), queue  # DESIGN: <service>.<handler>
            queues.add(queue)
    assert {"wallet.credit-cashback", "notify.email-order-confirmation"} <= queues
    assert not of_kind(built["dev"], "ScaledObject"), "KEDA is optional: dev runs without it"


def test_prod_runs_what_tests_cluster_proved(built: dict[str, Objects]) -> None:
    """Three broker nodes that pause a minority, one evicted at a time; every worker twice (a
    relay standing by, two consumers per queue); every client through the cluster's Service."""
    prod = built["prod"]
    rabbit = of_kind(prod, "RabbitmqCluster")["rabbitmq"]["spec"]
    assert rabbit["replicas"] == 3
    assert "cluster_partition_handling = pause_minority" in rabbit["rabbitmq"]["additionalConfig"]
    budget = of_kind(prod, "PodDisruptionBudget")["rabbitmq"]["spec"]
    assert budget == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "rabbitmq"}},
    }
    scaled = {s["spec"]["scaleTargetRef"]["name"] for s in of_kind(prod, "ScaledObject").values()}
    assert all(s["spec"]["minReplicaCount"] >= 2 for s in of_kind(prod, "ScaledObject").values())
    budgets = {
        b["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component"): b
        for b in of_kind(prod, "PodDisruptionBudget").values()
    }
    assert budgets["worker"]["spec"]["maxUnavailable"] == 1
    for name, deployment in of_kind(prod, "Deployment").items():
        labels = deployment["metadata"]["labels"]
        if labels["app.kubernetes.io/component"] == "worker" and name not in scaled:
            assert deployment["spec"]["replicas"] == 2, name
    for name, pod in pod_specs(prod):
        for container in pod["containers"]:
            for env in container.get("env", []):
                if env["name"] == "AMQP_URL":
                    assert urlsplit(env["value"]).hostname == "rabbitmq", name


def test_every_principal_has_its_own_broker_login_and_no_pod_the_administrators(
    built: dict[str, Objects],
) -> None:
    examples = [d for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if d]
    secrets = {s["metadata"]["name"]: s["stringData"] for s in examples}
    for objects in built.values():
        users, permissions = of_kind(objects, "User"), of_kind(objects, "Permission")
        topics = of_kind(objects, "TopicPermission")
        for name in principals():
            user = users[f"rtmn-{name}"]
            imported = secrets[user["spec"]["importCredentialsSecret"]["name"]]
            assert imported["username"] == f"rtmn_{name}"  # consumers name producers by it
            grant = broker_grant(name)
            rules = permissions[f"rtmn-{name}"]["spec"]
            assert rules["userReference"]["name"] == f"rtmn-{name}"
            assert rules["permissions"] == {
                "configure": grant.configure,
                "write": grant.write,
                "read": grant.read,
            }
            topic = topics[f"rtmn-{name}"]["spec"]["permissions"]
            assert (topic["write"], topic["read"]) == (grant.publishes, grant.binds)
        for where, spec in pod_specs(objects):
            for container in spec["containers"]:
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef", {})
                    assert ref.get("name") != "rabbitmq-default-user", where


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector's matchLabels and In / NotIn expressions, as Kubernetes applies them."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        inside = labels.get(expression["key"]) in expression["values"]
        if inside != (expression["operator"] == "In"):
            return False
    return True


def test_prod_monitoring_scrapes_every_service_and_rabbitmq_and_ships_the_rules(
    built: dict[str, Objects],
) -> None:
    """components/monitoring (Prometheus Operator CRDs, checked by hand as above)."""
    prod = built["prod"]
    rules = of_kind(prod, "PrometheusRule")["rtmn"]
    assert rules["spec"] == yaml.safe_load((ROOT / "deploy/prometheus/rules.yml").read_text())
    monitors = of_kind(prod, "PodMonitor")
    services = monitors["rtmn"]["spec"]
    ports = {e["port"]: e["path"] for e in services["podMetricsEndpoints"]}
    assert ports == {"http": "/metrics", "metrics": "/metrics"}
    scraped = set()
    for name, deployment in of_kind(prod, "Deployment").items():
        template = deployment["spec"]["template"]
        if matches(services["selector"], template["metadata"]["labels"]):
            named = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
            assert named & ports.keys(), f"{name}: no port the monitor scrapes"
            scraped.add(name)
    expected = set(SERVICES) | {f"{s}-worker" for s in SERVICES if s != "geo"}
    assert scraped == expected, "every API and worker, not the gateway"
    broker = monitors["rabbitmq"]["spec"]
    operator_pod = {
        "app.kubernetes.io/name": "rabbitmq",
        "app.kubernetes.io/component": "rabbitmq",
        "app.kubernetes.io/part-of": "rabbitmq",
    }  # the labels the RabbitMQ Cluster Operator gives the pods of cluster `rabbitmq`
    assert matches(broker["selector"], operator_pod)
    assert broker["podMetricsEndpoints"] == [
        {"port": "prometheus", "path": "/metrics/per-object", "interval": "30s"}
    ]
    plugins = of_kind(prod, "RabbitmqCluster")["rabbitmq"]["spec"]["rabbitmq"]["additionalPlugins"]
    assert "rabbitmq_prometheus" in plugins
    dashboard = of_kind(prod, "ConfigMap")["rtmn-dashboard-payment-path"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(dashboard["data"]["payment-path.json"])
    assert shipped == json.loads((ROOT / "deploy/grafana/payment-path.json").read_text())


def test_dev_has_no_monitoring(built: dict[str, Objects]) -> None:
    kinds = {o["kind"] for o in built["dev"]}
    assert not kinds & {"PrometheusRule", "PodMonitor"}, "the Prometheus Operator is optional"


def ingress_to(objects: Objects, pod_labels: dict[str, str]) -> list[dict[str, Any]] | None:
    """The ingress rules of the NetworkPolicies selecting these pods; None if none selects them
    (then anything in the cluster reaches them)."""
    policies = [
        o for o in objects
        if o["kind"] == "NetworkPolicy" and matches(o["spec"]["podSelector"], pod_labels)
        and "Ingress" in o["spec"]["policyTypes"]
    ]  # fmt: skip
    return [rule for p in policies for rule in p["spec"].get("ingress", [])] if policies else None


def peers(rules: list[dict[str, Any]]) -> set[str]:
    """Who the rules admit, as "gateway pods", "namespace <name>", or "anyone"."""
    found = set()
    for rule in rules:
        for peer in rule.get("from") or [{}]:
            if "podSelector" in peer and "namespaceSelector" not in peer:
                labels = peer["podSelector"].get("matchLabels", {})
                found.add(f"{labels.get('app.kubernetes.io/name')} pods")
            elif set(peer) == {"namespaceSelector"}:
                name = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                found.add(f"namespace {name}")
            else:
                found.add("anyone")
    return found


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_only_the_gateway_reaches_a_services_api_and_monitoring_its_metrics(
    built: dict[str, Objects], overlay: str
) -> None:
    objects = built[overlay]
    deployments = of_kind(objects, "Deployment")
    for name in SERVICES:
        for deployment in (deployments[name], deployments.get(f"{name}-worker")):
            if deployment is None:
                continue
            pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
            rules = ingress_to(objects, pod_labels)
            where = deployment["metadata"]["name"]
            assert rules is not None, f"{where}: no NetworkPolicy selects its pods"
            ports = {p["port"] for rule in rules for p in rule.get("ports") or [{"port": "any"}]}
            if where == name:
                assert peers(rules) == {"gateway pods", "namespace monitoring"}, where
                assert ports == {"http"}, where
                gateway_rules = [r for r in rules if peers([r]) == {"gateway pods"}]
                assert gateway_rules, where
            else:
                assert peers(rules) == {"namespace monitoring"}, where
                assert ports == {"metrics"}, where
    gateway = deployments["gateway"]["spec"]["template"]["metadata"]["labels"]
    assert ingress_to(objects, gateway) is None, "the gateway is the way in"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_containers_listen_on_all_interfaces_and_make_run_on_loopback(
    built: dict[str, Objects], overlay: str
) -> None:
    [config] = [
        o for o in built[overlay]
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("rtmn-config")
    ]  # fmt: skip
    everywhere = "0.0.0.0"  # noqa: S104 - what a container must listen on
    assert config["data"]["HTTP_HOST"] == everywhere
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["x-env"]["HTTP_HOST"] == everywhere
    # `make run` sets no HTTP_HOST (scripts/dev-env.sh), so the default is what it binds.
    assert CommonSettings.model_fields["http_host"].default == "127.0.0.1"
    assert "HTTP_HOST" not in (ROOT / "scripts" / "dev-env.sh").read_text()
