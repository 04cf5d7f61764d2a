"""Is a process of the stack ready? HTTP health checks on loopback, never through a proxy.

``urllib.request.urlopen`` honours ``HTTP_PROXY``: with a proxy set and no ``NO_PROXY``, a health
check of ``127.0.0.1`` would go to the proxy and ``make up`` would wait for nothing. Every check
here uses an opener without proxies.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import worker_node_name

_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float) -> tuple[int, bytes]:
    """Status and body of a GET, straight to ``url`` (an HTTP error status is returned, not raised;
    a connection failure raises OSError)."""
    try:
        with _LOOPBACK.open(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def check_health(url: str, timeout: float = 1.0) -> tuple[bool, str]:
    """A service's health URL: (200, and its JSON ``status``) or what is wrong."""
    try:
        status, body = http_get(url, timeout)
    except OSError as exc:
        return False, f"unreachable ({exc.__class__.__name__})"
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return False, f"HTTP {status}, not JSON"
    if status == 200:
        return True, str(doc.get("status", status))
    return False, f"HTTP {status} {doc.get('status', '')} {doc.get('dependencies', '')}".strip()


def check_ready(url: str, timeout: float = 1.0) -> tuple[bool, str]:
    """A plain-text readiness URL (Prometheus's ``/-/ready``): 200 is ready."""
    try:
        status, _ = http_get(url, timeout)
    except OSError as exc:
        return False, f"unreachable ({exc.__class__.__name__})"
    return status == 200, "OK" if status == 200 else f"HTTP {status}"


def check_worker(settings: Settings, timeout: float = 0.5) -> tuple[bool, str]:
    """The queue's worker (no port): ready when it answers a control ping through the broker (Celery), or
    its heartbeat is fresh (taskiq: it beats once it reads the broker's stream)."""
    node = worker_node_name(settings)
    if settings.queue_engine == "taskiq":
        from scoring_bench.service import queue_taskiq

        alive = queue_taskiq.worker_alive(settings, node, timeout)
        return alive, "OK" if alive else f"{node} has no fresh heartbeat in the broker"
    from scoring_bench.service import queue  # Celery is imported only when a worker is checked

    with queue.make_celery(settings) as app:
        ok = queue.worker_answers(app, node, timeout)
    return ok, "OK" if ok else f"{node} did not answer a ping through the broker"
