"""Loopback fakes of the GitHub Issues and Jira REST APIs, as documented, for the tracker tests.

GitHub: ``POST /repos/{owner}/{repo}/issues`` (201, ``number``, ``html_url``,
``state``) and ``GET /repos/{owner}/{repo}/issues/{number}``, bearer token.
Jira: ``POST /rest/api/2/issue`` (201, ``id``, ``key``, ``self``) and
``GET /rest/api/2/issue/{key}`` with ``fields.status.statusCategory.key``;
basic auth (e-mail + API token) or a bearer PAT.  A wrong credential is 401,
an unknown issue 404, a body without the required fields 400, like the real
services.  Tests close issues with ``close``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Base:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.issues: dict[str, dict[str, Any]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return raw

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def _handle(self, method: str) -> None:
                body = self._body() if method == "POST" else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append((method, self.path, headers, body))
                if not fake.authorised(headers):
                    self._send(401, fake.unauthorised())
                    return
                status, answer = fake.route(method, self.path.split("?")[0], body)
                self._send(status, answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorised(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def unauthorised(self) -> Any:
        raise NotImplementedError

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        raise NotImplementedError


class FakeGitHub(_Base):
    def __init__(self, repo: str, token: str) -> None:
        self.repo, self.token = repo, token
        super().__init__()

    def authorised(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def unauthorised(self) -> Any:
        return {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        base = f"/repos/{self.repo}/issues"
        if method == "POST" and path == base:
            if not isinstance(body, dict) or not body.get("title"):
                return 422, {"message": "Validation Failed", "errors": [{"field": "title", "code": "missing_field"}]}
            number = len(self.issues) + 1
            issue = {"number": number, "title": body["title"], "body": body.get("body"), "state": "open",
                     "labels": [{"name": n} for n in body.get("labels", [])],
                     "html_url": f"https://github.invalid/{self.repo}/issues/{number}"}
            self.issues[str(number)] = issue
            return 201, issue
        match = re.fullmatch(re.escape(base) + r"/(\d+)", path)
        if method == "GET" and match:
            issue = self.issues.get(match.group(1))
            return (200, issue) if issue else (404, {"message": "Not Found"})
        return 404, {"message": "Not Found"}

    def close(self, number: str) -> None:
        self.issues[number]["state"] = "closed"


class FakeJira(_Base):
    def __init__(self, project: str, token: str, email: str | None = None) -> None:
        self.project, self.token, self.email = project, token, email
        super().__init__()

    def authorised(self, headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        if self.email:
            expected = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
            return given == f"Basic {expected}"
        return given == f"Bearer {self.token}"

    def unauthorised(self) -> Any:
        return {"errorMessages": ["You are not authenticated. Authentication required to perform this operation."],
                "errors": {}}

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/rest/api/2/issue":
            fields = (body or {}).get("fields") or {}
            errors = {}
            if (fields.get("project") or {}).get("key") != self.project:
                errors["project"] = "valid project is required"
            if not fields.get("summary"):
                errors["summary"] = "You must specify a summary of the issue."
            if not (fields.get("issuetype") or {}).get("name"):
                errors["issuetype"] = "valid issue type is required"
            if errors:
                return 400, {"errorMessages": [], "errors": errors}
            n = len(self.issues) + 1
            key = f"{self.project}-{n}"
            self.issues[key] = {"id": str(10000 + n), "key": key, "fields": {
                "summary": fields["summary"], "description": fields.get("description"), "labels": fields.get("labels", []),
                "status": {"name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}}}}
            return 201, {"id": str(10000 + n), "key": key, "self": f"{self.url}/rest/api/2/issue/{10000 + n}"}
        match = re.fullmatch(r"/rest/api/2/issue/([A-Z][A-Z0-9]*-\d+)", path)
        if method == "GET" and match:
            issue = self.issues.get(match.group(1))
            return (200, issue) if issue else (404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}})
        return 404, {"errorMessages": ["not found"], "errors": {}}

    def close(self, key: str) -> None:
        self.issues[key]["fields"]["status"] = {"name": "Won't Do", "statusCategory": {"key": "done", "name": "Done"}}
