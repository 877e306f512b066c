"""A command's shown form: exactly the argv that runs, each secret argument masked.

Masking is done per argument, before quoting: a secret with a quote or a space in it is
quoted differently once it is part of ``name=value``, so masking the joined string
missed it (issue 16 #1); and a substring match masked every occurrence of a short
secret's letters (#24).
"""

from __future__ import annotations

import subprocess

import pytest

from wlbplan.model.command import MASK, Command, Raw, sh, shown

SECRETS = {
    "single quote": "pa'ss word$1",
    "double quote": 'say "open" sesame',
    "spaces": "  lead and trail  ",
    "dollar": "$HOME$(id)`id`",
    "backslash": "back\\slash\\n",
    "non-ASCII": "pässwörd-雪-😀",
    "all of them": "pa'ss \"w\\ö$rd",
    "equals": "a=b=c",
}


def bash_words(line: str) -> list[str]:
    done = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"], capture_output=True,
                          check=True, env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    return done.stdout.decode().split("\0")[:-1]


def fragments(secret: str) -> list[str]:
    """Pieces of ``secret`` that any quoting of it would still show."""
    return [part for part in secret.replace("'", " ").replace('"', " ").replace("\\", " ")
            .split() if len(part) >= 3]


@pytest.mark.parametrize("secret", SECRETS.values(), ids=SECRETS.keys())
def test_a_secret_in_name_value_form_is_masked(secret: str) -> None:
    command = Command(("xe", "pool-initialize-wlb", "wlb_url=wlb.example.com:8012",
                       "wlb_username=wlbuser", f"wlb_password={secret}"), secrets=(secret,))
    assert command.display() == ("xe pool-initialize-wlb wlb_url=wlb.example.com:8012 "
                                 f"wlb_username=wlbuser wlb_password={MASK}")
    assert command.shell().endswith(sh(f"wlb_password={secret}"))  # what runs is unmasked


@pytest.mark.parametrize("secret", SECRETS.values(), ids=SECRETS.keys())
def test_a_secret_as_its_own_argument_is_masked(secret: str) -> None:
    command = Command(("sh", "-c", 'login "$1"', "sh", secret), secrets=(secret,))
    assert command.display() == f"sh -c 'login \"$1\"' sh {MASK}"
    for piece in fragments(secret):
        assert piece not in command.display()


def test_a_short_secret_masks_its_argument_not_its_letters() -> None:
    command = Command(("xe", "pool-initialize-wlb", "wlb_url=x.example:8012",
                       "xenserver_password=x"), secrets=("x",))
    assert command.display() == (f"xe pool-initialize-wlb wlb_url=x.example:8012 "
                                 f"xenserver_password={MASK}")


def test_several_secrets_and_empty_ones() -> None:
    command = Command(("tool", "--user", "u", "--pw", "p w", "k=v'", "keep"),
                      secrets=("p w", "v'", ""))
    assert command.display() == f"tool --user u --pw {MASK} k={MASK} keep"


@pytest.mark.parametrize("argv", [
    ("xe", "pool-uninstall-ca-certificate", "name=wlbplan-x\x1b[31mred\x1b[0m.pem"),
    ("openssl", "x509", "-subj", "/CN=a\nb/O=c\rd"),
    ("echo", "bell\x07", "nel\x85", "ls\u2028ps\u2029", "vt\x0bff\x0c", "plain"),
])
def test_the_shown_command_is_exactly_the_argv_that_runs(argv: tuple[str, ...]) -> None:
    """Nothing stripped, nothing raw: bash reads the shown line back as the same argv."""
    display = Command(argv).display()
    assert display.isprintable()
    assert bash_words(display) == list(argv)
    assert bash_words(Command(argv).shell()) == list(argv)


def test_shown_is_sh_with_unprintables_escaped() -> None:
    parts = ("xe", "pool-install-ca-certificate", Raw('filename="$T"/x'), "name=a b")
    assert shown(*parts) == sh(*parts)
    assert shown("xe", "name=a\x1bb") == "xe $'name=a\\x1bb'"
