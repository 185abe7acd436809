"""pgJDBC (Debian's libpostgresql-jdbc-java, run with Java's single-file source launcher) through the proxy:
server-side prepared statements after prepareThreshold, batches, commit/rollback, SQLSTATEs, types, metadata."""

import os
import shutil
import subprocess

import pytest

from harness import APP_DB, APP_PASSWORD, APP_USER, pgbouncer_xfail

JAR = "/usr/share/java/postgresql.jar"
SOURCE = os.path.join(os.path.dirname(__file__), "jdbc", "JdbcCheck.java")


def test_jdbc_driver(proxy, pool_mode, request):
    if shutil.which("java") is None or not os.path.exists(JAR):
        pytest.skip("java or libpostgresql-jdbc-java missing (scripts/test installs default-jdk-headless and it)")
    pgbouncer_xfail(request, "pgJDBC's named statements are not supported in transaction mode", strict=False)
    url = f"jdbc:postgresql://{proxy.host}:{proxy.port}/{APP_DB}"
    r = subprocess.run(["java", "-cp", JAR, SOURCE, url, APP_USER, APP_PASSWORD, f"jdbc_{pool_mode}"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"JdbcCheck failed:\n{r.stdout}\n{r.stderr[-4000:]}"
    for check in ("ok prepared", "ok transactions", "ok errors", "ok types", "all checks passed"):
        assert check in r.stdout
