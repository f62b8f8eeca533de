"""A real OpenLDAP server (Debian's slapd) on a free loopback port, for the LDAP sign-in tests.

Without slapd the tests skip on a developer's machine and fail under CI (`.ci/run` installs
slapd and ldap-utils).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import processes

SLAPD = shutil.which("slapd") or ("/usr/sbin/slapd" if Path("/usr/sbin/slapd").exists() else None)
BASE = "dc=example,dc=org"
ROOT_DN, ROOT_PW = f"cn=admin,{BASE}", "root-secret"
SCHEMAS = ["core", "cosine", "inetorgperson", "nis"]


def require_slapd() -> str:
    """slapd, and django-auth-ldap (installed by scripts/bootstrap where OpenLDAP's headers are)."""
    try:
        import django_auth_ldap  # noqa: F401
    except ImportError:
        missing = "django-auth-ldap (apt install libldap2-dev libsasl2-dev, then scripts/bootstrap)"
    else:
        missing = "" if SLAPD else "slapd (apt install slapd ldap-utils)"
    if not missing:
        return SLAPD
    if os.environ.get("CI"):
        raise RuntimeError(f"CI needs {missing} for the LDAP tests (.ci/run installs it)")
    pytest.skip(f"no {missing} on this machine", allow_module_level=True)


@dataclass
class Directory:
    uri: str
    process: subprocess.Popen
    folder: Path

    def connect(self):
        import ldap

        conn = ldap.initialize(self.uri)
        conn.simple_bind_s(ROOT_DN, ROOT_PW)
        return conn

    def add_person(self, uid: str, password: str, mail: str) -> str:
        dn = f"uid={uid},ou=people,{BASE}"
        entry = {
            "objectClass": [b"inetOrgPerson"], "uid": [uid.encode()], "cn": [uid.encode()],
            "givenName": [uid.title().encode()], "sn": [uid.title().encode()],
            "mail": [mail.encode()],
            "userPassword": [password.encode()],
        }  # fmt: skip
        self.connect().add_s(dn, list(entry.items()))
        return dn

    def add_group(self, cn: str, members: list[str]) -> str:
        dn = f"cn={cn},ou=groups,{BASE}"
        entry = {"objectClass": [b"groupOfNames"], "cn": [cn.encode()]}
        # groupOfNames needs one member at least: the root entry stays in every group, so a
        # test can remove the people it added.
        entry["member"] = [m.encode() for m in [ROOT_DN, *members]]
        self.connect().add_s(dn, list(entry.items()))
        return dn

    def remove_member(self, group_dn: str, member_dn: str) -> None:
        import ldap

        self.connect().modify_s(group_dn, [(ldap.MOD_DELETE, "member", [member_dn.encode()])])

    def stop(self) -> None:
        processes.stop(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> Directory:
    slapd = require_slapd()
    folder = Path(tempfile.mkdtemp(prefix="gemma-test-slapd-"))
    (folder / "data").mkdir()
    includes = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS)
    (folder / "slapd.conf").write_text(
        f"""{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {folder}/slapd.pid
database mdb
maxsize 16777216
suffix "{BASE}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {folder}/data
"""
    )
    port = processes.free_port()
    uri = f"ldap://127.0.0.1:{port}"
    # -d 0: stay in the foreground (a child we can stop), logging nothing.
    process = subprocess.Popen(
        [slapd, "-f", str(folder / "slapd.conf"), "-h", uri + "/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    directory = Directory(uri, process, folder)
    _wait_ready(directory)
    _seed(directory)
    return directory


def _wait_ready(directory: Directory) -> None:
    import ldap

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if directory.process.poll() is not None:
            raise RuntimeError(f"slapd exited: {directory.process.stderr.read().decode()[-2000:]}")
        try:
            directory.connect().unbind_s()
            return
        except ldap.SERVER_DOWN:
            time.sleep(0.1)
    directory.stop()
    raise RuntimeError("slapd did not answer within 20 s")


def _seed(directory: Directory) -> None:
    conn = directory.connect()
    conn.add_s(BASE, [("objectClass", [b"dcObject", b"organization"]), ("o", [b"Example"]),
                      ("dc", [b"example"])])  # fmt: skip
    for unit in ("people", "groups"):
        dn = f"ou={unit},{BASE}"
        conn.add_s(dn, [("objectClass", [b"organizationalUnit"]), ("ou", [unit.encode()])])
