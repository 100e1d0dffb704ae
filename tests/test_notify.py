"""The communications (playbooks/notify.yml, tasks/notify.yml) against a real HTTP receiver: both body
formats, the files written, a failed required webhook failing the run, the last message sent again."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_run import ROOT, playbook
from servers import free_port

NOTIFY = str(ROOT / "playbooks" / "notify.yml")


@pytest.fixture()
def receiver():
    got: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            got.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", got
    server.shutdown()


def _run(tmp_path, hooks, *extra):
    return playbook(NOTIFY, "-e", json.dumps({"artifacts_dir": str(tmp_path), "notify_webhooks": hooks}), *extra)


def test_messages_go_to_each_webhook_in_its_format_and_are_written(tmp_path, receiver):
    url, got = receiver
    hooks = [{"name": "chat", "url": url + "/chat", "format": "slack"}, {"name": "status", "url": url + "/status"}]
    r = _run(tmp_path, hooks, "-e", "message=t14_notice")
    assert r.returncode == 0, r.stdout[-3000:]
    (chat_path, chat), (status_path, status) = got
    assert (chat_path, status_path) == ("/chat", "/status") and list(chat) == ["text"]
    assert chat["text"].startswith("*Scheduled maintenance: NextCRM (lab) will be offline on 2026-12-05 22:00 UTC*")
    assert status["message"] == "t14_notice" and status["subject"].startswith("Scheduled maintenance")
    assert "**When:** 2026-12-05 22:00 UTC to 2026-12-06 02:00 UTC" in status["markdown"]
    text = (tmp_path / "communications" / "t14_notice.txt").read_text()
    assert "When: 2026-12-05 22:00 UTC" in text and "**" not in text
    assert (tmp_path / "communications" / "t14_notice.md").stat().st_mode & 0o777 == 0o600
    assert "notify t14_notice: sent to 2 of 2 webhooks" in (tmp_path / "timeline.log").read_text()
    # no message named: the last one, again
    assert _run(tmp_path, hooks).returncode == 0 and [p for p, _ in got[2:]] == ["/chat", "/status"]
    assert got[3][1]["message"] == "t14_notice"


def test_a_required_webhook_that_fails_fails_the_run_an_optional_one_does_not(tmp_path, receiver):
    url, got = receiver
    down = f"http://127.0.0.1:{free_port()}/down"
    r = _run(tmp_path, [{"name": "status", "url": url + "/status"}, {"name": "pager", "url": down}],
             "-e", "message=system_offline")
    assert r.returncode != 0 and "pager" in r.stdout
    r = _run(tmp_path, [{"name": "status", "url": url + "/status"}, {"name": "pager", "url": down, "optional": True}],
             "-e", "message=system_offline")
    assert r.returncode == 0, r.stdout[-3000:]
    assert "notify system_offline: sent to 1 of 2 webhooks, failed (optional): pager" in (
        tmp_path / "timeline.log").read_text()


@pytest.mark.parametrize("verbosity", [[], ["-vvv"]])
def test_a_webhooks_url_is_in_no_output_when_its_receiver_is_down(tmp_path, receiver, verbosity):
    """Slack's webhook URLs carry their token in the path: a failed send names the webhook and its status."""
    url, _ = receiver
    token = "T0KEN-b7f3e1d2c4a5968"
    down = f"http://127.0.0.1:{free_port()}/services/{token}"
    r = _run(tmp_path, [{"name": "status", "url": url + "/status"}, {"name": "ops-chat", "url": down,
                                                                    "format": "slack"}],
             "-e", "message=system_offline", *verbosity)
    assert r.returncode != 0
    assert token not in r.stdout + r.stderr
    assert "system_offline was not taken by ops-chat (HTTP status -1: no answer" in r.stdout, r.stdout[-3000:]
    timeline = (tmp_path / "timeline.log").read_text()
    assert "sent to 1 of 2 webhooks, failed: ops-chat" in timeline and token not in timeline
    for f in tmp_path.rglob("*"):
        assert not f.is_file() or token not in f.read_text(errors="replace"), f
